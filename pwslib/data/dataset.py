"""One sample structure for every benchmark, with augmentation that moves points with the pixels.

A sample is a dict:
- ``image``: (3, H, W) uint8 tensor (the model normalises);
- ``full_label``: (H, W) int64, every class (used for evaluation and by ``full_supervision``);
- ``base_label``: (H, W) int64, novel pixels set to 255 (what the base annotator drew);
- ``points``: (P, 3) int64 rows ``[y, x, class]`` (novel clicks and base clicks, see ``points.py``);
- ``image_labels``: (C,) bool, the classes known to be present (base from the base mask, novel from
  the clicks that survived augmentation);
- ``keypoints``: (K, 3) int64 ``[y, x, class]``, ``base_keypoints_per_class`` pixels drawn uniformly
  from each base class's mask: the keypoint branch learns "point -> mask" from them;
- ``pseudo_label``: (H, W) int64, only when the dataset carries pseudo labels (``keypoint_pseudo``);
- ``index``: the sample's index in its source.
``collate`` stacks a list of samples and pads ``points`` and ``keypoints`` with class -1.
Every random draw of a sample comes from ``(seed, epoch, index)``, so a sample is the same whichever
process or batch it lands in (resume and DDP equivalence rely on this).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol, Sequence

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from pwslib.data.points import base_label_map, read_points
from pwslib.data.splits import IGNORE_INDEX, ClassSplit
from pwslib.io import DataError


class Source(Protocol):
    """Images and full label maps of one subset, by index; ``root`` is the dataset's folder (``points/`` lives there)."""

    names: Sequence[str]
    root: Path

    def __len__(self) -> int: ...

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) uint8 image and (H, W) uint8 full label map (255 = no label)."""

    def check_labels(self) -> None:
        """Raise DataError naming the first label map with a class id out of range (before any training)."""


class ArraySource:
    """A subset held in arrays (the toy benchmark): ``images`` (N, H, W, 3), ``labels`` (N, H, W)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, subset: str, root: Path):
        if len(images) == 0:
            raise DataError(f"the {subset} subset is empty: generate it with at least one image")
        self.images, self.labels, self.root = images, labels, Path(root)
        self.names = [f"{subset}_{i:05d}" for i in range(len(images))]

    def __len__(self) -> int:
        return len(self.images)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.images[index]), np.asarray(self.labels[index])

    def check_labels(self) -> None:
        """Nothing left to check: a toy cache's label ids are checked when it is loaded (``toy.verify_cache``)."""


