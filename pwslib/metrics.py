"""Segmentation metrics from one confusion matrix accumulated over the whole test set.

IoU_c = TP / (TP + FP + FN); a class with no ground-truth pixel and no predicted pixel has an
undefined IoU and is left out of every mean (a class that is predicted but absent scores 0).
mIoU is reported over base classes, novel classes and all classes, and hIoU = 2·B·N / (B + N).
Under DistributedDataParallel the test images are shared out over the ranks (image i to rank i mod W),
each rank accumulates its share and ``all_reduce`` sums the matrices, so every rank reports the same numbers.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from pwslib.data import collate
from pwslib.data.splits import IGNORE_INDEX, ClassSplit
from pwslib.distributed import Distributed, all_reduce_sum
from pwslib.model.maskformer import predict


class ConfusionMatrix:
    """``matrix[t, p]`` counts pixels of true class t predicted as p (ignore pixels excluded)."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64)

    def update(self, prediction: torch.Tensor, target: torch.Tensor) -> None:
        """prediction, target: integer tensors of the same shape (any), target 255 = ignore."""
        if prediction.shape != target.shape:
            raise ValueError(f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in shape")
        valid = target != IGNORE_INDEX
        target, prediction = target[valid].long(), prediction[valid].long()
        if target.numel() and int(target.max()) >= self.num_classes:
            raise ValueError(f"target holds class {int(target.max())} but there are {self.num_classes} classes")
        flat = target * self.num_classes + prediction
        self.matrix += torch.bincount(flat.cpu(), minlength=self.num_classes**2).view(self.num_classes, -1)

    def all_reduce(self) -> None:
        """Sum the matrices of every rank (a no-op without torch.distributed)."""
        self.matrix = all_reduce_sum(self.matrix).cpu()


def intersection_over_union(matrix: np.ndarray) -> np.ndarray:
    """Per-class IoU (C,), NaN where a class is neither present nor predicted."""
    matrix = np.asarray(matrix, dtype=np.float64)
    true_positive = np.diag(matrix)
    union = matrix.sum(0) + matrix.sum(1) - true_positive
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, true_positive / np.maximum(union, 1), np.nan)


def harmonic_iou(base: float, novel: float) -> float:
    return 0.0 if base + novel == 0 else 2 * base * novel / (base + novel)


def segmentation_scores(matrix: np.ndarray | torch.Tensor, split: ClassSplit) -> dict:
    """Base / novel / total mIoU and hIoU in percent, plus per-class IoU (NaN -> None)."""
    matrix = matrix.numpy() if isinstance(matrix, torch.Tensor) else np.asarray(matrix)
    iou = intersection_over_union(matrix) * 100

    def mean(ids) -> float:
        values = iou[list(ids)]
        values = values[~np.isnan(values)]
        return float(values.mean()) if len(values) else float("nan")

    base, novel = mean(split.base_classes), mean(split.novel_classes)
    return {
        "base_miou": base,
        "novel_miou": novel,
        "total_miou": mean(range(split.num_classes)),
        "hiou": harmonic_iou(base, novel),
        "per_class_iou": {name: (None if np.isnan(v) else float(v)) for name, v in zip(split.class_names, iou)},
    }


def image_novel_iou(ground_truth: np.ndarray, prediction: np.ndarray, split: ClassSplit) -> np.ndarray:
    """Per image, the mean IoU of the novel classes its ground truth shows (labelled pixels only): (K, H, W) twice
    -> (K,), NaN for an image without a novel class. What one picture says, not a benchmark score: the test set's
    novel mIoU pools every image's pixels before dividing."""
    scores = np.full(len(ground_truth), np.nan)
    for index, (truth, predicted) in enumerate(zip(ground_truth, prediction)):
        labelled = truth != IGNORE_INDEX
        shown = [c for c in split.novel_classes if (truth == c).any()]
        if shown:
            scores[index] = np.mean(
                [((truth == c) & (predicted == c)).sum() / (((truth == c) | (predicted == c)) & labelled).sum() for c in shown]
            )
    return scores


