"""Keypoint-to-mask mapping (the poster's second mapping).

A keypoint at pixel x gives a keypoint embedding k = phi(E[:, x]) (bilinear sample of the per-pixel
embeddings E, then a small MLP phi); its keypoint mask is s = sigmoid(k . E). The class mask of class
c is the union of the masks of its keypoints: S_c = max_j s_j (option: noisy-OR 1 - prod_j (1 - s_j)).
Learned on base classes (where masks are known), the mapping is class-agnostic and transfers to the
novel classes, whose S_c then guides their proposal masks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def sample_embeddings(embeddings: torch.Tensor, points_yx: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
    """Bilinear sample of embeddings (B, D, h, w) at image-pixel points (B, P, 2) -> (B, P, D)."""
    height, width = image_size
    grid = torch.stack([(points_yx[..., 1] + 0.5) / width * 2 - 1, (points_yx[..., 0] + 0.5) / height * 2 - 1], -1)
    sampled = F.grid_sample(
        embeddings, grid[:, :, None, :].to(embeddings.dtype), mode="bilinear", align_corners=False
    )  # (B, D, P, 1)
    return sampled[..., 0].transpose(1, 2)


class KeypointHead(nn.Module):
    def __init__(self, dim: int, embedding_head: bool = True):
        super().__init__()
        self.phi = (
            nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim))
            if embedding_head
            else nn.Identity()
        )

    def forward(self, embeddings: torch.Tensor, points_yx: torch.Tensor, image_size: tuple[int, int]) -> torch.Tensor:
        """embeddings (B, D, h, w), points (B, P, 2) in image pixels -> keypoint mask logits (B, P, h, w)"""
        keypoint_embeddings = self.phi(sample_embeddings(embeddings, points_yx.float(), image_size))  # (B, P, D)
        return torch.einsum("bpd,bdhw->bphw", keypoint_embeddings, embeddings)


def class_union(keypoint_probabilities: torch.Tensor, membership: torch.Tensor, rule: str = "max") -> torch.Tensor:
    """Union of keypoint masks per class.

    keypoint_probabilities (B, P, L) in [0, 1]; membership (B, T, P) 1 where keypoint p belongs to target
    t -> class masks (B, T, L). ``max``: S = max_j s_j; ``noisy_or``: S = 1 - prod_j (1 - s_j).
    """
    member = membership[..., None] > 0  # (B, T, P, 1)
    if rule == "max":
        masked = torch.where(
            member, keypoint_probabilities[:, None], torch.zeros((), dtype=keypoint_probabilities.dtype)
        )
        return masked.amax(2)
    if rule == "noisy_or":
        log_miss = torch.log1p(-keypoint_probabilities.clamp(max=1 - 1e-6))  # (B, P, L)
        return 1 - torch.exp(torch.einsum("btp,bpl->btl", membership.to(log_miss.dtype), log_miss))
    raise ValueError(f"unknown class union {rule!r}; choose 'max' or 'noisy_or'")
