import os
from dataclasses import replace

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from utils.augmentation.draws import augment
from utils.augmentation.options import Augmentation
from utils.dataloader import Pipeline, build_train_dataset, build_val_dataset
from utils.files.bands import Bands, read_input
from utils.files.images import IGNORE_LABEL, read_split, split_samples
from utils.letterbox import GREY, bilinear_rows, letterbox, unletterbox_class_ids
from utils.prediction.inputs import build_eval_dataset


def first_batches(dataset, count=2):
    return [tuple(t.numpy() for t in batch) for batch in dataset.take(count)]


def test_train_batches_are_uint8_class_ids_of_input_shape(tiny_voc):
    samples = split_samples(tiny_voc, "train")
    images, labels = first_batches(build_train_dataset(samples, Pipeline((32, 64)), 4, seed=1), 1)[0]
    assert images.shape == (4, 32, 64, 3) and images.dtype == np.uint8
    assert labels.shape == (4, 32, 64) and labels.dtype == np.uint8
    assert set(np.unique(labels)) <= {0, 1, 2, IGNORE_LABEL}


def test_same_seed_same_batches_other_seed_other_batches(tiny_voc):
    samples = split_samples(tiny_voc, "train")
    run_a = first_batches(build_train_dataset(samples, Pipeline((32, 32), num_workers=2), 2, seed=7), 3)
    run_b = first_batches(build_train_dataset(samples, Pipeline((32, 32), num_workers=1), 2, seed=7), 3)
    run_c = first_batches(build_train_dataset(samples, Pipeline((32, 32)), 2, seed=8), 3)
    for (images_a, labels_a), (images_b, labels_b) in zip(run_a, run_b):
        np.testing.assert_array_equal(images_a, images_b)
        np.testing.assert_array_equal(labels_a, labels_b)
    assert any(not np.array_equal(a[0], c[0]) for a, c in zip(run_a, run_c))


def test_augmentation_fills_outside_the_image_with_grey_and_ignore():
    # A small image scaled down lands inside a larger canvas: the rest must be fill.
    image = tf.fill([8, 8, 3], tf.constant(200, tf.uint8))
    label = tf.ones([8, 8], tf.uint8)
    fills_seen = 0
    for seed in range(20):
        out_image, out_label = augment(image, label, (64, 64), tf.constant([seed, 0], tf.int64))
        out_label = out_label.numpy()
        assert set(np.unique(out_label)) <= {1, IGNORE_LABEL}
        if (out_label == IGNORE_LABEL).any():
            fills_seen += 1
            assert (out_label == 1).any()
    assert fills_seen > 10  # scale 0.25-2 of a 64 canvas leaves fill most of the time


def test_letterbox_round_trip_keeps_geometry():
    image = np.zeros((30, 60, 3), np.uint8)
    image[:, 30:] = 255  # right half white
    canvas, box = letterbox(tf.constant(image), (64, 64))
    np.testing.assert_array_equal(box.numpy(), [16, 0, 32, 64])
    assert (canvas.numpy()[:16] == GREY).all() and (canvas.numpy()[48:] == GREY).all()
    white = tf.cast(canvas, tf.float32)[..., :1] / 255.0
    restored = unletterbox_class_ids(tf.concat([1 - white, white], -1), box, (30, 60)).numpy()
    assert restored.shape == (30, 60)
    assert (restored[:, :29] == 0).all() and (restored[:, 31:] == 1).all()


@pytest.mark.parametrize("shape, size", [((37, 53, 5), (300, 200)), ((300, 200, 3), (37, 53)), ((1, 9, 2), (4, 1))])
def test_bilinear_rows_are_tensorflows_resize_a_band_at_a_time(shape, size):
    x = tf.constant(np.random.default_rng(0).random(shape, np.float32))
    whole = tf.image.resize(x, size, method="bilinear").numpy()
    bands = [bilinear_rows(x, size, start, min(start + 7, size[0])).numpy() for start in range(0, size[0], 7)]
    np.testing.assert_array_equal(np.concatenate(bands), whole)  # bit for bit


