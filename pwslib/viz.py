"""Plotting helpers: label maps in a fixed palette, clicks drawn over images."""

from __future__ import annotations

import colorsys

import numpy as np
import torch

from pwslib.data.splits import IGNORE_INDEX


def label_palette(num_classes: int) -> np.ndarray:
    """(256, 3) uint8 colours: well-separated hues for classes, black for ignore (255)."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    for c in range(num_classes):
        hue = (c * 0.618033988749895) % 1.0
        light = 0.45 + 0.2 * ((c // 3) % 2)
        palette[c] = np.array(colorsys.hls_to_rgb(hue, light, 0.75)) * 255
    palette[IGNORE_INDEX] = 0
    return palette


def colourise(label: np.ndarray | torch.Tensor, num_classes: int) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) uint8 image."""
    label = label.numpy() if isinstance(label, torch.Tensor) else np.asarray(label)
    return label_palette(num_classes)[label.astype(np.int64)]


def draw_points(ax, points: np.ndarray, novel_classes, num_classes: int) -> None:
    """Clicks ``[y, x, class]``: novel clicks as large stars, base clicks (negatives) as small crosses."""
    palette = label_palette(num_classes) / 255.0
    novel = set(int(c) for c in novel_classes)
    for y, x, cls in np.asarray(points).reshape(-1, 3):
        if cls < 0:
            continue
        if int(cls) in novel:
            ax.scatter([x], [y], marker="*", s=160, c=[palette[cls]], edgecolors="white", linewidths=1.2)
        else:
            ax.scatter([x], [y], marker="x", s=40, c="white", linewidths=1.5)
