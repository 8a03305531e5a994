"""Where a train.py run's wall time goes: start-up, data, model, and per phase its compile, tracing, steps,
validation and each callback. train.py prints the table at the end and writes it to the run folder (timing.json).
"""

import json
import os
import time
from contextlib import contextmanager

import keras
import numpy as np


def process_age() -> float | None:
    """Seconds since this process started (Linux: /proc), or None: start-up and imports before the first line."""
    try:
        with open("/proc/self/stat") as f:
            started_ticks = int(f.read().rsplit(")", 1)[1].split()[19])  # field 22, after the command's name
        with open("/proc/uptime") as f:
            uptime = float(f.read().split()[0])
        return uptime - started_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


class Timeline:
    """Seconds by stage, in the order first seen; `started` is the process's start where known."""

    def __init__(self):
        age = process_age()
        self.seconds, self.counted = ({"start-up and imports": age} if age is not None else {}), age or 0.0
        self.started = time.perf_counter() - (age or 0.0)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds
        self.counted += seconds  # all stages so far: StepClock leaves them out of its gaps

    @contextmanager
    def span(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def total(self) -> float:
        return time.perf_counter() - self.started

    def rows(self) -> dict:
        """{stage: seconds}, with what no stage accounts for as "other" and the wall time as "total"."""
        total = self.total()
        return {**self.seconds, "other (Keras' epoch loop)": total - sum(self.seconds.values()), "total": total}

    def format(self) -> str:
        rows = self.rows()
        width = max(map(len, rows))
        lines = [
            f"  {name:<{width}}  {seconds:7.1f} s  {seconds / rows['total']:6.1%}" for name, seconds in rows.items()
        ]
        return "Where the time went:\n" + "\n".join(lines)

    def write(self, path: str) -> None:
        with open(path, "w") as f:
            json.dump({name: round(seconds, 3) for name, seconds in self.rows().items()}, f, indent=1)


# The stage a callback's work is reported under, by its class's name (others: the class's name).
CALLBACK_STAGES = {
    "PreciseBatchNorm": "precise BN",
    "EvalCallback": "val mIoU and images",
    "LossHistory": "history and curves",
    "CheckpointSaver": "checkpoints",
    "TensorBoard": "TensorBoard logs",
    "Watch": "early stopping and plateau",
    "NonFiniteGuard": "non-finite loss check",
}


def timed_callbacks(clock, callbacks: list) -> list:
    """A phase's callbacks for fit, timed: its StepClock first (it sees each step end before any other callback
    works), then each callback followed by a Lap that books the callback's epoch-end and batch-end work under its
    stage. Keras calls a list's callbacks one after another, so the time from one mark to the next is the work of
    the callback between them."""
    timed = [clock]
    for callback in callbacks:
        timed += [callback, Lap(clock, CALLBACK_STAGES.get(type(callback).__name__, type(callback).__name__))]
    return timed


class StepClock(keras.callbacks.Callback):
    """The first callback of a phase's fit, made as the phase starts: the phase's start until fit's first step
    (compile, datasets, iterator), its first step's tracing (beyond a typical step), its steps, and Keras' val loss
    passes. Its `mark` is where the next Lap's time starts."""

    def __init__(self, timeline: Timeline, phase: str):
        super().__init__()
        self.timeline, self.phase, self.called, self.steps, self.first = timeline, phase, time.perf_counter(), [], None
        self.mark = self.called

    def on_train_begin(self, logs=None):
        self.timeline.add(f"{self.phase}: compile and start", time.perf_counter() - self.called)

    def on_epoch_begin(self, epoch, logs=None):
        self.step_ended = None  # the gap before an epoch's first step is the epoch's end and start, not the loop's

    def on_epoch_end(self, epoch, logs=None):
        self.mark = time.perf_counter()

    def on_train_batch_begin(self, batch, logs=None):
        self.step_started = time.perf_counter()
        if self.step_ended is not None:
            # Between two steps: Keras' loop (logs to Python, the progress bar) and the callbacks' batch-end work,
            # which their own stages count.
            ended, counted = self.step_ended
            gap = self.step_started - ended - (self.timeline.counted - counted)
            self.timeline.add(f"{self.phase}: between steps (Keras' loop, progress bar)", gap)

    def on_train_batch_end(self, batch, logs=None):
        ended = time.perf_counter()
        seconds = ended - self.step_started
        if self.first is None:  # the next phase compiles a new step function: a new clock
            self.first = seconds
        else:
            self.steps.append(seconds)
            self.timeline.add(f"{self.phase}: steps", seconds)
        self.step_ended, self.mark = (ended, self.timeline.counted), ended

    def on_train_end(self, logs=None):
        # The first step also traces the step function: what it took beyond a typical step.
        typical = float(np.median(self.steps)) if self.steps else 0.0
        self.timeline.add(f"{self.phase}: first step's tracing", max(self.first - typical, 0.0))
        self.timeline.add(f"{self.phase}: steps", min(self.first, typical))

    def on_test_begin(self, logs=None):
        self.test_started = time.perf_counter()

    def on_test_end(self, logs=None):
        self.timeline.add(f"{self.phase}: val loss", time.perf_counter() - self.test_started)


class Lap(keras.callbacks.Callback):
    """Books the time since the clock's mark under `stage` at each epoch and batch end, and moves the mark on:
    placed after a callback, it times that callback's work there without wrapping it."""

    def __init__(self, clock: StepClock, stage: str):
        super().__init__()
        self.clock, self.stage = clock, stage

    def lap(self) -> None:
        now = time.perf_counter()
        self.clock.timeline.add(self.stage, now - self.clock.mark)
        self.clock.mark = time.perf_counter()  # the booking itself is no callback's

    def on_epoch_end(self, epoch, logs=None):
        self.lap()

    def on_train_batch_end(self, batch, logs=None):
        self.lap()
