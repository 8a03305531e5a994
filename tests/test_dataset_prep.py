"""A corpus of bad (and awkward but valid) datasets, through voc_annotation.py and train.py's guard."""

import os

import numpy as np
import pytest
from PIL import Image

from tests.helpers import TINY_TRAIN, digest, make_tiny_voc, run_inline, run_script
from utils.dataset.check import check_dataset

TRAIN = TINY_TRAIN + ["--freeze_train", "false", "--unfreeze_epoch", "1", "--unfreeze_batch_size", "2"]


def paths(voc, sample_id):
    root = os.path.join(voc, "VOC2007")
    image = os.path.join(root, "JPEGImages", f"{sample_id}.jpg")
    return image, os.path.join(root, "SegmentationClass", f"{sample_id}.png"), root


def label_of(voc, sample_id):
    return np.asarray(Image.open(paths(voc, sample_id)[1]))


def remove_splits(voc):
    splits = os.path.join(voc, "VOC2007", "ImageSets", "Segmentation")
    for name in os.listdir(splits):
        os.remove(os.path.join(splits, name))
    os.rmdir(splits)


def empty_train_split(voc):
    open(os.path.join(voc, "VOC2007", "ImageSets", "Segmentation", "train.txt"), "w").close()


def remove(which: int):
    return lambda voc: os.remove(paths(voc, "img 03")[which])


