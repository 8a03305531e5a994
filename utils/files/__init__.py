"""Files: images read at their own bit depth and band count (bands.py), a dataset's files without TensorFlow (images.py:
split files, ids, labels, IGNORE_LABEL), the paths a script is given (paths.py), and writing so that nothing is lost
(atomic.py)."""
