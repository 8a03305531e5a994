"""Writing files so that nothing is lost: each file is written to a temporary file beside it and renamed over it
(a crash, a kill or a full disk leaves the previous file whole), with Ctrl-C held back until the write is done."""

import contextlib
import errno
import glob
import json
import os
import shutil
import signal
import tempfile
import threading

import h5py
import numpy as np

UMASK = os.umask(0o022)  # read once (os.umask can only be read by setting it), then set back
os.umask(UMASK)
TEMPORARY_PREFIX = ".tmp-"  # temporary files of an atomic write; a killed write leaves one, the next run removes it

_deferring = []  # the signals received while an outermost deferred_interrupt block runs


@contextlib.contextmanager
def deferred_interrupt():
    """Holds Ctrl-C back until the block has finished, then raises it (main thread only). Blocks nest: only the
    outermost one raises, after all of it has run."""
    if threading.current_thread() is not threading.main_thread() or _deferring:
        yield
        return
    _deferring.append([])
    previous = signal.signal(signal.SIGINT, lambda *args: _deferring[0].append(args))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        received = _deferring.pop()
    if received:
        raise KeyboardInterrupt


class WriteFailed(ValueError):
    """A checkpoint file could not be written. HDF5 cannot close a file whose write failed, and its teardown at
    interpreter exit then crashes (exit 139): run_main ends the process without that teardown."""

    skip_teardown = True


def check_free_space(folder: str, needed: int, path: str) -> None:
    """Raises WriteFailed, before anything is written, when the disk holding folder has less than `needed` bytes
    free (and a margin): the usual full disk never reaches HDF5."""
    free = shutil.disk_usage(folder).free
    if free < needed + 2**20:
        raise WriteFailed(
            f"{path}: could not be written (the disk is full: {free / 2**20:.0f} MiB free, about "
            f"{needed / 2**20:.0f} MiB needed). The previous checkpoints are intact. Free some space, or choose "
            "another save_dir, then resume."
        )


def variables_bytes(variables) -> int:
    return sum(int(np.prod(v.shape)) * np.dtype(v.dtype).itemsize for v in variables)


def close_hdf5_files(path: str) -> None:
    """Closes every HDF5 handle still open on `path` (a write that failed part-way leaves them open)."""
    for file_id in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE):
        if os.path.abspath(file_id.name.decode()) == os.path.abspath(path):
            with contextlib.suppress(Exception):  # closing flushes, which fails again on a full disk
                while file_id.valid:
                    file_id.close()


def write_atomically(path: str, write, suffix: str) -> None:
    """Calls write(temporary path) for a temporary file beside `path`, then renames it over `path`.

    Ctrl-C waits until the write is done; a crash or kill while writing leaves the previous file intact. A full
    disk (or any other failure to write) removes the temporary file and raises a ValueError naming the file.
    """
    directory = os.path.dirname(os.path.abspath(path))
    with deferred_interrupt():
        handle, temporary = tempfile.mkstemp(prefix=TEMPORARY_PREFIX, suffix=suffix, dir=directory)
        os.close(handle)
        try:
            write(temporary)
            os.chmod(temporary, 0o666 & ~UMASK)  # mkstemp makes it private; the file gets a new file's usual mode
            os.replace(temporary, path)
        except OSError as error:
            close_hdf5_files(temporary)  # a failed write leaves h5py's handle open: HDF5 would crash closing it at exit
            full = error.errno in (errno.ENOSPC, errno.EDQUOT) or "No space left" in str(error)
            why = "the disk is full" if full else f"{type(error).__name__}: {error}"
            raise WriteFailed(
                f"{path}: could not be written ({why}). The previous file, if any, is intact. "
                + ("Free some space, or " if full else "")
                + "choose another save_dir, then resume."
            ) from None
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)


def write_text(path: str, text: str) -> None:
    """A small text file (history.csv, epoch_loss.txt ...), written atomically."""

    def write(temporary):
        with open(temporary, "w", newline="") as f:
            f.write(text)

    write_atomically(path, write, os.path.splitext(path)[1])


def write_json(path: str, data) -> None:
    """A small JSON file, written atomically."""
    write_text(path, json.dumps(data, indent=1))


def remove_stray_temporaries(save_dir: str) -> list:
    """Removes the temporary files that a killed write left in save_dir; returns their names."""
    strays = glob.glob(os.path.join(glob.escape(save_dir), TEMPORARY_PREFIX + "*"))
    for path in strays:
        os.remove(path)
    return [os.path.basename(p) for p in strays]


def check_writable(folder: str, setting: str, example: str) -> None:
    """Creates folder if needed and writes a probe file there; a ValueError names the setting and says why it cannot
    be written (a file in the way, no permission), before any slow work starts."""
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"{setting}={folder!r}: a file, not a folder. Choose a folder, e.g. --{setting} {example}.")
    try:
        os.makedirs(folder, exist_ok=True)
        with tempfile.TemporaryFile(prefix=TEMPORARY_PREFIX, dir=folder):
            pass
    except OSError as error:
        raise ValueError(
            f"{setting}={folder!r}: cannot be written ({error.strerror or error}). Choose a folder you can write "
            f"to, e.g. --{setting} {example}, or fix its permissions."
        ) from None