def test_val_labels_are_ignored_outside_the_letterbox(tiny_voc):
    samples = split_samples(tiny_voc, "val")
    images, labels = first_batches(build_val_dataset(samples, Pipeline((64, 64)), 4), 1)[0]
    # 48x40 images: 64 high, 53 wide in the box, so columns 0-4 and 58-63 are fill.
    assert (labels[:, :, :5] == IGNORE_LABEL).all() and (labels[:, :, -5:] == IGNORE_LABEL).all()
    assert (images[:, :, :5] == GREY).all()


def test_eval_batches_keep_original_labels(tiny_voc):
    samples = split_samples(tiny_voc, "val")
    images, labels, boxes, sizes = next(iter(build_eval_dataset(samples, (64, 64), 4)))
    assert images.shape == (4, 64, 64, 3)
    np.testing.assert_array_equal(sizes.numpy(), [[48, 40]] * 4)
    original = np.asarray(Image.open(samples[0][1]))
    np.testing.assert_array_equal(labels.numpy()[0], original)


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK"])
def test_images_of_any_mode_load_as_rgb(tmp_path, mode):
    path = str(tmp_path / ("image.jpg" if mode in ("L", "CMYK") else "image.png"))
    Image.new("RGB", (5, 4), (10, 20, 30)).convert(mode).save(path)
    image = read_input(path, Bands())  # what an RGB network takes
    assert image.shape == (4, 5, 3) and image.dtype == np.uint8


def test_split_files_tolerate_crlf_and_blank_lines(tmp_path):
    path = tmp_path / "train.txt"
    path.write_bytes(b"a\r\nb  \r\n\r\n c\n")
    assert read_split(str(path)) == ["a", "b", "c"]


def test_images_in_other_formats_are_found(tiny_voc):
    jpeg_dir = os.path.join(tiny_voc, "VOC2007", "JPEGImages")
    os.rename(os.path.join(jpeg_dir, "img 00.jpg"), os.path.join(jpeg_dir, "img 00.PNG"))
    assert split_samples(tiny_voc, "train")[0][0].endswith("img 00.PNG")


def test_augmentation_moves_image_and_label_together():
    # Left part white = class 1, right part black = class 2: whatever the warp, the two must still agree.
    image = np.zeros((40, 60, 3), np.uint8)
    image[:, :30] = 255
    label = np.full((40, 60), 2, np.uint8)
    label[:, :30] = 1
    checked = 0
    for seed in range(30):
        out_image, out_label = augment(
            tf.constant(image), tf.constant(label), (64, 64), tf.constant([seed, 1], tf.int64)
        )
        brightness, out_label = out_image.numpy().mean(-1), out_label.numpy()
        ones, twos = out_label == 1, out_label == 2
        if ones.sum() < 100 or twos.sum() < 100:
            continue
        checked += 1
        # Only the pixels on the white/black edge blend (bilinear); value jitter keeps white above 170.
        assert (brightness[ones] > 100).mean() > 0.9 and (brightness[twos] < 100).mean() > 0.9
    assert checked > 10


def test_classic_training_data_crops_labels_to_the_output_window(tiny_voc):
    samples = split_samples(tiny_voc, "train")
    images, labels = next(iter(build_train_dataset(samples, Pipeline((188, 188), 92, 1.0), 2, seed=0)))
    assert images.shape == (2, 188, 188, 3) and labels.shape == (2, 4, 4)
    images, labels = next(iter(build_val_dataset(samples, Pipeline((188, 204), 92, 1.0), 2)))
    assert images.shape == (2, 188, 204, 3) and labels.shape == (2, 4, 20)
    # at the image's own scale: a 48 x 40 label's centre lands in the 4 x 20 window, not ignore
    assert (labels.numpy() != 255).mean() > 0.5


