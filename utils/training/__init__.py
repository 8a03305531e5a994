"""Training: the phases of a run (phases.py), its learning rate and optimizer, what it decides on its own account
(stopping.py: early stopping, the plateau), precise BN, the UNet weight map, where its time goes, its history and
TensorBoard strips, its resumable checkpoints and run folder, and training on several devices."""
