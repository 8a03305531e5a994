"""Segmentation losses on uint8 class-id targets, 255 = ignore, composed from per-pixel pieces.

Shapes: y_true (B, H, W) class ids; y_pred (B, H, W, C) softmax probabilities. Every loss is a mean
over the pixels that are not ignored, so ignored pixels change neither the value nor the gradient.

build_loss also serves the two variants train.py can switch on:
- a sigmoid head (y_pred (B, H, W, 1), p = P(class 1)): its binary cross-entropy is the cross-entropy of the two
  probabilities (1 - p, p), so every piece below takes them as a 2-class softmax's (binary_probabilities);
- the UNet weight map (utils/weight_map.py): y_true is then float32 (B, H, W, 2), the class ids and the border
  term, which cross-entropy and focal add to each pixel's class weight.
"""

from keras import ops

from utils.files.images import IGNORE_LABEL

EPSILON = 1e-7


def one_hot_targets(y_true, num_classes: int):
    """(B, H, W) ids -> one-hot float32 (B, H, W, C), all-zero rows at ignored pixels."""
    y_true = ops.cast(y_true, "int32")
    valid = ops.cast(ops.not_equal(y_true, IGNORE_LABEL), "float32")
    safe_ids = ops.where(valid > 0, y_true, 0)
    return ops.one_hot(safe_ids, num_classes, dtype="float32") * valid[..., None]


def pixel_cross_entropy(one_hot, y_pred):
    """-log p(true class) per pixel, (B, H, W); 0 at ignored pixels."""
    y_pred = ops.clip(ops.cast(y_pred, "float32"), EPSILON, 1.0)
    return -ops.sum(one_hot * ops.log(y_pred), axis=-1)


def pixel_weights(one_hot, cls_weights):
    """cls_weights[true class] per pixel, (B, H, W); 0 at ignored pixels."""
    return ops.sum(one_hot * ops.convert_to_tensor(cls_weights, "float32"), axis=-1)


def mean_over_valid(values, one_hot):
    """Sum of per-pixel values over the number of pixels that are not ignored."""
    return ops.sum(values) / ops.maximum(ops.sum(one_hot), 1.0)


def weights_with_border(one_hot, cls_weights, border=None):
    """w[y_i] + border_i per pixel, (B, H, W): the weight map's w(x) = w_c(x) + w0 exp(...) when `border` (the
    weight map's term, (B, H, W)) is given; 0 at ignored pixels either way."""
    weights = pixel_weights(one_hot, cls_weights)
    if border is None:
        return weights
    return weights + ops.cast(border, "float32") * ops.sum(one_hot, axis=-1)


def cross_entropy(cls_weights):
    """CE = sum_i w_i * -log p_i(y_i) / N_valid, w_i = cls_weights[y_i] (+ the weight map's border term)."""

    def loss(y_true, y_pred, border=None):
        one_hot = one_hot_targets(y_true, y_pred.shape[-1])
        weighted = weights_with_border(one_hot, cls_weights, border) * pixel_cross_entropy(one_hot, y_pred)
        return mean_over_valid(weighted, one_hot)

    return loss


def focal(cls_weights, alpha: float = 0.5, gamma: float = 2.0):
    """Focal = sum_i alpha * w_i * (1 - p_i)^gamma * -log p_i / N_valid, p_i = p_i(y_i) (Lin et al. 2017), w_i as
    in cross_entropy."""

    def loss(y_true, y_pred, border=None):
        one_hot = one_hot_targets(y_true, y_pred.shape[-1])
        ce = pixel_cross_entropy(one_hot, y_pred)
        modulation = ops.power(1.0 - ops.exp(-ce), gamma)
        weights = weights_with_border(one_hot, cls_weights, border)
        return mean_over_valid(alpha * weights * modulation * ce, one_hot)

    return loss


def dice(beta: float = 1.0, smooth: float = 1e-5, classes=None):
    """Dice = 1 - mean_c F_beta(c), F = ((1+b^2) TP + s) / ((1+b^2) TP + b^2 FN + FP + s), soft, over the batch;
    the mean over `classes` (None: all). Per-pixel weights (the weight map) do not apply to it."""

    def loss(y_true, y_pred, border=None):
        one_hot = one_hot_targets(y_true, y_pred.shape[-1])
        # Ignored pixels are left out of the prediction's sums too, not counted as false positives.
        y_pred = ops.cast(y_pred, "float32") * ops.sum(one_hot, axis=-1, keepdims=True)
        true_positive = ops.sum(one_hot * y_pred, axis=(0, 1, 2))
        false_positive = ops.sum(y_pred, axis=(0, 1, 2)) - true_positive
        false_negative = ops.sum(one_hot, axis=(0, 1, 2)) - true_positive
        numerator = (1 + beta**2) * true_positive + smooth
        score = numerator / (numerator + beta**2 * false_negative + false_positive)  # (C,)
        return 1.0 - ops.mean(score if classes is None else ops.take(score, list(classes)))

    return loss


def summed(*losses):
    """A loss that is the sum of the given losses."""

    def loss(y_true, y_pred, border=None):
        return sum(part(y_true, y_pred, border) for part in losses)

    return loss


def binary_probabilities(y_pred):
    """A sigmoid head's p (B, H, W, 1) as the two class probabilities (1 - p, p), (B, H, W, 2). Keras hands a loss
    function p squeezed to (B, H, W) when the targets are (B, H, W): that is taken too."""
    y_pred = ops.cast(y_pred, "float32")
    if len(y_pred.shape) == 3:
        y_pred = y_pred[..., None]
    return ops.concatenate([1.0 - y_pred, y_pred], axis=-1)


def dice_loss_with_CE(cls_weights, beta: float = 1.0, smooth: float = 1e-5):  # name users know
    """Weighted cross-entropy + Dice."""
    return summed(cross_entropy(cls_weights), dice(beta, smooth))


def build_loss(
    cls_weights, dice_loss: bool = False, focal_loss: bool = False, head: str = "softmax", weight_map: bool = False
):
    """The training loss train.py's flags select: (focal or CE) [+ Dice], for the softmax head or the sigmoid head
    (binary cross-entropy; its Dice is the foreground's, class 1, as the binary write-ups compute it), with targets
    (B, H, W) class ids, or (B, H, W, 2) ids and the weight map's border term when weight_map."""
    base = focal(cls_weights) if focal_loss else cross_entropy(cls_weights)
    sigmoid = head == "sigmoid"
    combined = summed(base, dice(classes=[1] if sigmoid else None)) if dice_loss else base

    def loss(y_true, y_pred):
        border = None
        if weight_map:
            y_true, border = y_true[..., 0], y_true[..., 1]  # (B, H, W) ids as floats, (B, H, W) border term
        return combined(y_true, binary_probabilities(y_pred) if sigmoid else y_pred, border)

    return loss
