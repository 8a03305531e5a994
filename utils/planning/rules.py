"""The planner's rules: each takes what it uses (the train split's Fingerprint, the Machine, the network) and gives
a setting's value with the reason for it, in words a user reads before training starts.

The rules come from what can be measured, not from constants fitted to one dataset:
- fit shrinks an image to the network's input; the thinnest structures that hold a notable share of a class's
  pixels must stay wide enough for the output to draw them (MIN_WIDTH), else slide keeps them at SLIDE_WIDTH;
- the input follows the images' median size, up to what the device trains at a useful speed (MAX_SIDE);
- an encoder trained from random weights learns at a higher rate, and gains nothing from a frozen phase;
- a class much rarer than the others gets a larger loss weight (median-frequency balancing, softened);
- a run is as long as a number of steps (PLANNED_STEPS), and its augmentation as strong as its length wants: the
  scale, aspect and colour jitter pay off against memorising the images after many passes, and in a short run only
  slow the learning down (docs/planning.md, "The augmentation against the run's length").
"""

import math
from dataclasses import dataclass

from utils.dataset.fingerprint import Fingerprint
from utils.planning.machine import Machine

MIN_WIDTH = 3.0  # px: a structure thinner than this after resizing is lost to the output (a 3x3 kernel's reach)
SLIDE_WIDTH = 6.0  # px: in slide, image_scale brings the thinnest structures to about this width
MIN_SHARE = 0.001  # a class with fewer of the pixels (specks, labelling noise) sets no scale
# The longest input side planned per device without a budget: a VGG16-UNet step at 256² and batch 4 takes about
# a second on a 2-core CPU (docs/performance.md); a GPU trains 512² as fast.
MAX_SIDE = {"cpu": 256, "gpu": 512}
CPU_BATCH_PIXELS = 4 * 256 * 256  # a CPU step's pixels: batch 4 at 256², 16 at 128²
MAX_CPU_BATCH = 4  # a CPU gains little per image from a larger batch, and the steps grow fewer
RARE_SHARE = 0.02  # a class with fewer of the pixels than this is rare (Dice already balances the others)
MAX_CLASS_WEIGHT = 5.0
# A class in fewer of the train images than this is rare in images: a share of each batch is drawn from those that
# hold it (OVERSAMPLE, nnU-Net's third). On the demo with rare defects (in 17 % of the images) it raised the
# defects' IoU by 12 points and the mIoU by 2.4 over three seeds (docs/recipe.md); every class of membrane and Dubai
# is in 79 % of the images or more.
RARE_IMAGE_SHARE = 0.25
OVERSAMPLE = 0.33
# Steps a run is planned for without a budget: the demo's VGG16-UNet at batch 4, its samples plain, levels off
# after about this many (docs/planning.md).
PLANNED_STEPS = 720
MIN_PLANNED_EPOCHS = 8
# The jitter's share against the run's length in epochs: none up to PLAIN_EPOCHS, every sample from JITTERED_EPOCHS
# (the VOC platforms' recipe, and this platform's 24-epoch default before the planner), linear between.
PLAIN_EPOCHS, JITTERED_EPOCHS = 10, 24
# At batch 16, for a pretrained encoder: 4e-4 at batch 4. On the demo it learns in 8 epochs what train.py's default
# (4e-4 at batch 16, held at Adam's floor of 1e-4 at batch 4) learns in 24 (docs/planning.md).
PRETRAINED_LR = 1.6e-3
SCRATCH_LR = 8e-3  # at batch 16: from random weights (MobileNetV2-UNet on membrane: 40 % at 1e-4, 56 % at 1e-3)


@dataclass(frozen=True)
class Planned:
    """A planned setting: its value and why."""

    value: object
    reason: str


def input_multiple(model: str) -> int:
    """The sides a network's input must be a multiple of (nets/models.py: check_model_settings)."""
    return 16 if model in ("unet_small", "deeplabv3plus") else 32


