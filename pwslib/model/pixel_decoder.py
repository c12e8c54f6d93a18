"""FPN pixel decoder (Lin et al., 2017), as in MaskFormer: per-pixel embeddings E at stride 4."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FPNPixelDecoder(nn.Module):
    def __init__(self, in_channels: tuple[int, ...], dim: int, kernel: int = 3):
        """``kernel``: of the output convolution after each top-down merge (3 in MaskFormer's FPN; 1 costs
        a ninth of its multiply-adds, most of them at stride 4)."""
        super().__init__()
        self.lateral = nn.ModuleList([nn.Conv2d(c, dim, 1) for c in in_channels])
        self.output = nn.ModuleList(
            [
                nn.Sequential(nn.Conv2d(dim, dim, kernel, 1, kernel // 2, bias=False), nn.GroupNorm(8, dim), nn.ReLU(inplace=True))
                for _ in in_channels[:-1]
            ]
        )
        # 1x1 (our choice; MaskFormer uses 3x3): the 3x3 at stride 4 cost 12 % of a training step on CPU
        self.embed = nn.Conv2d(dim, dim, 1)

    def forward(self, features: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """features at strides 4..32 -> (E (B, D, H/4, W/4), [top-down maps at strides 32, 16, 8, 4])"""
        x = self.lateral[-1](features[-1])
        pyramid = [x]
        for level in range(len(features) - 2, -1, -1):
            x = self.lateral[level](features[level]) + F.interpolate(x, size=features[level].shape[-2:], mode="nearest")
            x = self.output[level](x)
            pyramid.append(x)
        return self.embed(x), pyramid
