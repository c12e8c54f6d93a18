"""What each image of a batch asks of the model: padded, vectorised targets (the clicks, the ignore region, the mask targets).

Targets of an image are the classes it supervises:
- *mask targets*: classes with a known mask at mask resolution (base classes; every class under full
  supervision; base + pseudo-labelled novel classes for ``keypoint_pseudo``'s second stage);
- *novel targets*: novel classes known only from clicks (``points``) or only from the image-level
  label set (``image_labels``).
A click ``p`` is a positive of novel target ``t`` when it carries t's class, and a negative of every
other novel target of the image (the other novel classes' clicks and the base clicks).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pwslib.data.splits import IGNORE_INDEX

NOVEL_SUPERVISION = ("none", "points", "image_labels", "full_masks", "pseudo_masks")


@dataclass
class Targets:
    classes: torch.Tensor  # (B, T) class id, -1 = padding
    valid: torch.Tensor  # (B, T) bool
    is_novel: torch.Tensor  # (B, T) bool: supervised by clicks / image labels, not by a mask
    masks: torch.Tensor  # (B, T, L) float: the mask of mask targets at mask resolution (0 for novel targets)
    positive: torch.Tensor  # (B, T, P) float: click p is a positive of target t
    negative: torch.Tensor  # (B, T, P) float: click p is a negative of target t
    points_yx: torch.Tensor  # (B, P, 2) float, image pixels
    ignore_region: torch.Tensor  # (B, L) float: R, the ignore region of the base label map
    known_labels: torch.Tensor  # (B, C) bool: classes known to be present
    pixel_labels: torch.Tensor | None = None  # (B, L) int64: the mask targets' label map at mask resolution

    @property
    def is_mask_target(self) -> torch.Tensor:
        return self.valid & ~self.is_novel


def downsample_labels(label: torch.Tensor, stride: int) -> torch.Tensor:
    """Label maps (B, H, W) -> (B, H/stride, W/stride): the pixel at the centre of each cell."""
    return label[:, stride // 2 :: stride, stride // 2 :: stride]


def build_targets(
    batch: dict, novel_classes: torch.Tensor, num_classes: int, supervision: str, mask_shape: tuple[int, int]
) -> Targets:
    """Targets of a collated batch. ``novel_classes`` is a (C,) bool table of the split."""
    if supervision not in NOVEL_SUPERVISION:
        raise ValueError(f"unknown novel supervision {supervision!r}; choose one of {NOVEL_SUPERVISION}")
    stride = batch["base_label"].shape[-1] // mask_shape[-1]
    base_small = downsample_labels(batch["base_label"], stride).flatten(1)  # (B, L)
    if supervision == "full_masks":
        mask_source = downsample_labels(batch["full_label"], stride).flatten(1)
    elif supervision == "pseudo_masks":
        mask_source = downsample_labels(batch["pseudo_label"], stride).flatten(1)
    else:
        mask_source = base_small
    one_hot = F.one_hot(mask_source.clamp(max=num_classes), num_classes + 1)[..., :num_classes]  # (B, L, C)
    mask_present = one_hot.any(1)  # (B, C)

    points = batch["points"]  # (B, P, 3)
    point_class = points[..., 2]
    point_valid = point_class >= 0
    if supervision == "points":
        clicked = F.one_hot(point_class.clamp(min=0), num_classes).bool() & point_valid[..., None]
        novel_present = clicked.any(1) & novel_classes[None]
    elif supervision == "image_labels":
        novel_present = batch["image_labels"] & novel_classes[None]
    else:
        novel_present = torch.zeros_like(mask_present)
    novel_present = novel_present & ~mask_present

    selected = mask_present | novel_present  # (B, C)
    count = max(1, int(selected.sum(1).max()))
    order = torch.argsort((~selected).to(torch.int8), dim=1, stable=True)[:, :count]  # selected class ids first
    valid = torch.gather(selected, 1, order)
    classes = torch.where(valid, order, torch.full_like(order, -1))
    is_novel = torch.gather(novel_present, 1, order) & valid
    masks = torch.gather(one_hot.transpose(1, 2), 1, order[..., None].expand(-1, -1, one_hot.shape[1])).float()
    masks = masks * (valid & ~is_novel)[..., None]

    same_class = point_class[:, None, :] == classes[:, :, None]  # (B, T, P)
    usable = is_novel[..., None] & point_valid[:, None, :] & (supervision == "points")
    return Targets(
        classes=classes,
        valid=valid,
        is_novel=is_novel,
        masks=masks,
        positive=(same_class & usable).float(),
        negative=(~same_class & usable).float(),
        points_yx=points[..., :2].float(),
        ignore_region=(base_small == IGNORE_INDEX).float(),
        known_labels=batch["image_labels"],
        pixel_labels=mask_source,
    )
