"""utils/training/optimizers.py: train.py's Adam computes Keras' Adam bit for bit, keeps Keras' variables, and traces a
smaller step."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from utils.training.optimizers import Adam, make_optimizer


def small_network(seed: int) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU()(x)
    return keras.Model(inputs, keras.layers.Conv2D(3, 1, activation="softmax")(x))


def trained(make_optimizer, steps: int = 5, strategy=None) -> list:
    """(path, value) of every weight and optimizer variable after `steps` steps on one batch."""
    keras.backend.clear_session()  # the same layer names each time: the variables' paths compare
    with (strategy or tf.distribute.get_strategy()).scope():
        network = small_network(3)
        network.compile(optimizer=make_optimizer(), loss="sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    images = rng.normal(size=(4, 8, 8, 3)).astype(np.float32)
    labels = rng.integers(0, 3, (4, 8, 8))
    for _ in range(steps):
        network.train_on_batch(images, labels)
    variables = [*network.weights, *network.optimizer.variables]
    return [(v.path, keras.ops.convert_to_numpy(v)) for v in variables]


def assert_same(got: list, expected: list) -> None:
    # The same variables in the same order (resumable checkpoints keep their layout), and the same bits.
    assert [path for path, _ in got] == [path for path, _ in expected]
    for (path, a), (_, b) in zip(got, expected):
        assert np.array_equal(a, b), path


@pytest.mark.parametrize(
    "settings",
    [{"beta_1": 0.9}, {"beta_1": 0.5, "weight_decay": 0.1}, {"amsgrad": True}],
)
def test_adam_is_keras_adam_bit_for_bit(settings):
    got = trained(lambda: Adam(1e-2, **settings))
    expected = trained(lambda: keras.optimizers.Adam(1e-2, **settings))
    assert_same(got, expected)
    assert not np.array_equal(got[0][1], small_network(3).weights[0].numpy())  # it trained


def test_adam_under_a_strategy_is_keras_adam():
    got = trained(lambda: make_optimizer("adam", 1e-2), strategy=tf.distribute.OneDeviceStrategy("/cpu:0"))
    assert_same(got, trained(lambda: keras.optimizers.Adam(1e-2)))


def test_adam_traces_a_smaller_step():
    """The step's scalars once per step, not once per variable: a smaller graph to trace and optimise."""

    def graph_size(optimizer) -> int:
        network = small_network(0)
        optimizer.build(network.trainable_variables)
        gradients = [tf.ones_like(v) for v in network.trainable_variables]
        step = tf.function(lambda: optimizer.apply_gradients(zip(gradients, network.trainable_variables)))
        return len(step.get_concrete_function().graph.get_operations())

    ours, keras_own = graph_size(make_optimizer("adam", 1e-3)), graph_size(keras.optimizers.Adam(1e-3))
    assert ours < 0.8 * keras_own, (ours, keras_own)
