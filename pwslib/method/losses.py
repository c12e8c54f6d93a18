"""Losses and the criterion: it builds the targets, asks its matcher for the assignment, then sums
Σ weight × term over the table of terms (``LOSS_TERMS``) whose weight is not 0.

- mask targets (matched): CE on classes (no-object weight 0.1) + focal + dice (MaskFormer);
- keypoint branch on base classes: S_c from keypoints sampled on the base masks, supervised by the mask
  (BCE + dice); the keypoint masks of novel classes get L_in / L_ex at their clicks;
- novel targets (matched): CE, L_in = BCE(m_i(x), 1) at positives, L_ex = BCE(m_i(x), 0) at negatives,
  L_con = BCE + dice between m_i and S_c.detach()·R (outside R a pixel is a known base class, so 0);
- ``image_weakshot``'s complementary loss: the union (max) of the matched novel masks is 1 on R and 0 on
  base-labelled pixels;
- L_ctl with the confident memory bank (memory_bank.py);
- (our choice) an auxiliary per-pixel CE on the pixel embeddings over the labels the method knows.
Every mean is taken over the *global* batch (counts are summed over DDP ranks), so 2 processes
compute the same gradient as 1 process with the same global batch. Like Mask2Former's ``SetCriterion`` (handed a
matcher, losses dispatched by name), a term is a function of the matched step, registered once in ``LOSS_TERMS``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from pwslib.config import TrainConfig
from pwslib.distributed import all_reduce_mean
from pwslib.method.matching import Matcher, sample_at_points
from pwslib.method.memory_bank import MemoryBank, object_confidence
from pwslib.model.keypoint_head import class_union
from pwslib.method.targets import Targets, build_targets


def global_count(count: torch.Tensor | float) -> torch.Tensor:
    """A normaliser shared by every rank: the global count divided by the world size (>= 1e-6)."""
    return all_reduce_mean(torch.as_tensor(count, dtype=torch.float32)).clamp(min=1e-6)


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0):
    """Elementwise focal loss (Lin et al., 2017) of logits against {0, 1} (or soft) targets."""
    probability = logits.sigmoid()
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = probability * targets + (1 - probability) * (1 - targets)
    return (alpha * targets + (1 - alpha) * (1 - targets)) * (1 - p_t) ** gamma * bce


def dice_loss(probability: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """1 − soft Dice per row: (M, L), (M, L) -> (M,)."""
    intersection = (probability * targets).sum(-1)
    return 1 - (2 * intersection + 1) / (probability.sum(-1) + targets.sum(-1) + 1)


def probability_bce(probability: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Elementwise BCE of probabilities (for unions of keypoint masks, which are not logits)."""
    probability = probability.clamp(1e-6, 1 - 1e-6)
    return -(targets * probability.log() + (1 - targets) * (1 - probability).log())


def point_loss(values: torch.Tensor, weights: torch.Tensor, positive: bool, logits: bool = True) -> tuple:
    """Summed BCE at clicks, each (target, click) pair weighted: values, weights (M, P) -> (sum, pairs with clicks)."""
    target = torch.full_like(values, 1.0 if positive else 0.0)
    if logits:
        elementwise = F.binary_cross_entropy_with_logits(values, target, reduction="none")
    else:
        elementwise = probability_bce(values, target)
    per_pair = (elementwise * weights).sum(-1) / weights.sum(-1).clamp(min=1)
    return per_pair.sum(), (weights.sum(-1) > 0).sum()


Pairs = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # (batch index, query index, target index), each (M,)


@dataclass
class KeypointMasks:
    """The keypoint branch's masks of one step: every keypoint's mask ``probability`` (B, P + K, L), novel clicks
    first; which base keypoints belong to which mask target, ``base_membership`` (B, T, K); and the novel class
    masks S_c = union of a class's click masks, ``novel`` (B, T, L), with gradient."""

    probability: torch.Tensor
    base_membership: torch.Tensor
    novel: torch.Tensor