def write_image(content: bytes = b"", truncate: bool = False):
    """Replaces img 03's image with `content`, or with its own first half (a truncated JPEG)."""

    def broken(voc):
        image = paths(voc, "img 03")[0]
        data = open(image, "rb").read()
        open(image, "wb").write(data[: len(data) // 2] if truncate else content)

    return broken


def write_label(change, dtype=np.uint8, **save_options):
    """Replaces img 03's label with change(its values) as `dtype`, saved as the options say."""

    def broken(voc):
        values = change(label_of(voc, "img 03")).astype(dtype)
        Image.fromarray(values).save(paths(voc, "img 03")[1], **save_options)

    return broken


IMAGE, LABEL = "img 03.jpg", "img 03.png"
# (case, how the dataset is broken, the file the message names, what the message says); the file cases are
# those voc_annotation.py checks too (it builds the splits, so it has none of the split cases).
SPLIT_CASES = [
    ("missing ImageSets", remove_splits, "train.txt", "not found"),
    ("empty split", empty_train_split, "train.txt", "lists no ids"),
    ("image missing", remove(0), IMAGE, "image not found"),
    ("label missing", remove(1), LABEL, "label not found"),
]
FILE_CASES = [
    ("zero-byte image", write_image(b""), IMAGE, "empty file (0 bytes)"),
    ("truncated JPEG", write_image(truncate=True), IMAGE, "truncated"),
    ("text named .jpg", write_image(b"this is not an image\n"), IMAGE, "cannot be read as an image"),
    ("RGB label", write_label(lambda v: np.stack([v * 100] * 2 + [v], -1)), LABEL, "RGB colour mask"),
    ("JPEG label", write_label(lambda v: np.where(v == 1, 255, 0), format="JPEG"), LABEL, "a JPEG file"),
    ("0/255 label", write_label(lambda v: np.where(v > 0, 255, 0)), LABEL, "values are 0 and 255 only"),
    ("value 7", write_label(lambda v: np.where(v == 2, 7, v)), LABEL, "class values [7] but num_classes=3"),
    ("size mismatch", write_label(lambda v: v[:40]), LABEL, "differs from its image"),
    ("16-bit label", write_label(lambda v: v, dtype=np.uint16), LABEL, "16 or 32 bits per pixel"),
]


def by_case(cases) -> list:
    return [case for case, *_ in cases]


def assert_refused(result, name: str, expected: str):
    assert result.returncode != 0, result.stdout[-2000:]
    text = result.stdout + result.stderr
    assert name in text and expected in text, text[-3000:]
    assert "Traceback" not in text


ALL_CASES = SPLIT_CASES + FILE_CASES


@pytest.mark.parametrize("case, breaks, name, expected", ALL_CASES, ids=by_case(ALL_CASES))
def test_the_training_check_refuses_each_bad_dataset(tmp_path, case, breaks, name, expected):
    """check_dataset is what train.py runs before it builds the model (the script: the next test)."""
    voc = make_tiny_voc(tmp_path)
    breaks(voc)
    before = digest(voc)
    with pytest.raises(ValueError) as refused:
        check_dataset(voc, num_classes=3, min_train=2, min_val=1)
    assert name in str(refused.value) and expected in str(refused.value), str(refused.value)
    assert digest(voc) == before


def test_zero_255_labels_point_to_the_fix_in_a_binary_dataset(tmp_path):
    """Among 0/1 labels a 0/255 one is a binary mask that --fix writes as 0/1; among 3-class labels (the corpus
    case above) --fix cannot tell which class its 255 is, and the message says so."""
    voc = make_tiny_voc(tmp_path, binary=True)
    write_label(lambda v: np.where(v > 0, 255, 0))(voc)
    with pytest.raises(ValueError, match="0 and 255 only.*voc_annotation.py --fix to write"):
        check_dataset(voc, num_classes=2, min_train=2, min_val=1)


# One split case and one file case through train.py itself: it stops with the message, before the model.
SCRIPT_CASES = [case for case in ALL_CASES if case[0] in ("missing ImageSets", "value 7")]


@pytest.mark.parametrize("case, breaks, name, expected", SCRIPT_CASES, ids=by_case(SCRIPT_CASES))
def test_train_refuses_bad_data_before_building_the_model(tmp_path, case, breaks, name, expected):
    voc = make_tiny_voc(tmp_path)
    breaks(voc)
    before = digest(voc)
    result = run_inline("train.py", *TRAIN, "--vocdevkit_path", voc, "--save_dir", tmp_path / "logs")
    assert_refused(result, name, expected)
    assert "Weights:" not in result.stdout  # stopped before the model was built
    assert digest(voc) == before


@pytest.mark.parametrize("case, breaks, name, expected", FILE_CASES, ids=by_case(FILE_CASES))
def test_voc_annotation_reports_bad_files_and_writes_nothing(tmp_path, case, breaks, name, expected):
    voc = make_tiny_voc(tmp_path)
    breaks(voc)
    before = digest(voc)
    # one case as a process of its own (its exit status), the others in this one
    run = run_script if case == FILE_CASES[0][0] else run_inline
    result = run("voc_annotation.py", "--vocdevkit_path", voc, "--num_classes", "3")
    assert_refused(result, name, expected)
    assert "splits were not written" in result.stderr
    assert digest(voc) == before


def test_fix_writes_corrected_labels_into_a_new_folder_and_use_fixed_switches(tmp_path):
    voc = make_tiny_voc(tmp_path, binary=True)
    expected = {i: label_of(voc, f"img 0{i}") for i in range(1, 5)}
    labels = os.path.join(voc, "VOC2007", "SegmentationClass")
    ones = np.where(expected[1] == 1, 255, 0).astype(np.uint8)  # a 0/255 mask of class 1 only
    Image.fromarray(ones).save(os.path.join(labels, "img 01.png"))
    from utils.visualize import class_colours

    Image.fromarray(class_colours(2)[np.where(expected[2] == 255, 0, expected[2])]).save(
        os.path.join(labels, "img 02.png")
    )
    jpeg_mask = np.where(expected[3] == 1, 255, 0).astype(np.uint8)
    Image.fromarray(jpeg_mask).save(os.path.join(labels, "img 03.png"), format="JPEG", quality=80)
    Image.fromarray(expected[4].astype(np.uint16)).save(os.path.join(labels, "img 04.png"))
    before = digest(voc)

    dry = run_inline("voc_annotation.py", "--vocdevkit_path", voc, "--fix", "--dry_run")
    assert "Would write 14 labels" in dry.stdout and "4 corrected" in dry.stdout
    assert digest(voc) == before

    fixed = run_inline("voc_annotation.py", "--vocdevkit_path", voc, "--fix")
    assert fixed.returncode == 2 and "--use_fixed" in fixed.stderr
    after = digest(voc)
    assert {p: h for p, h in after.items() if p in before} == before  # the originals are untouched
    out = os.path.join(voc, "VOC2007", "SegmentationClass_fixed")
    assert len(os.listdir(out)) == 14

    def read(i):
        return np.asarray(Image.open(os.path.join(out, f"img 0{i}.png")))

    assert np.array_equal(read(1), (ones == 255).astype(np.uint8))
    assert np.array_equal(read(2), np.where(expected[2] == 255, 0, expected[2]))
    assert (read(3) == (jpeg_mask == 255)).mean() > 0.99  # JPEG noise snapped; edges may move a pixel
    assert np.array_equal(read(4), expected[4])

    used = run_inline("voc_annotation.py", "--vocdevkit_path", voc, "--use_fixed")
    assert used.returncode == 0, used.stderr[-2000:]
    assert os.path.isdir(os.path.join(voc, "VOC2007", "SegmentationClass_original"))
    assert "Wrote" in used.stdout and "train 13, val 1" in used.stdout
    assert os.path.isfile(os.path.join(voc, "label_preview.png")) and "Label preview:" in used.stdout


def test_the_label_preview_has_one_tile_per_sampled_image(tmp_path):
    from utils.files.bands import Bands
    from voc_annotation import AnnotationConfig, write_preview

    voc = make_tiny_voc(tmp_path)
    folder = os.path.join(voc, "VOC2007")
    pairs = [
        (
            os.path.join(folder, "JPEGImages", f"img {i:02d}.jpg"),
            os.path.join(folder, "SegmentationClass", f"img {i:02d}.png"),
        )
        for i in range(14)
    ]
    path, captions = write_preview(AnnotationConfig(vocdevkit_path=voc, preview_count=5), pairs, Bands(), 3)
    assert len(captions) == 5 == len(set(captions)) and set(captions) <= {f"img {i:02d}" for i in range(14)}
    with Image.open(path) as sheet:
        assert sheet.size[0] > 4 * 200 and sheet.size[1] > 2 * 200  # a grid of 4 columns, 2 rows


def test_valid_but_awkward_data_trains(tmp_path):
    """Grayscale, RGBA, CMYK and palette images, CRLF and trailing blanks, spaces and non-ASCII names, EXIF."""
    voc = make_tiny_voc(tmp_path)
    root = os.path.join(voc, "VOC2007")
    for sample_id, mode in [("img 00", "L"), ("img 01", "RGBA"), ("img 02", "CMYK"), ("img 05", "P")]:
        image_path = paths(voc, sample_id)[0]
        converted = Image.open(image_path).convert(mode)
        os.remove(image_path)
        converted.save(image_path.replace(".jpg", ".png" if mode in ("RGBA", "P") else ".jpg"))
    # a non-ASCII name
    image, label, _ = paths(voc, "img 06")
    os.rename(image, image.replace("img 06", "café 06"))
    os.rename(label, label.replace("img 06", "café 06"))
    # EXIF-rotated JPEG: stored turned a quarter, EXIF says how to show it; the label is drawn on the upright image
    image, label, _ = paths(voc, "img 07")
    upright = np.asarray(Image.open(label)).copy()
    picture = np.stack([np.where(upright == 1, 250, 10)] * 3, -1).astype(np.uint8)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(picture).transpose(Image.Transpose.ROTATE_90).save(image, exif=exif, quality=95)

    result = run_script("voc_annotation.py", "--vocdevkit_path", voc, "--num_classes", "3", "--train_percent", "0.7")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert ".jpg 12, .png 2" in result.stdout
    assert "Image sizes (longer side): <=256 14" in result.stdout and "scale_mode fit (the default)" in result.stdout
    splits = os.path.join(root, "ImageSets", "Segmentation")
    for name in ("train.txt", "val.txt"):  # CRLF and trailing blanks, as Windows editors leave them
        ids = open(os.path.join(splits, name), encoding="utf-8").read().split("\n")
        open(os.path.join(splits, name), "w", encoding="utf-8", newline="").write(
            "\r\n".join(f"{i}  " for i in ids if i) + "\r\n\r\n"
        )
    import tensorflow as tf

    from utils.dataloader import decode_pair
    from utils.files.bands import Bands

    pairs = tf.data.Dataset.from_tensors(paths(voc, "img 07")[:2])
    pair = pairs.map(lambda image, label: decode_pair(image, label, Bands()))  # as the pipelines read
    image_array, label_array = (t.numpy() for t in next(iter(pair)))
    assert image_array.shape[:2] == label_array.shape
    assert np.array_equal(image_array[..., 0] > 128, label_array == 1)  # aligned after the EXIF rotation

    trained = run_script("train.py", *TRAIN, "--vocdevkit_path", voc, "--save_dir", tmp_path / "logs")
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "Data: 10 train, 4 val samples" in trained.stdout


def test_the_size_report_advises_slide_for_images_much_larger_than_the_input():
    from voc_annotation import size_report

    aerial = size_report([(6000, 6000)] * 3 + [(5000, 4000)], [512, 512])
    assert ">4096 4" in aerial and "median 6000 px" in aerial
    assert "--scale_mode slide --input_shape 512 512 --image_scale 0.5" in aerial  # 12x the input: half resolution
    membrane = size_report([(512, 512)] * 30, [256, 256])
    assert "--scale_mode slide --input_shape 256 256" in membrane and "image_scale" not in membrane
    photos = size_report([(500, 375), (480, 360)], [512, 512])
    assert "scale_mode fit (the default)" in photos and "slide" not in photos
