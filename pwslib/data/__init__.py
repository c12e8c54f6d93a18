"""Benchmarks by name: ``toy-stuff``, ``toy-scene`` (embedded) and ``coco_stuff_10k``, ``ade20k`` (prepared).

``build_dataset`` is the one entry point the training and evaluation code uses::

    train = build_dataset("toy-stuff", "train", split=1, points_per_class=1)
    sample = train[0]   # see dataset.py for the sample structure
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pwslib.data.dataset import ArraySource, Augmentation, FolderSource, PointSupervisionDataset, Source, collate
from pwslib.data.points import MAX_SEED, cooccurrence, points_filename, simulate_points
from pwslib.data.splits import IGNORE_INDEX, ClassSplit, real_benchmark_split
from pwslib.data.toy import PRESETS, SUBSETS, load_toy
from pwslib.io import DataError, default_data_root, write_json_atomic

REAL_BENCHMARKS = ("coco_stuff_10k", "ade20k")
DATASETS = tuple(PRESETS) + REAL_BENCHMARKS

__all__ = [
    "Augmentation",
    "ClassSplit",
    "DATASETS",
    "IGNORE_INDEX",
    "PointSupervisionDataset",
    "build_dataset",
    "class_split",
    "collate",
    "cooccurrence",
    "ensure_points",
    "open_source",
]


def _check_name(dataset: str) -> None:
    if dataset not in PRESETS and dataset not in REAL_BENCHMARKS:  # PRESETS, not DATASETS: a study may add a preset
        raise DataError(f"unknown dataset {dataset!r}; choose one of {list(DATASETS)}")


def class_split(dataset: str, split: int = 1) -> ClassSplit:
    """Class names and novel classes of split ``split`` of ``dataset``."""
    _check_name(dataset)
    return PRESETS[dataset].split(split) if dataset in PRESETS else real_benchmark_split(dataset, split)


def open_source(dataset: str, subset: str, root: Path | None = None, data_seed: int = 0, **toy_options) -> Source:
    """The images and full label maps of ``subset`` (``train``, ``test``, or ``validation``: the toy presets' tuning
    images); the toy benchmark is generated (once, then cached under ``root``) with ``data_seed`` and ``toy_options``."""
    _check_name(dataset)
    if subset not in SUBSETS:
        raise DataError(f"unknown subset {subset!r}; choose one of {list(SUBSETS)}")
    if subset == "validation" and dataset not in PRESETS:
        raise DataError(
            f"{dataset} has no validation subset here: its recipe is tuned on the toy presets' validation images, "
            "and its own splits are only reported on"
        )
    if dataset in PRESETS:
        toy = load_toy(dataset, data_seed, root, **toy_options)
        return ArraySource(toy.images[subset], toy.labels[subset], subset, toy.folder)
    folder = (Path(root) if root else default_data_root()) / dataset
    if not folder.exists():
        raise DataError(
            f"dataset folder {folder} does not exist; download and convert {dataset} with "
            f"`python data_scripts/{dataset}.py --root {folder.parent}` (see the README)"
        )
    return FolderSource(folder, subset, class_split(dataset).num_classes)


def ensure_points(
    dataset: str,
    split: int = 1,
    points_per_class: int = 1,
    rule: str = "uniform",
    seed: int = 0,
    root: Path | None = None,
    data_seed: int = 0,
    **toy_options,
) -> Path:
    """The point file of the training subset, simulated and saved on first use (same seed, same file)."""
    for name, value in (("seed", seed), ("data_seed", data_seed)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_SEED:
            raise DataError(f"the point simulation's {name} must be a whole number in 0..{MAX_SEED}, got {value!r}")
    source = open_source(dataset, "train", root, data_seed, **toy_options)
    return points_of(source, dataset, split, points_per_class, rule, seed)


def points_of(source: Source, dataset: str, split: int, points_per_class: int, rule: str, seed: int) -> Path:
    """The point file of the training ``source`` (in ``source.root/points/``), simulated on first use."""
    path = source.root / "points" / points_filename(split, points_per_class, rule, seed)
    if not path.exists():
        labels = [source.load(i)[1] for i in range(len(source))]
        classes = class_split(dataset, split)
        write_json_atomic(path, simulate_points(labels, source.names, classes, points_per_class, rule, seed=seed))
    return path


def build_dataset(
    dataset: str,
    subset: str,
    split: int = 1,
    points_per_class: int = 1,
    point_rule: str = "uniform",
    point_seed: int = 0,
    augment: bool | None = None,
    crop_size: int | None = None,
    root: Path | None = None,
    data_seed: int = 0,
    seed: int = 0,
    base_keypoints_per_class: int | None = None,
    **toy_options,
) -> PointSupervisionDataset:
    """A ready dataset. Training subsets carry their points and are augmented unless ``augment=False``."""
    source = open_source(dataset, subset, root, data_seed, **toy_options)
    points_file = (
        points_of(source, dataset, split, points_per_class, point_rule, point_seed) if subset == "train" else None
    )
    augment = subset == "train" if augment is None else augment
    augmentation = None
    if augment:
        size = crop_size or _image_size(source)
        augmentation = Augmentation((size, size))
    keypoints = points_per_class if base_keypoints_per_class is None else base_keypoints_per_class
    built = PointSupervisionDataset(
        source, class_split(dataset, split), points_file, augmentation, seed=seed, base_keypoints_per_class=keypoints
    )
    if points_file is not None:
        check_points_made_with(built.points_meta, points_file, points_per_class=points_per_class, rule=point_rule, seed=point_seed)
    return built


def check_points_made_with(meta: dict, path: Path, **made_with) -> None:
    """Refuse a points file whose ``meta`` says it was simulated with other parameters than ``made_with`` (clicks
    per class, rule, seed; the split is checked by its novel classes when the file is read), e.g. a 3-click file
    saved under the 1-click name."""
    wrong = {name: value for name, value in made_with.items() if meta.get(name) != value}
    if wrong:
        found = ", ".join(f"{name}={meta.get(name)!r}" for name in wrong)
        wanted = ", ".join(f"{name}={value!r}" for name, value in wrong.items())
        raise DataError(
            f"points file {path} was simulated with {found}, not {wanted}: it was renamed or copied by hand; "
            f"delete it and it is simulated again with the right parameters"
        )


def _image_size(source: Source) -> int:
    image, _ = source.load(0)
    return int(min(image.shape[:2]))


def training_cooccurrence(dataset: PointSupervisionDataset) -> np.ndarray:
    """P(a | c) (C, C) from the training images' known labels: base from base masks, novel from clicks."""
    split = dataset.split
    novel = np.zeros(256, dtype=bool)
    novel[list(split.novel_classes)] = True
    image_labels = []
    for index in range(len(dataset)):
        _, label = dataset.source.load(index)
        present = np.unique(label)
        known = [int(c) for c in present if c != IGNORE_INDEX and not novel[c]]
        known += sorted({int(c) for c in dataset.points[index][:, 2] if novel[c]})
        image_labels.append(known)
    return cooccurrence(image_labels, split.num_classes)
