"""``keypoint_pseudo``'s second stage: the keypoint branch's class masks S_c become pseudo masks of the
novel classes, and training continues on them as if they were full masks."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pwslib.data import collate
from pwslib.data.splits import IGNORE_INDEX
from pwslib.model.keypoint_head import class_union
from pwslib.model.maskformer import PointWeakShotMaskFormer


@torch.no_grad()
def pseudo_labels(model: PointWeakShotMaskFormer, dataset, class_union_rule: str, batch_size: int = 32) -> np.ndarray:
    """keypoint_pseudo's pseudo masks of every training image (N, H, W) uint8.

    Each novel class's keypoint class mask S_c (union over its clicks) is thresholded at 0.5 and kept
    inside R (the base ignore region); where several novel classes claim a pixel the largest S_c wins;
    R pixels no class claims stay ignored; outside R the base label is kept.
    """
    model.eval()
    device = model.normalise.mean.device
    augmentation, dataset.augmentation = dataset.augmentation, None
    labels = []
    for start in range(0, len(dataset), batch_size):
        batch = collate([dataset[i] for i in range(start, min(len(dataset), start + batch_size))])
        outputs = {
            k: v.cpu() for k, v in model(batch["image"].to(device), batch["points"][..., :2].float().to(device)).items()
        }
        probability = outputs["keypoint_mask_logits"].sigmoid().flatten(2)  # (B, P, L)
        point_class = batch["points"][..., 2]
        novel = torch.tensor(dataset.split.novel_classes)
        membership = (point_class[:, None, :] == novel[None, :, None]).float()  # (B, C_novel, P)
        masks = class_union(probability, membership, class_union_rule)
        masks = masks.view(*masks.shape[:2], *outputs["keypoint_mask_logits"].shape[-2:])
        masks = F.interpolate(masks, size=batch["image"].shape[-2:], mode="bilinear", align_corners=False)
        best, which = masks.max(1)
        base = batch["base_label"]
        claimed = (best > 0.5) & (base == IGNORE_INDEX)
        label = torch.where(claimed, novel[which], base)
        labels.append(label.to(torch.uint8).numpy())
    dataset.augmentation = augmentation
    model.train()
    return np.concatenate(labels)