def thinnest(fingerprint: Fingerprint) -> tuple:
    """(width in px, class id) of the thinnest structures that hold 5 % of some class's pixels, over the classes
    with at least MIN_SHARE of the pixels; (inf, None) when there are none."""
    widths = [
        (facts.thickness_by_pixels.p5, class_id)
        for class_id, facts in fingerprint.classes.items()
        if facts.pixel_share >= MIN_SHARE and facts.objects
    ]
    return min(widths, default=(math.inf, None))


def plan_side(fingerprint: Fingerprint, machine: Machine, model: str) -> Planned:
    """The input's side: the median image's longer side, rounded up to the network's multiple, at most MAX_SIDE."""
    multiple, cap = input_multiple(model), MAX_SIDE[machine.device]
    longer = max(fingerprint.height.median, fingerprint.width.median)
    side = min(max(multiple * math.ceil(longer / multiple), 2 * multiple), cap)
    why = f"the median image is {fingerprint.height.median:.0f}x{fingerprint.width.median:.0f}"
    return Planned(side, why + (f"; {cap} is the most a {machine.device.upper()} trains fast" if side == cap else ""))


def plan_scale(fingerprint: Fingerprint, side: int, class_names=()) -> dict:
    """scale_mode and image_scale: fit unless fitting the median image into side x side makes the thinnest
    structures thinner than MIN_WIDTH; then slide, at the scale that keeps them SLIDE_WIDTH wide (at most 1)."""
    width, class_id = thinnest(fingerprint)
    longer = max(fingerprint.height.median, fingerprint.width.median)
    shrink = min(1.0, side / longer)
    name = class_names[class_id] if class_id is not None and class_id < len(class_names) else f"class {class_id}"
    if width * shrink >= MIN_WIDTH:
        why = "the images fit the input;" if shrink == 1 else f"fitted (x {shrink:.2f}),"
        thin = f" the thinnest structures ({name}, {width:.1f} px) stay {width * shrink:.1f} px wide"
        return {
            "scale_mode": Planned("fit", why + thin if width < math.inf else why),
            "image_scale": Planned(1.0, "fit"),
        }
    scale = min(1.0, math.ceil(20 * SLIDE_WIDTH / width) / 20)
    why = f"fitted (x {shrink:.2f}), {name}'s thinnest structures ({width:.1f} px) would be {width * shrink:.1f} px"
    return {
        "scale_mode": Planned("slide", why + f" (< {MIN_WIDTH:.0f})"),
        "image_scale": Planned(scale, f"keeps them {width * scale:.1f} px wide"),
    }


