"""Training's parts, which utils/phases.py runs phase by phase: the learning rate and optimizer, what a run decides on
its own account (stopping.py: early stopping, the plateau), precise BN, where its time goes, its history and
TensorBoard strips, its resumable checkpoints and run folder, and training on several devices."""
