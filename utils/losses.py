"""Segmentation losses on uint8 class-id targets, 255 = ignore, composed from per-pixel pieces.

Shapes: y_true (B, H, W) class ids; y_pred (B, H, W, C) softmax probabilities. Every loss is a mean
over the pixels that are not ignored, so ignored pixels change neither the value nor the gradient.

build_loss also serves the three variants train.py can switch on:
- a sigmoid head (y_pred (B, H, W, 1), p = P(class 1)): its binary cross-entropy is the cross-entropy of the two
  probabilities (1 - p, p), so every piece below takes them as a 2-class softmax's (binary_probabilities);
- a multilabel head (one sigmoid a class; y_true packed, utils/multilabel.py): a loss of its own, multilabel();
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


def region_counts(targets, y_pred):
    """Soft TP, FP and FN per class over the batch, (C,) each, of 0/1 targets and probabilities (B, H, W, C), both
    0 at ignored pixels (which then count in none of them)."""
    true_positive = ops.sum(targets * y_pred, axis=(0, 1, 2))
    predicted, labelled = ops.sum(y_pred, axis=(0, 1, 2)), ops.sum(targets, axis=(0, 1, 2))
    return true_positive, predicted - true_positive, labelled - true_positive


def soft_counts(y_true, y_pred):
    """Soft TP, FP and FN per class over the batch, (C,) each; ignored pixels count in none of them."""
    one_hot = one_hot_targets(y_true, y_pred.shape[-1])
    return region_counts(one_hot, ops.cast(y_pred, "float32") * ops.sum(one_hot, axis=-1, keepdims=True))


def class_mean(score, classes=None):
    """The mean of a per-class (C,) value over `classes` (None: all)."""
    return ops.mean(score if classes is None else ops.take(score, list(classes)))


def tversky_score(counts, alpha: float, beta: float, smooth: float):
    """(TP + s) / (TP + alpha FP + beta FN + s) per class, of soft counts (TP, FP, FN)."""
    true_positive, false_positive, false_negative = counts
    return (true_positive + smooth) / (true_positive + alpha * false_positive + beta * false_negative + smooth)


def dice_score(counts, beta: float, smooth: float):
    """F_beta = ((1+b^2) TP + s) / ((1+b^2) TP + b^2 FN + FP + s) per class, of soft counts (TP, FP, FN)."""
    true_positive, false_positive, false_negative = counts
    numerator = (1 + beta**2) * true_positive + smooth
    return numerator / (numerator + beta**2 * false_negative + false_positive)


def tversky(alpha: float = 0.3, beta: float = 0.7, smooth: float = 1e-5, classes=None):
    """Tversky = 1 - mean_c (TP + s) / (TP + alpha FP + beta FN + s), soft, over the batch (Salehi et al. 2017):
    beta > alpha weighs a missed pixel above a false alarm, for thin and rare structures. alpha = beta = 0.5 is Dice."""

    def loss(y_true, y_pred, border=None):
        return 1.0 - class_mean(tversky_score(soft_counts(y_true, y_pred), alpha, beta, smooth), classes)

    return loss


def check_tversky(alpha: float, beta: float) -> None:
    """ValueError unless Tversky's weights are at least 0 and not both 0."""
    if min(alpha, beta) < 0 or alpha + beta <= 0:
        raise ValueError(
            f"tversky_alpha={alpha}, tversky_beta={beta}: expected weights of 0 or more, not both 0 (e.g. 0.3 and "
            "0.7: a missed pixel weighs 0.7, a false alarm 0.3)."
        )


def dice(beta: float = 1.0, smooth: float = 1e-5, classes=None):
    """Dice = 1 - mean_c F_beta(c) (dice_score), soft, over the batch, over `classes` (None: all); per-pixel weights
    (the weight map) do not apply to it."""

    def loss(y_true, y_pred, border=None):
        return 1.0 - class_mean(dice_score(soft_counts(y_true, y_pred), beta, smooth), classes)

    return loss