class FolderSource:
    """A prepared real benchmark: ``root/images/<subset>/<name>.jpg`` and ``root/labels/<subset>/<name>.png``."""

    def __init__(self, root: Path, subset: str, num_classes: int):
        self.root, self.subset, self.num_classes = Path(root), subset, num_classes
        image_dir, label_dir = self.root / "images" / subset, self.root / "labels" / subset
        if not image_dir.is_dir() or not label_dir.is_dir():
            raise DataError(
                f"dataset folder {self.root} has no {image_dir.name}/{subset} or labels/{subset}; "
                f"prepare it with the script for this benchmark in data_scripts/ (see the README)"
            )
        self.names = sorted(p.stem for p in label_dir.glob("*.png"))
        if not self.names:
            raise DataError(f"{label_dir} holds no label PNGs: the {subset} split is empty; run the prepare step again")

    def __len__(self) -> int:
        return len(self.names)

    def load(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        name = self.names[index]
        image_path = self.root / "images" / self.subset / f"{name}.jpg"
        label_path = self.root / "labels" / self.subset / f"{name}.png"
        image = read_image(image_path, mode="RGB")
        label = read_label(label_path)
        if image.shape[:2] != label.shape:
            raise DataError(
                f"{label_path} is {label.shape[1]}x{label.shape[0]} but its image {image_path} is "
                f"{image.shape[1]}x{image.shape[0]}; re-convert this label from the original annotation"
            )
        check_label_range(label, self.num_classes, label_path)
        return image, label

    def check_labels(self) -> None:
        """Read every label PNG (not the images) and check its class ids, so a bad test label stops a run before
        training rather than at its scoring."""
        for name in self.names:
            label_path = self.root / "labels" / self.subset / f"{name}.png"
            check_label_range(read_label(label_path), self.num_classes, label_path)


@contextlib.contextmanager
def opened_image(path: Path) -> Iterator[Image.Image]:
    """``PIL.Image.open(path)``, with a missing or undecodable file raised as ``DataError`` naming it."""
    try:
        with Image.open(path) as image:
            yield image
    except FileNotFoundError as error:
        raise DataError(f"{path} is missing; run the prepare step for this dataset again") from error
    except (UnidentifiedImageError, OSError, SyntaxError) as error:
        raise DataError(
            f"{path} is corrupt or not an image ({error}); re-extract it from the original archive "
            f"(data_scripts/) or delete it and its label"
        ) from error


def read_image(path: Path, mode: str) -> np.ndarray:
    """Decode an image file into an array in ``mode`` (e.g. 'RGB')."""
    with opened_image(path) as image:
        return np.asarray(image.convert(mode) if image.mode != mode else image.copy())


LABEL_MODES = ("L", "P")  # 8-bit grey or palette: the pixel values are the class ids


def read_label(path: Path) -> np.ndarray:
    """A label PNG as its class ids (H, W) uint8, read as the indices it stores whatever its mode: a palette
    ('P', VOC style) image's palette is only how the ids are shown, so it is never converted to grey. RGB and
    other modes are refused: their colours are not ids."""
    with opened_image(path) as image:
        if image.mode not in LABEL_MODES:
            raise DataError(
                f"{path} is a {image.mode} image, not a label map of class ids ('L' or 'P'); convert colour "
                f"labels to ids with the conversion of data_scripts/ for this dataset (each colour -> its class "
                f"id, 255 = ignore) and save them as 8-bit PNGs"
            )
        return np.asarray(image).copy()


def check_label_range(label: np.ndarray, num_classes: int, where: object) -> None:
    bad = (label >= num_classes) & (label != IGNORE_INDEX)
    if bad.any():
        ids = sorted(int(v) for v in np.unique(label[bad]))
        raise DataError(
            f"{where} has label ids {ids} out of range: valid ids are 0..{num_classes - 1} and "
            f"{IGNORE_INDEX} (ignore); was it converted with the right class mapping?"
        )


@dataclass(frozen=True)
class Augmentation:
    """Random resized crop + horizontal flip; resizing by nearest index mapping, so a click moved with
    the pixels always lands on a pixel of its own class (a click whose pixel does not survive a
    down-scaling is dropped)."""

    output_size: tuple[int, int]
    min_scale: float = 0.5  # smallest crop window, as a share of the image area
    max_scale: float = 1.0
    aspect_range: tuple[float, float] = (3 / 4, 4 / 3)
    flip: bool = True

    def window(self, height: int, width: int, rng: np.random.Generator) -> tuple[int, int, int, int]:
        area = rng.uniform(self.min_scale, self.max_scale) * height * width
        aspect = np.exp(rng.uniform(*np.log(self.aspect_range)))
        crop_h = int(round(min(height, max(1.0, np.sqrt(area / aspect)))))
        crop_w = int(round(min(width, max(1.0, np.sqrt(area * aspect)))))
        top = int(rng.integers(0, height - crop_h + 1))
        left = int(rng.integers(0, width - crop_w + 1))
        return top, left, crop_h, crop_w

    def __call__(self, image: np.ndarray, labels: list[np.ndarray], points: np.ndarray, rng: np.random.Generator):
        """Augment ``image`` (H, W, 3), every map in ``labels`` (H, W) and ``points`` (P, 3) together."""
        height, width = image.shape[:2]
        top, left, crop_h, crop_w = self.window(height, width, rng)
        out_h, out_w = self.output_size
        source_rows = top + ((np.arange(out_h) + 0.5) * crop_h / out_h).astype(np.int64)
        source_cols = left + ((np.arange(out_w) + 0.5) * crop_w / out_w).astype(np.int64)
        if self.flip and rng.random() < 0.5:
            source_cols = source_cols[::-1].copy()
        image = image.take(source_rows, 0).take(source_cols, 1)
        labels = [label.take(source_rows, 0).take(source_cols, 1) for label in labels]
        points = move_points(points, source_rows, source_cols)
        return image, labels, points


def _nearest_output_index(source_index: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each source pixel in ``values``: the middle output index that reads it, and whether one does."""
    ascending = source_index[0] <= source_index[-1]
    ordered = source_index if ascending else source_index[::-1]
    first = np.searchsorted(ordered, values, side="left")
    last = np.searchsorted(ordered, values, side="right")
    hit = last > first
    middle = np.clip((first + last - 1) // 2, 0, len(ordered) - 1)
    if not ascending:
        middle = len(ordered) - 1 - middle
    return middle, hit


def move_points(points: np.ndarray, source_rows: np.ndarray, source_cols: np.ndarray) -> np.ndarray:
    """Carry ``points`` (P, 3) through an index-map resize; points not read by any output pixel are dropped."""
    if len(points) == 0:
        return points
    rows, row_hit = _nearest_output_index(source_rows, points[:, 0])
    cols, col_hit = _nearest_output_index(source_cols, points[:, 1])
    keep = row_hit & col_hit
    return np.stack([rows[keep], cols[keep], points[keep, 2]], axis=1).astype(np.int64)


class PointSupervisionDataset(torch.utils.data.Dataset):
    """Samples of one subset for one class split; training subsets carry their simulated points."""

    def __init__(
        self,
        source: Source,
        split: ClassSplit,
        points_file: Path | None = None,
        augmentation: Augmentation | None = None,
        seed: int = 0,
        validate_points: bool = True,
        base_keypoints_per_class: int = 1,
    ):
        if len(source) == 0:
            raise DataError("the dataset is empty: its source has no images")
        self.source, self.split, self.augmentation, self.seed = source, split, augmentation, seed
        self.base_keypoints_per_class = base_keypoints_per_class
        self.pseudo_labels: np.ndarray | None = None  # (N, H, W) uint8, set by keypoint_pseudo
        self.epoch = 0
        self.points: list[np.ndarray] = [np.zeros((0, 3), dtype=np.int64)] * len(source)
        if points_file is not None:
            labels = [source.load(i)[1] for i in range(len(source))] if validate_points else None
            content = read_points(points_file, source.names, labels, split)
            self.points = [
                np.asarray(content["images"][n]["points"], dtype=np.int64).reshape(-1, 3) for n in source.names
            ]
            self.points_meta = content["meta"]
        self._is_novel = np.zeros(256, dtype=bool)
        self._is_novel[list(split.novel_classes)] = True

    def set_epoch(self, epoch: int) -> None:
        """Augmentation draws from ``(seed, epoch, index)``: a resumed run sees the same crops."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> dict:
        image, full_label = self.source.load(index)
        base_label = base_label_map(full_label, self.split)
        points = self.points[index]
        maps = [full_label, base_label] + ([self.pseudo_labels[index]] if self.pseudo_labels is not None else [])
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if self.augmentation is not None:
            image, maps, points = self.augmentation(image, maps, points, rng)
        full_label, base_label = maps[0], maps[1]
        pixels_per_class = np.bincount(base_label.ravel(), minlength=IGNORE_INDEX + 1)[:IGNORE_INDEX]  # (255,)
        image_labels = pixels_per_class[: self.split.num_classes] > 0
        clicked = points[:, 2]
        image_labels[clicked[self._is_novel[clicked]]] = True
        sample = {
            "image": torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))),
            "full_label": torch.from_numpy(full_label.astype(np.int64)),
            "base_label": torch.from_numpy(base_label.astype(np.int64)),
            "points": torch.from_numpy(np.ascontiguousarray(points, dtype=np.int64)),
            "keypoints": torch.from_numpy(
                sample_base_keypoints(base_label, pixels_per_class, self.base_keypoints_per_class, rng)
            ),
            "image_labels": torch.from_numpy(image_labels),
            "index": index,
        }
        if self.pseudo_labels is not None:
            sample["pseudo_label"] = torch.from_numpy(maps[2].astype(np.int64))
        return sample


