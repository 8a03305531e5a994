"""The Unet predictor and predict.py, driven as users drive them, with weights trained by train.py."""

import csv
import os
import re
import shutil

import h5py
import numpy as np
import pytest
from PIL import Image

from tests.helpers import TINY_MODEL, run_inline, run_script
from utils.visualize import class_colours


def predict_args(trained, *extra):
    """Only the weights file (it records the network and its classes), and fp32 for exact comparisons."""
    return ["--model_path", trained["weights"], "--precision", "fp32", "--show", "false", *extra]


def val_image(trained, index=10) -> str:
    return os.path.join(trained["voc"], "VOC2007", "JPEGImages", f"img {index:02d}.jpg")


@pytest.fixture(scope="module")
def unet(trained):
    from unet import Unet

    return Unet(model_path=trained["weights"], num_classes=3, input_shape=[32, 32], precision="fp32")


def test_prompt_saves_good_paths_reports_bad_ones_and_ends_at_end_of_input(trained, tmp_path):
    (tmp_path / "notes.jpg").write_text("not an image")
    typed = f"{val_image(trained)}\nmissing.jpg\nnotes.jpg\n"
    result = run_script("predict.py", *predict_args(trained, "--count", "true"), cwd=tmp_path, stdin=typed)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Saved img_out/img 10.png" in result.stdout
    assert "error: missing.jpg: no such file" in result.stdout
    assert "error: notes.jpg: not an image that can be read" in result.stdout
    assert result.stdout.count("Input image filename:") == 4  # asked again after each line, then end of input
    # count: pixels per class, named as the weights file records (train.py read the dataset's classes.txt)
    assert "share %" in result.stdout and "upper" in result.stdout and "lower" in result.stdout
    with Image.open(tmp_path / "img_out" / "img 10.png") as saved:
        assert saved.size == (40, 48)  # the original's size, not the network's
    assert "Traceback" not in result.stderr


def test_q_ends_the_prompt(trained, tmp_path):
    result = run_inline("predict.py", *predict_args(trained), cwd=tmp_path, stdin="q\nnever read\n")
    assert result.returncode == 0 and result.stdout.count("Input image filename:") == 1


