"""Which runtime predicts: keras, or an export's (onnx, openvino), and for backend auto the fastest on this machine.

export.py times the Keras network (at the precision prediction runs it) and each exported runtime that passed its
parity check on the same images, and records the figures beside the weights file (<weights>.backends.json, with
the digests of the weights and of the exported files, and the machine). Backend auto, predict.py's and
get_miou.py's default, takes the fastest of that record when it holds for this run: the same weights, files
and machine, and the precision it measured Keras at. Otherwise it runs the weights with Keras and says why. The
measurement decides, not a rule: which runtime is fastest depends on the network, the image size and the CPU
(docs/export.md).
"""

import hashlib
import json
import os
import time
from dataclasses import dataclass

from utils.files.atomic import write_json
from utils.planning.machine import this_machine
from utils.precision import choose_precision, isa_cap
from utils.weights.checkpoint import beside_weights

RUNTIMES = ("onnx", "openvino")
BACKENDS = ("auto", "keras", *RUNTIMES)
SUFFIX = ".backends.json"
EXPORT_HINT = "python export.py --formats onnx openvino measures them"


@dataclass(frozen=True)
class BackendChoice:
    """The backend a run takes, the file it opens and, for backend auto, why."""

    backend: str
    model_path: str
    reason: str = ""


def machine_key() -> dict:
    """What a speed measurement holds for: the device, its name and cores, and oneDNN's ISA cap."""
    machine = this_machine()
    return {"device": machine.device, "name": machine.name, "cores": machine.cores, "isa_cap": isa_cap()}


def describe_machine(key: dict) -> str:
    capped = f", oneDNN capped at {key.get('isa_cap')}" if key.get("isa_cap", "ALL") != "ALL" else ""
    return f"{key.get('name')} ({key.get('cores')} cores{capped})"


def digest(*paths: str) -> str:
    """sha256 of the files' bytes, in order: a weights file, or an export's files (OpenVINO's .xml and .bin)."""
    sha = hashlib.sha256()
    for path in paths:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                sha.update(block)
    return sha.hexdigest()


def runtime_files(backend: str, model_path: str) -> list:
    """The files an export's runtime reads: model.onnx; OpenVINO's model.xml and its model.bin."""
    return [model_path] + ([os.path.splitext(model_path)[0] + ".bin"] if backend == "openvino" else [])


def record_path(weights_path: str) -> str:
    return beside_weights(weights_path, SUFFIX)


def write_speed_record(weights_path: str, rates: dict, files: dict, policy: str) -> str:
    """Records export.py's speed figures beside the weights file (atomically); returns its path.

    Args:
        rates: {backend: images/s}, keras and each runtime that passed parity.
        files: {runtime: its model_path (model.onnx, openvino/model.xml)}.
        policy: the Keras dtype policy the keras figure was measured at.
    """
    path = record_path(weights_path)
    write_json(
        path,
        {
            "weights_sha256": digest(weights_path),
            "machine": machine_key(),
            "keras_policy": policy,
            "measured": time.strftime("%Y-%m-%d %H:%M:%S"),
            "images_per_second": rates,
            "files": {
                name: {"path": os.path.abspath(file), "sha256": digest(*runtime_files(name, file))}
                for name, file in files.items()
            },
        },
    )
    return path


def read_record(path: str) -> dict:
    try:
        with open(path) as f:
            record = json.load(f)
        rates = {str(name): float(rate) for name, rate in record["images_per_second"].items()}
        return {**record, "images_per_second": rates, "files": dict(record["files"])}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ValueError(
            f"{path}: not a backend speed record ({type(error).__name__}: {error}). Remove it, or measure again: "
            f"{EXPORT_HINT}."
        ) from None


def stale(record: dict, weights_path: str, precision: str) -> str:
    """Why the record does not hold for this run, or "" when it does."""
    here = machine_key()
    if record.get("machine") != here:
        return f"measured on {describe_machine(record.get('machine') or {})}, this is {describe_machine(here)}"
    policy = choose_precision(precision)[0]
    if record.get("keras_policy") != policy:
        return f"Keras was measured at {record.get('keras_policy')}, this run is {policy}"
    if record.get("weights_sha256") != digest(weights_path):
        return f"{weights_path} changed since it was measured (trained again?)"
    return ""


def usable(name: str, entry: dict) -> str:
    """Why an exported runtime of the record cannot run now, or "" when it can."""
    files = runtime_files(name, entry.get("path", ""))
    if not all(os.path.isfile(file) for file in files):
        return f"{entry.get('path')} is gone"
    if entry.get("sha256") != digest(*files):
        return f"{entry.get('path')} changed since it was measured (exported again from other weights?)"
    module = {"onnx": "onnxruntime", "openvino": "openvino"}[name]
    try:
        __import__(module)
    except ImportError:
        return f"{module} is not installed (pip install -r requirements-export.txt)"
    return ""


def choose_backend(backend: str, model_path: str, precision: str, ensemble: bool) -> BackendChoice:
    """The backend a prediction runs: the one asked for, or for auto the fastest measured that holds for this run
    (keras when none is measured, with the reason).

    Raises:
        ValueError: for a backend not in BACKENDS, or a record that cannot be read.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend={backend!r}: expected one of {', '.join(BACKENDS)}.")
    if backend != "auto":
        return BackendChoice(backend, model_path)
    for name, suffix in (("onnx", ".onnx"), ("openvino", ".xml")):
        if model_path.endswith(suffix):  # an export given as model_path: its runtime
            return BackendChoice(name, model_path, f"{name} (model_path is its file)")
    path = record_path(model_path)
    if ensemble or not model_path.endswith(".weights.h5") or not os.path.isfile(path):
        why = "an ensemble runs on Keras" if ensemble else f"no speed measured for it ({EXPORT_HINT})"
        return BackendChoice("keras", model_path, f"keras: {why}")
    record = read_record(path)
    why = stale(record, model_path, precision)
    if why:
        return BackendChoice("keras", model_path, f"keras: the speeds in {path} do not hold ({why})")
    rates, skipped = record["images_per_second"], []
    for name in sorted(rates, key=rates.get, reverse=True):
        entry = record["files"].get(name, {})
        why = "" if name == "keras" else usable(name, entry) if name in RUNTIMES else "an unknown backend"
        if why:
            skipped.append(f"{name}: {why}")
            continue
        figures = ", ".join(f"{other} {rate:.2f}" for other, rate in rates.items())
        also = f"; skipped {'; '.join(skipped)}" if skipped else ""
        chosen = entry.get("path", model_path)
        reason = f"{name}, the fastest measured on this machine (img/s: {figures}; {path}{also})"
        return BackendChoice(name, chosen, reason)
    return BackendChoice("keras", model_path, f"keras ({'; '.join(skipped)})")
