"""The network's output: a softmax over the classes, one sigmoid for two classes (the binary write-ups' head), or
one sigmoid per class for classes that overlap (multilabel: utils/multilabel.py)."""

from keras import layers

from utils.multilabel import check_label_count, label_values

HEADS = ("softmax", "sigmoid", "multilabel")


def head_channels(num_classes: int, head: str) -> int:
    """Output channels: one per class (softmax, multilabel), or one, P(class 1), for the sigmoid head of 2-class
    data."""
    return 1 if head == "sigmoid" else num_classes


def label_value_count(num_classes: int, head: str) -> int:
    """How many values a label takes: its classes, or for a multilabel head every set of them (packed)."""
    return label_values(num_classes) if head == "multilabel" else num_classes


def multilabel_count(num_classes: int, head: str) -> int:
    """The overlapping classes whose figures the metrics unpack (utils/metrics.class_iou): 0 but for multilabel."""
    return num_classes if head == "multilabel" else 0


def check_head(head: str, num_classes: int) -> None:
    """Raises ValueError unless the head exists and suits num_classes."""
    if head not in HEADS:
        raise ValueError(f"head={head!r}: expected one of {', '.join(HEADS)}.")
    if head == "sigmoid" and num_classes != 2:
        raise ValueError(
            f"head=sigmoid is one output for 2-class data (background and one class), but num_classes={num_classes}. "
            "Use head softmax, or head multilabel for classes that overlap."
        )
    if head == "multilabel":
        check_label_count(num_classes, f"head=multilabel, num_classes={num_classes}")


def apply_probabilities(x, head: str = "softmax"):
    """The head's activation, in float32 so that mixed-precision training keeps a stable loss."""
    activation = "sigmoid" if head == "multilabel" else head
    return layers.Activation(activation, dtype="float32", name="probabilities")(x)