def keypoint_mask_scores(mask: np.ndarray, target: np.ndarray, unlabelled: np.ndarray) -> dict[str, float]:
    """How a click's mask (a keypoint mask or a class union) follows the object it was clicked on, in %.

    mask: (H, W) probabilities, on where > 0.5; target: (H, W) bool, the clicked object; unlabelled: (H, W) bool,
    the pixels a base annotation leaves unlabelled (novel classes and ignore). ``iou`` and ``recall`` against the
    object; the mask's own pixels split three ways, summing to 100: ``precision`` (on the object), ``spill onto
    labelled`` (other objects and regions the base annotation labels) and ``spill onto unlabelled`` (where no
    training label says a mask is wrong: a partner stuff, another novel object). A blob that covers the object
    and its surroundings scores a high recall and a low IoU and precision. An empty mask has precision 0.
    """
    on = mask > 0.5
    hit = int((on & target).sum())
    covered = max(int(on.sum()), 1)
    return {
        "iou": 100 * hit / max(int((on | target).sum()), 1),
        "recall": 100 * hit / max(int(target.sum()), 1),
        "precision": 100 * hit / covered,
        "spill onto labelled": 100 * int((on & ~target & ~unlabelled).sum()) / covered,
        "spill onto unlabelled": 100 * int((on & ~target & unlabelled).sum()) / covered,
    }


@torch.no_grad()
def confusion_matrix(
    model: torch.nn.Module,
    dataset,
    split: ClassSplit,
    batch_size: int = 64,
    distributed: Distributed | None = None,
    novel_scale: float = 1.0,
) -> torch.Tensor:
    """The (C, C) confusion matrix (true class x predicted class, pixels) of ``model`` on ``dataset``'s full
    label maps, summed over every DDP rank. ``novel_scale`` multiplies the novel classes' scores before the
    argmax (1: the model's own prediction, what every table reports; below 1: a calibration probe)."""
    distributed = distributed or Distributed()
    was_training = model.training
    model.eval()
    confusion = ConfusionMatrix(split.num_classes)
    class_scale = None
    if novel_scale != 1.0:
        class_scale = torch.ones(split.num_classes)
        class_scale[list(split.novel_classes)] = novel_scale
    mine = list(range(distributed.rank, len(dataset), distributed.world_size))
    for offset in range(0, len(mine), batch_size):
        batch = collate([dataset[i] for i in mine[offset : offset + batch_size]])
        confusion.update(predict(model, batch["image"], class_scale), batch["full_label"])
    confusion.all_reduce()
    model.train(was_training)
    return confusion.matrix


def check_finite_parameters(model: torch.nn.Module, when: str) -> None:
    """Stop (``FloatingPointError``) when any weight of ``model`` is NaN or infinite: such a model is never
    checkpointed as finished and never scored. ``when`` says where in the run this was found."""
    bad = {name: int((~torch.isfinite(p)).sum()) for name, p in model.named_parameters() if not torch.isfinite(p).all()}
    if bad:
        first = ", ".join(f"{name} ({count})" for name, count in list(bad.items())[:3])
        raise FloatingPointError(
            f"{sum(bad.values())} weights of the model are NaN or infinite {when} (in {first}{', ...' if len(bad) > 3 else ''}); "
            f"nothing was scored: lower the learning rate or check the config's numbers"
        )


def evaluate_model(
    model: torch.nn.Module, dataset, split: ClassSplit, batch_size: int = 64, distributed: Distributed | None = None
) -> dict:
    """Base / novel / total mIoU, hIoU and per-class IoU of ``model`` on ``dataset`` (full label maps)."""
    check_finite_parameters(model, "before scoring")
    start = time.perf_counter()
    scores = segmentation_scores(confusion_matrix(model, dataset, split, batch_size, distributed), split)
    scores["test_images"] = len(dataset)
    scores["evaluation_seconds"] = time.perf_counter() - start
    return scores


def format_scores(metrics: dict) -> str:
    """One line of a run's base / novel / total mIoU and hIoU."""
    return (
        f"base mIoU {metrics['base_miou']:.1f} | novel mIoU {metrics['novel_miou']:.1f} | "
        f"total mIoU {metrics['total_miou']:.1f} | hIoU {metrics['hiou']:.1f}"
    )
