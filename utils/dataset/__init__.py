"""A dataset as a whole: its checks (check.py: images and pairs, a split's or the dataset's survey, train.py's refusal)
and the demo dataset a fresh clone trains on (demo.py)."""
