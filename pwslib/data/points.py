"""Point annotations: the novel-class supervision, simulated once from full label maps and saved.

For every training image the simulator keeps:
- the base label map: the full label map with novel-class pixels set to ignore (255);
- for every novel class present, ``points_per_class`` positive clicks on its mask, by rule
  ``uniform`` (uniform over the mask) or ``centre`` (the pixel farthest from the mask boundary first,
  further clicks uniform over the inner half of the mask: pixels at least half as far from the
  boundary as the centre);
- ``base_points_per_image`` clicks on base-labelled pixels (option, default 3): base masks are known,
  so these are free negatives for every novel class;
- the image-level label set (base from the base mask, novel from the points).

A point is stored as ``[y, x, class]`` in pixels. The negatives of novel class ``c`` in an image are all
of that image's points whose class is not ``c`` (the other novel classes' clicks and the base clicks).
The file is written once, seeded; the same seed gives an identical file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
from scipy import ndimage

from pwslib.data.splits import IGNORE_INDEX, ClassSplit
from pwslib.io import DataError

MAX_SEED = 2**32 - 1  # numpy's and torch's generators both take seeds up to here

POINT_RULES = ("uniform", "centre")
POINTS_PER_CLASS_CHOICES = (1, 3, 5, 10)


def base_label_map(label: np.ndarray, split: ClassSplit) -> np.ndarray:
    """``label`` (H, W) with every novel-class pixel set to ignore: what the base annotator drew."""
    is_novel = np.zeros(256, dtype=bool)
    is_novel[list(split.novel_classes)] = True
    return np.where(is_novel[label], IGNORE_INDEX, label).astype(label.dtype)


def pick_pixels(mask: np.ndarray, count: int, rule: str, rng: np.random.Generator) -> list[list[int]]:
    ys, xs = np.nonzero(mask)
    if rule == "uniform":
        picks = rng.choice(len(ys), size=count, replace=len(ys) < count)
        return [[int(ys[p]), int(xs[p])] for p in picks]
    if rule == "centre":
        depth = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1][ys, xs]
        first = int(np.argmax(depth))
        chosen = [[int(ys[first]), int(xs[first])]]
        if count > 1:
            inner = np.nonzero(depth >= depth[first] / 2)[0]
            picks = rng.choice(inner, size=count - 1, replace=len(inner) < count - 1)
            chosen += [[int(ys[p]), int(xs[p])] for p in picks]
        return chosen
    raise DataError(f"unknown point rule {rule!r}; choose one of {POINT_RULES}")


def simulate_image_points(
    label: np.ndarray,
    split: ClassSplit,
    points_per_class: int,
    rule: str,
    base_points_per_image: int,
    rng: np.random.Generator,
) -> dict:
    """Points and image-level labels of one image from its full label map ``label`` (H, W)."""
    present = [int(c) for c in np.unique(label) if c != IGNORE_INDEX]
    unknown = [c for c in present if c >= split.num_classes]
    if unknown:
        raise DataError(f"label ids {unknown} are out of range for {split.num_classes} classes")
    novel = set(split.novel_classes)
    points = []
    for cls in present:
        if cls in novel:
            points += [[y, x, cls] for y, x in pick_pixels(label == cls, points_per_class, rule, rng)]
    base_pixels = np.isin(label, [c for c in present if c not in novel])
    if base_points_per_image and base_pixels.any():
        for y, x in pick_pixels(base_pixels, base_points_per_image, "uniform", rng):
            points.append([y, x, int(label[y, x])])
    return {"points": points, "image_labels": present}


def simulate_points(
    labels: Sequence[np.ndarray],
    names: Sequence[str],
    split: ClassSplit,
    points_per_class: int = 1,
    rule: str = "uniform",
    base_points_per_image: int = 3,
    seed: int = 0,
) -> dict:
    """The point file of a whole training set: ``{"meta": ..., "images": {name: {...}}}``."""
    if rule not in POINT_RULES:
        raise DataError(f"unknown point rule {rule!r}; choose one of {POINT_RULES}")
    if points_per_class < 1:
        raise DataError(f"points_per_class must be at least 1, got {points_per_class}")
    if len(labels) == 0:
        raise DataError("cannot simulate points for an empty split: it has no images")
    images = {}
    for index, (name, label) in enumerate(zip(names, labels)):
        rng = np.random.default_rng([seed, index])
        try:
            images[name] = simulate_image_points(
                np.asarray(label), split, points_per_class, rule, base_points_per_image, rng
            )
        except DataError as error:
            raise DataError(f"image {name!r}: {error}") from error
        images[name]["shape"] = list(np.asarray(label).shape)
    meta = {
        "points_per_class": points_per_class,
        "rule": rule,
        "base_points_per_image": base_points_per_image,
        "seed": seed,
        "novel_classes": list(split.novel_classes),
        "num_classes": split.num_classes,
    }
    return {"meta": meta, "images": images}


def points_filename(split_index: int, points_per_class: int, rule: str, seed: int) -> str:
    return f"points_split{split_index}_k{points_per_class}_{rule}_seed{seed}.json"


def read_points(path: Path, names: Sequence[str], labels: Sequence[np.ndarray] | None, split: ClassSplit) -> dict:
    """Load a point file and check it against its images; every mismatch is a ``DataError`` naming the fix.

    ``labels`` (the full label maps) lets the check verify each click lies on a pixel of its class;
    pass ``None`` to check only shapes and ranges.
    """
    path = Path(path)
    if not path.exists():
        raise DataError(
            f"point file {path} does not exist; simulate it with "
            f"`python data_scripts/simulate_points.py` (or the dataset's prepare step)"
        )
    try:
        content = json.loads(path.read_text())
        meta, images = content["meta"], content["images"]
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise DataError(
            f"point file {path} is not a valid point file ({error}); delete it and simulate again"
        ) from error
    if meta.get("novel_classes") != list(split.novel_classes):
        raise DataError(
            f"point file {path} was simulated for novel classes {meta.get('novel_classes')}, not this "
            f"split's {list(split.novel_classes)}; simulate points for this split"
        )
    missing = [n for n in names if n not in images]
    if missing:
        raise DataError(
            f"point file {path} has no points for {len(missing)} images (first: {missing[0]!r}); "
            f"it does not match this dataset: simulate it again"
        )
    per_class = meta.get("points_per_class")
    if not isinstance(per_class, int) or isinstance(per_class, bool) or per_class < 1:
        raise DataError(f"point file {path} gives points_per_class {per_class!r}, not a whole number >= 1: simulate it again")
    for index, name in enumerate(names):
        entry = images[name]
        if not isinstance(entry, dict) or not isinstance(entry.get("points"), list) or not isinstance(entry.get("shape"), list):
            raise DataError(
                f"point file {path}: image {name!r} has no list of points and shape ({str(entry)[:80]}); simulate it again"
            )
        shape = entry.get("shape")
        if labels is not None and list(np.asarray(labels[index]).shape) != shape:
            raise DataError(
                f"point file {path}: image {name!r} is {list(np.asarray(labels[index]).shape)} but its "
                f"points were simulated for {shape}; the file does not match its image: simulate again"
            )
        for point in entry["points"]:
            if (
                not isinstance(point, list)
                or len(point) != 3
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in point)
            ):
                raise DataError(
                    f"point file {path}: image {name!r} has the entry {point!r}; every point is [y, x, class] in "
                    f"whole pixels and a class id: fix it or simulate the file again"
                )
            y, x, cls = point
            if not (0 <= y < shape[0] and 0 <= x < shape[1]):
                raise DataError(
                    f"point file {path}: image {name!r} has point ({y}, {x}) outside its {shape} pixels; "
                    f"the file does not match its image: simulate again"
                )
            if not 0 <= cls < split.num_classes:
                raise DataError(f"point file {path}: image {name!r} has a point of unknown class {cls}")
            if labels is not None:
                actual = int(np.asarray(labels[index])[y, x])
                if actual == IGNORE_INDEX:
                    raise DataError(
                        f"point file {path}: image {name!r} has point ({y}, {x}) on an ignore pixel; "
                        f"clicks must lie on a labelled pixel: simulate again"
                    )
                if actual != cls:
                    raise DataError(
                        f"point file {path}: image {name!r} has a point of class {cls} at ({y}, {x}) "
                        f"where the label is {actual}; the file does not match its image: simulate again"
                    )
        if labels is not None:
            check_clicks_complete(path, name, entry["points"], np.asarray(labels[index]), split, per_class)
    return content


def check_clicks_complete(
    path: Path, name: str, points: list, label: np.ndarray, split: ClassSplit, points_per_class: int
) -> None:
    """Every novel class present in ``label`` (H, W) has between 1 and ``points_per_class`` clicks: a class without
    one would train as absent, one clicked more often than the file says would weigh more than the others."""
    present = set(np.unique(label).tolist()) & set(split.novel_classes)
    counts = {cls: 0 for cls in present}
    for _, _, cls in points:
        if cls in counts:
            counts[cls] += 1
    unclicked = sorted(cls for cls, count in counts.items() if count == 0)
    if unclicked:
        raise DataError(
            f"point file {path}: image {name!r} shows novel classes {unclicked} without a click; every novel class "
            f"present needs one: the file does not match its image: simulate again"
        )
    over = {cls: count for cls, count in counts.items() if count > points_per_class}
    if over:
        raise DataError(
            f"point file {path}: image {name!r} has {over} clicks per novel class, more than the file's "
            f"points_per_class {points_per_class}: simulate again"
        )


def cooccurrence(image_labels: Sequence[Sequence[int]], num_classes: int) -> np.ndarray:
    """``P[c, a]`` = P(a | c): the share of training images with class ``c`` that also contain ``a``.

    ``image_labels`` holds each training image's classes (base from masks, novel from points).
    Rows of classes never seen are zero; the diagonal is 1 for every seen class.
    """
    presence = np.zeros((len(image_labels), num_classes), dtype=np.float64)
    for row, labels in enumerate(image_labels):
        presence[row, list(labels)] = 1.0
    together = presence.T @ presence  # (C, C): images with both c and a
    count = np.diag(together)[:, None]
    return np.divide(together, count, out=np.zeros_like(together), where=count > 0)
