"""utils/optimizers.py: the fused updates compute Keras' Adam and SGD, keep Keras' variables, and shrink the step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from utils.optimizers import FusedAdam, FusedSGD, make_optimizer


def small_network(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    # No bias before the normalisation: its gradient would be rounding noise, which Adam scales up to a step.
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    return keras.Model(inputs, keras.layers.Conv2D(3, 1, activation="softmax")(x))


def trained_weights(optimizer, steps: int = 5) -> list:
    network = small_network(3)
    network.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    images = rng.normal(size=(4, 8, 8, 3)).astype(np.float32)
    labels = rng.integers(0, 3, (4, 8, 8))
    for _ in range(steps):
        network.train_on_batch(images, labels)
    return [w.numpy() for w in network.weights] + [v.numpy() for v in network.optimizer.variables]


@pytest.mark.parametrize(
    "fused, keras_own",
    [
        (lambda: FusedAdam(1e-2, beta_1=0.9), lambda: keras.optimizers.Adam(1e-2, beta_1=0.9)),
        (lambda: FusedAdam(1e-2, weight_decay=0.1), lambda: keras.optimizers.Adam(1e-2, weight_decay=0.1)),
        (
            lambda: FusedSGD(1e-1, momentum=0.9, nesterov=True),
            lambda: keras.optimizers.SGD(1e-1, momentum=0.9, nesterov=True),
        ),
    ],
)
def test_the_fused_update_is_keras_update(fused, keras_own):
    got, expected = trained_weights(fused()), trained_weights(keras_own())
    assert len(got) == len(expected)  # the same variables, in the same order: checkpoints keep their layout
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert not np.allclose(got[0], small_network(3).weights[0].numpy())  # it trained


def test_the_fused_update_is_one_op_per_variable():
    """The step's graph loses Keras' element-wise update ops: a smaller graph to trace and optimise."""

    def graph_size(optimizer) -> int:
        network = small_network(0)
        optimizer.build(network.trainable_variables)
        gradients = [tf.ones_like(v) for v in network.trainable_variables]
        step = tf.function(lambda: optimizer.apply_gradients(zip(gradients, network.trainable_variables)))
        return len(step.get_concrete_function().graph.get_operations())

    fused, own = graph_size(make_optimizer("adam", 1e-3)), graph_size(keras.optimizers.Adam(1e-3))
    assert fused < 0.6 * own, (fused, own)


def test_amsgrad_and_a_strategy_take_keras_own_update():
    expected = trained_weights(keras.optimizers.Adam(1e-2, amsgrad=True))
    for a, b in zip(trained_weights(FusedAdam(1e-2, amsgrad=True)), expected):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    with tf.distribute.OneDeviceStrategy("/cpu:0").scope():
        got = trained_weights(FusedAdam(1e-2))
    for a, b in zip(got, trained_weights(keras.optimizers.Adam(1e-2))):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
