"""Run configuration: one dataclass, methods as named overrides, Table 2/3 variants as more overrides.

Every switch of DESIGN §6 is a field here, so a table row is ``config_for("ours", **row)``. Fields
marked "(our choice)" are this project's reading where the poster gives no detail.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from typing import Any

from pwslib.io import DataError


@dataclass(frozen=True)
class TrainConfig:
    # data
    dataset: str = "toy-stuff"
    split: int = 1
    points_per_class: int = 1
    point_rule: str = "uniform"
    point_seed: int = 0
    data_seed: int = 0
    crop_size: int | None = None  # None: the image size (toy); the real recipe crops 640 / 512
    # method
    method: str = "ours"
    novel_supervision: str = "points"  # none | points | image_labels | full_masks (| pseudo_masks, set in stage 2)
    novel_matching: str = "points"  # points: J_in, J_ex, J_con in the cost | class_only
    novel_proposals: bool = True  # novel targets are matched to proposals (off: keypoint_pseudo's first stage)
    keypoint_branch: bool = True
    keypoint_embedding_head: bool = True  # phi on / off (Table 3)
    class_union: str = "max"  # max | noisy_or (Table 3)
    memory_bank: str = "confident"  # confident | plain (no confidence) | off (Table 3)
    prototype: str = "ema"  # ema | queue (Table 3)
    bank_momentum: float = 0.9
    queue_size: int = 16
    temperature: float = 0.1
    # loss weights (0 switches a term off)
    classification_weight: float = 1.0
    no_object_weight: float = 0.1
    focal_weight: float = 20.0
    dice_weight: float = 1.0
    inclusion_weight: float = 1.0
    exclusion_weight: float = 1.0
    consistency_weight: float = 1.0
    contrastive_weight: float = 0.1
    keypoint_weight: float = 1.0
    complementary_weight: float = 0.0
    pixel_classification_weight: float = 1.0
    # assignment cost weights (0 switches a term off)
    classification_cost: float = 1.0
    focal_cost: float = 20.0
    dice_cost: float = 1.0
    inclusion_cost: float = 0.1
    exclusion_cost: float = 0.1
    consistency_cost: float = 0.1
    point_cost: str = "probability"  # probability: 1 − m, m at the clicks | log: −log m, −log(1 − m)
    # model
    backbone: str = "small_resnet"
    backbone_widths: tuple[int, ...] = (32, 64, 96, 128)
    pretrained_backbone: bool = True
    embedding_dim: int = 64
    num_queries: int = 16
    decoder_layers: int = 2
    attention_heads: int = 4
    feed_forward_dim: int = 128
    mask_pooled_classification: bool = True  # our choice, see model/maskformer.py
    pixel_classifier: bool = True  # our choice: auxiliary per-pixel CE on E over known labels (model/maskformer.py)
    # schedule
    seed: int = 0
    iterations: int = 1500
    batch_size: int = 16  # global, split across DDP ranks
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    poly_power: float = 0.9
    gradient_clip: float = 1.0
    pseudo_label_share: float = 0.5  # keypoint_pseudo: share of iterations spent in the first stage (our choice)
    toy_options: dict = field(default_factory=dict)  # num_train / num_test / size overrides of a toy preset

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def key(self) -> str:
        """A short hash of everything that changes the result: runs are cached under it."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise DataError(f"unknown config keys {unknown}")
        values = dict(values)
        if "backbone_widths" in values:
            values["backbone_widths"] = tuple(values["backbone_widths"])
        hints = typing.get_type_hints(cls)
        for name, value in values.items():  # `--set weight=0` must hash like 0.0
            if hints[name] is float and isinstance(value, int) and not isinstance(value, bool):
                values[name] = float(value)
        return cls(**values)


_NO_NOVEL_TERMS = dict(
    inclusion_weight=0.0,
    exclusion_weight=0.0,
    consistency_weight=0.0,
    contrastive_weight=0.0,
    keypoint_weight=0.0,
    keypoint_branch=False,
    memory_bank="off",
)

