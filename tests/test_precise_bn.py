"""Precise BN (utils/training/precise_bn.py): the trainable BN layers take the mean of their batch statistics over the
training images, on one device and over two replicas."""

import subprocess
import sys

import keras
import numpy as np

from tests.helpers import ROOT
from utils.training.precise_bn import StatisticsPass, calibration_samples, trainable_batch_norms


def two_norms():
    """images (8, 8, 3) -> BN -> 1x1 conv -> BN, the first frozen."""
    inputs = keras.Input((8, 8, 3))
    frozen = keras.layers.BatchNormalization(name="frozen")
    x = keras.layers.Conv2D(4, 1, name="conv")(frozen(inputs))
    model = keras.Model(inputs, keras.layers.BatchNormalization(name="free")(x))
    frozen.trainable = False
    return model


def test_the_statistics_are_the_images_weighted_mean_of_the_batches():
    model = two_norms()
    rng = np.random.default_rng(0)
    batches = [(rng.normal(3, 2, (n, 8, 8, 3)).astype("float32"), None) for n in (4, 4, 2)]
    assert [layer.name for layer in trainable_batch_norms(model)] == ["free"]
    assert StatisticsPass(model)(batches) == 10

    conv = model.get_layer("conv")  # the frozen BN normalises with its (untouched) mean 0, variance 1
    features = [conv(images / np.sqrt(1 + 1e-3)).numpy() for images, _ in batches]
    sizes = np.array([[len(f)] for f in features])
    mean = (sizes * [f.mean((0, 1, 2)) for f in features]).sum(0) / 10
    variance = (sizes * [f.var((0, 1, 2)) for f in features]).sum(0) / 10
    free, frozen = model.get_layer("free"), model.get_layer("frozen")
    np.testing.assert_allclose(free.moving_mean.numpy(), mean, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(free.moving_variance.numpy(), variance, rtol=1e-4)
    # The mean of per-batch statistics, not the statistics of the pooled images.
    assert not np.allclose(free.moving_variance.numpy(), np.concatenate(features).var((0, 1, 2)), rtol=1e-4)
    assert (frozen.moving_mean.numpy() == 0).all() and (frozen.moving_variance.numpy() == 1).all()
    assert free.momentum == 0.99  # training goes on with its own momentum


def test_calibration_samples_spread_over_the_list():
    assert calibration_samples(list(range(10)), 4) == [0, 3, 6, 9]
    assert calibration_samples(list(range(3)), 4) == [0, 1, 2]


MIRRORED = """
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np
from utils.training.precise_bn import StatisticsPass
with tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]).scope():
    inputs = keras.Input((8, 8, 3))
    model = keras.Model(inputs, keras.layers.BatchNormalization()(inputs))
images = np.random.default_rng(0).normal(3, 2, (2, 4, 8, 8, 3)).astype("float32")
StatisticsPass(model)([(batch,) for batch in images])
replicas = model.layers[1].moving_mean.value.values
assert len(replicas) == 2, replicas
for replica in replicas:
    np.testing.assert_allclose(replica.numpy(), images.mean((0, 1, 2, 3)), rtol=1e-5)
print("ok")
"""


def test_every_replica_holds_the_same_statistics_under_mirrored_strategy():
    result = subprocess.run([sys.executable, "-c", MIRRORED], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0 and result.stdout.strip() == "ok", result.stderr[-3000:]
