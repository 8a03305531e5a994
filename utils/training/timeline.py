"""Where a train.py run's wall time goes: start-up, data, model, and per phase its compile, tracing, steps,
validation and each callback. train.py prints the table at the end and writes it to the run folder (timing.json).
"""

import json
import os
import time
from contextlib import contextmanager

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
            json.dump({name: round(seconds, 6) for name, seconds in self.rows().items()}, f, indent=1)  # to the µs


class PhaseClock:
    """A phase's stages, from the hooks of its fit (utils/callbacks.py: StepClock, Lap): the phase's start until
    fit's first step (compile, datasets, iterator), its first step's tracing (beyond a typical step), its steps,
    Keras' val loss passes and loop between steps, and each callback's work. `mark` is where the next lap starts.
    Made as the phase starts."""

    def __init__(self, timeline: Timeline, phase: str):
        self.timeline, self.phase, self.called, self.steps, self.first = timeline, phase, time.perf_counter(), [], None
        self.mark, self.step_ended_at = self.called, None

    def add(self, stage: str, seconds: float) -> None:
        self.timeline.add(f"{self.phase}: {stage}", seconds)

    def fit_started(self) -> None:
        self.add("compile and start", time.perf_counter() - self.called)

    def epoch_started(self) -> None:
        self.step_ended_at = None  # the gap before an epoch's first step is the epoch's end and start, not the loop's

    def mark_now(self) -> None:
        self.mark = time.perf_counter()

    def step_started(self) -> None:
        self.started = time.perf_counter()
        if self.step_ended_at is not None:
            # Between two steps: Keras' loop (logs to Python, the progress bar) and the callbacks' batch-end work,
            # which their own stages count.
            ended, counted = self.step_ended_at
            self.add(
                "between steps (Keras' loop, progress bar)", self.started - ended - (self.timeline.counted - counted)
            )

    def step_ended(self) -> None:
        ended = time.perf_counter()
        if self.first is None:  # the next phase compiles a new step function: a new clock
            self.first = ended - self.started
        else:
            self.steps.append(ended - self.started)
            self.add("steps", ended - self.started)
        self.step_ended_at, self.mark = (ended, self.timeline.counted), ended

    @property
    def typical(self) -> float:
        """A typical step's seconds: the median of those after the first."""
        return float(np.median(self.steps)) if self.steps else 0.0

    def fit_ended(self) -> None:
        # The first step also traces the step function: what it took beyond a typical step.
        self.add("first step's tracing", max(self.first - self.typical, 0.0))
        self.add("steps", min(self.first, self.typical))

    @property
    def steps_seconds(self) -> float:
        """The phase's steps so far, the first one counted as a typical step (without its tracing)."""
        return sum(self.steps) + (min(self.first, self.typical) if self.first is not None else 0.0)

    def test_started(self) -> None:
        self.test_began = time.perf_counter()

    def test_ended(self) -> None:
        self.add("val loss", time.perf_counter() - self.test_began)

    def lap(self, stage: str) -> None:
        """The time since the mark is `stage`'s (a callback's work); the mark moves on."""
        self.timeline.add(stage, time.perf_counter() - self.mark)
        self.mark = time.perf_counter()  # the booking itself is no callback's


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