def lovasz(classes=None):
    """Lovasz-softmax (Berman et al. 2018): per class c, the errors e_i = |[y_i = c] - p_i(c)| sorted in decreasing
    order, dotted with the steps of the Jaccard loss's Lovasz extension, g_k = J(k) - J(k - 1) where
    J(k) = 1 - |G \\ top_k| / |G u top_k| (G the class's pixels, top_k the k largest errors' pixels); the mean over the
    classes present in the batch. On a hard prediction it is 1 - IoU_c: a surrogate of the mIoU itself, over the
    batch. Ignored pixels get e = 0 and sort last, where they change nothing."""

    def loss(y_true, y_pred, border=None):
        one_hot = one_hot_targets(y_true, y_pred.shape[-1])
        num_classes = one_hot.shape[-1]
        valid = ops.sum(one_hot, axis=-1, keepdims=True)
        truth = ops.transpose(ops.reshape(one_hot, (-1, num_classes)))  # (C, N)
        errors = ops.transpose(ops.reshape(ops.abs(one_hot - ops.cast(y_pred, "float32")) * valid, (-1, num_classes)))
        order = ops.flip(ops.argsort(errors, axis=-1), axis=-1)  # decreasing errors
        errors = ops.take_along_axis(errors, order, axis=-1)
        truth = ops.take_along_axis(truth, order, axis=-1)
        total = ops.sum(truth, axis=-1, keepdims=True)  # |G| per class
        intersection = total - ops.cumsum(truth, axis=-1)
        union = total + ops.cumsum(1.0 - truth, axis=-1)
        jaccard = 1.0 - intersection / ops.maximum(union, EPSILON)
        steps = ops.concatenate([jaccard[:, :1], jaccard[:, 1:] - jaccard[:, :-1]], axis=-1)
        per_class = ops.sum(errors * ops.stop_gradient(steps), axis=-1)  # (C,)
        present = ops.cast(total[:, 0] > 0, "float32")
        if classes is not None:
            present = present * ops.convert_to_tensor([float(c in classes) for c in range(num_classes)])
        return ops.sum(per_class * present) / ops.maximum(ops.sum(present), 1.0)

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


def multilabel(dice_loss: bool, tversky_loss: tuple[float, float] | None, smooth: float = 1e-5):
    """A multilabel head's loss (nnU-Net's regions'): binary cross-entropy over every class and valid pixel [+ the mean
    over the classes of each one's soft Dice] [+ Tversky]; y_pred (B, H, W, C), one sigmoid a class, y_true (B, H, W)
    packed, bit c = class c (utils/multilabel.py)."""

    def loss(y_true, y_pred):
        y_pred = ops.cast(y_pred, "float32")
        labels, valid = ops.cast(y_true, "int32")[..., None], ops.cast(ops.not_equal(y_true, IGNORE_LABEL), "float32")
        powers = ops.convert_to_tensor([2**c for c in range(y_pred.shape[-1])], "int32")
        bits = ops.cast(ops.mod(ops.floor_divide(labels, powers), 2), "float32") * valid[..., None]  # (B, H, W, C)
        valid = valid[..., None]
        clipped = ops.clip(y_pred, EPSILON, 1.0 - EPSILON)
        entropy = -(bits * ops.log(clipped) + (1.0 - bits) * ops.log(1.0 - clipped)) * valid
        total = ops.sum(entropy) / ops.maximum(ops.sum(valid) * y_pred.shape[-1], 1.0)
        counts = region_counts(bits, y_pred * valid)
        if dice_loss:
            total += 1.0 - ops.mean(dice_score(counts, 1.0, smooth))
        if tversky_loss:
            total += 1.0 - ops.mean(tversky_score(counts, *tversky_loss, smooth))
        return total

    return loss


def build_loss(
    cls_weights,
    dice_loss: bool = False,
    focal_loss: bool = False,
    head: str = "softmax",
    weight_map: bool = False,
    tversky_loss: tuple[float, float] | None = None,
    lovasz_loss: bool = False,
):
    """The training loss train.py's flags select: (focal or CE) [+ Dice] [+ Tversky (alpha, beta)] [+ Lovasz], for the
    softmax head or the sigmoid head (binary cross-entropy; its region losses are the foreground's, class 1, as the
    binary write-ups compute them), with targets (B, H, W) class ids, or (B, H, W, 2) ids and the weight map's border
    term when weight_map. The multilabel head's is multilabel()'s."""
    if head == "multilabel":
        return multilabel(dice_loss, tversky_loss)
    classes = [1] if head == "sigmoid" else None
    parts = [focal(cls_weights) if focal_loss else cross_entropy(cls_weights)]
    parts += [dice(classes=classes)] if dice_loss else []
    parts += [tversky(*tversky_loss, classes=classes)] if tversky_loss else []
    parts += [lovasz(classes=classes)] if lovasz_loss else []
    combined = summed(*parts) if len(parts) > 1 else parts[0]

    def loss(y_true, y_pred):
        border = None
        if weight_map:
            y_true, border = y_true[..., 0], y_true[..., 1]  # (B, H, W) ids as floats, (B, H, W) border term
        return combined(y_true, binary_probabilities(y_pred) if head == "sigmoid" else y_pred, border)

    return loss
