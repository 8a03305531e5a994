r"""Predict with a trained UNet: images typed at a prompt, a folder, a video or camera, or a speed test.

The model settings (model_path, num_classes, backbone, input_shape, mix_type, colors, precision) default to
UnetConfig in unet.py; the rest to PredictConfig below. Any of them can be given as a flag:

    $ python predict.py                                    # asks for image paths; try img/shapes_1.jpg
    $ python predict.py --model_path logs/best_epoch_weights.weights.h5 --num_classes 2 --input_shape 256 256
    $ python predict.py --mode dir_predict --dir_origin_path img --dir_save_path img_out
    $ python predict.py --mode dir_predict --save_mask --save_areas    # + masks/<name>.png and areas.csv
    $ python predict.py --mode dir_predict --save_probabilities        # + probabilities/<name>.npy (H, W, C)
    $ python predict.py --mode dir_predict --save_mask --save_polygons # + polygons/<name>.geojson; GeoTIFFs keep
                                                                       #   their georeference (masks/<name>.tif)
                                                                       # a multilabel head: masks/<class>/<name>.png too
    $ python predict.py --mode video --video_path 0                    # camera 0; a file path works too
    $ python predict.py --mode fps --fps_image_path img/shapes_1.jpg
    $ python predict.py -h                                 # every setting with its default
"""

import os
import sys
import time
from dataclasses import dataclass, field

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ start-up log (e.g. no CUDA on a CPU machine)

import numpy as np
from PIL import Image
from tqdm import tqdm

from unet import Unet, UnetConfig, unet_settings
from utils.config import run_main
from utils.files.image_files import read_image
from utils.files.images import IMAGE_SUFFIXES, image_files
from utils.multilabel import class_pixels
from utils.prediction.geo import read_georeference, write_geotiff, write_polygons
from utils.prediction.outputs import (
    MASKS,
    POLYGONS,
    PROBABILITIES,
    area_row,
    check_save_folder,
    output_names,
    shown_path,
    write_areas,
    write_probabilities,
)
from utils.visualize import class_names, render_image

MODES = ("predict", "dir_predict", "video", "fps")
QUIT = ("", "q", "quit", "exit")


@dataclass
class PredictConfig(UnetConfig):
    mode: str = "predict"  # predict (paths typed at a prompt) | dir_predict | video | fps
    count: bool = False  # predict: print each class's pixels and area %
    name_classes: list[str] = field(default_factory=list)  # class names for count; empty = as recorded
    save_dir: str = "img_out"  # predict: where results are saved (<name>.png)
    show: bool = True  # predict / video: show results in a window when a display exists
    dir_origin_path: str = "img"  # dir_predict: folder of images to predict
    dir_save_path: str = "img_out"  # dir_predict: where results are saved (never the folder of the images)
    save_picture: bool = True  # dir_predict: the picture drawn as mix_type says, <name>.png
    save_mask: bool = False  # dir_predict: class ids at the image's size, masks/<name>.png (get_miou.py's format)
    save_probabilities: bool = False  # dir_predict: probabilities/<name>.npy, float16 (H, W, C) (a second call)
    save_polygons: bool = False  # dir_predict: polygons/<name>.geojson, each region of each class (GIS, QGIS)
    save_areas: bool = False  # dir_predict: one table of every image's pixels and area % per class, areas.csv
    batch_size: int = 4  # dir_predict: images per model call
    video_path: str = "0"  # video: a video file, or a camera index such as 0
    video_save_path: str = ""  # video: save the result here (e.g. out.mp4); empty = don't save
    video_fps: float = 25.0  # video: frame rate of the saved video
    fps_image_path: str = "img/shapes_1.jpg"  # fps: image to time the prediction on
    test_interval: int = 100  # fps: number of timed predictions


def display_available() -> bool:
    """Whether a window can be shown: always on Windows and macOS, with an X11 or Wayland display on Linux."""
    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def predict_prompt(unet: Unet, config: PredictConfig) -> None:
    """Asks for image paths until an empty line, q or end of input; a bad path is reported and asked again."""
    show = config.show and display_available()
    names = {}  # input path -> output name: two inputs a.jpg, a.png typed in one session get a_jpg, a_png
    while True:
        try:
            path = input("Input image filename: ").strip().strip("'\"")
        except EOFError:
            print()
            return
        if path.lower() in QUIT:
            return
        if not os.path.isfile(path):
            print(f"error: {shown_path(path)}: no such file. Type the path of an image, or q to quit.")
            continue
        try:
            image = read_image(path)
            result = unet.detect_image(image, count=config.count, name_classes=config.name_classes)
        except Exception as error:  # any decoding failure, or an image the network cannot take: ask again
            why = (
                error
                if isinstance(error, ValueError)
                else f"not an image that can be read ({type(error).__name__}: {error})"
            )
            print(f"error: {shown_path(path)}: {why}. Try another.")
            continue
        key = os.path.abspath(path)
        names[key] = names.get(key) or output_names([*names, key])[-1]
        saved = os.path.join(config.save_dir, names[key] + ".png")
        if os.path.exists(saved) and os.path.samefile(saved, path):
            print(f"error: {shown_path(path)} is in save_dir: its result would replace it. Set another --save_dir.")
            continue
        result.save(saved)
        print(f"Saved {shown_path(saved)}")
        if show:
            result.show()


