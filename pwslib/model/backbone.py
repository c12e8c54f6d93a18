"""Backbones: a small ResNet written in torch (the default) and an optional ImageNet ResNet-50.

Both return four feature maps at strides 4, 8, 16 and 32 (``res2..res5``), as MaskFormer expects.
The small ResNet uses GroupNorm, so a batch split across DDP ranks computes exactly what one process
computes on the whole batch.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_norm_relu(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
        nn.GroupNorm(min(8, out_channels), out_channels),
        nn.ReLU(inplace=True),
    )


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (He et al., 2016)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            conv_norm_relu(in_channels, out_channels, stride),
            nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False),
            nn.GroupNorm(min(8, out_channels), out_channels),
        )
        self.shortcut = (
            nn.Identity()
            if stride == 1 and in_channels == out_channels
            else nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.GroupNorm(min(8, out_channels), out_channels),
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.shortcut(x))


class StagedBackbone(nn.Module):
    """A stem and four stages (``self.stem``, ``self.stages``, ``self.out_channels`` set by the subclass)."""

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """image (B, 3, H, W) normalised -> feature maps at strides 4, 8, 16, 32: (B, C_k, H / s, W / s)"""
        x = self.stem(image)
        features = []
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


class SmallResNet(StagedBackbone):
    """A ResNet small enough to train on a laptop CPU: stem to stride 4, then four stages."""

    def __init__(self, widths: tuple[int, ...], blocks: tuple[int, ...] = (1, 1, 1, 1)):
        super().__init__()
        self.stem = nn.Sequential(conv_norm_relu(3, widths[0] // 2, 2), conv_norm_relu(widths[0] // 2, widths[0], 2))
        stages, channels = [], widths[0]
        for index, (width, count) in enumerate(zip(widths, blocks)):
            layers = [BasicBlock(channels, width, 1 if index == 0 else 2)]
            layers += [BasicBlock(width, width, 1) for _ in range(count - 1)]
            stages.append(nn.Sequential(*layers))
            channels = width
        self.stages = nn.ModuleList(stages)
        self.out_channels = tuple(widths)


class ResNet50(StagedBackbone):
    """torchvision's ResNet-50, ImageNet weights when available: the real-data recipe's backbone.

    Needs the optional ``torchvision`` extra (``pip install -e .[imagenet]``); weights come from
    torchvision's cache and are never downloaded at import or test time.
    """

    def __init__(self, pretrained: bool = True):
        super().__init__()
        try:
            import torchvision
        except ImportError as error:
            raise ImportError(
                "the resnet50 backbone needs torchvision: pip install -e .[imagenet]; the default "
                "backbone 'small_resnet' needs nothing extra"
            ) from error
        weights = torchvision.models.ResNet50_Weights.IMAGENET1K_V1 if pretrained else None
        net = torchvision.models.resnet50(weights=weights)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.stages = nn.ModuleList([net.layer1, net.layer2, net.layer3, net.layer4])
        self.out_channels = (256, 512, 1024, 2048)


def build_backbone(name: str, widths: tuple[int, ...], pretrained: bool = True) -> nn.Module:
    if name == "small_resnet":
        return SmallResNet(widths)
    if name == "resnet50":
        return ResNet50(pretrained)
    raise ValueError(f"unknown backbone {name!r}; choose 'small_resnet' or 'resnet50'")
