"""Questions the notebooks ask of a dataset: which image to show, where to click, what the clicks cost."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from pwslib.data import class_split


def first_image_with_novel(dataset) -> int:
    """Index of the first image of ``dataset`` (its points) with a novel click (0 if none)."""
    novel = set(dataset.split.novel_classes)
    for index, points in enumerate(dataset.points):
        if any(int(c) in novel for c in points[:, 2]):
            return index
    return 0


def first_object_click(dataset, split, image_index: int | None = None, avoid: int | None = None) -> tuple:
    """(image index, centre click (y, x), class) of an object in a test image, from its ground truth.

    Without ``image_index``: the first image holding a novel object (a base one only if no image has one).
    With ``avoid``, picks an object of another class (novel first, else any) in the given image.
    """
    candidates = [image_index] if image_index is not None else range(len(dataset))
    novel = set(split.novel_classes)
    for novel_only in (True, False):
        for index in candidates:
            _, label = dataset.source.load(index)
            present = [int(c) for c in np.unique(label) if c != 255 and c != avoid]
            ordered = sorted(present, key=lambda c: c not in novel)  # novel classes first
            for cls in ordered:
                if novel_only and cls not in novel:
                    continue
                depth = ndimage.distance_transform_edt(np.pad(label == cls, 1))[1:-1, 1:-1]
                if depth.max() >= 2:
                    y, x = np.unravel_index(depth.argmax(), depth.shape)
                    return index, (int(y), int(x)), cls
    raise ValueError("no object large enough for a click in the chosen test images")


def annotation_summary(dataset) -> pd.DataFrame:
    """What the novel classes' supervision costs on a training set: clicks vs the mask pixels they replace."""
    novel = np.zeros(256, dtype=bool)
    novel[list(dataset.split.novel_classes)] = True
    clicks = sum(int(novel[p[:, 2]].sum()) for p in dataset.points)
    base_clicks = sum(int((~novel[p[:, 2]]).sum()) for p in dataset.points)
    novel_pixels = sum(int(novel[dataset.source.load(i)[1]].sum()) for i in range(len(dataset)))
    images = sum(int(novel[p[:, 2]].any()) for p in dataset.points)
    return pd.DataFrame(
        {"value": [len(dataset), images, clicks, novel_pixels, base_clicks]},
        index=[
            "training images",
            "images with a novel class",
            "novel clicks (positives)",
            "novel pixels a mask would label",
            "clicks on base pixels (free negatives)",
        ],
    )


def split_table(dataset: str, split: int) -> pd.DataFrame:
    classes = class_split(dataset, split)
    return pd.DataFrame(
        {
            "class": classes.class_names,
            "role": ["novel" if c in classes.novel_classes else "base" for c in range(classes.num_classes)],
        }
    )