def folder_images(folder: str) -> list:
    """The image files of dir_predict's folder; the other files are named (left out), not passed over in silence."""
    if not os.path.isdir(folder):
        raise ValueError(f"dir_origin_path={folder!r}: no such folder.")
    paths = image_files(folder)
    others = sorted(set(os.listdir(folder)) - {os.path.basename(p) for p in paths})
    others = [name for name in others if os.path.isfile(os.path.join(folder, name)) and not name.startswith(".")]
    if others:
        shown = ", ".join(shown_path(name) for name in others[:10]) + (", ..." if len(others) > 10 else "")
        print(f"Left out {len(others)} files that are not images ({', '.join(IMAGE_SUFFIXES)}): {shown}")
    if not paths:
        raise ValueError(f"{folder} holds no images (looked for {', '.join(IMAGE_SUFFIXES)}, any case).")
    return paths


def predict_folder(unet: Unet, config: PredictConfig) -> None:
    """Predicts every image file in dir_origin_path into dir_save_path (utils/prediction/outputs.py: the picture, the
    mask, the table of areas); files that cannot be read (or do not fit the network's bands) are listed at the end. The
    folder was checked (and its other files named) by check_outputs."""
    paths = image_files(config.dir_origin_path)
    if config.save_probabilities and unet.path.probabilities_refused():
        raise ValueError(f"save_probabilities: {unet.path.probabilities_refused()}")
    folder, names = config.dir_save_path, dict(zip(paths, output_names(paths)))
    for kind, on in (
        (MASKS, config.save_mask),
        (PROBABILITIES, config.save_probabilities),
        (POLYGONS, config.save_polygons),
    ):
        if on:
            os.makedirs(os.path.join(folder, kind), exist_ok=True)
    skipped, rows, class_list = [], [], class_names(config.name_classes or unet.class_names, unet.config.num_classes)[0]
    results = unet.segment_files(paths, config.batch_size)
    for path, image, mask, error in tqdm(results, total=len(paths), desc="Predicting", unit="image"):
        if error:
            skipped.append(f"{shown_path(path)}: {error}")
            continue
        name = names[path]
        if config.save_picture:
            render_image(unet.picture(image), mask, unet.colours, unet.config.mix_type).save(
                os.path.join(folder, name + ".png")
            )
        save_results(unet, config, path, name, image, mask, class_list)
        if config.save_areas:
            rows.append(area_row(shown_path(os.path.basename(path)), mask, unet.config.num_classes, unet.multilabel))
    kinds = (("pictures", config.save_picture), (f"{MASKS}/", config.save_mask), (f"{POLYGONS}/", config.save_polygons))
    written = [kind for kind, on in (*kinds, (f"{PROBABILITIES}/", config.save_probabilities)) if on]
    print(f"Saved the results of {len(paths) - len(skipped)} images to {folder}/ ({', '.join(written) or 'no files'})")
    if rows:
        print(f"Areas of each class in {write_areas(folder, rows, class_list)}")
    if skipped:
        print(f"Skipped {len(skipped)} unreadable or unusable files:\n  " + "\n  ".join(skipped))


def save_results(unet: Unet, config: PredictConfig, path: str, name: str, image, mask, class_list) -> None:
    """One image's mask, probabilities and polygons, as the settings ask; a GeoTIFF's mask and probabilities also as
    GeoTIFFs with its georeference, and its polygons in map coordinates (utils/prediction/geo.py)."""
    folder = config.dir_save_path
    geo = read_georeference(path) if config.save_mask or config.save_probabilities or config.save_polygons else None
    if config.save_mask:
        unet.mask_image(mask).save(os.path.join(folder, MASKS, name + ".png"))
        for class_id in range(unet.multilabel):  # each class's mask too, 0 / 255, in the layout of the labels
            os.makedirs(os.path.join(folder, MASKS, class_list[class_id]), exist_ok=True)
            binary = Image.fromarray(class_pixels(mask, class_id, unet.multilabel).astype(np.uint8) * 255)
            binary.save(os.path.join(folder, MASKS, class_list[class_id], name + ".png"))
        if geo:
            write_geotiff(os.path.join(folder, MASKS, name + ".tif"), mask, geo)
    if config.save_probabilities:
        shape, saved = (
            (*mask.shape, unet.scores.probability_channels),
            os.path.join(folder, PROBABILITIES, name + ".npy"),
        )
        write_probabilities(saved, unet.probabilities(image), shape)
        if geo:
            probabilities = np.load(saved, mmap_mode="r").astype(np.float32)
            write_geotiff(os.path.join(folder, PROBABILITIES, name + ".tif"), probabilities, geo)
    if config.save_polygons:
        write_polygons(os.path.join(folder, POLYGONS, name + ".geojson"), mask, class_list, geo, unet.multilabel)


