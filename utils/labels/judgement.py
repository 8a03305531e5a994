"""What a judgement of a dataset's labels says: its problems (each naming its file, what was found and the fix), the
Conversion of each file that needs one, and the thresholds the judges share (utils/labels/formats.py)."""

from dataclasses import dataclass, field

import numpy as np

from utils.files.images import IGNORE_LABEL
from utils.labels.facts import LabelArray

PLATEAU_SHARE = 0.1  # a value forms regions when at least this share of its pixels have 4 equal neighbours
RIM_SHARE = 0.5  # ... and lies on edges when at least this share of its pixels lie between their neighbours'
MIN_RIM_VALUES = 3  # resampling leaves a spread of values between two classes; one thin class is not a spread
MAX_NOISE_SHARE = 0.25  # noise is thin: more pixels than this between the classes are not edge noise
JPEG_DISTANCE = 24  # JPEG moves values and colours by up to this much inside a region
MIN_REGION = 16  # px of 4-neighbour interior over the dataset: fewer is no region, whatever its share
BLEND_DISTANCE = 8  # an edge blend of two colours lies this close to the line between them
RARE_SHARE = 1e-4  # a class in under this share of the labelled pixels (or in one image) is worth a look
NO_CLASS = -1


@dataclass
class Problem:
    path: str
    kind: str  # a short key: "noisy", "zero_255", "palette_order", "colour", "jpeg", "classes", "rare", ...
    message: str  # the file, what was found, what was expected and how to fix it
    fatal: bool = True  # would break training (else a warning)
    fixable: bool = False  # voc_annotation.py --fix can correct it


@dataclass
class Conversion:
    """How --fix turns one file's pixels into class ids: a table from values (or packed colours) to ids."""

    table: np.ndarray | None = None  # (256,) uint8 for values
    colours: np.ndarray | None = None  # a colour mask's packed colours, sorted ...
    colour_ids: np.ndarray | None = None  # ... and the class id of each, uint8
    notes: list = field(default_factory=list)  # what it does, for the report

    def apply(self, label: LabelArray) -> np.ndarray:
        if label.colours is None:
            return self.table[label.values]
        found = np.minimum(np.searchsorted(self.colours, label.colours), len(self.colours) - 1)
        if (self.colours[found] != label.colours).any():
            raise ValueError("a colour changed since the survey: run python voc_annotation.py again")
        return self.colour_ids[found]


@dataclass
class Judgement:
    problems: list  # [Problem]
    conversions: dict  # {path: Conversion} of the files --fix rewrites
    histograms: dict  # {path: (256,) class-id pixels}, after the conversions
    findings: list  # lines on the dataset's formats for the report

    def classes_held(self, path: str) -> set:
        """The class ids the label file at `path` holds (after its conversion; IGNORE_LABEL not among them)."""
        return {int(c) for c in np.flatnonzero(self.histograms[path]) if c != IGNORE_LABEL}
