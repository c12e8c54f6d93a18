"""A per-pixel classifier (backbone + FPN + 1x1 convolution): the data card's learnability probe."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pwslib.model.backbone import SmallResNet
from pwslib.model.pixel_decoder import FPNPixelDecoder

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
    def __init__(self, num_classes: int, dim: int = 64, widths: tuple[int, ...] = (32, 64, 96, 128)):
        super().__init__()
        self.normalise = Normalise()
        self.backbone = SmallResNet(widths)
        self.pixel_decoder = FPNPixelDecoder(self.backbone.out_channels, dim)
        self.classifier = nn.Conv2d(dim, num_classes, 1)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """image (B, 3, H, W) uint8 -> class logits (B, C, H, W)"""
        embeddings, _ = self.pixel_decoder(self.backbone(self.normalise(image)))
        return F.interpolate(self.classifier(embeddings), size=image.shape[-2:], mode="bilinear", align_corners=False)
