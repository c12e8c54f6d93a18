"""Run configuration: one dataclass, the methods as named overrides.

Every switch of Tables 2 and 3 is a field here, so a table row (``pwslib.experiments.tables``) is ``config_for(method, **row)``. Fields
marked "(our choice)" are this project's reading where the poster gives no detail.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import typing
from dataclasses import dataclass, field
from typing import Any


from pwslib.schedule import DECAYS
from pwslib.data.points import MAX_SEED
from pwslib.data.toy import GENERATOR_VERSION
from pwslib.data.toy import PRESETS as TOY_PRESETS
from pwslib.io import DataError


_ABSENT = object()
# Fields added after runs were cached, at the value that trains exactly as before they existed.
KEY_NEUTRAL: dict[str, Any] = {"learning_rate_decay": "poly", "weight_average_decay": 0.0, "pixel_decoder_kernel": 3}


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
    toy_generator: int = GENERATOR_VERSION  # version of the toy scenes a run is trained on (part of its key)
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
    inclusion_weight: float = 0.0  # L_in: off for ours (reports/protocol.md, "Defaults changed"); Table 2 puts it back
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
    pretrained_backbone: bool = True  # ImageNet (resnet50) / the procedural pretraining (small_resnet, pretraining.py)
    pretraining_steps: int = 32000  # of small_resnet's procedural pretraining (weights ship, pretraining.py); 32,000 > 16,000: reports/pretraining_saturation.md
    precision: str = "auto"  # float32 | bfloat16 (autocast of the network; losses stay float32) | auto: the machine's
    # (resolve_precision); the key holds what was asked, metrics.json what ran
    embedding_dim: int = 64
    pixel_decoder_kernel: int = 3  # of the FPN's output convolutions: 3 as in MaskFormer | 1 (cheaper, reports/recipe.md)
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
    learning_rate: float = (
        2e-3  # split 1, 500 iterations: 1e-3 -> 2e-3 (+ warm-up) total mIoU 34.8 -> 36.9 (reports/archive/recipe_earlier_defaults.md)
    )
    warmup_iterations: int = 50  # linear warm-up of the learning rate before its decay
    learning_rate_decay: str = "poly"  # poly: (1 − step / iterations) ^ poly_power | cosine: ½ (1 + cos(π step / iterations))
    backbone_learning_rate_factor: float = 1.0  # the backbone trains at learning_rate x this (the rest at learning_rate)
    weight_decay: float = 1e-4
    poly_power: float = 0.9
    gradient_clip: float = 1.0
    weight_average_decay: float = 0.0  # 0: off; else the scored model is an exponential moving average of the weights
    pseudo_label_share: float = 0.5  # keypoint_pseudo: share of iterations spent in the first stage (our choice)
    toy_options: dict = field(default_factory=dict)  # num_train / num_test / num_validation / size overrides of a toy preset

    def __post_init__(self):
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def key(self) -> str:
        """A short hash of everything that changes the result: runs are cached under it. A field of
        ``KEY_NEUTRAL`` at its listed value stays out of the hash, so runs cached before it existed stay valid."""
        values = {name: value for name, value in self.to_dict().items() if KEY_NEUTRAL.get(name, _ABSENT) != value}
        text = json.dumps(values, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    @classmethod
    def from_saved(cls, values: dict[str, Any]) -> "TrainConfig":
        """The config of a run folder's ``config.json``: runs saved before ``toy_generator`` existed were
        trained on toy generator 2."""
        return cls.from_dict({"toy_generator": 2, **values} if isinstance(values, dict) else values)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        if not isinstance(values, dict):
            raise DataError(f"a run config is a JSON object of fields, not {type(values).__name__} {str(values)[:60]}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise DataError(f"unknown config keys {unknown}")
        values = dict(values)
        if "backbone_widths" in values:
            if not isinstance(values["backbone_widths"], (list, tuple)):
                raise DataError(f"backbone_widths must be four positive whole numbers, got {values['backbone_widths']!r}")
            values["backbone_widths"] = tuple(values["backbone_widths"])
        hints = typing.get_type_hints(cls)
        for name, value in values.items():  # `--set weight=0` must hash like 0.0
            if hints[name] is float and isinstance(value, int) and not isinstance(value, bool):
                values[name] = float(value)
        return cls(**values)


# Every field with a fixed set of values (DataError names the choices), and the numeric ranges.
CHOICES: dict[str, tuple] = {
    "point_rule": ("uniform", "centre"),
    "novel_supervision": ("none", "points", "image_labels", "full_masks"),
    "novel_matching": ("points", "class_only"),
    "class_union": ("max", "noisy_or"),
    "memory_bank": ("confident", "plain", "off"),
    "prototype": ("ema", "queue"),
    "point_cost": ("probability", "log"),
    "backbone": ("small_resnet", "resnet50"),
    "precision": ("auto", "float32", "bfloat16"),
    "learning_rate_decay": DECAYS,
    "pixel_decoder_kernel": (1, 3),
}
POSITIVE = (
    "split points_per_class num_queries decoder_layers attention_heads feed_forward_dim embedding_dim queue_size "
    "iterations batch_size learning_rate temperature pretraining_steps"
).split()
AT_MOST_ONE = ("bank_momentum", "pseudo_label_share", "weight_average_decay")
SEEDS = ("seed", "data_seed", "point_seed")
SIZE_MULTIPLE = 32  # image and crop sizes: the backbone downsamples by 32
TOY_OPTIONS = ("num_train", "num_test", "num_validation", "size")


def validate(config: "TrainConfig") -> None:
    """Types, ranges and choices of every field, checked when a config is built (before anything is written)."""
    hints = typing.get_type_hints(type(config))
    for item in dataclasses.fields(config):
        name, value, hint = item.name, getattr(config, item.name), hints[item.name]
        if hint in (int, float, bool, str) and (
            not isinstance(value, hint) or (hint is not bool and isinstance(value, bool))
        ):
            kind = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}[hint]
            raise DataError(f"config field {name} must be {kind}, got {value!r}")
        if hint is float and not math.isfinite(value):
            raise DataError(f"config field {name} must be a finite number, got {value!r}")
        if hint in (int, float) and value < 0:
            raise DataError(f"config field {name} must not be negative, got {value!r}")
    for name in POSITIVE:
        if getattr(config, name) <= 0:
            raise DataError(f"config field {name} must be positive, got {getattr(config, name)!r}")
    for name in AT_MOST_ONE:
        if getattr(config, name) >= 1:
            raise DataError(f"config field {name} must be below 1, got {getattr(config, name)!r}")
    for name, choices in CHOICES.items():
        if getattr(config, name) not in choices:
            raise DataError(f"unknown {name} {getattr(config, name)!r}; choose one of {list(choices)}")
    if config.method not in METHODS:
        raise DataError(f"unknown method {config.method!r}; choose one of {list(METHODS)}")
    widths = config.backbone_widths
    if len(widths) != 4 or not all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths):
        raise DataError(f"backbone_widths must be four positive whole numbers, got {list(widths)}")
    if config.embedding_dim % config.attention_heads:
        raise DataError(
            f"embedding_dim {config.embedding_dim} must be divisible by attention_heads {config.attention_heads}"
        )
    for name in SEEDS:
        if getattr(config, name) > MAX_SEED:
            raise DataError(f"config field {name} must be at most {MAX_SEED}, got {getattr(config, name)!r}")
    if config.crop_size is not None:
        crop = config.crop_size
        if not isinstance(crop, int) or isinstance(crop, bool) or crop <= 0 or crop % SIZE_MULTIPLE:
            raise DataError(f"crop_size must be a positive multiple of {SIZE_MULTIPLE} (or null: no crop), got {crop!r}")
    if not isinstance(config.toy_options, dict):
        raise DataError(f'toy_options must be a mapping such as {{"num_train": 200}}, got {config.toy_options!r}')
    for key, value in config.toy_options.items():
        if key not in TOY_OPTIONS:
            raise DataError(f"unknown toy_options key {key!r}; choose from {list(TOY_OPTIONS)}")
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise DataError(f"toy_options {key} must be a positive whole number, got {value!r}")
    size = config.toy_options.get("size")
    if size is not None and size % SIZE_MULTIPLE:
        raise DataError(f"toy_options size must be a multiple of {SIZE_MULTIPLE} (the network downsamples by 32), got {size}")
    if config.crop_size is not None and config.dataset in TOY_PRESETS:
        image_size = size or TOY_PRESETS[config.dataset].image_size
        if config.crop_size > image_size:
            raise DataError(f"crop_size {config.crop_size} is larger than the {image_size}-pixel toy images")


_NO_NOVEL_TERMS = dict(
    exclusion_weight=0.0,
    consistency_weight=0.0,
    contrastive_weight=0.0,
    keypoint_weight=0.0,
    keypoint_branch=False,
    memory_bank="off",
)

METHODS: dict[str, dict[str, Any]] = {
    "base_only": dict(novel_supervision="none", **_NO_NOVEL_TERMS),
    # its click losses at 0.3: on the development split L_in and L_ex at weight 1 pull a novel proposal over base
    # pixels (base mIoU 45.3 -> 50.3, total 43.3 -> 46.8 beyond the seed noise at 0.3; reports/point_weights.md)
    "point_naive": dict(
        novel_supervision="points",
        novel_matching="class_only",
        **{**_NO_NOVEL_TERMS, "inclusion_weight": 0.3, "exclusion_weight": 0.3},
    ),
    "image_weakshot": dict(
        novel_supervision="image_labels", novel_matching="class_only", complementary_weight=1.0, **_NO_NOVEL_TERMS
    ),
    # first stage: base masks + the keypoint branch (its L_in on); the second stage (pseudo masks) is run by the trainer
    "keypoint_pseudo": dict(
        novel_supervision="points",
        inclusion_weight=1.0,
        novel_proposals=False,
        consistency_weight=0.0,
        contrastive_weight=0.0,
        memory_bank="off",
    ),
    # the defaults of TrainConfig, each stated there once
    "ours": dict(),
    "full_supervision": dict(novel_supervision="full_masks", **_NO_NOVEL_TERMS),
}

# The real-data recipe (MaskFormer's, as the poster trains it), one parameter away from the toy defaults.
_RESNET50_MASKFORMER = dict(
    backbone="resnet50",
    embedding_dim=256,
    num_queries=100,
    decoder_layers=6,
    attention_heads=8,
    feed_forward_dim=2048,
    learning_rate=1e-4,
    warmup_iterations=0,
)
REAL_RECIPES: dict[str, dict[str, Any]] = {
    "coco_stuff_10k": dict(_RESNET50_MASKFORMER, iterations=60_000, batch_size=32, crop_size=640),
    "ade20k": dict(_RESNET50_MASKFORMER, iterations=160_000, batch_size=16, crop_size=512),
}


def config_for(method: str, **overrides: Any) -> TrainConfig:
    """The config of ``method`` (a key of METHODS), with the real recipe for real datasets and a toy preset's
    ``point_rule``, then overrides.

    ``precision`` stays what was asked (``auto`` by default), so the same command has the same cache key on
    every machine; the precision a run computed in is decided when its model is built (``resolve_precision``)
    and recorded in its ``metrics.json`` (``precision_ran``).
    """
    if method not in METHODS:
        raise DataError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    values: dict[str, Any] = {"method": method, **METHODS[method]}
    dataset = overrides.get("dataset", TrainConfig.dataset)
    values.update(REAL_RECIPES.get(dataset, {}))
    if dataset in TOY_PRESETS:  # where this toy preset's annotators click
        values["point_rule"] = TOY_PRESETS[dataset].point_rule
    values.update(overrides)
    return TrainConfig.from_dict(values)