def predict_video(unet: Unet, config: PredictConfig) -> None:
    """Segments a video file or camera stream frame by frame, with the frame rate drawn on; q or Esc stops."""
    try:
        import cv2
    except ImportError:
        raise ValueError("mode video needs OpenCV: pip install opencv-python (or opencv-python-headless)") from None
    source = int(config.video_path) if config.video_path.isdigit() else config.video_path
    if isinstance(source, str) and not os.path.isfile(source):
        raise ValueError(f"video_path={source!r}: no such file. Give a video file or a camera index such as 0.")
    capture = cv2.VideoCapture(source)
    if not capture.isOpened():
        raise ValueError(
            f"video_path={config.video_path!r}: OpenCV cannot open it (no such camera, or a format it cannot read)."
        )
    writer, show, fps, frames = None, config.show and display_available(), 0.0, 0
    try:
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            start = time.perf_counter()
            result = unet.detect_image(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
            rate = 1 / (time.perf_counter() - start)
            fps = 0.9 * fps + 0.1 * rate if frames else rate  # smoothed
            frames += 1
            frame = cv2.cvtColor(np.asarray(result), cv2.COLOR_RGB2BGR)
            cv2.putText(frame, f"fps {fps:.1f}", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.8, (0, 255, 0), 2)
            if config.video_save_path:
                if writer is None:
                    fourcc = cv2.VideoWriter_fourcc(*("mp4v" if config.video_save_path.endswith(".mp4") else "XVID"))
                    writer = cv2.VideoWriter(config.video_save_path, fourcc, config.video_fps, frame.shape[1::-1])
                writer.write(frame)
            if show:
                try:
                    cv2.imshow("video", frame)
                    if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                        break
                except cv2.error:
                    show = False  # an OpenCV build without windows (headless): keep going, without showing
    finally:
        capture.release()
        if writer is not None:
            writer.release()
        if show:
            cv2.destroyAllWindows()
    print(f"{frames} frames, {fps:.1f} fps" + (f"; saved {config.video_save_path}" if config.video_save_path else ""))


def time_predictions(unet: Unet, config: PredictConfig) -> None:
    """Seconds per image and FPS of the prediction path on fps_image_path (batch 1, warm-up excluded)."""
    seconds = unet.get_FPS(read_checked(config.fps_image_path, "fps_image_path"), config.test_interval)
    print(f"{seconds:.4f} seconds per image, {1 / seconds:.2f} FPS (batch 1, {config.test_interval} runs)")


def read_checked(path: str, setting: str):
    """An image file read for a setting; ValueError naming the setting and the file when it cannot be."""
    if not os.path.isfile(path):
        raise ValueError(f"{setting}={shown_path(path)!r}: no such file.")
    try:
        return read_image(path)
    except Exception as error:  # the decoders raise their own types
        raise ValueError(
            f"{setting}={shown_path(path)!r}: not an image that can be read ({type(error).__name__}: {error})."
        ) from None


def check_outputs(config: PredictConfig) -> None:
    """Before the model loads: every folder and file the mode reads or writes, reported by name."""
    if config.mode == "predict":
        check_save_folder(config.save_dir, "save_dir")
    elif config.mode == "dir_predict":
        folder_images(config.dir_origin_path)
        check_save_folder(config.dir_save_path, "dir_save_path", config.dir_origin_path)
        saving = (
            config.save_picture,
            config.save_mask,
            config.save_probabilities,
            config.save_areas,
            config.save_polygons,
        )
        if not any(saving):
            raise ValueError(
                "save_picture, save_mask, save_probabilities, save_areas and save_polygons are all false: nothing to do"
            )
    elif config.mode == "video" and config.video_save_path:
        check_save_folder(os.path.dirname(os.path.abspath(config.video_save_path)), "video_save_path")
    elif config.mode == "fps":
        read_checked(config.fps_image_path, "fps_image_path")


def main(config: PredictConfig) -> None:
    if config.mode not in MODES:
        raise ValueError(f"mode={config.mode!r}: expected one of {', '.join(MODES)}.")
    check_outputs(config)
    unet = Unet(**unet_settings(config))
    run = {"predict": predict_prompt, "dir_predict": predict_folder, "video": predict_video, "fps": time_predictions}
    run[config.mode](unet, config)


if __name__ == "__main__":
    run_main(main, PredictConfig, __doc__)
