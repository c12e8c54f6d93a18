"""Label assignment by Hungarian matching, per image (the poster's assignment cost).

Cost of giving proposal i to target c, built for the whole batch at once as (B, N, T) tensors:
- mask target:  J = w_cls·(−p_i(c)) + w_focal·Focal(m_i, Y_c) + w_dice·Dice(m_i, Y_c)
- novel target: J = w_cls·(−p_i(c)) + w_in·J_in + w_ex·J_ex + w_con·J_con with
  J_in  = mean over c's positive clicks of how far m_i(x) is from 1 (the mask must include them),
  J_ex  = mean over c's negative clicks of how far m_i(x) is from 0 (the mask must exclude them),
  J_con = Dice(m_i, S_c·R), S_c the keypoint class mask (detached), R the base ignore region.
"How far" is ``point_cost``: ``log`` is the poster's cost as written (−log m, −log(1 − m)); ``probability``
(our default) is 1 − m and m. Mask logits saturate early (|logit| up to ~33 at a click after 400 steps on
toy-stuff), so −log costs spread over ~12 between proposals while −p_i(c) spreads over ~0.1: the class
term then never decides which proposal a novel class gets, the class goes to a different proposal in
every image and the class head never learns it (novel mIoU 3.7 %). Probability costs are bounded like
−p_i(c); with weights 0.1 the class term and the clicks both count (reports/archive/diagnosis_ours.md).
Each image's (N, T_b) block goes to ``scipy.optimize.linear_sum_assignment``. With more targets
than queries, the targets that would cost most stay unmatched and contribute no mask loss.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from pwslib.config import CHOICES, TrainConfig
from pwslib.method.targets import Targets


POINT_COSTS = CHOICES["point_cost"]


class CostInputs:
    """What the cost terms read, prepared once per matching. Mask ``logits`` and ``probability`` (B, N, L),
    ``class_probability`` (B, N, C + 1), ``point_logits`` (B, N, P) at the clicks, the ``targets``, the keypoint
    class masks S_c (B, T, L) or None, and the form of the click costs (``point_cost``)."""

    def __init__(self, class_logits, mask_logits, point_logits, targets: Targets, keypoint_class_masks, point_cost: str):
        self.logits = mask_logits.flatten(2).float()
        self.probability = self.logits.sigmoid()
        self.class_probability = class_logits.float().softmax(-1)
        self.point_logits = point_logits.float()
        self.targets, self.keypoint_class_masks, self.point_cost = targets, keypoint_class_masks, point_cost

    @functools.cached_property
    def click_costs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """J_in and J_ex, unweighted (``point_costs``), computed once for both terms."""
        return point_costs(self.point_logits, self.targets, self.point_cost)


def classification_term(inputs: CostInputs) -> torch.Tensor:
    index = inputs.targets.classes.clamp(min=0)[:, None, :].expand(-1, inputs.class_probability.shape[1], -1)
    return -torch.gather(inputs.class_probability, 2, index)


def consistency_term(inputs: CostInputs) -> torch.Tensor | None:
    """Dice of each proposal against S_c inside the ignore region R; None without keypoint class masks."""
    if inputs.keypoint_class_masks is None:
        return None
    guide = inputs.keypoint_class_masks.float() * inputs.targets.ignore_region[:, None, :]
    return dice_cost(inputs.probability, guide)


@dataclass(frozen=True)
class CostTerm:
    """One term of the assignment cost: its name (its key in ``cost_terms``' result), the config field that
    weighs it (0 switches it off), the targets it prices (``all``; ``mask``: a target with a full mask;
    ``clicks``: a novel class known by its points), its symbol, its equation, and the function that computes it
    unweighted from ``CostInputs`` ((B, N, T), or None where it does not apply: zero)."""

    name: str
    weight_field: str
    prices: str
    symbol: str
    equation: str
    compute: Callable[[CostInputs], torch.Tensor | None]


# The one table of cost terms: ``CostWeights`` holds one weight per term, ``cost_terms`` computes each by its
# ``compute``, ``matching_cost`` sums them by ``prices``, the explorer shows the click terms;
# ``tests/method/test_matching.py`` fails when a ``*_cost`` weight field is missing here and adds a term to see it
# weighed, summed and shown.
COST_TERMS: list[CostTerm] = [
    CostTerm("classification", "classification_cost", "all", "class", "−p_i(c)", classification_term),
    CostTerm("focal", "focal_cost", "mask", "Focal", "Focal(m_i, Y_c)", lambda x: focal_cost(x.logits, x.targets.masks)),
    CostTerm("dice", "dice_cost", "mask", "Dice", "Dice(m_i, Y_c)", lambda x: dice_cost(x.probability, x.targets.masks)),
    CostTerm(
        "inclusion", "inclusion_cost", "clicks", "J_in", "how far m_i(x) is from 1 at c's positive clicks",
        lambda x: x.click_costs[0],
    ),
    CostTerm(
        "exclusion", "exclusion_cost", "clicks", "J_ex", "how far m_i(x) is from 0 at c's negative clicks",
        lambda x: x.click_costs[1],
    ),
    CostTerm("consistency", "consistency_cost", "clicks", "J_con", "Dice(m_i, S_c·R), S_c detached", consistency_term),
]


class CostWeights:
    """The weight of each term of ``COST_TERMS`` by its name (``weights["inclusion"]``; a term not given takes
    ``TrainConfig``'s default of its weight field), and the form of the click costs ``point_cost``."""

    def __init__(self, point_cost: str = TrainConfig.point_cost, **weights: float):
        names = [term.name for term in COST_TERMS]
        unknown = sorted(set(weights) - set(names))
        if unknown:
            raise ValueError(f"unknown cost terms {unknown}; the terms are {names}")
        if point_cost not in POINT_COSTS:
            raise ValueError(f"unknown point_cost {point_cost!r}; choose one of {POINT_COSTS}")
        self.point_cost = point_cost
        self.weights = {term.name: float(weights.get(term.name, getattr(TrainConfig, term.weight_field, 0.0))) for term in COST_TERMS}

    def __getitem__(self, name: str) -> float:
        return self.weights[name]

    def __eq__(self, other) -> bool:
        return isinstance(other, CostWeights) and (self.weights, self.point_cost) == (other.weights, other.point_cost)

    def __repr__(self) -> str:
        return f"CostWeights(point_cost={self.point_cost!r}, {', '.join(f'{k}={v}' for k, v in self.weights.items())})"

    @classmethod
    def of_config(cls, config) -> "CostWeights":
        """The cost weights of a run's ``TrainConfig``: each term's ``weight_field``."""
        return cls(point_cost=config.point_cost, **{term.name: getattr(config, term.weight_field) for term in COST_TERMS})


def sample_at_points(maps: torch.Tensor, points_yx: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Bilinear values of maps (B, K, h, w) at image-pixel points (B, P, 2) -> (B, K, P)."""
    height, width = image_size
    grid = torch.stack([(points_yx[..., 1] + 0.5) / width * 2 - 1, (points_yx[..., 0] + 0.5) / height * 2 - 1], -1)
    return F.grid_sample(maps, grid[:, None].to(maps.dtype), mode="bilinear", align_corners=False)[:, :, 0]


def focal_cost(logits: torch.Tensor, masks: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Mean sigmoid focal loss of every proposal against every mask: (B, N, L), (B, T, L) -> (B, N, T)."""
    probability = logits.sigmoid()
    positive = alpha * (1 - probability) ** gamma * F.softplus(-logits)
    negative = (1 - alpha) * probability**gamma * F.softplus(logits)
    return (positive @ masks.transpose(1, 2) + negative @ (1 - masks).transpose(1, 2)) / logits.shape[-1]


def dice_cost(probability: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """1 − soft Dice of every proposal against every mask: (B, N, L), (B, T, L) -> (B, N, T)."""
    intersection = probability @ masks.transpose(1, 2)
    total = probability.sum(-1)[..., None] + masks.sum(-1)[:, None, :]
    return 1 - (2 * intersection + 1) / (total + 1)


def point_costs(
    point_logits: torch.Tensor, targets: Targets, form: str = "probability"
) -> tuple[torch.Tensor, torch.Tensor]:
    """J_in and J_ex (B, N, T) from mask logits at the clicks (B, N, P); ``form`` is a POINT_COSTS entry."""
    positive = targets.positive / targets.positive.sum(-1, keepdim=True).clamp(min=1)
    negative = targets.negative / targets.negative.sum(-1, keepdim=True).clamp(min=1)
    if form == "log":
        miss_positive, hit_negative = F.softplus(-point_logits), F.softplus(point_logits)  # −log m, −log(1 − m)
    else:
        miss_positive, hit_negative = 1 - point_logits.sigmoid(), point_logits.sigmoid()
    return miss_positive @ positive.transpose(1, 2), hit_negative @ negative.transpose(1, 2)


@torch.no_grad()
def cost_terms(
    class_logits: torch.Tensor,
    mask_logits: torch.Tensor,
    point_logits: torch.Tensor,
    targets: Targets,
    keypoint_class_masks: torch.Tensor | None,
    weights: CostWeights,
    point_terms: bool = True,
) -> dict[str, torch.Tensor]:
    """The weighted terms of the assignment cost, each (B, N, T), by their names in ``COST_TERMS``: each term's
    ``compute`` times its weight; a term weighted 0, one that does not apply (None), and the click terms under
    ``point_terms=False`` are zero."""
    inputs = CostInputs(class_logits, mask_logits, point_logits, targets, keypoint_class_masks, weights.point_cost)
    zero = torch.zeros((*inputs.probability.shape[:2], targets.classes.shape[1]), device=inputs.probability.device)
    terms = {}
    for term in COST_TERMS:
        value = term.compute(inputs) if weights[term.name] and (point_terms or term.prices != "clicks") else None
        terms[term.name] = zero if value is None else weights[term.name] * value
    return terms


def matching_cost(terms: dict[str, torch.Tensor], is_novel: torch.Tensor) -> torch.Tensor:
    """The assignment cost (B, N, T) from ``cost_terms``: the terms that price every target, plus, per target,
    those that price a full mask (Focal + Dice) or those that price clicks (J_in + J_ex + J_con; ``is_novel``
    (B, T) says which)."""

    def priced(kind: str) -> torch.Tensor:
        return sum(terms[term.name] for term in COST_TERMS if term.prices == kind)

    return priced("all") + torch.where(is_novel[:, None, :], priced("clicks"), priced("mask"))


def hungarian_match(cost: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Optimal one-to-one assignment per image.

    cost (B, N, T), valid (B, T) -> (batch index, query index, target index), each (M,) int64.
    """
    cost = cost.detach().cpu().numpy()
    valid = valid.cpu().numpy()
    batch_index, query_index, target_index = [], [], []
    for b in range(len(cost)):
        columns = np.flatnonzero(valid[b])
        if len(columns) == 0:
            continue
        block = cost[b][:, columns]
        if not np.isfinite(block).all():
            raise FloatingPointError(f"the matching cost of image {b} in the batch is not finite")
        rows, cols = linear_sum_assignment(block)
        batch_index.append(np.full(len(rows), b))
        query_index.append(rows)
        target_index.append(columns[cols])
    if not batch_index:
        empty = torch.zeros(0, dtype=torch.int64)
        return empty, empty, empty
    return tuple(torch.from_numpy(np.concatenate(part)).long() for part in (batch_index, query_index, target_index))


@dataclass(frozen=True)
class Matcher:
    """The label assignment of a step: the weighted cost terms, their sum per target kind, then Hungarian
    matching per image. ``point_terms`` off (``novel_matching="class_only"``) leaves the click terms out."""

    weights: CostWeights = dataclasses.field(default_factory=CostWeights)
    point_terms: bool = True

    @classmethod
    def of_config(cls, config: TrainConfig) -> "Matcher":
        return cls(CostWeights.of_config(config), point_terms=config.novel_matching == "points")

    def __call__(
        self,
        class_logits: torch.Tensor,
        mask_logits: torch.Tensor,
        point_logits: torch.Tensor,
        targets: Targets,
        keypoint_class_masks: torch.Tensor | None,
        valid: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(batch index, query index, target index) of the matched pairs, each (M,), among the ``valid`` (B, T)
        targets; the arguments as ``cost_terms`` takes them."""
        terms = cost_terms(
            class_logits, mask_logits, point_logits, targets, keypoint_class_masks, self.weights, self.point_terms
        )
        return hungarian_match(matching_cost(terms, targets.is_novel), valid)
