"""GIS outputs: a GeoTIFF's mask and probabilities keep its georeference, and regions become GeoJSON polygons."""

import json
import os

import numpy as np
import pytest
import tifffile
from PIL import Image

from tests.helpers import run_inline
from utils.prediction.geo import read_georeference, region_features

# A UTM zone 40N image (EPSG:32640) of 0.5 m pixels whose top-left corner is at (500000, 2800000), pixel is area.
KEYS = (1, 1, 0, 3, 1024, 0, 1, 1, 1025, 0, 1, 1, 3072, 0, 1, 32640)
GEO = [(33550, "d", 3, (0.5, 0.5, 0.0), True), (33922, "d", 6, (0, 0, 0, 500000.0, 2800000.0, 0.0), True),
       (34735, "H", len(KEYS), KEYS, True)]  # fmt: skip


def test_the_georeference_maps_pixel_centres_to_the_map():
    mask = np.zeros((6, 8), np.uint8)
    path = "/tmp/unused.tif"
    tifffile.imwrite(path, mask, extratags=GEO)
    geo = read_georeference(path)
    a, b, c, d, e, f = geo.transform
    assert geo.crs == "EPSG:32640"
    assert (a * 0 + b * 0 + c, d * 0 + e * 0 + f) == (500000.25, 2799999.75)  # pixel (0, 0)'s centre
    assert read_georeference(path.replace(".tif", ".png")) is None
    os.remove(path)


def test_each_region_is_a_polygon_with_its_holes_and_area():
    mask = np.zeros((10, 12), np.uint8)
    mask[1:8, 1:8] = 1
    mask[3:5, 3:5] = 0  # a hole of 4 pixels
    mask[2:4, 9:11] = 2
    features = region_features(mask, ["background", "field", "house"])
    field, house = sorted(features, key=lambda f: f["properties"]["class_id"])
    assert field["properties"] == {"class_id": 1, "class": "field", "area_px": 49.0 - 4.0}
    assert len(field["geometry"]["coordinates"]) == 2  # the outer ring and the hole
    assert house["properties"]["area_px"] == 4.0
    ring = np.array(field["geometry"]["coordinates"][0])
    assert ring[0].tolist() == ring[-1].tolist() and ring.min() == 1 and ring.max() == 7  # pixel centres, closed


def test_predict_writes_a_geotiff_mask_with_the_georeference_and_map_polygons(trained_small, tmp_path):
    images = tmp_path / "tiles"
    images.mkdir()
    source = os.path.join(trained_small["voc"], "VOC2007", "JPEGImages", "img 10.jpg")
    tifffile.imwrite(images / "tile.tif", np.asarray(Image.open(source)), photometric="rgb", extratags=GEO)
    out = tmp_path / "out"
    args = ["--model_path", trained_small["weights"], "--mode", "dir_predict", "--dir_origin_path", images]
    args += ["--dir_save_path", out, "--save_mask", "--save_polygons", "--save_probabilities", "--show", "false"]
    result = run_inline("predict.py", *args)
    assert result.returncode == 0, result.stderr[-3000:]
    mask = np.asarray(Image.open(out / "masks" / "tile.png"))
    with tifffile.TiffFile(out / "masks" / "tile.tif") as tiff:
        page = tiff.pages[0]
        np.testing.assert_array_equal(page.asarray(), mask)
        for code, _, _, value, _ in GEO:
            assert tuple(np.ravel(page.tags[code].value)) == pytest.approx(tuple(np.ravel(value)))
    with tifffile.TiffFile(out / "probabilities" / "tile.tif") as tiff:
        assert tiff.pages[0].tags[33922].value == GEO[1][3] and tiff.series[0].shape == (3, *mask.shape)
    collection = json.loads((out / "polygons" / "tile.geojson").read_text())
    assert collection["crs"]["properties"]["name"] == "EPSG:32640"
    assert sum(f["properties"]["area_px"] for f in collection["features"]) == np.count_nonzero(mask)
    for feature in collection["features"]:
        xy = np.array(feature["geometry"]["coordinates"][0])
        assert (500000 <= xy[:, 0]).all() and (xy[:, 0] <= 500000 + 0.5 * mask.shape[1]).all()
        assert (2800000 - 0.5 * mask.shape[0] <= xy[:, 1]).all() and (xy[:, 1] <= 2800000).all()
        assert feature["properties"]["area_map"] == pytest.approx(feature["properties"]["area_px"] * 0.25)
