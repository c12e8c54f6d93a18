"""Questions the notebooks ask of a dataset: which image to show, where to click, what the clicks cost."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from scipy import ndimage

from pwslib.data import class_split
from pwslib.data.splits import IGNORE_INDEX, ClassSplit
from pwslib.data.toy import PRESETS as TOY_PRESETS
from pwslib.data.toy import load_toy

UNSEPARATED_SHARE = 50.0  # % of a novel class's surroundings left unlabelled by the base annotation


def first_image_with_novel(dataset) -> int:
    """Index of the first image of ``dataset`` (its points) with a novel click (0 if none)."""
    novel = set(dataset.split.novel_classes)
    for index, points in enumerate(dataset.points):
        if any(int(c) in novel for c in points[:, 2]):
            return index
    return 0


def thing_classes(dataset: str) -> set[int] | None:
    """The class ids of ``dataset`` that are objects (things) rather than regions (stuff): known for the toy
    presets (stuff classes come first); None elsewhere (every class counts as an object)."""
    if dataset not in TOY_PRESETS:
        return None
    preset = TOY_PRESETS[dataset]
    return set(range(len(preset.stuff), len(preset.class_names)))


def first_object_click(
    dataset, split, image_index: int | None = None, avoid: int | None = None, things: set[int] | None = None
) -> tuple:
    """(image index, centre click (y, x), class) of an object in a test image, from its ground truth.

    Without ``image_index``: the first image holding a novel object (a base one only if no image has one).
    With ``avoid``, picks an object of another class (novel first, else any) in the given image. With ``things``
    (``thing_classes``), objects of those classes come first, so the click lands on a thing, not a stuff region.
    The click is the deepest pixel of the object (farthest from its border), as a user would click it.
    """
    candidates = [image_index] if image_index is not None else range(len(dataset))
    novel = set(split.novel_classes)
    passes = [(True, True), (False, True)] if things else []
    for novel_only, things_only in [*passes, (True, False), (False, False)]:
        for index in candidates:
            _, label = dataset.source.load(index)
            present = [int(c) for c in np.unique(label) if c != IGNORE_INDEX and c != avoid]
            ordered = sorted(present, key=lambda c: c not in novel)  # novel classes first
            for cls in ordered:
                if (novel_only and cls not in novel) or (things_only and cls not in things):
                    continue
                click = deepest_pixel(label, cls)
                if click is not None:
                    return index, click, cls
    raise ValueError("no object large enough for a click in the chosen test images")


def deepest_pixel(label: np.ndarray, cls: int) -> tuple[int, int] | None:
    """The pixel of class ``cls`` farthest from its border in ``label`` (H, W), where a user would click it;
    None when the class is absent or too thin (less than 2 pixels from its border everywhere)."""
    depth = ndimage.distance_transform_edt(np.pad(label == cls, 1))[1:-1, 1:-1]
    if depth.max() < 2:
        return None
    y, x = np.unravel_index(depth.argmax(), depth.shape)
    return int(y), int(x)


def novel_object_pairs(dataset, split, things: set[int] | None = None):
    """The test images that hold two novel objects (of ``things`` when given: things, not stuff regions; an empty
    set allows none), in order: yields (image index, (click, class), (click, class)) for the first two novel
    classes present (by class id) with each click at its object's deepest pixel."""
    wanted = set(split.novel_classes) & (things if things is not None else set(range(split.num_classes)))
    for index in range(len(dataset)):
        _, label = dataset.source.load(index)
        present = sorted(wanted & set(np.unique(label).tolist()))
        clicks = [(click, cls) for cls in present if (click := deepest_pixel(label, cls)) is not None]
        if len(clicks) >= 2:
            yield index, clicks[0], clicks[1]


def first_object_pair(dataset, split, things: set[int] | None = None) -> tuple:
    """(image index, (click, class), (click, class)): two objects of different classes in one test image, to
    click one and then the other. The first image with two novel objects (``novel_object_pairs``), else the
    first novel object (``first_object_click``) and another object of its image."""
    pair = next(novel_object_pairs(dataset, split, things), None)
    if pair is not None:
        return pair
    index, click, cls = first_object_click(dataset, split, things=things)
    _, other, other_cls = first_object_click(dataset, split, image_index=index, avoid=cls, things=things)
    return index, (click, cls), (other, other_cls)


