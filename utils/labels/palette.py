"""Palette labels (mode P): each index's colour is compared across files; where a colour sits at different
indices, the colours are the classes and the files are remapped by colour."""

from collections import Counter

import numpy as np

from utils.files.images import IGNORE_LABEL
from utils.labels.colour import listed_ids, unlisted_problem
from utils.labels.colour_masks import BLACK_WHITE, pack_colours, unpack_colour
from utils.labels.judgement import NO_CLASS, Conversion, Problem
from utils.visualize import hex_colour, voc_colour


def judge_indexed(files: list, palette, ignore_colours, conversions: dict, problems: list, findings: list) -> None:
    """P-mode labels: their indices are the class ids, unless a colour sits at different indices in different
    files (then the colours are, and each file is remapped by colour) or --palette / --ignore_colours name colours."""
    places = {}  # colour -> Counter(index -> files)
    for f in files:
        for index, colour in f.palette.items():
            places.setdefault(colour, Counter())[index] += 1
    moved = {c: n for c, n in places.items() if len(n) > 1}
    if not moved and not palette and not ignore_colours:
        return
    colours = np.array(sorted(places), np.int64)
    if palette:  # palette entries are exact colours: no blends, no noise
        found = listed_ids(colours, np.ones(len(colours), bool), palette, ignore_colours, jpeg=False)
        ids = {c: i for c, i in zip(colours.tolist(), found.tolist()) if i != NO_CLASS}
        unlisted = [c for c, i in zip(colours.tolist(), found.tolist()) if i == NO_CLASS]
    else:
        ids, unlisted = auto_ids(colours, places), []
        if ignore_colours:
            ids.update({c: IGNORE_LABEL for c in pack_colours(list(ignore_colours)).tolist() if c in ids})
    order = ", ".join(f"{hex_colour(unpack_colour(c))} -> {ids[c]}" for c in sorted(ids, key=lambda c: ids[c]))
    if moved:
        findings.append(
            f"Palette labels: {len(moved)} colours sit at different indices in different files, so the colours are "
            f"the classes, not the indices: --fix writes each pixel's class by its colour ({order}; --palette sets "
            "another class order)."
        )
    usual = {c: n.most_common(1)[0][0] for c, n in places.items()}
    for f in files:
        missing = sorted({c for c in f.palette.values() if c in unlisted})
        if missing:
            problems.append(unlisted_problem(f, missing, {c: int(f.counts[i]) for i, c in f.palette.items()}))
            continue
        table = np.arange(256, dtype=np.uint8)
        for index, colour in f.palette.items():
            table[index] = ids[colour]
        if all(table[i] == i for i in f.palette):
            continue
        conversions[f.path] = Conversion(table=table, notes=[f"palette indices -> classes by colour ({order})"])
        differs = [
            f"{hex_colour(unpack_colour(c))} is index {i} here but {usual[c]} in {places[c][usual[c]]} files"
            for i, c in sorted(f.palette.items())
            if usual[c] != i
        ]
        found = "; ".join(differs[:3]) if differs else "its indices differ from the classes --palette gives"
        problems.append(
            Problem(
                f.path,
                "palette_order" if moved else "palette",
                f"{f.path}: palette order differs from the other files' ({found}). The colours are consistent across "
                "files, the indices are not, so the indices cannot be the class ids. python voc_annotation.py --fix "
                f"writes each pixel's class by its colour: {order}.",
                True,
                True,
            )
        )


def auto_ids(colours: np.ndarray, places: dict) -> dict:
    """{colour: class id} without a --palette: black and white are 0 and 1; VOC's colours their VOC index; else each
    colour takes the index it has in most files (a colour whose index is taken goes to the next free one)."""
    rgb = [unpack_colour(c) for c in colours]
    if set(rgb) <= set(BLACK_WHITE):
        return {int(c): BLACK_WHITE.index(v) for c, v in zip(colours, rgb)}
    voc = {voc_colour(i): i for i in reversed(range(256))}
    if all(v in voc for v in rgb):
        return {int(c): voc[v] for c, v in zip(colours, rgb)}
    ids, taken = {}, set()
    for colour in sorted(places, key=lambda c: -places[c].most_common(1)[0][1]):
        index = places[colour].most_common(1)[0][0]
        index = index if index not in taken else min(set(range(256)) - taken)
        ids[colour] = index
        taken.add(index)
    return ids
