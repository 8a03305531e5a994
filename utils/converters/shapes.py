"""What every labelling tool's export becomes before it is drawn: an image's record (its file, size and shapes), each
shape a polygon, a box or a mask of one class, and the problems found, each naming its file and the fix.

Overlaps follow one rule, whatever the tool: crowd regions (COCO iscrowd) first, then by the tool's z-order (CVAT's
z_order; the file's order elsewhere), and within one z-order the larger shape first, so a smaller shape on top of a
larger one stays visible. Polygons are rasterised by pycocotools, as COCO's and CVAT's own masks are.
"""

from dataclasses import dataclass, field

import numpy as np
from pycocotools import mask as coco_mask


@dataclass(frozen=True)
class Shape:
    """One annotated region: `kind` polygon (points: [x0, y0, x1, y1, ...] px, several rings for one object),
    box (points: [x0, y0, x1, y1]) or mask (bool (h, w) at offset (left, top))."""

    kind: str
    label: str
    points: tuple = ()
    mask: np.ndarray | None = None
    offset: tuple = (0, 0)  # (left, top) of a mask
    z_order: int = 0
    crowd: bool = False


@dataclass
class ImageRecord:
    """One image of an export: its file name as the export gives it, its size as the export says, its shapes."""

    name: str
    width: int
    height: int
    shapes: list = field(default_factory=list)


@dataclass(frozen=True)
class Problem:
    """What is wrong with an export, naming the file (and the image or shape) and the fix; `drop` problems are shapes
    that --drop_bad_shapes may leave out, the others stop the conversion."""

    where: str
    message: str
    drop: bool = False

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def polygon_problem(points) -> str:
    """Why a polygon ring ([x0, y0, ...]) cannot be drawn: fewer than 3 points, no area, or edges that cross; ""."""
    xy = np.asarray(points, np.float64).reshape(-1, 2)
    if len(xy) < 3:
        return f"a polygon of {len(xy)} points (3 or more make an area)"
    crossing = crossing_edges(xy)
    if crossing:
        return f"a self-intersecting polygon (edges {crossing[0]} and {crossing[1]} cross)"
    area = 0.5 * abs(np.dot(xy[:, 0], np.roll(xy[:, 1], 1)) - np.dot(xy[:, 1], np.roll(xy[:, 0], 1)))
    if area <= 0:
        return "a polygon of no area (its points on one line)"
    return ""


def crossing_edges(xy: np.ndarray):
    """The first pair of non-adjacent edges (indices) of a closed ring that properly cross, or ()."""
    count = len(xy)
    starts, ends = xy, np.roll(xy, -1, axis=0)
    for i in range(count):
        for j in range(i + 2, count):
            if i == 0 and j == count - 1:
                continue  # adjacent through the closing edge
            if segments_cross(starts[i], ends[i], starts[j], ends[j]):
                return (i, j)
    return ()


def segments_cross(a, b, c, d) -> bool:
    """Whether segments ab and cd cross at a point inside both (touching ends do not count)."""

    def side(p, q, r):
        return np.sign((q[0] - p[0]) * (r[1] - p[1]) - (q[1] - p[1]) * (r[0] - p[0]))

    return side(a, b, c) * side(a, b, d) < 0 and side(c, d, a) * side(c, d, b) < 0


def shape_mask(shape: Shape, width: int, height: int) -> np.ndarray:
    """bool (height, width): the pixels the shape covers (polygons and boxes through pycocotools)."""
    if shape.kind == "mask":
        full = np.zeros((height, width), bool)
        left, top = shape.offset
        part = shape.mask[: max(0, height - top), : max(0, width - left)]
        full[top : top + part.shape[0], left : left + part.shape[1]] = part
        return full
    if shape.kind == "box":
        x0, y0, x1, y1 = shape.points
        rings = [[x0, y0, x1, y0, x1, y1, x0, y1]]
    else:
        rings = [list(ring) for ring in shape.points]
    rles = coco_mask.frPyObjects(rings, height, width)
    return coco_mask.decode(coco_mask.merge(rles)).astype(bool)


def draw_record(record: ImageRecord, classes: list) -> np.ndarray:
    """uint8 (height, width) class ids: 0 where no shape is, each shape's class index in `classes` (the background
    first) drawn by the overlap rule (module docstring)."""
    label = np.zeros((record.height, record.width), np.uint8)
    masks = [(shape, shape_mask(shape, record.width, record.height)) for shape in record.shapes]
    order = sorted(range(len(masks)), key=lambda i: (not masks[i][0].crowd, masks[i][0].z_order, -masks[i][1].sum(), i))
    for index in order:
        shape, mask = masks[index]
        label[mask] = classes.index(shape.label)
    return label