def clicked_object(label: np.ndarray, click: tuple[int, int]) -> np.ndarray:
    """The pixels of the object under ``click``: the connected region of the clicked pixel's class that holds it.

    label: (H, W) class ids; returns (H, W) bool.
    """
    regions, _ = ndimage.label(label == label[click], structure=np.ones((3, 3)))
    return regions == regions[click]


MIN_OBJECT_PIXELS = 40  # the smallest region a click survey clicks: a 6 x 6 square and a bit


def object_clicks(label: np.ndarray, min_pixels: int = MIN_OBJECT_PIXELS) -> list[tuple[int, np.ndarray, tuple]]:
    """Every object of ``label`` (H, W): a connected region of one class with at least ``min_pixels`` pixels and
    an interior (a pixel 2 from its border), with two clicks: its deepest pixel, where an annotator clicks first,
    and the interior pixel farthest from that one. [(class, (H, W) bool region, (first, second)), ...]."""
    objects = []
    for class_id in np.unique(label[label != IGNORE_INDEX]):
        regions, count = ndimage.label(label == class_id, structure=np.ones((3, 3)))
        for region_id in range(1, count + 1):
            region = regions == region_id
            if region.sum() < min_pixels:
                continue
            depth = ndimage.distance_transform_edt(np.pad(region, 1))[1:-1, 1:-1]
            if depth.max() < 2:
                continue
            first = np.unravel_index(depth.argmax(), depth.shape)
            interior = np.argwhere(depth >= 2)
            second = interior[((interior - np.array(first)) ** 2).sum(1).argmax()]
            objects.append((int(class_id), region, ((int(first[0]), int(first[1])), (int(second[0]), int(second[1])))))
    return objects


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


def unlabelled_surroundings(labels: np.ndarray, split: ClassSplit, inner: int = 2, outer: int = 4) -> dict[str, float]:
    """For every novel class of ``split``: the share (%) of the pixels around it (a ring ``inner``..``outer``
    pixels outside its mask, past the unlabelled band annotators leave at boundaries) that the base
    annotation leaves unlabelled (novel or no label). High means its partner is not separated from it:
    nothing in the base label map says where it ends. ``labels`` (N, H, W) uint8 full label maps."""
    full = torch.from_numpy(np.array(labels)).long()  # (N, H, W)
    novel = torch.zeros(256, dtype=torch.bool)
    novel[list(split.novel_classes)] = True
    novel[IGNORE_INDEX] = True
    unlabelled_in_base = novel[full]  # (N, H, W): what a base label map does not label
    shares = {}
    for c in split.novel_classes:
        mask = (full == c).float()[:, None]  # (N, 1, H, W)
        near = F.max_pool2d(mask, 2 * inner + 1, stride=1, padding=inner)[:, 0].bool()
        far = F.max_pool2d(mask, 2 * outer + 1, stride=1, padding=outer)[:, 0].bool()
        ring = far & ~near
        total = int(ring.sum())
        shares[split.class_names[c]] = 100.0 * int((ring & unlabelled_in_base).sum()) / total if total else 0.0
    return shares


def unseparated_classes(dataset: str, split: int) -> list[str]:
    """The novel classes of ``split`` with an unseparated partner (>= ``UNSEPARATED_SHARE`` % of their
    surroundings unlabelled in the base annotation), measured on the toy preset's training labels."""
    labels = load_toy(dataset, progress=False).labels["train"]
    shares = unlabelled_surroundings(labels, TOY_PRESETS[dataset].split(split))
    return [name for name, share in shares.items() if share >= UNSEPARATED_SHARE]


def datacard_summary(path: Path) -> pd.DataFrame | str:
    """The data card's difficulty numbers (``reports/toy_datacard.json``)."""
    if not Path(path).exists():
        return f"{path} does not exist yet: run `python -m studies.datacard`"
    card = json.loads(Path(path).read_text())
    return pd.DataFrame(
        [
            {
                "preset": p["preset"],
                "colour classifier mIoU": round(p["colour_classifier"]["total_miou"], 1),
                "5-min supervised mIoU": round(p["learnability_probe"]["total_miou"], 1),
                "unlabelled pixels %": round(p["unlabelled_pixel_share"], 1),
                "click probe: novel mIoU clicks / masks": round(p["click_probe"]["novel_ratio"], 2),
            }
            for p in card["presets"]
        ]
    )
