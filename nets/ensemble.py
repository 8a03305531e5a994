"""An ensemble of networks as one network: their outputs (softmax probabilities, or a sigmoid head's P(class 1))
averaged, as nnU-Net averages its folds' probabilities. Every prediction path (fit, slide, TTA, a threshold) then
takes it as it takes one network."""

import keras
from keras import layers


def build_ensemble(members: list) -> keras.Model:
    """One keras.Model whose output is the mean of the members' outputs.

    Args:
        members: keras.Model's of the same input (B, H, W, C) and output (B, H', W', K) shapes.

    Returns:
        The model (B, H, W, C) -> float32 (B, H', W', K); the members' layers, not copies.
    """
    shapes = {(tuple(m.input_shape[1:]), tuple(m.output_shape[1:])) for m in members}
    if len(shapes) != 1:
        raise ValueError(f"An ensemble's networks must take and give the same shapes; these differ: {sorted(shapes)}.")
    inputs = keras.Input(members[0].input_shape[1:], dtype=members[0].inputs[0].dtype, name="images")
    # Each member under a name of its own (one functional model cannot hold two layers of the same name).
    outputs = [keras.Model(m.inputs[0], m.outputs[0], name=f"member_{i}")(inputs) for i, m in enumerate(members)]
    cast = [layers.Activation("linear", dtype="float32", name=f"member_{i}_float32")(o) for i, o in enumerate(outputs)]
    return keras.Model(inputs, layers.Average(name="mean", dtype="float32")(cast), name="ensemble")
