"""The network's output: a softmax over the classes, or one sigmoid for two classes (the binary write-ups' head)."""

from keras import layers

HEADS = ("softmax", "sigmoid")


def head_channels(num_classes: int, head: str) -> int:
    """Output channels: one per class (softmax), or one, P(class 1), for the sigmoid head of 2-class data."""
    return 1 if head == "sigmoid" else num_classes


def check_head(head: str, num_classes: int) -> None:
    """Raises ValueError unless the head exists and suits num_classes."""
    if head not in HEADS:
        raise ValueError(f"head={head!r}: expected one of {', '.join(HEADS)}.")
    if head == "sigmoid" and num_classes != 2:
        raise ValueError(
            f"head=sigmoid is one output for 2-class data (background and one class), but num_classes={num_classes}. "
            "Use head softmax."
        )


def apply_probabilities(x, head: str = "softmax"):
    """The head's activation, in float32 so that mixed-precision training keeps a stable loss."""
    return layers.Activation(head, dtype="float32", name="probabilities")(x)
