"""A per-pixel classifier (backbone + FPN + 1x1 convolution) and the one loop that trains it.

The small backbone's pretraining (``pwslib.pretraining``) and the data card's probes (``studies.datacard``) both
train this network by per-pixel cross-entropy with AdamW on the schedule of ``pwslib.schedule``; they differ only
in where their batches come from, how long they train and what they keep, which ``fit_per_pixel`` takes as
arguments.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from pwslib.data.splits import IGNORE_INDEX
from pwslib.model.backbone import SmallResNet
from pwslib.model.pixel_decoder import FPNPixelDecoder
from pwslib.schedule import learning_rate_at

IMAGE_MEAN = (123.675, 116.28, 103.53)  # ImageNet statistics in 0..255, as detectron2 uses
IMAGE_STD = (58.395, 57.12, 57.375)


class Normalise(nn.Module):
    """uint8 (B, 3, H, W) image -> normalised float."""

    def __init__(self):
        super().__init__()
        self.register_buffer("mean", torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGE_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return (image.float() - self.mean) / self.std


class PerPixelSegmenter(nn.Module):
    def __init__(self, num_classes: int, widths: tuple[int, ...], dim: int = 64):
        super().__init__()
        self.normalise = Normalise()
        self.backbone = SmallResNet(widths)
        self.pixel_decoder = FPNPixelDecoder(self.backbone.out_channels, dim)
        self.classifier = nn.Conv2d(dim, num_classes, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image (B, 3, H, W) uint8 -> class logits (B, C, H, W)"""
        embeddings, _ = self.pixel_decoder(self.backbone(self.normalise(image)))
        return F.interpolate(self.classifier(embeddings), size=image.shape[-2:], mode="bilinear", align_corners=False)


def plain_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the labelled pixels. ``logits`` (B, C, H, W), ``target`` (B, H, W), 255 = ignored."""
    return F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX)


def fit_per_pixel(
    model: PerPixelSegmenter,
    optimiser: torch.optim.Optimizer,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    progress_at: Callable[[int], float],
    peak_learning_rate: float,
    warmup_steps: int = 0,
    loss_of: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = plain_cross_entropy,
    first_step: int = 0,
    after_step: Callable[[int], None] | None = None,
) -> tuple[int, float]:
    """Train ``model`` on ``batches`` of (image (B, 3, H, W) uint8, target (B, H, W) class ids, 255 = ignored)
    until they run out or ``progress_at(step)`` (0 at the start of the schedule, 1 at its end; by steps or by
    wall time) reaches 1. The learning rate follows ``learning_rate_at`` (linear warm-up, poly decay);
    ``after_step(steps_done)`` runs after each optimiser step (a checkpoint, say), before the next batch is drawn.
    Returns (steps done, counting from ``first_step``; the last loss). A non-finite loss stops with its step."""
    step, loss = first_step, float("nan")
    model.train()
    for image, target in batches:
        progress = progress_at(step)
        if progress >= 1:
            break
        for group in optimiser.param_groups:
            group["lr"] = learning_rate_at(peak_learning_rate, progress, step, warmup_steps)
        loss_tensor = loss_of(model(image), target)
        if not torch.isfinite(loss_tensor):
            raise FloatingPointError(
                f"the per-pixel loss is {float(loss_tensor.detach())} at step {step}; lower the learning rate"
            )
        optimiser.zero_grad(set_to_none=True)
        loss_tensor.backward()
        optimiser.step()
        step, loss = step + 1, float(loss_tensor.detach())
        if after_step is not None:
            after_step(step)
    return step, loss
