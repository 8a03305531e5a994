"""Predictions where GIS tools read them: a georeferenced TIFF's mask and probabilities written as GeoTIFFs with its
georeference (its GeoTIFF tags copied, read back by any GIS at the same place), and each connected region of each
class as a GeoJSON polygon, in map coordinates when the image has them (pixel coordinates otherwise).

tifffile reads and writes the tags and OpenCV traces the regions (findContours, outer rings and their holes), so the
plain PNG path needs neither rasterio nor GDAL. Polygon vertices are pixel centres, x right and y down in pixels.
"""

import json
from dataclasses import dataclass

import cv2
import numpy as np

from utils.files.atomic import write_atomically, write_text
from utils.multilabel import class_pixels, drawn_classes

# GeoTIFF's tags: ModelPixelScale, ModelTiepoint, ModelTransformation, GeoKeyDirectory, GeoDoubleParams,
# GeoAsciiParams, and GDAL's no-data value and metadata.
GEO_TAGS = (33550, 33922, 34264, 34735, 34736, 34737, 42112, 42113)
PROJECTED_CRS, GEOGRAPHIC_CRS, RASTER_TYPE = 3072, 2048, 1025  # GeoKeys: EPSG codes; pixel is area (1) or point (2)


@dataclass(frozen=True)
class GeoReference:
    """A TIFF's georeference: its GeoTIFF tags as tifffile's extratags, and the affine pixel -> map transform."""

    tags: tuple  # (code, dtype, count, value, writeonce) per tag
    transform: tuple  # (a, b, c, d, e, f): x = a col + b row + c, y = d col + e row + f (pixel centres)
    crs: str  # "EPSG:32640", or "" when the keys name none


def geo_keys(directory) -> dict:
    """{key id: value} of a GeoKeyDirectory's keys held in the directory itself (short values)."""
    values = list(directory)
    return {values[i]: values[i + 3] for i in range(4, 4 + 4 * values[3], 4) if values[i + 1] == 0}


def transform_of(tags: dict) -> tuple:
    """The affine (a, b, c, d, e, f) at pixel centres from ModelTransformation, or ModelPixelScale + ModelTiepoint."""
    keys = geo_keys(tags[34735]) if 34735 in tags else {}
    shift = 0.5 if keys.get(RASTER_TYPE, 1) == 1 else 0.0  # pixel is area: the tie point is a pixel's corner
    if 34264 in tags:
        m = list(tags[34264])
        a, b, c, d, e, f = m[0], m[1], m[3], m[4], m[5], m[7]
    else:
        scale_x, scale_y = tags[33550][:2]
        i, j, _, x, y, _ = tags[33922][:6]
        a, b, c, d, e, f = scale_x, 0.0, x - i * scale_x, 0.0, -scale_y, y + j * scale_y
    return (a, b, c + shift * (a + b), d, e, f + shift * (d + e))


def read_georeference(path: str):
    """The GeoReference of a GeoTIFF, or None for any other file (a PNG, a TIFF without GeoTIFF tags)."""
    if not path.lower().endswith((".tif", ".tiff")):
        return None
    import tifffile  # noqa: PLC0415 (only for TIFF files)

    with tifffile.TiffFile(path) as tiff:
        page = tiff.pages[0]
        found = {code: page.tags[code] for code in GEO_TAGS if code in page.tags}
        if 34735 not in found or not ({33550, 33922} <= set(found) or 34264 in found):
            return None
        tags = tuple((code, tag.dtype, tag.count, tag.value, True) for code, tag in found.items())
        values = {code: tag.value for code, tag in found.items()}
    keys = geo_keys(values[34735])
    code = keys.get(PROJECTED_CRS) or keys.get(GEOGRAPHIC_CRS)
    return GeoReference(tags, transform_of(values), f"EPSG:{code}" if code and code != 32767 else "")


def write_geotiff(path: str, array: np.ndarray, geo: GeoReference) -> None:
    """A mask (H, W) or probabilities (H, W, C) as a GeoTIFF with the input's georeference (deflate), atomically."""
    import tifffile  # noqa: PLC0415

    def write(temporary):
        data = array if array.ndim == 2 else np.moveaxis(array, -1, 0)  # bands first: GIS tools read them as bands
        planar = None if array.ndim == 2 else "separate"
        tifffile.imwrite(temporary, data, photometric="minisblack", planarconfig=planar, compression="deflate",
                         extratags=list(geo.tags))  # fmt: skip

    write_atomically(path, write, ".tif")


def region_features(mask: np.ndarray, names, geo=None, multilabel: int = 0) -> list:
    """GeoJSON features: one Polygon (outer ring and holes) per 8-connected region of each class but the background
    (a multilabel head's: of every class, overlapping), with its class id and name and its area in pixels (and in
    map units², georeferenced)."""
    features = []
    for class_id in drawn_classes(len(names), multilabel):
        binary = class_pixels(mask, class_id, multilabel).astype(np.uint8)
        if not binary.any():
            continue
        contours, hierarchy = cv2.findContours(binary, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
        _, regions, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        for index, contour in enumerate(contours):
            if hierarchy[0][index][3] != -1:
                continue  # a hole: written with its outer ring
            holes = [contours[i] for i in range(len(contours)) if hierarchy[0][i][3] == index]
            x, y = contour[0][0]
            area = float(stats[regions[y, x], cv2.CC_STAT_AREA])  # the region's pixels (its holes not among them)
            rings = [ring_coordinates(ring, geo) for ring in [contour, *holes]]
            properties = {"class_id": class_id, "class": names[class_id], "area_px": area}
            if geo:
                a, b, _, d, e, _ = geo.transform
                properties["area_map"] = area * abs(a * e - b * d)
            features.append(
                {"type": "Feature", "properties": properties, "geometry": {"type": "Polygon", "coordinates": rings}}
            )
    return features


def ring_coordinates(contour: np.ndarray, geo) -> list:
    """A contour (N, 1, 2) as a closed GeoJSON ring of [x, y], in map coordinates when `geo` is given."""
    xy = contour.reshape(-1, 2).astype(np.float64)
    if len(xy) < 3:  # a region of one or two pixels: a small square about them
        xy = np.concatenate([xy + offset for offset in ([-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5])])
    if geo:
        a, b, c, d, e, f = geo.transform
        xy = np.stack([a * xy[:, 0] + b * xy[:, 1] + c, d * xy[:, 0] + e * xy[:, 1] + f], axis=1)
    ring = xy.tolist()
    return ring + ring[:1]


def write_polygons(path: str, mask: np.ndarray, names, geo=None, multilabel: int = 0) -> int:
    """<name>.geojson: region_features as a FeatureCollection (with its CRS named, for QGIS); returns their count."""
    features = region_features(mask, names, geo, multilabel)
    collection = {"type": "FeatureCollection", "features": features}
    if geo and geo.crs:
        collection["crs"] = {"type": "name", "properties": {"name": geo.crs}}
    write_text(path, json.dumps(collection))
    return len(features)
