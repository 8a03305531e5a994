"""Checkpoint files: the one module that writes train.py's weights files and reads what they record.

A checkpoint is a Keras 3 `.weights.h5` file, written atomically, with the UnetVariant the network was built as
in an HDF5 attribute (JSON), so that prediction rebuilds the same network.
"""

import contextlib
import json
import os
import signal
import tempfile
import threading
from dataclasses import asdict

import h5py
import keras

from nets.unet import UnetVariant, model_variant

VARIANT_ATTR = "unet_variant"  # checkpoints record the UnetVariant they were trained as (JSON)


@contextlib.contextmanager
def deferred_interrupt():
    """Holds Ctrl-C back until the block has finished, then raises it (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received = []
    previous = signal.signal(signal.SIGINT, lambda *args: received.append(args))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt


def save_weights_atomically(model, path: str) -> None:
    """Writes model weights to a temporary file beside `path`, then renames it over `path`.

    Ctrl-C waits until the write is done, and a crash while writing leaves the previous file intact:
    never a truncated file or a stray temporary one.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    with deferred_interrupt():
        handle, temporary = tempfile.mkstemp(prefix=".tmp-", suffix=".weights.h5", dir=directory)
        os.close(handle)
        try:
            # A functional view over the same layers has no optimizer: Keras 3 would otherwise store the
            # compiled model's optimizer state too, tripling the file (the group names stay the same).
            keras.Model(model.inputs, model.outputs, name=model.name).save_weights(temporary, overwrite=True)
            with h5py.File(temporary, "a") as h5:  # so that prediction builds the network these weights need
                h5.attrs[VARIANT_ATTR] = json.dumps(asdict(model_variant(model)))
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)


def recorded_variant(h5: h5py.File):
    """The UnetVariant an open weights file records, or None for a file that records none (another repo's)."""
    return UnetVariant(**json.loads(h5.attrs[VARIANT_ATTR])) if VARIANT_ATTR in h5.attrs else None
