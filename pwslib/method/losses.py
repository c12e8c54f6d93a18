"""Losses and the criterion that matches, then sums every switched-on term.

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
compute the same gradient as 1 process with the same global batch.
"""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F

from pwslib.config import LOSS_TERMS, TrainConfig
from pwslib.distributed import all_reduce_mean
from pwslib.method.matching import CostWeights, cost_terms, hungarian_match, matching_cost, sample_at_points
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


class WeakShotCriterion:
    """Matches proposals to targets and sums the switched-on losses of ``config``."""

    def __init__(
        self,
        config: TrainConfig,
        num_classes: int,
        novel_classes: list[int],
        cooccurrence: torch.Tensor | None = None,
        bank: MemoryBank | None = None,
    ):
        self.config, self.num_classes, self.bank = config, num_classes, bank
        self.novel_table = torch.zeros(num_classes, dtype=torch.bool)
        self.novel_table[novel_classes] = True
        self.cooccurrence = cooccurrence
        self.cost_weights = CostWeights.of_config(config)
        self.class_weights = torch.ones(num_classes + 1)
        self.class_weights[-1] = config.no_object_weight
        self.seconds = {"targets": 0.0, "matching": 0.0}  # wall time spent here so far (read by the benchmark)

    def keypoints_for(self, batch: dict) -> torch.Tensor | None:
        """All keypoints the model must map to masks: novel clicks then base keypoints, (B, P + K, 2)."""
        if not self.config.keypoint_branch:
            return None
        return torch.cat([batch["points"][..., :2], batch["keypoints"][..., :2]], 1).float()

    def __call__(self, outputs: dict, batch: dict, supervision: str | None = None) -> tuple[torch.Tensor, dict]:
        config = self.config
        supervision = supervision or config.novel_supervision
        mask_logits = outputs["mask_logits"]  # (B, N, h, w)
        device = mask_logits.device
        if self.novel_table.device != device:
            self.novel_table, self.class_weights = self.novel_table.to(device), self.class_weights.to(device)
            self.cooccurrence = self.cooccurrence.to(device) if self.cooccurrence is not None else None
        batch_size, num_queries, height, width = mask_logits.shape
        image_size = tuple(batch["image"].shape[-2:])
        started = time.perf_counter()
        targets = build_targets(batch, self.novel_table, self.num_classes, supervision, (height, width))
        self.seconds["targets"] += time.perf_counter() - started
        terms: dict[str, torch.Tensor] = {}

        keypoint_class_masks = None
        if config.keypoint_branch and "keypoint_mask_logits" in outputs:
            keypoint_class_masks = self._keypoint_terms(outputs["keypoint_mask_logits"], batch, targets, terms)

        point_logits = sample_at_points(mask_logits, targets.points_yx, image_size)  # (B, N, P)
        use_novel = config.novel_proposals and supervision in ("points", "image_labels")
        match_valid = targets.valid & (~targets.is_novel if not use_novel else torch.ones_like(targets.valid))
        started = time.perf_counter()
        weighted_costs = cost_terms(
            outputs["class_logits"],
            mask_logits,
            point_logits,
            targets,
            keypoint_class_masks,
            self.cost_weights,
            point_terms=config.novel_matching == "points",
        )
        cost = matching_cost(weighted_costs, targets.is_novel)
        batch_index, query_index, target_index = hungarian_match(cost, match_valid)
        self.seconds["matching"] += time.perf_counter() - started

        # classification over every query: matched -> its class, the rest -> no object
        batch_index, query_index, target_index = (i.to(device) for i in (batch_index, query_index, target_index))
        classes = torch.full((batch_size, num_queries), self.num_classes, dtype=torch.int64, device=device)
        classes[batch_index, query_index] = targets.classes[batch_index, target_index]
        weights = self.class_weights.to(outputs["class_logits"].dtype)
        ce = F.cross_entropy(outputs["class_logits"].flatten(0, 1), classes.flatten(), weight=weights, reduction="sum")
        terms["classification"] = ce / global_count(weights[classes].sum())

        if "pixel_logits" in outputs:
            pixel_ce = F.cross_entropy(
                outputs["pixel_logits"].flatten(2), targets.pixel_labels, ignore_index=255, reduction="sum"
            )
            terms["pixel_classification"] = pixel_ce / global_count((targets.pixel_labels != 255).sum())
        flat_masks = mask_logits.flatten(2)  # (B, N, L)
        is_mask = targets.is_mask_target[batch_index, target_index]
        self._mask_terms(flat_masks, targets, (batch_index, query_index, target_index), is_mask, terms)
        if use_novel:  # on every rank, even without novel pairs: the terms hold collectives
            novel_pairs = tuple(index[~is_mask] for index in (batch_index, query_index, target_index))
            self._novel_terms(outputs, flat_masks, point_logits, targets, novel_pairs, keypoint_class_masks, terms)

        weight_of = {term.name: getattr(config, term.weight_field) for term in LOSS_TERMS}
        total = sum(weight_of[name] * value for name, value in terms.items())
        logged = {name: float(value.detach()) for name, value in terms.items()}
        logged["matched"] = int(len(batch_index))
        logged["unmatched_targets"] = int(match_valid.sum()) - int(len(batch_index))
        return total, logged

    def _mask_terms(self, flat_masks, targets: Targets, pairs, is_mask, terms) -> None:
        batch_index, query_index, target_index = (index[is_mask] for index in pairs)
        logits = flat_masks[batch_index, query_index]  # (M, L)
        masks = targets.masks[batch_index, target_index]
        count = global_count(len(batch_index))
        terms["focal"] = sigmoid_focal_loss(logits, masks).mean(-1).sum() / count
        terms["dice"] = dice_loss(logits.sigmoid(), masks).sum() / count

    def _keypoint_terms(self, keypoint_logits: torch.Tensor, batch: dict, targets: Targets, terms) -> torch.Tensor:
        """Keypoint-branch losses; returns the novel class masks S_c (B, T, L), detached."""
        num_clicks = batch["points"].shape[1]
        probability = keypoint_logits.flatten(2).sigmoid()  # (B, P + K, L)
        keypoint_class = batch["keypoints"][..., 2]  # (B, K)
        base_membership = (
            (keypoint_class[:, None, :] == targets.classes[:, :, None])
            & (keypoint_class[:, None, :] >= 0)
            & targets.is_mask_target[..., None]
        ).float()  # (B, T, K)
        base_masks = class_union(probability[:, num_clicks:], base_membership, self.config.class_union)
        supervised = base_membership.sum(-1) > 0  # (B, T)
        predicted, wanted = base_masks[supervised], targets.masks[supervised]
        count = global_count(len(predicted))
        keypoint = (probability_bce(predicted, wanted).mean(-1).sum() + dice_loss(predicted, wanted).sum()) / count

        novel_masks = class_union(probability[:, :num_clicks], targets.positive, self.config.class_union)  # (B, T, L)
        height, width = keypoint_logits.shape[-2:]
        at_clicks = sample_at_points(
            novel_masks.view(*novel_masks.shape[:2], height, width), targets.points_yx, tuple(batch["image"].shape[-2:])
        )  # (B, T, P)
        inclusion, with_positive = point_loss(at_clicks.flatten(0, 1), targets.positive.flatten(0, 1), True, False)
        exclusion, with_negative = point_loss(at_clicks.flatten(0, 1), targets.negative.flatten(0, 1), False, False)
        keypoint = keypoint + inclusion / global_count(with_positive) + exclusion / global_count(with_negative)
        terms["keypoint"] = keypoint
        return novel_masks.detach()

    def _novel_terms(self, outputs, flat_masks, point_logits, targets: Targets, pairs, keypoint_class_masks, terms):
        config = self.config
        batch_index, query_index, target_index = pairs
        count = global_count(len(batch_index))
        at_clicks = point_logits[batch_index, query_index]  # (M, P)
        if config.inclusion_weight:
            loss, pairs_with_clicks = point_loss(at_clicks, targets.positive[batch_index, target_index], True)
            terms["inclusion"] = loss / global_count(pairs_with_clicks)
        if config.exclusion_weight:
            loss, pairs_with_clicks = point_loss(at_clicks, targets.negative[batch_index, target_index], False)
            terms["exclusion"] = loss / global_count(pairs_with_clicks)
        if config.consistency_weight and keypoint_class_masks is not None:
            logits = flat_masks[batch_index, query_index]
            guide = keypoint_class_masks[batch_index, target_index] * targets.ignore_region[batch_index]
            bce = F.binary_cross_entropy_with_logits(logits, guide, reduction="none").mean(-1)
            terms["consistency"] = (bce + dice_loss(logits.sigmoid(), guide)).sum() / count
        if config.complementary_weight:
            matched = torch.zeros(flat_masks.shape[:2], dtype=torch.bool, device=flat_masks.device)
            matched[batch_index, query_index] = True
            union = torch.where(matched[..., None], flat_masks.sigmoid(), torch.zeros((), dtype=flat_masks.dtype)).amax(
                1
            )
            has_novel = matched.any(1)
            loss = probability_bce(union[has_novel], targets.ignore_region[has_novel]).mean(-1).sum()
            terms["complementary"] = loss / global_count(has_novel.sum())
        if config.contrastive_weight and self.bank is not None:
            classes = targets.classes[batch_index, target_index]
            confidence = object_confidence(self.cooccurrence, classes, targets.known_labels[batch_index])
            embeddings = outputs["query_embeddings"][batch_index, query_index]
            terms["contrastive"] = self.bank.contrastive_loss(embeddings, classes, confidence) / count
            self.bank.update(embeddings, classes, confidence)
