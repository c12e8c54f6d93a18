"""The pointly-supervised weak-shot MaskFormer, one forward pass.

    backbone -> FPN pixel decoder -> per-pixel embeddings E (B, D, H/4, W/4)
    transformer decoder (N queries) -> class logits p_i (C + 1) and mask embeddings q_i
    query-to-mask:    m_i = sigmoid(q_i . E)
    keypoint-to-mask: s   = sigmoid(phi(E[:, x]) . E)           (keypoint_head.py)
    semantic inference (MaskFormer): score_c(x) = sum_i softmax(p_i)_c * m_i(x)

Our choice (``mask_pooled_classification``): the class head reads q_i plus a projection of the pixel
embeddings pooled under the proposal's own (detached) mask, sum_x m_i(x) E(x) / sum_x m_i(x). Plain
MaskFormer queries must infer a region's class through cross-attention and need ~1e5 steps; with the
pooled region feature the classes are learned within the minutes of a CPU budget (measured: see the
README).

Our choice (``pixel_classifier``): during training a 1x1 convolution on E classifies every pixel whose
class the method knows (the label map its mask targets come from; novel pixels stay ignored unless the
method has their masks). It gives the per-pixel embeddings a dense class signal, which the mask
classification alone provides only once per segment; it is not used at inference.

The model runs in channels-last memory format (about 15 % faster on CPU). At inference the class-weighted
sum of the mask probabilities is one pixel-major matrix product at the masks' resolution, and the class
scores are then upsampled to the image (bilinear, linear, so the same as summing upsampled masks).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from pwslib.config import TrainConfig
from pwslib.model.backbone import build_backbone
from pwslib.model.keypoint_head import KeypointHead
from pwslib.model.per_pixel import Normalise
from pwslib.model.pixel_decoder import FPNPixelDecoder
from pwslib.model.transformer_decoder import TransformerDecoder


@dataclass(frozen=True)
class ModelConfig:
    """The network's part of a run config; every default is ``TrainConfig``'s (``pwslib/config.py``)."""

    num_classes: int
    backbone: str = TrainConfig.backbone
    backbone_widths: tuple[int, ...] = TrainConfig.backbone_widths
    pretrained_backbone: bool = TrainConfig.pretrained_backbone
    embedding_dim: int = TrainConfig.embedding_dim
    pixel_decoder_kernel: int = TrainConfig.pixel_decoder_kernel  # of the FPN's output convolutions
    num_queries: int = TrainConfig.num_queries
    decoder_layers: int = TrainConfig.decoder_layers
    attention_heads: int = TrainConfig.attention_heads
    feed_forward_dim: int = TrainConfig.feed_forward_dim
    keypoint_branch: bool = TrainConfig.keypoint_branch  # build the keypoint-to-mask head at all
    keypoint_embedding_head: bool = TrainConfig.keypoint_embedding_head  # phi on (MLP) or off (identity): Table 3
    mask_pooled_classification: bool = TrainConfig.mask_pooled_classification  # class head reads E under the mask
    pixel_classifier: bool = TrainConfig.pixel_classifier  # an auxiliary per-pixel classifier on E (training only)
    precision: str = "float32"  # float32 | bfloat16, resolved from TrainConfig's (distributed.resolve_precision)


class PointWeakShotMaskFormer(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        dim = config.embedding_dim
        self.normalise = Normalise()
        self.backbone = build_backbone(config.backbone, config.backbone_widths, config.pretrained_backbone)
        self.pixel_decoder = FPNPixelDecoder(self.backbone.out_channels, dim, config.pixel_decoder_kernel)
        self.transformer_decoder = TransformerDecoder(
            dim, config.num_queries, config.decoder_layers, config.attention_heads, config.feed_forward_dim
        )
        self.region_projection = nn.Linear(dim, dim) if config.mask_pooled_classification else None
        self.class_head = nn.Linear(dim, config.num_classes + 1)
        self.pixel_classifier = nn.Conv2d(dim, config.num_classes, 1) if config.pixel_classifier else None
        self.mask_head = nn.Sequential(
            nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, dim)
        )
        self.keypoint_head = KeypointHead(dim, config.keypoint_embedding_head) if config.keypoint_branch else None
        self.to(memory_format=torch.channels_last)

    def forward(self, image: torch.Tensor, keypoints_yx: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """image (B, 3, H, W) uint8, optional keypoints (B, P, 2) in image pixels -> dict of
        class_logits (B, N, C+1), mask_logits (B, N, H/4, W/4), pixel_embeddings (B, D, H/4, W/4),
        query_embeddings (B, N, D) and, with keypoints, keypoint_mask_logits (B, P, H/4, W/4).

        With ``precision="bfloat16"`` the network runs under autocast and every output is cast back to
        float32, so losses, assignment costs and matching are computed in float32."""
        bfloat16 = self.config.precision == "bfloat16"
        with torch.autocast(image.device.type, dtype=torch.bfloat16, enabled=bfloat16):
            outputs = self._forward(image, keypoints_yx)
        return {name: value.float() for name, value in outputs.items()} if bfloat16 else outputs

    def _forward(self, image: torch.Tensor, keypoints_yx: torch.Tensor | None) -> dict[str, torch.Tensor]:
        if image.shape[-1] % 32 or image.shape[-2] % 32:
            raise ValueError(f"image size {tuple(image.shape[-2:])} must be a multiple of 32 (the backbone's stride)")
        normalised = self.normalise(image).contiguous(memory_format=torch.channels_last)
        pixel_embeddings, pyramid = self.pixel_decoder(self.backbone(normalised))
        queries = self.transformer_decoder(pyramid[1])  # attend to the stride-16 map
        mask_logits = torch.einsum("bnd,bdhw->bnhw", self.mask_head(queries), pixel_embeddings)
        if self.region_projection is not None:
            weights = mask_logits.detach().flatten(2).sigmoid()  # (B, N, L)
            pooled = torch.einsum("bnl,bdl->bnd", weights, pixel_embeddings.flatten(2))
            queries = queries + self.region_projection(pooled / (weights.sum(-1, keepdim=True) + 1e-6))
        outputs = {
            "class_logits": self.class_head(queries),
            "mask_logits": mask_logits,
            "pixel_embeddings": pixel_embeddings,
            "query_embeddings": queries,
        }
        if self.pixel_classifier is not None and self.training:
            outputs["pixel_logits"] = self.pixel_classifier(pixel_embeddings)  # (B, C, H/4, W/4)
        if keypoints_yx is not None:
            if self.keypoint_head is None:
                raise ValueError("this model was built without the keypoint branch (keypoint_branch=False)")
            outputs["keypoint_mask_logits"] = self.keypoint_head(
                pixel_embeddings, keypoints_yx, tuple(image.shape[-2:])
            )
        return outputs


def mask_probabilities(mask_logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Proposal masks (B, N, h, w) logits -> (B, N, H, W) probabilities, bilinearly upsampled.

    The result is laid out channels-last (pixel-major), so ``.permute(0, 2, 3, 1)`` is free.
    """
    probabilities = mask_logits.sigmoid().contiguous(memory_format=torch.channels_last)
    return F.interpolate(probabilities, size=size, mode="bilinear", align_corners=False)


