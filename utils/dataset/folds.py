"""k-fold splits for cross-validation: every trainval id in exactly one fold's val, the images of a group (a
patient, a scene, a slide: a key found in the id) always together, so that no fold validates on what it trained on.
voc_annotation.py writes them; train.py --fold i trains on one; cross_validate.py on all."""

import random
import re
from collections import defaultdict


def check_folds(num_folds: int, group_pattern: str) -> None:
    """ValueError for a fold count below 2 (0 = none) or a group pattern that is not a regular expression."""
    if num_folds == 1 or num_folds < 0:
        raise ValueError(f"num_folds={num_folds}: expected 0 (no folds) or 2 or more (nnU-Net's 5).")
    try:
        re.compile(group_pattern)
    except re.error as error:
        raise ValueError(
            f"group_pattern={group_pattern!r}: not a regular expression ({error}). Give one whose first group (or "
            r"whole match) is the group key, e.g. '^(\w+?)_' for ids like patient7_slice12."
        ) from None


def group_of(image_id: str, pattern: str) -> str:
    """The id's group key: the pattern's first group (or whole match) in it; the id itself without a pattern or a
    match."""
    found = re.search(pattern, image_id) if pattern else None
    if not found:
        return image_id
    return found.group(1) if found.groups() else found.group(0)


def make_folds(ids, num_folds: int, seed: int, pattern: str = "") -> dict:
    """{fold{i}_train, fold{i}_val: sorted ids} for i < num_folds: the groups shuffled by `seed`, then each, the
    largest first, given to the fold with the fewest ids so far, so the folds are as even as the groups allow.

    Raises:
        ValueError: fewer groups than folds.
    """
    groups = defaultdict(list)
    for image_id in sorted(ids):
        groups[group_of(image_id, pattern)].append(image_id)
    if len(groups) < num_folds:
        raise ValueError(
            f"num_folds={num_folds}, but the {len(ids)} images form {len(groups)} groups"
            + (f" (group_pattern={pattern!r})" if pattern else "")
            + ": each fold needs one to validate on. Use fewer folds, or a pattern that finds more groups."
        )
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    keys.sort(key=lambda key: -len(groups[key]))  # stable: equal sizes stay in their shuffled order
    folds = [[] for _ in range(num_folds)]
    for key in keys:
        min(folds, key=len).extend(groups[key])
    splits = {}
    for index, fold in enumerate(folds):
        splits[f"fold{index}_train"] = sorted(i for other in folds if other is not fold for i in other)
        splits[f"fold{index}_val"] = sorted(fold)
    return splits
