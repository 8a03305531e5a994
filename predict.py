r"""Predict with a trained UNet: images typed at a prompt, a folder, a video or camera, or a speed test.

The model settings (model_path, num_classes, backbone, input_shape, mix_type, colors, precision) default to
UnetConfig in unet.py; the rest to PredictConfig below. Any of them can be given as a flag:

    $ python predict.py                                    # asks for image paths; try img/shapes_1.jpg
    $ python predict.py --model_path logs/best_epoch_weights.weights.h5 --num_classes 2 --input_shape 256 256
    $ python predict.py --mode dir_predict --dir_origin_path img --dir_save_path img_out
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
from tqdm import tqdm

from unet import Unet, UnetConfig, unet_settings
from utils.bands import read_image
from utils.config import run_main
from utils.images import IMAGE_SUFFIXES, image_files
from utils.visualize import render_image

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
    dir_save_path: str = "img_out"  # dir_predict: where results are saved
    batch_size: int = 4  # dir_predict: images per model call
    video_path: str = "0"  # video: a video file, or a camera index such as 0
    video_save_path: str = ""  # video: save the result here (e.g. out.mp4); empty = don't save
    video_fps: float = 25.0  # video: frame rate of the saved video
    fps_image_path: str = "img/shapes_1.jpg"  # fps: image to time the prediction on
    test_interval: int = 100  # fps: number of timed predictions


def display_available() -> bool:
    """Whether a window can be shown: always on Windows and macOS, with an X11 or Wayland display on Linux."""
    return sys.platform in ("win32", "darwin") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def output_path(folder: str, image_path: str) -> str:
    return os.path.join(folder, os.path.splitext(os.path.basename(image_path))[0] + ".png")


def predict_prompt(unet: Unet, config: PredictConfig) -> None:
    """Asks for image paths until an empty line, q or end of input; a bad path is reported and asked again."""
    show = config.show and display_available()
    while True:
        try:
            path = input("Input image filename: ").strip().strip("'\"")
        except EOFError:
            print()
            return
        if path.lower() in QUIT:
            return
        if not os.path.isfile(path):
            print(f"error: {path}: no such file. Type the path of an image, or q to quit.")
            continue
        try:
            image = read_image(path)
        except Exception as error:  # any decoding failure: say so and ask again
            print(f"error: {path}: not an image that can be read ({type(error).__name__}: {error}). Try another.")
            continue
        try:
            result = unet.detect_image(image, count=config.count, name_classes=config.name_classes)
        except ValueError as error:  # an image the network cannot take (its bands): say so and ask again
            print(f"error: {path}: {error}")
            continue
        os.makedirs(config.save_dir, exist_ok=True)
        saved = output_path(config.save_dir, path)
        result.save(saved)
        print(f"Saved {saved}")
        if show:
            result.show()


def predict_folder(unet: Unet, config: PredictConfig) -> None:
    """Predicts every image file in dir_origin_path into dir_save_path; files that cannot be read (or do not fit the
    network's bands) are listed at the end."""
    if not os.path.isdir(config.dir_origin_path):
        raise ValueError(f"dir_origin_path={config.dir_origin_path!r}: no such folder.")
    paths = image_files(config.dir_origin_path)
    if not paths:
        raise ValueError(
            f"{config.dir_origin_path} holds no images (looked for {', '.join(IMAGE_SUFFIXES)}, any case)."
        )
    os.makedirs(config.dir_save_path, exist_ok=True)
    skipped = []
    results = unet.segment_files(paths, config.batch_size)
    for path, image, mask, error in tqdm(results, total=len(paths), desc="Predicting", unit="image"):
        if error:
            skipped.append(f"{path}: {error}")
            continue
        picture = render_image(unet.picture(image), mask, unet.colours, unet.config.mix_type)
        picture.save(output_path(config.dir_save_path, path))
    print(f"Saved {len(paths) - len(skipped)} results to {config.dir_save_path}/")
    if skipped:
        print(f"Skipped {len(skipped)} unreadable or unusable files:\n  " + "\n  ".join(skipped))


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
    if not os.path.isfile(config.fps_image_path):
        raise ValueError(f"fps_image_path={config.fps_image_path!r}: no such file.")
    seconds = unet.get_FPS(read_image(config.fps_image_path), config.test_interval)
    print(f"{seconds:.4f} seconds per image, {1 / seconds:.2f} FPS (batch 1, {config.test_interval} runs)")


def main(config: PredictConfig) -> None:
    if config.mode not in MODES:
        raise ValueError(f"mode={config.mode!r}: expected one of {', '.join(MODES)}.")
    unet = Unet(**unet_settings(config))
    run = {"predict": predict_prompt, "dir_predict": predict_folder, "video": predict_video, "fps": time_predictions}
    run[config.mode](unet, config)


if __name__ == "__main__":
    run_main(main, PredictConfig, __doc__)
