"""A run's plan: the settings the rules (utils/planning/rules.py) give for a train split on a machine, each with its
reason; the settings a user gives win, and are shown as given. Saved as plan.json in the run folder."""

import json
import os
from dataclasses import dataclass, field

from nets.models import Network, model_margin
from utils.dataset.fingerprint import Fingerprint
from utils.files.atomic import write_json
from utils.planning.machine import Machine
from utils.planning.rules import (
    Planned,
    plan_batch,
    plan_class_weights,
    plan_epochs,
    plan_jitter,
    plan_loss,
    plan_oversampling,
    plan_scale,
    plan_side,
    plan_start,
)

PLAN_FILE = "plan.json"  # in save_dir: the plan a run was made with


@dataclass
class Plan:
    """Planned settings by train.py's names, in the order they are printed, and the settings the user gave: a given
    value wins over a planned one."""

    planned: dict = field(default_factory=dict)  # name -> Planned
    given: dict = field(default_factory=dict)  # name -> the value given, for every setting the user gave

    def settings(self) -> dict:
        """{name: value} of every planned setting, the given value where there is one."""
        return {name: self.given.get(name, planned.value) for name, planned in self.planned.items()}

    def add(self, planned: dict) -> None:
        self.planned.update(planned)

    def describe(self) -> str:
        """One line per setting: its value and reason, or `given`."""
        lines = []
        for name, planned in self.planned.items():
            if name in self.given:
                value, why = self.given[name], f"given (planned: {format_value(planned.value)})"
            else:
                value, why = planned.value, planned.reason
            lines.append(f"  {name:<19} {format_value(value):<11} {why}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "planned": {name: {"value": p.value, "reason": p.reason} for name, p in self.planned.items()},
            "given": self.given,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "Plan":
        planned = {name: Planned(entry["value"], entry["reason"]) for name, entry in data["planned"].items()}
        return cls(planned, dict(data.get("given", {})))


def save_plan(plan: Plan, save_dir: str) -> None:
    """plan.json in save_dir, written atomically."""
    write_json(os.path.join(save_dir, PLAN_FILE), plan.to_dict())


def load_plan(save_dir: str) -> Plan:
    """The Plan in save_dir's plan.json."""
    with open(os.path.join(save_dir, PLAN_FILE)) as f:
        return Plan.from_dict(json.load(f))


def format_value(value) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(format_value(v) for v in value) or "(none)"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def make_plan(
    fingerprint: Fingerprint, machine: Machine, network: Network, pretrained: bool, class_names, given: dict
) -> Plan:
    """The plan for a train split (its fingerprint) on a machine, for `network` (its model and classes) whose
    encoder starts pretrained or not; `given`: {name: value} of the settings the user set, which the plan keeps
    (a given input_shape is planned around: the scale and batch follow it)."""
    side = plan_side(fingerprint, machine, network.model)
    if network.model == "unet_classic":
        side = Planned(max(network.input_shape), "its tiles are 188 + 16k: as set")
    planned = {"input_shape": Planned([side.value, side.value], side.reason)}
    side = Planned(max(given["input_shape"]), "given") if "input_shape" in given else side
    if model_margin(network.model):
        planned["scale_mode"] = Planned("slide", f"{network.model} predicts by overlap-tile at the image's scale")
        planned["image_scale"] = Planned(1.0, "the image's own resolution")
    else:
        planned.update(plan_scale(fingerprint, side.value, class_names))
    batch = plan_batch(machine, side.value, fingerprint.images)
    planned.update({"freeze_batch_size": batch, "unfreeze_batch_size": batch})
    planned["unfreeze_epoch"] = plan_epochs(fingerprint.images, given.get("unfreeze_batch_size", batch.value))
    planned.update(plan_start(pretrained))
    if network.head != "multilabel":  # no class weights, oversampling or Lovasz: a pixel may hold several classes
        planned["cls_weights"] = plan_class_weights(fingerprint, network.num_classes, class_names)
        planned.update(plan_oversampling(fingerprint, class_names))
        planned["lovasz_loss"] = plan_loss()
    plan = Plan(planned, dict(given))
    plan.add({"jitter": plan_jitter(plan.settings()["unfreeze_epoch"])})
    return plan
