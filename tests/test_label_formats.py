"""Labels as published datasets write them (tests/label_writers.py), through voc_annotation.py as a user runs it:
each is refused with a message that names the files, and --fix writes labels equal to a careful conversion."""

import os

import numpy as np
import pytest
from PIL import Image

from tests import label_writers
from tests.helpers import digest, run_inline
from utils.dataset.check import survey_pairs
from utils.labels.facts import facts_of, read_label
from utils.labels.formats import judge_labels


def fixed_labels(voc) -> dict:
    folder = os.path.join(voc, "VOC2007", "SegmentationClass_fixed")
    return {
        os.path.splitext(name)[0]: np.asarray(Image.open(os.path.join(folder, name))) for name in os.listdir(folder)
    }


def agreement(fixed: dict, truth: dict) -> float:
    assert set(fixed) == set(truth)
    return sum((fixed[i] == truth[i]).sum() for i in truth) / sum(t.size for t in truth.values())


def check_refused(result, voc, kind_text: str, files: list):
    """Refused (exit 2, no traceback, no splits written) with a message saying kind_text and naming files."""
    assert result.returncode == 2, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "splits were not written" in result.stderr
    assert kind_text in result.stdout, result.stdout[-3000:]
    assert all(name in result.stdout for name in files), result.stdout[-3000:]
    assert not os.path.exists(os.path.join(voc, "VOC2007", "ImageSets"))


def fix_and_use(voc, *flags) -> str:
    fixed = run_inline("voc_annotation.py", "--vocdevkit_path", voc, "--fix", *flags)
    assert fixed.returncode == 2 and "--use_fixed" in fixed.stderr, fixed.stdout[-3000:] + fixed.stderr[-2000:]
    assert "The corrected labels, surveyed again" in fixed.stdout
    return fixed.stdout


def test_binary_masks_with_a_resampled_rim_are_thresholded(tmp_path):
    voc, truth = label_writers.noisy_binary(tmp_path)
    before = digest(voc)
    checked = run_inline("voc_annotation.py", "--vocdevkit_path", voc)
    check_refused(checked, voc, "a binary mask with resampling noise", ["defect000.png", "defect001.png"])
    assert "thresholds at 128 and writes 0/1" in checked.stdout
    assert "num_classes: 2 (from the labels" in checked.stdout  # not 255
    assert digest(voc) == before
    out = fix_and_use(voc)
    assert "noise pixels snapped" in out and "0/255 -> 0/1" in out
    assert agreement(fixed_labels(voc), truth) == 1.0


def test_jpeg_masks_of_large_objects_snap_to_their_two_values(tmp_path):
    voc, truth = label_writers.jpeg_masks(tmp_path, quality=70)
    checked = run_inline("voc_annotation.py", "--vocdevkit_path", voc)
    check_refused(checked, voc, "a JPEG file", ["polyp000.jpg", "polyp001.jpg"])
    out = fix_and_use(voc)
    assert "num_classes: 2" in out.split("surveyed again")[1]  # no edge grey became a class
    fixed = fixed_labels(voc)
    assert all(set(np.unique(label)) <= {0, 1} for label in fixed.values())
    assert agreement(fixed, truth) > 0.995  # JPEG moves an edge by a pixel here and there


def test_palette_files_whose_orders_differ_are_remapped_by_colour(tmp_path):
    voc, truth = label_writers.palette_orders(tmp_path)
    shuffled = ["street002.png", "street005.png", "street008.png", "street011.png"]
    checked = run_inline("voc_annotation.py", "--vocdevkit_path", voc)
    check_refused(checked, voc, "palette order differs", shuffled)
    assert "street000.png" not in checked.stdout  # the files in the usual order are fine
    fix_and_use(voc)
    assert agreement(fixed_labels(voc), truth) == 1.0


def test_palette_order_of_the_users_choice(tmp_path):
    voc, truth = label_writers.palette_orders(tmp_path)
    palette = ["#1ec81e", "#000000", "#c81e1e"]  # PALETTE's colours as classes 1, 2, 0 -> ids 0, 1, 2 reordered
    fix_and_use(voc, "--palette", *palette)
    fixed = fixed_labels(voc)
    assert agreement({i: np.array([1, 2, 0])[t] for i, t in truth.items()}, fixed) == 1.0