def test_slide_augmentation_keeps_image_and_label_together():
    # Left white = class 1, right black = class 2, on an image larger than the canvas: a crop of it.
    image = np.zeros((300, 300, 3), np.uint8)
    image[:, :150] = 255
    label = np.full((300, 300), 2, np.uint8)
    label[:, :150] = 1
    for seed in range(10):
        out_image, out_label = augment(image, label, (188, 188), tf.constant([seed, 2], tf.int64), image_scale=1.0)
        brightness, out_label = out_image.numpy().mean(-1), out_label.numpy()
        for value, bright in [(1, True), (2, False)]:
            region = out_label == value
            if region.sum() > 100:
                assert ((brightness[region] > 100) == bright).mean() > 0.9
        # at 0.5 to 1.5 x its own size a 300-pixel image fills most of a 188 canvas (no shrinking to fit)
        assert (out_label != 255).mean() > 0.5


def test_slide_crops_aim_at_rare_classes_and_are_reproducible():
    # A 1000 x 1000 label with one 12 x 12 square of class 3: random 64 x 64 crops would hold it about 1 % of the
    # time; half the crops aim at a class the label holds (background or the square, equally likely).
    image = np.full((1000, 1000, 3), 90, np.uint8)
    label = np.zeros((1000, 1000), np.uint8)
    label[600:612, 300:312] = 3
    image[600:612, 300:312] = 250
    crops = [augment(image, label, (64, 64), tf.constant([seed, 7], tf.int64), image_scale=0.5) for seed in range(80)]
    holding = [crop for crop in crops if (crop[1].numpy() == 3).any()]
    assert len(holding) >= 12  # about a quarter expected; random placement alone would give about 1
    for out_image, out_label in holding:  # the square's pixels are bright in the image too: still together
        assert out_image.numpy()[out_label.numpy() == 3].mean() > 140  # background: 90, jittered by up to 30 %
    again = augment(image, label, (64, 64), tf.constant([5, 7], tf.int64), image_scale=0.5)
    np.testing.assert_array_equal(again[0].numpy(), crops[5][0].numpy())
    np.testing.assert_array_equal(again[1].numpy(), crops[5][1].numpy())


def test_oversampling_fills_the_last_places_of_every_batch_and_resumes_exactly(tmp_path):
    """2 of 8 images hold class 1: with oversample 0.5 the last 2 of each batch of 4 are always of them, the first
    2 from all 8; a stream that skips k batches goes on as the whole stream."""
    samples = []
    for index in range(8):
        label = np.zeros((32, 32), np.uint8)
        label[8:24, 8:24] = 1 if index < 2 else 0
        image_path, label_path = tmp_path / f"{index}.png", tmp_path / f"{index}_label.png"
        Image.fromarray(np.full((32, 32, 3), 30 * index, np.uint8)).save(image_path)
        Image.fromarray(label).save(label_path)
        samples.append((str(image_path), str(label_path)))
    pipeline = Pipeline((32, 32), augmentation=Augmentation(jitter=0), oversample=0.5)
    dataset = build_train_dataset(samples, pipeline, 4, seed=3, oversampled=samples[:2])
    batches = first_batches(dataset, 6)
    held = np.array([[(label == 1).any() for label in labels] for _, labels in batches])
    assert held[:, 2:].all() and not held[:, :2].all()
    skipped = first_batches(build_train_dataset(samples, pipeline, 4, seed=3, skip=2, oversampled=samples[:2]), 4)
    for (images, labels), (again, again_labels) in zip(batches[2:], skipped):
        np.testing.assert_array_equal(images, again)
        np.testing.assert_array_equal(labels, again_labels)
    plain = first_batches(build_train_dataset(samples, replace(pipeline, oversample=0.0), 4, seed=3), 6)
    assert not np.array([[(label == 1).any() for label in labels] for _, labels in plain])[:, 2:].all()