METHODS: dict[str, dict[str, Any]] = {
    "base_only": dict(novel_supervision="none", **_NO_NOVEL_TERMS),
    "point_naive": dict(
        novel_supervision="points",
        novel_matching="class_only",
        **{**_NO_NOVEL_TERMS, "inclusion_weight": 1.0, "exclusion_weight": 1.0},
    ),
    "image_weakshot": dict(
        novel_supervision="image_labels", novel_matching="class_only", complementary_weight=1.0, **_NO_NOVEL_TERMS
    ),
    # first stage: base masks + the keypoint branch; the second stage (pseudo masks) is run by the trainer
    "keypoint_pseudo": dict(
        novel_supervision="points",
        novel_proposals=False,
        consistency_weight=0.0,
        contrastive_weight=0.0,
        memory_bank="off",
    ),
    "ours": dict(),
    "full_supervision": dict(novel_supervision="full_masks", **_NO_NOVEL_TERMS),
}

# Table 2: loss terms and cost terms of `ours`, switched on cumulatively and left out one at a time.
TABLE2_ROWS: dict[str, dict[str, Any]] = {
    "L_in + L_ex": dict(consistency_weight=0.0, contrastive_weight=0.0, memory_bank="off"),
    "L_in + L_ex + L_con": dict(contrastive_weight=0.0, memory_bank="off"),
    "w/o L_in": dict(inclusion_weight=0.0),
    "w/o L_ex": dict(exclusion_weight=0.0),
    "w/o L_con": dict(consistency_weight=0.0),
    "cost: class only": dict(novel_matching="class_only"),
    "cost: + J_in": dict(exclusion_cost=0.0, consistency_cost=0.0),
    "cost: + J_in + J_ex": dict(consistency_cost=0.0),
    "cost: w/o J_in": dict(inclusion_cost=0.0),
    "cost: w/o J_ex": dict(exclusion_cost=0.0),
    "all (ours)": dict(),
}

# Table 3: network-design variants of `ours`.
TABLE3_ROWS: dict[str, dict[str, Any]] = {
    "ours (phi on, max, confident EMA bank, 1 point)": dict(),
    "keypoint head phi off": dict(keypoint_embedding_head=False),
    "union: noisy-OR": dict(class_union="noisy_or"),
    "bank without confidence": dict(memory_bank="plain"),
    "without bank": dict(memory_bank="off", contrastive_weight=0.0),
    "prototype: queue": dict(prototype="queue"),
    "3 points per class": dict(points_per_class=3),
    "5 points per class": dict(points_per_class=5),
    "10 points per class": dict(points_per_class=10),
}

# The real-data recipe (DESIGN §1), one parameter away from the toy defaults.
_RESNET50_MASKFORMER = dict(
    backbone="resnet50",
    embedding_dim=256,
    num_queries=100,
    decoder_layers=6,
    attention_heads=8,
    feed_forward_dim=2048,
    learning_rate=1e-4,
)
REAL_RECIPES: dict[str, dict[str, Any]] = {
    "coco_stuff_10k": dict(_RESNET50_MASKFORMER, iterations=60_000, batch_size=32, crop_size=640),
    "ade20k": dict(_RESNET50_MASKFORMER, iterations=160_000, batch_size=16, crop_size=512),
}


def config_for(method: str, **overrides: Any) -> TrainConfig:
    """The config of ``method`` (a key of METHODS), with the real recipe for real datasets, then overrides."""
    if method not in METHODS:
        raise DataError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    values: dict[str, Any] = {"method": method, **METHODS[method]}
    dataset = overrides.get("dataset", TrainConfig.dataset)
    values.update(REAL_RECIPES.get(dataset, {}))
    values.update(overrides)
    return TrainConfig.from_dict(values)
