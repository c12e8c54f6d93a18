"""What a run needs, assembled from its config: the model, the memory bank and the datasets.

The trainer, the evaluator, the explorer and the studies all build a run's parts here, so scoring a checkpoint
needs this module and the model, never the trainer (as nanoGPT's ``sample.py`` needs only ``model.py``).
"""

from __future__ import annotations

import dataclasses

from torch.utils.data import Dataset

from pwslib.config import TrainConfig
from pwslib.data import build_dataset
from pwslib.data.toy import GENERATOR_VERSION
from pwslib.data.toy import PRESETS as TOY_PRESETS
from pwslib.distributed import resolve_precision
from pwslib.io import DataError
from pwslib.method.memory_bank import MemoryBank
from pwslib.model.maskformer import ModelConfig, PointWeakShotMaskFormer
from pwslib.pretraining import PretrainingRecipe, pretrained_backbone


def build_model(config: TrainConfig, num_classes: int) -> PointWeakShotMaskFormer:
    """The model of ``config``: every ``ModelConfig`` field is read from the run config of the same name; the
    backbone starts from its pretrained weights when the config asks for them."""
    shared = {f.name: getattr(config, f.name) for f in dataclasses.fields(ModelConfig) if f.name != "num_classes"}
    shared["backbone_widths"] = tuple(shared["backbone_widths"])
    shared["pixel_classifier"] = config.pixel_classifier and config.pixel_classification_weight > 0
    shared["precision"] = resolve_precision(config.precision)
    model = PointWeakShotMaskFormer(ModelConfig(num_classes=num_classes, **shared))
    recipe = PretrainingRecipe.of_run(config)
    if recipe is not None:
        model.backbone.load_state_dict(pretrained_backbone(recipe))  # copied into the channels-last parameters
    return model


def build_bank(config: TrainConfig, num_classes: int) -> MemoryBank | None:
    """The memory bank of L_ctl, or None when the config has no contrastive term."""
    if config.memory_bank == "off" or not config.contrastive_weight:
        return None
    return MemoryBank(
        num_classes,
        config.embedding_dim,
        config.prototype,
        config.bank_momentum,
        config.queue_size,
        config.temperature,
        use_confidence=config.memory_bank == "confident",
    )


def test_dataset(config: TrainConfig, subset: str = "test") -> Dataset:
    """The images a run of ``config`` is scored on (full label maps, no clicks, no augmentation); ``subset``
    ``validation``: the toy preset's validation images, on which every tuning decision is scored."""
    if config.dataset in TOY_PRESETS and config.toy_generator != GENERATOR_VERSION:
        raise DataError(
            f"this run was trained on toy generator {config.toy_generator}, and this code draws the toy scenes of "
            f"generator {GENERATOR_VERSION}: its data no longer exists; train a new run"
        )
    return build_dataset(config.dataset, subset, split=config.split, data_seed=config.data_seed, **config.toy_options)


def datasets(config: TrainConfig) -> tuple[Dataset, Dataset]:
    """The training set (clicks on novel classes, crops, flips) and the test set of a run of ``config``."""
    test = test_dataset(config)  # first: it refuses a run of another toy generator before anything is built
    test.source.check_labels()  # a bad test label stops the run now, not after training
    train = build_dataset(
        config.dataset,
        "train",
        split=config.split,
        data_seed=config.data_seed,
        points_per_class=config.points_per_class,
        point_rule=config.point_rule,
        point_seed=config.point_seed,
        crop_size=config.crop_size,
        seed=config.seed,
        **config.toy_options,
    )
    return train, test
