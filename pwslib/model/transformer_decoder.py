"""Transformer decoder (MaskFormer, Cheng et al., 2021): N learned queries attend to image features.

Each layer: cross-attention from queries to the flattened feature map (with 2-D sine positions),
self-attention among queries, then a feed-forward block; post-norm residuals as in DETR.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sine_positions(height: int, width: int, dim: int, device: torch.device) -> torch.Tensor:
    """2-D sine positional encoding (DETR): (height * width, dim)."""
    quarter = dim // 4
    frequencies = torch.exp(torch.arange(quarter, device=device) * (-math.log(10000.0) / quarter))
    ys = torch.arange(height, device=device, dtype=torch.float32)[:, None] * frequencies  # (H, dim/4)
    xs = torch.arange(width, device=device, dtype=torch.float32)[:, None] * frequencies  # (W, dim/4)
    y_code = torch.cat([ys.sin(), ys.cos()], 1)[:, None, :].expand(height, width, 2 * quarter)
    x_code = torch.cat([xs.sin(), xs.cos()], 1)[None, :, :].expand(height, width, 2 * quarter)
    return torch.cat([y_code, x_code], 2).reshape(height * width, 4 * quarter)


class DecoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, ffn_dim: int):
        super().__init__()
        self.cross_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.self_attention = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.feed_forward = nn.Sequential(nn.Linear(dim, ffn_dim), nn.ReLU(inplace=True), nn.Linear(ffn_dim, dim))
        self.norms = nn.ModuleList([nn.LayerNorm(dim) for _ in range(3)])

    def forward(
        self, queries: torch.Tensor, memory: torch.Tensor, query_pos: torch.Tensor, memory_pos: torch.Tensor
    ) -> torch.Tensor:
        """queries (B, N, D), memory (B, L, D), query_pos (1, N, D), memory_pos (1, L, D) -> (B, N, D)"""
        attended = self.cross_attention(queries + query_pos, memory + memory_pos, memory, need_weights=False)[0]
        queries = self.norms[0](queries + attended)
        q = queries + query_pos
        queries = self.norms[1](queries + self.self_attention(q, q, queries, need_weights=False)[0])
        return self.norms[2](queries + self.feed_forward(queries))


class TransformerDecoder(nn.Module):
    def __init__(self, dim: int, num_queries: int, num_layers: int, heads: int, ffn_dim: int):
        super().__init__()
        self.query_features = nn.Embedding(num_queries, dim)
        self.query_positions = nn.Embedding(num_queries, dim)
        self.layers = nn.ModuleList([DecoderLayer(dim, heads, ffn_dim) for _ in range(num_layers)])
        self.norm = nn.LayerNorm(dim)

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        """feature_map (B, D, h, w) -> query embeddings (B, N, D)"""
        batch, dim, height, width = feature_map.shape
        memory = feature_map.flatten(2).transpose(1, 2)  # (B, h*w, D)
        memory_pos = sine_positions(height, width, dim, feature_map.device)[None]
        query_pos = self.query_positions.weight[None]
        queries = self.query_features.weight[None].expand(batch, -1, -1)
        for layer in self.layers:
            queries = layer(queries, memory, query_pos, memory_pos)
        return self.norm(queries)