def plan_batch(machine: Machine, side: int, train_images: int) -> Planned:
    """The batch: on a CPU as many images as CPU_BATCH_PIXELS hold, at most MAX_CPU_BATCH; on a GPU as its memory
    allows (16 at 256² on 8 GiB). At most a quarter of the train images, so that an epoch has 4 steps."""
    pixels = side * side
    if machine.gpu:
        batch = max(2, min(32, int(16 * machine.memory_gib / 8 * 256 * 256 / pixels)))
        why = f"{machine.memory_gib:.0f} GiB of GPU memory at {side}²"
    else:
        batch = max(1, min(MAX_CPU_BATCH, CPU_BATCH_PIXELS // pixels))
        why = f"on a CPU, {batch} images of {side}² a step (at most {MAX_CPU_BATCH}: more gain little)"
    limited = max(1, min(batch, train_images // 4))
    return Planned(limited, why + (f"; {train_images} train images" if limited < batch else ""))


def plan_start(pretrained: bool) -> dict:
    """The learning rate and the frozen phase, from the encoder's start."""
    if pretrained:
        return {
            "init_lr": Planned(PRETRAINED_LR, "the encoder starts pretrained: fine-tuning rate"),
            "freeze_train": Planned(True, "a frozen pretrained encoder first lets the decoder catch up"),
        }
    return {
        "init_lr": Planned(SCRATCH_LR, "the encoder starts from random weights: a rate for training from scratch"),
        "freeze_train": Planned(False, "a random encoder has nothing to keep: no frozen phase"),
    }


def plan_class_weights(fingerprint: Fingerprint, num_classes: int, class_names=()) -> Planned:
    """Loss weights when a class is rare (< RARE_SHARE of the pixels): sqrt(median share / share), capped at
    MAX_CLASS_WEIGHT; none (all 1) otherwise."""
    shares = [fingerprint.classes[c].pixel_share if c in fingerprint.classes else 0.0 for c in range(num_classes)]
    seen = sorted(share for share in shares if share > 0)
    rarest = min(range(num_classes), key=lambda c: shares[c] if shares[c] > 0 else math.inf)
    name = class_names[rarest] if rarest < len(class_names) else f"class {rarest}"
    if not seen or seen[0] >= RARE_SHARE:
        return Planned([], f"no class is rare (the rarest, {name}, has {seen[0] if seen else 0:.1%} of the pixels)")
    median = seen[len(seen) // 2]
    weights = [round(min(MAX_CLASS_WEIGHT, max(1.0, math.sqrt(median / s))) if s else 1.0, 2) for s in shares]
    return Planned(
        weights, f"{name} has {seen[0]:.1%} of the pixels: sqrt(median share / share), at most {MAX_CLASS_WEIGHT:g}"
    )


def plan_oversampling(fingerprint: Fingerprint, class_names=()) -> dict:
    """oversample and oversample_classes: OVERSAMPLE of each batch from the images holding a class (not the
    background) that is in fewer than RARE_IMAGE_SHARE of the train images; none when no class is."""
    rare = sorted(c for c, facts in fingerprint.classes.items() if c and facts.image_share < RARE_IMAGE_SHARE)
    if not rare:
        return {"oversample": Planned(0.0, f"every class is in {RARE_IMAGE_SHARE:.0%} of the train images or more")}
    named = ", ".join(
        f"{class_names[c] if c < len(class_names) else f'class {c}'} ({fingerprint.classes[c].image_share:.0%})"
        for c in rare
    )
    reason = f"rare in the train images: {named}; a third of each batch holds one (nnU-Net's)"
    return {"oversample": Planned(OVERSAMPLE, reason), "oversample_classes": Planned(rare, "the rare ones above")}


def plan_loss() -> Planned:
    """lovasz_loss: the Lovasz-softmax loss, the IoU's own surrogate, added to cross-entropy and Dice for a head with
    one class a pixel (the multilabel head refuses it). Over seeds 11, 1 and 2 it raised the mean val mIoU in four
    cases of five and left the fifth as it was, at no measurable cost a step (docs/recipe.md, "Losses")."""
    return Planned(True, "the IoU's own surrogate, added to CE and Dice: up to +1.4 val mIoU (docs/recipe.md)")


def plan_epochs(train_images: int, batch_size: int) -> Planned:
    """The run's epochs without a budget: about PLANNED_STEPS steps, at least MIN_PLANNED_EPOCHS epochs."""
    steps = max(1, train_images // batch_size)
    epochs = max(MIN_PLANNED_EPOCHS, math.ceil(PLANNED_STEPS / steps))
    return Planned(epochs, f"about {PLANNED_STEPS} steps of {batch_size} ({steps} an epoch)")


def plan_jitter(epochs: int) -> Planned:
    """The share of samples jittered in scale, aspect and colour, from the run's length: 0 for PLAIN_EPOCHS epochs
    or fewer, 1 from JITTERED_EPOCHS, linear between."""
    share = min(1.0, max(0.0, (epochs - PLAIN_EPOCHS) / (JITTERED_EPOCHS - PLAIN_EPOCHS)))
    if share == 0:
        return Planned(0.0, f"{epochs} epochs: a short run learns faster from its images as they are")
    if share == 1:
        return Planned(1.0, f"{epochs} epochs: every sample jittered against memorising the images")
    return Planned(round(share, 2), f"{epochs} epochs: between {PLAIN_EPOCHS} (none) and {JITTERED_EPOCHS} (all)")