@dataclass
class MatchedStep:
    """Everything a loss term reads: the model's ``outputs``, the ``targets``, the masks as (B, N, L) logits, the
    mask logits at the clicks (B, N, P), each query's class (B, N; ``num_classes`` = no object), the matched pairs
    of mask targets and of novel targets (``None`` when novel targets are not matched to proposals), the keypoint
    masks (``None`` without the keypoint branch), the memory bank and the class co-occurrence."""

    outputs: dict
    batch: dict
    targets: Targets
    flat_masks: torch.Tensor
    point_logits: torch.Tensor
    query_classes: torch.Tensor
    class_weights: torch.Tensor
    mask_pairs: Pairs
    novel_pairs: Pairs | None
    keypoints: KeypointMasks | None
    class_union: str
    bank: MemoryBank | None
    cooccurrence: torch.Tensor | None

    @functools.cached_property
    def matched_masks(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The (M, L) mask logits of the proposals matched to mask targets and those targets' (M, L) masks, gathered
        once for the focal and Dice terms."""
        batch_index, query_index, target_index = self.mask_pairs
        return self.flat_masks[batch_index, query_index], self.targets.masks[batch_index, target_index]


def classification_term(step: MatchedStep) -> torch.Tensor:
    """CE over every query: a matched query -> its target's class, the rest -> no object."""
    weights = step.class_weights.to(step.outputs["class_logits"].dtype)
    flat_logits = step.outputs["class_logits"].flatten(0, 1)
    ce = F.cross_entropy(flat_logits, step.query_classes.flatten(), weight=weights, reduction="sum")
    return ce / global_count(weights[step.query_classes].sum())


def pixel_classification_term(step: MatchedStep) -> torch.Tensor | None:
    if "pixel_logits" not in step.outputs:
        return None
    labels = step.targets.pixel_labels
    pixel_ce = F.cross_entropy(step.outputs["pixel_logits"].flatten(2), labels, ignore_index=255, reduction="sum")
    return pixel_ce / global_count((labels != 255).sum())


def focal_term(step: MatchedStep) -> torch.Tensor:
    logits, masks = step.matched_masks
    return sigmoid_focal_loss(logits, masks).mean(-1).sum() / global_count(len(logits))


def dice_term(step: MatchedStep) -> torch.Tensor:
    logits, masks = step.matched_masks
    return dice_loss(logits.sigmoid(), masks).sum() / global_count(len(logits))


def _click_term(step: MatchedStep, positive: bool) -> torch.Tensor | None:
    if step.novel_pairs is None:
        return None
    batch_index, query_index, target_index = step.novel_pairs
    clicks = (step.targets.positive if positive else step.targets.negative)[batch_index, target_index]
    loss, pairs_with_clicks = point_loss(step.point_logits[batch_index, query_index], clicks, positive)
    return loss / global_count(pairs_with_clicks)


def inclusion_term(step: MatchedStep) -> torch.Tensor | None:
    return _click_term(step, positive=True)


def exclusion_term(step: MatchedStep) -> torch.Tensor | None:
    return _click_term(step, positive=False)


def consistency_term(step: MatchedStep) -> torch.Tensor | None:
    if step.novel_pairs is None or step.keypoints is None:
        return None
    batch_index, query_index, target_index = step.novel_pairs
    logits = step.flat_masks[batch_index, query_index]
    guide = step.keypoints.novel.detach()[batch_index, target_index] * step.targets.ignore_region[batch_index]
    bce = F.binary_cross_entropy_with_logits(logits, guide, reduction="none").mean(-1)
    return (bce + dice_loss(logits.sigmoid(), guide)).sum() / global_count(len(batch_index))


def contrastive_term(step: MatchedStep) -> torch.Tensor | None:
    """L_ctl against the bank's prototypes; the bank then takes in this step's embeddings."""
    if step.novel_pairs is None or step.bank is None:
        return None
    batch_index, query_index, target_index = step.novel_pairs
    classes = step.targets.classes[batch_index, target_index]
    confidence = object_confidence(step.cooccurrence, classes, step.targets.known_labels[batch_index])
    embeddings = step.outputs["query_embeddings"][batch_index, query_index]
    loss = step.bank.contrastive_loss(embeddings, classes, confidence) / global_count(len(batch_index))
    step.bank.update(embeddings, classes, confidence)
    return loss


def keypoint_term(step: MatchedStep) -> torch.Tensor | None:
    """BCE + Dice of the base class unions against their masks, plus L_in / L_ex of the novel unions at clicks."""
    if step.keypoints is None:
        return None
    targets, keypoints = step.targets, step.keypoints
    num_clicks = step.batch["points"].shape[1]
    base_masks = class_union(keypoints.probability[:, num_clicks:], keypoints.base_membership, step.class_union)
    supervised = keypoints.base_membership.sum(-1) > 0  # (B, T)
    predicted, wanted = base_masks[supervised], targets.masks[supervised]
    count = global_count(len(predicted))
    loss = (probability_bce(predicted, wanted).mean(-1).sum() + dice_loss(predicted, wanted).sum()) / count
    height, width = step.outputs["keypoint_mask_logits"].shape[-2:]
    novel = keypoints.novel
    at_clicks = sample_at_points(
        novel.view(*novel.shape[:2], height, width), targets.points_yx, tuple(step.batch["image"].shape[-2:])
    )  # (B, T, P)
    inclusion, with_positive = point_loss(at_clicks.flatten(0, 1), targets.positive.flatten(0, 1), True, False)
    exclusion, with_negative = point_loss(at_clicks.flatten(0, 1), targets.negative.flatten(0, 1), False, False)
    return loss + inclusion / global_count(with_positive) + exclusion / global_count(with_negative)


def complementary_term(step: MatchedStep) -> torch.Tensor | None:
    """The union (max) of the matched novel masks is 1 on R and 0 on base-labelled pixels."""
    if step.novel_pairs is None:
        return None
    batch_index, query_index, _ = step.novel_pairs
    flat_masks = step.flat_masks
    matched = torch.zeros(flat_masks.shape[:2], dtype=torch.bool, device=flat_masks.device)
    matched[batch_index, query_index] = True
    zero = torch.zeros((), dtype=flat_masks.dtype)
    union = torch.where(matched[..., None], flat_masks.sigmoid(), zero).amax(1)
    has_novel = matched.any(1)
    loss = probability_bce(union[has_novel], step.targets.ignore_region[has_novel]).mean(-1).sum()
    return loss / global_count(has_novel.sum())


@dataclass(frozen=True)
class LossTerm:
    """One term of the training loss: its name (a column of ``log.csv``), the config field that weighs it
    (0 switches it off), what it applies to, its equation and the function that computes it from a
    ``MatchedStep`` (``None`` where the step has nothing for it: no bank, no keypoint branch, no novel pairs)."""

    name: str
    weight_field: str
    applies_to: str
    equation: str
    compute: Callable[[MatchedStep], torch.Tensor | None]


# The one table of loss terms: ``WeakShotCriterion`` sums weight x term over it, ``runs.log_fields`` logs each,
# ``tests/method/test_losses.py`` fails when a ``*_weight`` field is missing here or a term is not in the total.
LOSS_TERMS: tuple[LossTerm, ...] = (
    LossTerm(
        "classification", "classification_weight", "every query",
        "CE(p_i, c) over matched and unmatched queries", classification_term,
    ),
    LossTerm(
        "pixel_classification", "pixel_classification_weight", "pixels",
        "per-pixel CE on E over the known labels", pixel_classification_term,
    ),
    LossTerm(
        "focal", "focal_weight", "mask pairs",
        "Focal(m_i, Y_c) for mask targets", focal_term,
    ),
    LossTerm(
        "dice", "dice_weight", "mask pairs",
        "Dice(m_i, Y_c) for mask targets", dice_term,
    ),
    LossTerm(
        "inclusion", "inclusion_weight", "novel pairs",
        "L_in = BCE(m_i(x), 1) at the positive clicks", inclusion_term,
    ),
    LossTerm(
        "exclusion", "exclusion_weight", "novel pairs",
        "L_ex = BCE(m_i(x), 0) at the negative clicks", exclusion_term,
    ),
    LossTerm(
        "consistency", "consistency_weight", "novel pairs",
        "L_con = BCE + Dice(m_i, S_c.detach() inside R)", consistency_term,
    ),
    LossTerm(
        "contrastive", "contrastive_weight", "novel pairs",
        "L_ctl = InfoNCE(proposal embedding, class prototypes)", contrastive_term,
    ),
    LossTerm(
        "keypoint", "keypoint_weight", "keypoints",
        "BCE + Dice(S_c, Y_c) on base masks; L_in / L_ex of novel S_c", keypoint_term,
    ),
    LossTerm(
        "complementary", "complementary_weight", "novel pairs",
        "max over novel masks = 1 on R, 0 on base pixels", complementary_term,
    ),
)
# Weights that scale inside a term rather than weigh a term of their own.
INNER_WEIGHTS = ("no_object_weight",)


def weighted_terms(config: TrainConfig) -> tuple[tuple[LossTerm, float], ...]:
    """The terms of ``LOSS_TERMS`` that ``config`` switches on (weight not 0), each with its weight."""
    return tuple((term, getattr(config, term.weight_field)) for term in LOSS_TERMS if getattr(config, term.weight_field))


class WeakShotCriterion:
    """Builds the targets, matches proposals to them with ``matcher`` and returns Σ weight × term over ``terms``
    (default: the terms of ``LOSS_TERMS`` that ``config`` switches on) with each term's value for the log."""

    def __init__(
        self,
        config: TrainConfig,
        num_classes: int,
        novel_classes: list[int],
        cooccurrence: torch.Tensor | None = None,
        bank: MemoryBank | None = None,
        matcher: Matcher | None = None,
        terms: tuple[tuple[LossTerm, float], ...] | None = None,
    ):
        self.config, self.num_classes, self.bank = config, num_classes, bank
        self.novel_table = torch.zeros(num_classes, dtype=torch.bool)
        self.novel_table[novel_classes] = True
        self.cooccurrence = cooccurrence
        self.matcher = matcher or Matcher.of_config(config)
        self.terms = weighted_terms(config) if terms is None else terms
        self.class_weights = torch.ones(num_classes + 1)
        self.class_weights[-1] = config.no_object_weight

    def keypoints_for(self, batch: dict) -> torch.Tensor | None:
        """All keypoints the model must map to masks: novel clicks then base keypoints, (B, P + K, 2)."""
        if not self.config.keypoint_branch:
            return None
        return torch.cat([batch["points"][..., :2], batch["keypoints"][..., :2]], 1).float()

    def targets_of(self, batch: dict, supervision: str, mask_size: tuple[int, int]) -> Targets:
        """What each image of ``batch`` asks of the model, at the masks' resolution."""
        return build_targets(batch, self.novel_table, self.num_classes, supervision, mask_size)

    def __call__(self, outputs: dict, batch: dict, supervision: str | None = None) -> tuple[torch.Tensor, dict]:
        config = self.config
        supervision = supervision or config.novel_supervision
        mask_logits = outputs["mask_logits"]  # (B, N, h, w)
        device = mask_logits.device
        if self.novel_table.device != device:
            self.novel_table, self.class_weights = self.novel_table.to(device), self.class_weights.to(device)
            self.cooccurrence = self.cooccurrence.to(device) if self.cooccurrence is not None else None
        batch_size, num_queries, height, width = mask_logits.shape
        targets = self.targets_of(batch, supervision, (height, width))
        keypoints = None
        if config.keypoint_branch and "keypoint_mask_logits" in outputs:
            keypoints = self.keypoint_masks(outputs["keypoint_mask_logits"], batch, targets)

        point_logits = sample_at_points(mask_logits, targets.points_yx, tuple(batch["image"].shape[-2:]))  # (B, N, P)
        use_novel = config.novel_proposals and supervision in ("points", "image_labels")
        match_valid = targets.valid & (~targets.is_novel if not use_novel else torch.ones_like(targets.valid))
        pairs = self.matcher(
            outputs["class_logits"], mask_logits, point_logits, targets, keypoints.novel.detach() if keypoints else None, match_valid
        )
        pairs = tuple(index.to(device) for index in pairs)
        batch_index, query_index, target_index = pairs
        query_classes = torch.full((batch_size, num_queries), self.num_classes, dtype=torch.int64, device=device)
        query_classes[batch_index, query_index] = targets.classes[batch_index, target_index]
        is_mask = targets.is_mask_target[batch_index, target_index]
        step = MatchedStep(
            outputs=outputs,
            batch=batch,
            targets=targets,
            flat_masks=mask_logits.flatten(2),
            point_logits=point_logits,
            query_classes=query_classes,
            class_weights=self.class_weights,
            mask_pairs=tuple(index[is_mask] for index in pairs),
            novel_pairs=tuple(index[~is_mask] for index in pairs) if use_novel else None,  # on every rank: collectives
            keypoints=keypoints,
            class_union=config.class_union,
            bank=self.bank,
            cooccurrence=self.cooccurrence,
        )
        total, logged = 0.0, {}
        for term, weight in self.terms:
            value = term.compute(step)
            if value is not None:
                total = total + weight * value
                logged[term.name] = float(value.detach())
        logged["matched"] = int(len(batch_index))
        logged["unmatched_targets"] = int(match_valid.sum()) - int(len(batch_index))
        return total, logged

    def keypoint_masks(self, keypoint_logits: torch.Tensor, batch: dict, targets: Targets) -> KeypointMasks:
        """Every keypoint's mask and the class unions of the novel clicks (``class_union``: max or noisy-OR)."""
        num_clicks = batch["points"].shape[1]
        probability = keypoint_logits.flatten(2).sigmoid()  # (B, P + K, L)
        keypoint_class = batch["keypoints"][..., 2]  # (B, K)
        base_membership = (
            (keypoint_class[:, None, :] == targets.classes[:, :, None])
            & (keypoint_class[:, None, :] >= 0)
            & targets.is_mask_target[..., None]
        ).float()  # (B, T, K)
        novel = class_union(probability[:, :num_clicks], targets.positive, self.config.class_union)  # (B, T, L)
        return KeypointMasks(probability, base_membership, novel)