def test_colour_masks_name_unlisted_colours_and_send_ignore_colours_to_255(tmp_path):
    voc, truth = label_writers.colour_masks(tmp_path)
    palette = ["--palette", *label_writers.AERIAL]
    unknown = run_inline("voc_annotation.py", "--vocdevkit_path", voc)
    check_refused(unknown, voc, "not a known palette", ["tile000.png"])
    assert "#9b9b9b" in unknown.stdout and "#000000" in unknown.stdout  # the inventory names the gap colour too

    partial = run_inline("voc_annotation.py", "--vocdevkit_path", voc, "--fix", *palette)
    check_refused(partial, voc, "colours in neither --palette nor --ignore_colours: #000000 (", ["tile000.png"])
    assert "#9b9b9b (" in partial.stdout and "--fix wrote nothing" in partial.stdout
    assert not os.path.exists(os.path.join(voc, "VOC2007", "SegmentationClass_fixed"))

    ignore = ["--ignore_colours", label_writers.UNLABELLED, label_writers.GAP]
    out = fix_and_use(voc, *palette, *ignore)
    assert "num_classes: 5" in out.split("surveyed again")[1]
    assert agreement(fixed_labels(voc), truth) == 1.0


def test_a_dry_run_writes_nothing_at_all(tmp_path):
    voc, _ = label_writers.noisy_binary(tmp_path, count=4)
    before = digest(tmp_path)
    for flags in ([], ["--fix"]):
        result = run_inline("voc_annotation.py", "--vocdevkit_path", voc, "--dry_run", *flags)
        assert "Traceback" not in result.stderr
        assert digest(tmp_path) == before and sorted(os.listdir(voc)) == ["VOC2007"]
    assert "Would write 4 labels" in result.stdout and "nothing was written" in result.stdout


def test_the_training_check_refuses_shuffled_palettes_naming_the_files(tmp_path):
    """train.py's check judges the formats over its splits as voc_annotation.py does over the folder."""
    voc, _ = label_writers.palette_orders(tmp_path)
    labels = os.path.join(voc, "VOC2007", "SegmentationClass")
    pairs = [
        (os.path.join(voc, "VOC2007", "JPEGImages", name.replace(".png", ".jpg")), os.path.join(labels, name))
        for name in sorted(os.listdir(labels))
    ]
    fatal = survey_pairs(pairs, num_classes=3).fatal
    assert sorted(os.path.basename(p.path) for p in fatal) == [f"street{i:03d}.png" for i in (2, 5, 8, 11)]
    assert all(p.fixable and "voc_annotation.py --fix" in p.message for p in fatal)


@pytest.mark.parametrize("thin", [True, False])
def test_clean_class_ids_with_a_thin_class_are_not_taken_for_noise(tmp_path, thin):
    """A one-pixel class (a boundary between two others) is a class, not a resampling rim; 0/255 in one file of a
    class-id dataset whose 255 is a thin ignore border is background and ignore."""
    facts = []
    for i in range(6):
        label = np.zeros((40, 40), np.uint8)
        label[10:30, 10:30] = 2
        if thin:
            label[9, 10:30] = label[30, 10:30] = 1  # a boundary class between background and the cell
        label[0, :] = 255
        if i == 5:
            label = np.where(label == 255, 255, 0).astype(np.uint8)  # background and the ignore border only
        path = tmp_path / f"{i}.png"
        Image.fromarray(label).save(path)
        facts.append(facts_of(str(path), read_label(str(path))))
    judgement = judge_labels(facts, num_classes=3)
    assert not judgement.conversions and not [p for p in judgement.problems if p.fatal]


def judge_files(tmp_path, arrays: list, save) -> tuple:
    """Each array saved by save(array, path stem), read back, judged together; (judgement, [paths])."""
    paths = [save(array, str(tmp_path / f"label{i}")) for i, array in enumerate(arrays)]
    return judge_labels([facts_of(p, read_label(p)) for p in paths]), paths


def save_as(suffix: str, convert=lambda a: Image.fromarray(a)):
    def save(array, stem):
        convert(array).save(stem + suffix)
        return stem + suffix

    return save


