"""Training augmentation, all of it: draws.py decides each sample's augmentation (the Augmentation settings, the
random placement, aimed crops); pixels.py moves its pixels once and jitters its colours."""