def semantic_scores(class_logits: torch.Tensor, mask_logits: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """MaskFormer semantic inference: (B, N, C+1), (B, N, h, w) -> per-pixel class scores (B, H, W, C).

    score_c(x) = sum_i softmax(p_i)_c * m_i(x) with the masks m_i bilinearly upsampled to ``size``. Bilinear
    upsampling is linear, so the sum is taken at the masks' own resolution and the C class scores are upsampled
    instead: the same scores (to float rounding) with a sixteenth of the products at stride 4.
    """
    class_probabilities = class_logits.softmax(-1)[..., :-1]  # (B, N, C)
    masks = mask_logits.sigmoid().contiguous(memory_format=torch.channels_last)  # (B, N, h, w), pixel-major
    batch, queries, height, width = masks.shape
    pixels = masks.permute(0, 2, 3, 1).reshape(batch, height * width, queries)  # (B, h*w, N), no copy
    scores = torch.bmm(pixels, class_probabilities).view(batch, height, width, -1)  # (B, h, w, C)
    upsampled = F.interpolate(scores.permute(0, 3, 1, 2), size=size, mode="bilinear", align_corners=False)
    return upsampled.permute(0, 2, 3, 1)  # (B, H, W, C), channels-last in memory, so a free view


@torch.no_grad()
def predict(
    model: PointWeakShotMaskFormer, image: torch.Tensor, class_scale: torch.Tensor | None = None
) -> torch.Tensor:
    """Semantic label map (B, H, W), on the CPU, of uint8 images (B, 3, H, W) on any device.

    ``class_scale`` (C,) multiplies each class's score before the argmax (a calibration: below 1 on the novel
    classes hands contested pixels to the base classes); None leaves the scores as they are."""
    outputs = model(image.to(model.normalise.mean.device))
    scores = semantic_scores(outputs["class_logits"], outputs["mask_logits"], tuple(image.shape[-2:]))
    if class_scale is not None:
        scores = scores * class_scale.to(scores.device)
    return scores.argmax(-1).cpu()


def parameter_table(model: nn.Module) -> pd.DataFrame:
    """Parameters of each top-level part of ``model`` (parts without parameters left out)."""
    parts = {name: sum(p.numel() for p in module.parameters()) for name, module in model.named_children()}
    return pd.DataFrame({"parameters": parts}).query("parameters > 0")