@pytest.mark.parametrize(
    "encoding, save",
    [
        ("GIF (mode P, grey palette)", save_as(".gif")),
        ("TIFF", save_as(".tif")),
        ("bilevel PNG (mode 1)", save_as(".png", lambda a: Image.fromarray(a > 0))),
        ("16-bit PNG of 0 and 65535", save_as(".png", lambda a: Image.fromarray((a > 0).astype(np.uint16) * 65535))),
        ("float TIFF of 0 and 1", save_as(".tif", lambda a: Image.fromarray((a > 0).astype(np.float32)))),
        ("grey stored as RGB", save_as(".png", lambda a: Image.fromarray(np.stack([a] * 3, -1)))),
        ("the mask in the alpha channel", save_as(".png", lambda a: Image.fromarray(np.dstack([a * 0] * 3 + [a])))),
    ],
)
def test_binary_masks_in_other_encodings_become_0_1_pngs(tmp_path, encoding, save):
    """DRIVE's GIFs, Massachusetts roads' TIFFs, and the other ways a 0/255 mask is published."""
    rng = np.random.default_rng(5)
    truths = [label_writers.blobs(rng, 40, 56, 2) for _ in range(4)]
    judgement, paths = judge_files(tmp_path, [t * 255 for t in truths], save)
    for path, truth in zip(paths, truths):
        converted = judgement.conversions[path].apply(read_label(path)) if path in judgement.conversions else None
        if encoding.startswith("bilevel"):
            assert converted is None and np.array_equal(np.asarray(Image.open(path), np.uint8), truth)  # 0/1 already
        else:
            assert np.array_equal(converted, truth), encoding
            assert any(p.path == path and p.fatal and p.fixable for p in judgement.problems)


def test_labels_whose_ids_start_at_1_are_warned_of(tmp_path):
    """Oxford pets' trimaps: 1 object, 2 background, 3 border; class 0 would stay empty."""
    rng = np.random.default_rng(6)
    trimaps = [np.array([2, 1, 3], np.uint8)[label_writers.blobs(rng, 40, 56, 3)] for _ in range(4)]
    judgement, _ = judge_files(tmp_path, trimaps, save_as(".png"))
    (warning,) = [p for p in judgement.problems if p.kind == "no_background"]
    assert not warning.fatal and "class values are [1, 2, 3]" in warning.message and not judgement.conversions


def test_labels_named_with_a_suffix_are_paired_and_renamed_by_the_fix(tmp_path):
    """Carvana's masks: car.jpg with car_mask.gif (0/255)."""
    voc, truth = label_writers.noisy_binary(tmp_path, count=5)
    labels = os.path.join(voc, "VOC2007", "SegmentationClass")
    for sample_id, expected in truth.items():
        os.remove(os.path.join(labels, f"{sample_id}.png"))
        Image.fromarray(expected * 255).save(os.path.join(labels, f"{sample_id}_mask.gif"))
    checked = run_inline("voc_annotation.py", "--vocdevkit_path", voc)
    check_refused(checked, voc, "named like its image defect000.jpg with '_mask' added", ["defect001_mask.gif"])
    assert "have no label" not in checked.stdout
    fix_and_use(voc)
    assert agreement(fixed_labels(voc), truth) == 1.0
    used = run_inline("voc_annotation.py", "--vocdevkit_path", voc, "--use_fixed")
    assert used.returncode == 0 and "trainval 5" in used.stdout, used.stdout[-2000:] + used.stderr[-2000:]


def test_a_background_only_label_among_0_255_masks_needs_no_fix(tmp_path):
    """In a dataset of 0/255 masks, a label of 0 alone (an image without the object) is class ids already."""
    rng = np.random.default_rng(7)
    masks = [label_writers.blobs(rng, 40, 56, 2) * 255 for _ in range(3)] + [np.zeros((40, 56), np.uint8)]
    judgement, paths = judge_files(tmp_path, masks, save_as(".png"))
    assert sorted(judgement.conversions) == sorted(paths[:3])
    assert [p.kind for p in judgement.problems if p.path == paths[3]] == ["background"]  # a warning, not fatal