def sample_base_keypoints(
    base_label: np.ndarray, pixels_per_class: np.ndarray, per_class: int, rng: np.random.Generator
) -> np.ndarray:
    """``per_class`` pixels drawn uniformly from each base class's mask: (K, 3) rows ``[y, x, class]``, classes
    ascending; a draw is the k-th pixel of its class in raster order, k uniform over the class's pixels.
    ``pixels_per_class``: (255,) pixel count of each class id in ``base_label`` (ignore excluded)."""
    flat = base_label.ravel()
    classes = np.flatnonzero(pixels_per_class)
    if per_class <= 0 or len(classes) == 0:
        return np.zeros((0, 3), dtype=np.int64)
    ranks = (rng.random((len(classes), per_class)) * pixels_per_class[classes, None]).astype(np.int64)  # (classes, per_class)
    pixels = np.concatenate([np.flatnonzero(flat == c)[rank] for c, rank in zip(classes, ranks)])
    width = base_label.shape[1]
    return np.stack([pixels // width, pixels % width, np.repeat(classes, per_class)], 1).astype(np.int64)


def _pad_rows(rows: list[torch.Tensor]) -> torch.Tensor:
    """(P_i, 3) tensors -> (B, max P_i, 3), padded with rows of -1 (at least one row)."""
    padded = torch.full((len(rows), max(1, max(len(r) for r in rows)), 3), -1, dtype=torch.int64)
    for index, row in enumerate(rows):
        padded[index, : len(row)] = row
    return padded


def collate(samples: list[dict]) -> dict:
    """Stack samples into a batch; ``points`` (B, P_max, 3) and ``keypoints`` are padded with -1."""
    stacked = [
        key for key in ("image", "full_label", "base_label", "image_labels", "pseudo_label") if key in samples[0]
    ]
    batch = {key: torch.stack([s[key] for s in samples]) for key in stacked}
    batch["points"] = _pad_rows([s["points"] for s in samples])
    batch["keypoints"] = _pad_rows([s["keypoints"] for s in samples])
    batch["index"] = torch.tensor([s["index"] for s in samples])
    return batch