def test_dir_predict_saves_every_image_and_reports_the_corrupt_one(unet, trained, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    image = np.asarray(Image.open(val_image(trained)))
    Image.fromarray(image).save(folder / "a.JPG")
    Image.fromarray(image[:, :30]).convert("RGBA").save(folder / "b.png")  # another size and mode
    Image.fromarray(image).convert("L").save(folder / "c.tiff")
    Image.fromarray(image[:, ::-1]).save(folder / "a.png")  # the same stem as a.JPG: its results must not collide
    Image.fromarray(image[8:]).save(folder / "d.gif")  # GIF: read as other images are
    frames = [Image.fromarray(image), Image.fromarray(image[::-1])]
    frames[0].save(folder / "moving.gif", save_all=True, append_images=frames[1:])  # an animation: reported
    with open(os.path.join(os.fsencode(folder), b"caf\xe9.jpg"), "wb") as f:  # a Latin-1 name, not UTF-8
        f.write(open(val_image(trained), "rb").read())
    (folder / "corrupt.jpg").write_bytes(open(val_image(trained), "rb").read()[:300])  # truncated
    (folder / "readme.txt").write_text("not an image: named as left out")
    out = tmp_path / "out"
    args = predict_args(trained, "--mode", "dir_predict", "--dir_origin_path", folder, "--dir_save_path", out)
    result = run_script("predict.py", *args, "--batch_size", "2", "--save_mask", "--save_areas", "--save_probabilities")
    assert result.returncode == 0, result.stderr[-3000:]
    names = ["a_jpg", "a_png", "b", "c", "caf\\xe9", "d"]
    pictures = sorted(os.fsencode(n).decode("utf-8", "backslashreplace") for n in os.listdir(out) if n.endswith(".png"))
    assert pictures == [f"{name}.png" for name in names]
    assert Image.open(out / "b.png").size == (30, 48)
    assert "Saved the results of 6 images" in result.stdout and "Left out 1 files" in result.stdout
    assert "Skipped 2 unreadable or unusable files" in result.stdout
    assert "corrupt.jpg" in result.stdout and "moving.gif" in result.stdout and "2 frames" in result.stdout
    # The masks are get_miou.py's format and the predictor's own; the table of areas counts their pixels.
    sources = {"a_jpg": "a.JPG", "a_png": "a.png", "b": "b.png", "c": "c.tiff", "d": "d.gif"}
    with open(out / "areas.csv") as f:
        rows = {row["image"]: row for row in csv.DictReader(f)}
    for name, source in sources.items():
        mask = np.asarray(Image.open(out / "masks" / f"{name}.png"))
        expected = np.asarray(unet.get_miou_png(Image.open(folder / source)))
        np.testing.assert_array_equal(mask, expected)
        probabilities = np.load(out / "probabilities" / f"{name}.npy", mmap_mode="r")
        assert probabilities.dtype == np.float16 and probabilities.shape == (*mask.shape, 3)
        np.testing.assert_allclose(probabilities.astype(np.float32).sum(-1), 1, atol=2e-3)
        split = np.sort(probabilities[probabilities.argmax(-1) != mask].astype(np.float32), axis=-1)
        assert (split[:, -1] - split[:, -2] <= 1e-3).all()  # they differ only at ties that float16 cannot split
        counts = np.bincount(mask.ravel(), minlength=3)
        assert [int(rows[source][f"{c} pixels"]) for c in ("background", "upper", "lower")] == list(counts)
        assert float(rows[source]["upper %"]) == pytest.approx(100 * counts[1] / mask.size, abs=1e-3)


def test_outputs_are_checked_before_the_model_loads(trained, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(val_image(trained), folder / "x.png")
    same = predict_args(trained, "--mode", "dir_predict", "--dir_origin_path", folder, "--dir_save_path", folder)
    result = run_inline("predict.py", *same)
    assert result.returncode == 2 and "is the folder of the images to predict" in result.stderr
    assert sorted(os.listdir(folder)) == ["x.png"]  # untouched
    (tmp_path / "a_file").write_text("")
    result = run_inline("predict.py", *predict_args(trained, "--save_dir", tmp_path / "a_file"), stdin="")
    assert result.returncode == 2 and "a file, not a folder" in result.stderr and "Unet:" not in result.stdout
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    result = run_inline(
        "predict.py", *predict_args(trained, "--mode", "fps", "--fps_image_path", folder / "broken.jpg")
    )
    assert result.returncode == 2 and "broken.jpg" in result.stderr and "Traceback" not in result.stderr


def test_video_file_in_and_out_and_a_missing_source(trained, tmp_path):
    cv2 = pytest.importorskip("cv2")
    source = str(tmp_path / "in.avi")
    writer = cv2.VideoWriter(source, cv2.VideoWriter_fourcc(*"MJPG"), 5, (40, 48))
    frame = cv2.cvtColor(np.asarray(Image.open(val_image(trained))), cv2.COLOR_RGB2BGR)
    for _ in range(3):
        writer.write(frame)
    writer.release()
    saved = str(tmp_path / "out.avi")
    args = predict_args(trained, "--mode", "video", "--video_path", source, "--video_save_path", saved)
    result = run_script("predict.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "3 frames" in result.stdout
    capture = cv2.VideoCapture(saved)
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 3
    capture.release()
    result = run_inline("predict.py", *predict_args(trained, "--mode", "video", "--video_path", "nothere.mp4"))
    assert result.returncode == 2 and "nothere.mp4" in result.stderr and "Traceback" not in result.stderr


def test_fps_mode_times_a_non_square_image(trained):
    args = predict_args(trained, "--mode", "fps", "--fps_image_path", val_image(trained), "--test_interval", "3")
    result = run_inline("predict.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "seconds per image" in result.stdout and "FPS" in result.stdout


def test_settings_that_contradict_the_weights_file_are_refused_naming_both(trained, tmp_path):
    from unet import Unet

    with pytest.raises(ValueError, match=r"num_classes=5, but .* was trained with num_classes=3"):
        Unet(model_path=trained["weights"], num_classes=5)
    with pytest.raises(ValueError, match=r"backbone='resnet50', but .* was trained with backbone='vgg'"):
        Unet(model_path=trained["weights"], backbone="resnet50")
    with pytest.raises(ValueError, match=r"scale_mode='slide', but .* was trained with scale_mode='fit'"):
        Unet(model_path=trained["weights"], scale_mode="slide")
    with pytest.raises(ValueError, match=r"image_scale=0.5, but .* was trained with image_scale=1.0"):
        Unet(model_path=trained["weights"], image_scale=0.5)
    with pytest.raises(ValueError, match="no such file. Expected a weights file .*Train first"):
        Unet(model_path=str(tmp_path / "none.weights.h5"))
    folder = os.path.dirname(trained["weights"])  # the run's folder instead of its weights: the files are named
    with pytest.raises(ValueError, match=r"a folder; expected a weights file .* It holds best_epoch_weights"):
        Unet(model_path=folder)
    with pytest.raises(ValueError, match="unknown settings"):
        Unet(num_class=3)
    # as a process of its own: predict.py's exit status and no traceback (the other refusals run in this process)
    result = run_script("predict.py", *TINY_MODEL, "--num_classes", "2", "--model_path", trained["weights"], stdin="")
    assert result.returncode == 2 and "was trained with num_classes=3" in result.stderr
    assert "num_classes=2" in result.stderr and "Traceback" not in result.stderr


def test_a_file_that_records_no_settings_loads_as_before(trained, tmp_path):
    """Weights from before the settings were recorded, or from another repo: given settings, and the weights
    themselves say which setting is wrong."""
    from unet import Unet

    old = str(tmp_path / "old.weights.h5")
    shutil.copy(trained["weights"], old)
    with h5py.File(old, "a") as f:
        del f.attrs["unet_settings"]
    with pytest.raises(ValueError, match=r"trained with num_classes=3 .* Set num_classes=3"):
        Unet(model_path=old, num_classes=5, input_shape=[32, 32])
    with pytest.raises(ValueError, match="holds a vgg UNet, but this is a resnet50 UNet. Set backbone=vgg"):
        Unet(model_path=old, num_classes=3, backbone="resnet50", input_shape=[32, 32])
    unet = Unet(model_path=old, num_classes=3, input_shape=[32, 32], precision="fp32")
    assert unet.class_names == [] and unet.config.model == "unet"


def test_only_model_path_is_needed(trained, tmp_path):
    result = run_inline(
        "predict.py", "--model_path", trained["weights"], "--show", "false", cwd=tmp_path, stdin=val_image(trained)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert re.search(r"num_classes +3\n", result.stdout) and re.search(r"input_shape +\[32, 32\]\n", result.stdout)
    with Image.open(tmp_path / "img_out" / "img 10.png") as saved:
        assert saved.size == (40, 48)


def test_one_prediction_path_for_every_method(unet, trained, tmp_path):
    image = np.asarray(Image.open(val_image(trained)))
    (mask,) = unet.segment([image])
    assert mask.shape == (48, 40) and mask.dtype == np.uint8 and mask.max() < 3
    # the batch entry point (files read by tf.data, one compiled call per batch) gives the same masks, also
    # for an image smaller than its batch neighbour, whose mask comes back padded
    small = image[5:25, 3:33]
    Image.fromarray(small).save(tmp_path / "small.png")
    first, second = list(unet.segment_files([val_image(trained), tmp_path / "small.png"], 2))
    (_, read_image, file_mask, error), (_, read_small, small_mask, _) = first, second
    assert error == "" and np.array_equal(read_image, image) and np.array_equal(file_mask, mask)
    assert np.array_equal(read_small, small) and np.array_equal(small_mask, unet.segment([small])[0])
    assert np.array_equal(unet.segment([image[:20], image])[1], mask)
    # images at the model's input size take the batch-wide argmax: the same masks as one image at a time
    for name in "cd":
        Image.fromarray(image[:32, :32] if name == "c" else image[-32:, -32:]).save(tmp_path / f"{name}.png")
    fitting = [np.asarray(Image.open(tmp_path / f"{name}.png")) for name in "cd"]
    batch = [mask for _, _, mask, _ in unet.segment_files([tmp_path / "c.png", tmp_path / "d.png"], 2)]
    assert all(np.array_equal(got, unet.segment([one])[0]) for got, one in zip(batch, fitting))
    png = unet.get_miou_png(Image.fromarray(image))
    assert png.mode == "P" and np.array_equal(np.asarray(png), mask)
    colours = class_colours(3)
    unet.config.mix_type = 1
    assert np.array_equal(np.asarray(unet.detect_image(Image.fromarray(image))), colours[mask])
    unet.config.mix_type = 2
    removed = np.asarray(unet.detect_image(image))
    assert np.array_equal(removed, image * (mask != 0)[..., None])
    unet.config.mix_type = 0
    blended = np.asarray(unet.detect_image(image)).astype(float)
    np.testing.assert_allclose(blended, 0.3 * image + 0.7 * colours[mask], atol=1)
    assert unet.get_FPS(Image.fromarray(image[:, :17]), 2) > 0  # any shape, not only squares


def test_exif_rotation_is_applied_before_prediction(unet, trained, tmp_path):
    image = Image.open(val_image(trained))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    path = str(tmp_path / "rotated.jpg")
    image.transpose(Image.Transpose.ROTATE_90).save(path, exif=exif, quality=95)  # stored turned; EXIF turns it back
    ((_, upright, mask, _),) = list(unet.segment_files([path]))
    assert upright.shape == (48, 40, 3) and mask.shape == (48, 40)


@pytest.mark.parametrize("mix_type", [0, 1, 2])
def test_the_picture_drawn_in_bands_is_the_whole_picture(monkeypatch, mix_type):
    import utils.visualize as visualize

    rng = np.random.default_rng(0)
    image, mask = rng.integers(0, 256, (37, 11, 3), np.uint8), rng.integers(0, 4, (37, 11), np.uint8)
    colours = class_colours(4)
    monkeypatch.setattr(visualize, "RENDER_ROWS", 8)  # 37 rows: five bands, the last one short
    picture = visualize.render_image(image, mask, colours, mix_type)
    assert picture.mode == "RGB" and np.array_equal(
        np.asarray(picture), visualize.render(image, mask, colours, mix_type)
    )
