"""The toy benchmark's data card: classes, split, frequencies, co-occurrence and two difficulty numbers.

    python -m studies.datacard                  # both presets, 5-minute learnability probe each (~12 min)
    python -m studies.datacard --report-only    # the card from reports/toy_datacard.json, nothing probed

Difficulty is measured, not asserted:
- **colour classifier**: every RGB colour (quantised to 16 levels per channel) predicts the class most
  often seen with it on the training pixels; its test mIoU must stay low (<= 15 %), since colour is
  drawn per instance;
- **learnability probe**: a small fully supervised per-pixel network (``PerPixelSegmenter``) trained
  for 5 minutes on 2 CPU threads; its test mIoU must be learnable (>= 45 %) and not saturated (<= 85 %);
- **click probe**: the same network trained for a fixed number of steps on base masks + one click per
  novel class per image, against full masks: how much of a novel class one click reveals (its ratio).
Writes ``reports/toy_datacard.md``, ``reports/toy_datacard.json`` and figures in ``reports/figures/``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from pwslib.data import build_dataset, class_split, collate, training_cooccurrence
from pwslib.data.points import pick_pixels
from pwslib.data.summaries import UNSEPARATED_SHARE, unlabelled_surroundings
from pwslib.data.splits import IGNORE_INDEX, ClassSplit
from pwslib.data.toy import PRESETS, get_preset, load_toy
from pwslib.io import one_line_errors, provenance, report_header, save_figure, write_json_atomic, write_text_atomic
from pwslib.metrics import ConfusionMatrix, segmentation_scores
from pwslib.config import TrainConfig
from pwslib.model.per_pixel import PerPixelSegmenter, fit_per_pixel, plain_cross_entropy
from pwslib.viz.figures import cooccurrence_heatmap, sample_grid
from studies import learning_curves

COLOUR_BAND = 15.0
LEARNABLE_BAND = (45.0, 85.0)
# Bearman et al., ECCV 2016 ("What's the Point"), Table 1, PASCAL VOC 2012 val mIoU: one point per class (with image
# labels), the same with their objectness prior, and full supervision. A toy preset whose click probe falls in this
# band poses the click ambiguity of real photographs.
BEARMAN_POINT, BEARMAN_POINT_OBJECTNESS, BEARMAN_FULL = 35.1, 42.7, 58.3
CLICK_BAND = (round(BEARMAN_POINT / BEARMAN_FULL, 2), round(BEARMAN_POINT_OBJECTNESS / BEARMAN_FULL, 2))
def colour_classifier_scores(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    split: ClassSplit,
    levels: int = 16,
) -> dict:
    """Scores of the best per-pixel colour lookup table fitted on the training pixels."""

    def bins(images: np.ndarray) -> np.ndarray:
        q = images.astype(np.int64) * levels // 256
        return ((q[..., 0] * levels + q[..., 1]) * levels + q[..., 2]).ravel()

    labels = train_labels.ravel().astype(np.int64)
    valid = labels != IGNORE_INDEX
    counts = np.zeros((levels**3, split.num_classes), dtype=np.int64)
    np.add.at(counts, (bins(train_images)[valid], labels[valid]), 1)
    table = counts.argmax(1)
    prediction = table[bins(test_images)].reshape(test_labels.shape)
    confusion = ConfusionMatrix(split.num_classes)
    confusion.update(torch.from_numpy(prediction), torch.from_numpy(test_labels.astype(np.int64)))
    return segmentation_scores(confusion.matrix, split)


@torch.no_grad()
def evaluate_per_pixel(model: torch.nn.Module, dataset, split: ClassSplit, batch_size: int = 64) -> dict:
    model.eval()
    confusion = ConfusionMatrix(split.num_classes)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, collate_fn=collate)
    for batch in loader:
        confusion.update(model(batch["image"]).argmax(1), batch["full_label"])
    return segmentation_scores(confusion.matrix, split)


def class_balanced_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy averaged per class, then over the classes present: a class known at one pixel per image
    (a click) weighs as much as one known at every pixel. ``logits`` (B, C, H, W), ``target`` (B, H, W)."""
    per_pixel = F.cross_entropy(logits, target, ignore_index=IGNORE_INDEX, reduction="none")  # (B, H, W)
    labelled = target != IGNORE_INDEX
    classes = target[labelled]
    sums = torch.zeros(logits.shape[1], dtype=per_pixel.dtype).index_add_(0, classes, per_pixel[labelled])
    counts = torch.bincount(classes, minlength=logits.shape[1])
    present = counts > 0
    return (sums[present] / counts[present]).mean()


def _epochs(train, target_of, batch_size: int, seed: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of (image (B, 3, H, W), ``target_of(batch)`` (B, H, W)), epoch after epoch, each epoch shuffled by
    its own seed and augmented by the dataset's epoch."""
    for epoch in itertools.count():
        train.set_epoch(epoch)
        loader = torch.utils.data.DataLoader(
            train, batch_size=batch_size, shuffle=True, collate_fn=collate, drop_last=True,
            generator=torch.Generator().manual_seed(seed + epoch),
        )
        for batch in loader:
            yield batch["image"], target_of(batch)


def train_per_pixel(
    train,
    target_of,
    seconds: float | None = None,
    steps: int | None = None,
    seed: int = 0,
    batch_size: int = 16,
    lr: float = 2e-3,
    loss_of=plain_cross_entropy,
) -> tuple[torch.nn.Module, dict]:
    """Train ``PerPixelSegmenter`` (the runs' backbone) on ``target_of(batch)`` (B, H, W) labels, 255 = ignored,
    for a wall-time budget (``seconds``) or a step budget (``steps``, the same work on any machine); poly-decayed
    AdamW (``fit_per_pixel``), loss ``loss_of(logits, target)``."""
    torch.manual_seed(seed)
    model = PerPixelSegmenter(train.split.num_classes, TrainConfig().backbone_widths)
    optimiser = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    start = time.perf_counter()

    def progress_at(step: int) -> float:
        return (time.perf_counter() - start) / seconds if seconds is not None else step / steps

    done, final_loss = fit_per_pixel(
        model, optimiser, _epochs(train, target_of, batch_size, seed), progress_at, lr, loss_of=loss_of
    )
    train_seconds = time.perf_counter() - start
    return model, {
        "train_seconds": train_seconds,
        "train_images": done * batch_size,
        "images_per_second": done * batch_size / train_seconds,
        "final_loss": final_loss,
    }


def learnability_probe(preset: str, minutes: float, seed: int = 0) -> dict:
    """Train ``PerPixelSegmenter`` fully supervised for ``minutes`` of wall time; test scores + throughput."""
    train, test = build_dataset(preset, "train", seed=seed), build_dataset(preset, "test")
    model, throughput = train_per_pixel(train, lambda batch: batch["full_label"], seconds=minutes * 60, seed=seed)
    return {**evaluate_per_pixel(model, test, train.split), **throughput}


def clicked_labels(batch: dict) -> torch.Tensor:
    """The base label map with each click painted at its pixel: a novel class is known at one pixel per click."""
    labels = batch["base_label"].clone()  # (B, H, W), novel pixels 255
    points = batch["points"]  # (B, P, 3) rows y, x, class; padding -1
    image, click = torch.nonzero(points[..., 2] >= 0, as_tuple=True)
    labels[image, points[image, click, 0], points[image, click, 1]] = points[image, click, 2]
    return labels


def clicks_on_every_class(full_label: torch.Tensor) -> torch.Tensor:
    """One click per class present, base and novel alike, at the class's deepest pixel and nothing else labelled:
    the point supervision of Bearman et al. (ECCV 2016), where no class has a mask. ``full_label`` (B, H, W) ->
    (B, H, W), 255 everywhere but at the clicks. Only the centre rule: a uniform click redrawn on every augmented
    batch would label a new pixel of the class each epoch."""
    labels = torch.full_like(full_label, IGNORE_INDEX)
    unused = np.random.default_rng(0)  # one centre click draws nothing
    for image, label in enumerate(full_label.numpy()):
        for cls in np.unique(label[label != IGNORE_INDEX]):
            (y, x), = pick_pixels(label == cls, 1, "centre", unused)
            labels[image, y, x] = int(cls)
    return labels


CLICKED = ("novel", "every class")  # which classes the probe knows by a click: novel (base by masks), or all of them


def click_probe(
    preset: str,
    steps: int,
    split: int = 1,
    seed: int = 0,
    point_rule: str | None = None,
    scored_on: str = "validation",
    clicked: str = "novel",
) -> dict:
    """A method-blind measure of how much one click per novel class tells: the per-pixel probe trained for
    ``steps`` on base masks + novel clicks (``points_per_class`` 1) against the same probe on full masks.
    ``novel_ratio`` = novel mIoU with clicks / with full masks (on PASCAL VOC, one click per class reached
    far below full supervision: Bearman et al., ECCV 2016). Both use the class-balanced loss: with plain
    cross-entropy a class known at one pixel per image is never predicted (novel mIoU 0 on the toy). ``point_rule``
    places the clicks: anywhere on the mask (``uniform``) or at its deepest pixel, as annotators tend to (``centre``);
    by default where the preset's annotators click (``ToyPreset.point_rule``).
    Scored on the preset's ``validation`` images: the probe chooses between generators, and a choice is never made
    on the images results are reported on (``scored_on="test"`` reproduces the probes made before that rule).
    ``clicked="every class"`` is the setting of the literature band instead: one centre click per class present,
    base classes included, no mask at all (``clicks_on_every_class``)."""
    if clicked not in CLICKED:
        raise ValueError(f"clicked must be one of {CLICKED}, not {clicked!r}")
    point_rule = point_rule or get_preset(preset).point_rule
    if clicked == "every class" and point_rule != "centre":
        raise ValueError("clicks on every class are placed at each class's centre: pass point_rule='centre'")
    train = build_dataset(preset, "train", split=split, seed=seed, point_rule=point_rule)
    scored = build_dataset(preset, scored_on, split=split)
    scores = {}
    clicks_of = clicked_labels if clicked == "novel" else lambda batch: clicks_on_every_class(batch["full_label"])
    for name, target_of in (("clicks", clicks_of), ("full_masks", lambda batch: batch["full_label"])):
        model, throughput = train_per_pixel(
            train, target_of, steps=steps, seed=seed, loss_of=class_balanced_cross_entropy
        )
        scores[name] = {**evaluate_per_pixel(model, scored, train.split), **throughput}
        scores[name].pop("per_class_iou")
    full_novel = scores["full_masks"]["novel_miou"]
    scores.update(
        steps=steps, split=split, point_rule=point_rule, scored_on=scored_on, clicked=clicked,
        novel_ratio=scores["clicks"]["novel_miou"] / full_novel if full_novel else 0.0,
    )
    return scores


def _frequency_table(labels: np.ndarray, split: ClassSplit) -> list[dict]:
    flat = labels.reshape(len(labels), -1)
    rows = []
    for c, name in enumerate(split.class_names):
        present = flat == c
        rows.append(
            {
                "class": name,
                "novel": c in split.novel_classes,
                "pixel_share": float(present.mean() * 100),
                "image_share": float(present.any(1).mean() * 100),
            }
        )
    return rows


def describe_preset(preset_name: str, minutes: float, figures: Path, click_steps: int = 1000) -> dict:
    preset = PRESETS[preset_name]
    toy = load_toy(preset_name)
    split = class_split(preset_name, 1)
    train = build_dataset(preset_name, "train", augment=False)
    cooc = training_cooccurrence(train)
    save_figure(
        sample_grid(train, title=f"{preset_name}: samples (* = novel class in split 1; black = no label)"),
        figures / f"toy_{preset_name}_samples.png",
        close=True,
    )
    save_figure(
        cooccurrence_heatmap(cooc, split, f"{preset_name}: co-occurrence from training image labels (split 1)"),
        figures / f"toy_{preset_name}_cooccurrence.png",
        close=True,
    )
    colour = colour_classifier_scores(
        np.asarray(toy.images["train"]),
        np.asarray(toy.labels["train"]),
        np.asarray(toy.images["test"]),
        np.asarray(toy.labels["test"]),
        split,
    )
    probe = learnability_probe(preset_name, minutes)
    # on the development split and on the split the learning curves report
    clicks = [click_probe(preset_name, click_steps, split=number) for number in (1, learning_curves.SPLIT)]
    partners = [
        {
            "thing": t.name,
            "partner": t.partner,
            "probability": t.partner_probability,
            "measured": float(cooc[split.class_names.index(t.name), split.class_names.index(t.partner)]),
        }
        for t in preset.things
        if t.partner and t.partner_probability > 0
    ]
    train_labels = np.asarray(toy.labels["train"])
    splits = []
    for number in range(1, len(preset.novel_splits) + 1):
        surroundings = unlabelled_surroundings(train_labels, preset.split(number))
        splits.append(
            {
                "split": number,
                "unlabelled_surroundings": surroundings,
                "unseparated": [name for name, share in surroundings.items() if share >= UNSEPARATED_SHARE],
            }
        )
    return {
        "preset": preset_name,
        "classes": list(split.class_names),
        "things": [
            {"thing": t.name, "shape": t.shape, "parts": t.num_parts, "partner": t.partner, "looks": len(t.looks)}
            for t in preset.things
        ],
        "splits": splits,
        "stuff_classes": [s.name for s in preset.stuff],
        "thing_classes": [t.name for t in preset.things],
        "novel_splits": [list(s) for s in preset.novel_splits],
        "image_size": preset.image_size,
        "num_train": int(len(toy.images["train"])),
        "num_test": int(len(toy.images["test"])),
        "unlabelled_pixel_share": float((train_labels == IGNORE_INDEX).mean() * 100),
        "frequencies": _frequency_table(train_labels, split),
        "partners": partners,
        "colour_classifier": {k: colour[k] for k in ("base_miou", "novel_miou", "total_miou")},
        "learnability_probe": {
            k: probe[k]
            for k in (
                "base_miou",
                "novel_miou",
                "total_miou",
                "train_seconds",
                "train_images",
                "images_per_second",
                "final_loss",
                "per_class_iou",
            )
        },
        "click_probe": clicks[0],
        "click_probes": clicks,
    }


def _band(value: float, low: float, high: float) -> str:
    return "inside" if low <= value <= high else "**OUTSIDE**"


def render_markdown(cards: list[dict], meta: dict) -> str:
    lines = [
        report_header("The `toy` benchmark: data card", "`python -m studies.datacard`").rstrip()
        + " Provenance: commit "
        f"`{meta['git_commit']}`, {meta['machine']}, {meta['date_utc']} UTC, wall time "
        f"{meta['wall_seconds']:.0f} s, probe budget {meta['probe_minutes']} min per preset, data seed 0.",
        "",
        "## Difficulty",
        "",
        "| preset | colour classifier mIoU (band <= 15) | 5-min fully supervised mIoU (band 45..85) | "
        "probe images/s | unlabelled pixels |",
        "|---|---|---|---|---|",
    ]
    for card in cards:
        colour, probe = card["colour_classifier"]["total_miou"], card["learnability_probe"]["total_miou"]
        lines.append(
            f"| {card['preset']} | {colour:.1f} ({_band(colour, 0, COLOUR_BAND)}) | {probe:.1f} "
            f"({_band(probe, *LEARNABLE_BAND)}) | {card['learnability_probe']['images_per_second']:.0f} | "
            f"{card['unlabelled_pixel_share']:.1f} % |"
        )
    lines += [
        "",
        "**Click probe** (method-blind: what one click per novel class tells a per-pixel network). The same probe, "
        "trained for the same number of steps on split 1 with a class-balanced cross-entropy, once on base masks + "
        "one click per novel class per image (the clicks `ours` gets) and once on full masks. Ratio = novel mIoU with clicks / with full masks; "
        "the literature band is what one click per class gives on real photographs: on PASCAL VOC 2012 val, "
        f"{BEARMAN_POINT} mIoU with one point per class and {BEARMAN_POINT_OBJECTNESS} with an objectness prior, against "
        f"{BEARMAN_FULL} with full masks (Bearman et al., ECCV 2016, \"What's the Point\", Table 1): ratios "
        f"{CLICK_BAND[0]:.2f}-{CLICK_BAND[1]:.2f}. That band was measured with no mask of any class; this probe keeps "
        "the base masks, which teach a network where things end (`reports/click_ambiguity.md` measures the toy in the "
        "band's own setting too).",
        "",
        "| preset | split | steps | scored on | novel mIoU, clicks | novel mIoU, full masks | ratio | literature band | "
        "base mIoU, clicks / full masks |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for card in cards:
        for clicks in card.get("click_probes", [card["click_probe"]] if "click_probe" in card else []):
            lines.append(
                f"| {card['preset']} | {clicks['split']} | {clicks['steps']} | {clicks.get('scored_on', 'test')} images | "
                f"{clicks['clicks']['novel_miou']:.1f} | "
                f"{clicks['full_masks']['novel_miou']:.1f} | {clicks['novel_ratio']:.2f} | "
                f"{_band(clicks['novel_ratio'], *CLICK_BAND)} | "
                f"{clicks['clicks']['base_miou']:.1f} / {clicks['full_masks']['base_miou']:.1f} |"
            )
    lines += [
        "",
        "**Parts and unseparated partners.** Things made of 2-3 parts of distinct texture (one click shows one "
        "part), and, per split, the novel classes whose surroundings (a ring 2-4 px outside the class, past the "
        "annotators' boundary band) the base annotation leaves at least "
        f"{UNSEPARATED_SHARE:.0f} % unlabelled: a partner it is not separated from (another novel class or "
        "unlabelled pixels), where one click is ambiguous.",
        "",
        "| preset | things with 2-3 parts | novel classes with an unseparated partner, per split |",
        "|---|---|---|",
    ]
    for card in cards:
        multi = [t["thing"] for t in card.get("things", []) if t["parts"] > 1]
        per_split = "; ".join(
            f"split {s['split']}: {len(s['unseparated'])} ({', '.join(s['unseparated']) or '-'})"
            for s in card.get("splits", [])
        )
        lines.append(f"| {card['preset']} | {len(multi)} of {len(card.get('things', []))} | {per_split} |")
    for card in cards:
        name = card["preset"]
        lines += [
            "",
            f"## `{name}`",
            "",
            f"{len(card['classes'])} classes ({len(card['stuff_classes'])} stuff, {len(card['thing_classes'])} "
            f"things), {card['image_size']}x{card['image_size']} px, {card['num_train']} train / "
            f"{card['num_test']} test images.",
            "",
            "Base/novel splits (novel classes):",
            "",
        ]
        lines += [f"- split {i + 1}: {', '.join(s)}" for i, s in enumerate(card["novel_splits"])]
        lines += [
            "",
            "Co-occurring pairs (thing sits on partner stuff; measured = P(partner | thing) on the "
            "training image labels):",
            "",
            "| thing | partner | generator probability | measured |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {p['thing']} | {p['partner']} | {p['probability']:.2f} | {p['measured']:.2f} |"
            for p in card["partners"]
        ]
        lines += [
            "",
            "Things (parts: bands of distinct texture along the object's own axis):",
            "",
            "| thing | shape | parts | partner stuff |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {t['thing']} | {t['shape']} | {t['parts']} | {t['partner'] or '-'} |" for t in card.get("things", [])
        ]
        lines += [
            "",
            "Novel classes per split: % of the surroundings the base annotation leaves unlabelled "
            f"(>= {UNSEPARATED_SHARE:.0f} %: an unseparated partner):",
            "",
            "| split | novel class: % unlabelled around it |",
            "|---|---|",
        ]
        lines += [
            f"| {s['split']} | "
            + ", ".join(f"{c} {share:.0f}" for c, share in sorted(s["unlabelled_surroundings"].items()))  # as in the json
            + " |"
            for s in card.get("splits", [])
        ]
        lines += [
            "",
            "Class frequencies on the training set (split 1, * = novel):",
            "",
            "| class | kind | % of pixels | % of images | probe IoU |",
            "|---|---|---|---|---|",
        ]
        probe_iou = card["learnability_probe"].get("per_class_iou", {})
        for row in card["frequencies"]:
            kind = "stuff" if row["class"] in card["stuff_classes"] else "thing"
            star = "*" if row["novel"] else ""
            iou = probe_iou.get(row["class"])
            iou_text = "-" if iou is None else f"{iou:.1f}"
            lines.append(
                f"| {row['class']}{star} | {kind} | {row['pixel_share']:.1f} | {row['image_share']:.1f} | {iou_text} |"
            )
        lines += [
            "",
            f"![samples](figures/toy_{name}_samples.png)",
            "",
            f"![co-occurrence](figures/toy_{name}_cooccurrence.png)",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=list(PRESETS), choices=list(PRESETS))
    parser.add_argument("--minutes", type=float, default=5.0, help="learnability probe budget per preset")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads of the probe (the band assumes 2)")
    parser.add_argument("--click-steps", type=int, default=1000, help="training steps of each click-probe network")
    parser.add_argument("--out", type=Path, default=Path("reports"))
    parser.add_argument("--report-only", action="store_true", help="probe nothing: the card from toy_datacard.json")
    args = parser.parse_args(argv)
    with one_line_errors("the data card"):
        if args.report_only:
            record = json.loads((args.out / "toy_datacard.json").read_text())
            write_text_atomic(args.out / "toy_datacard.md", render_markdown(record["presets"], record["meta"]))
        else:
            write_card(args)


def write_card(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    cards = [describe_preset(name, args.minutes, args.out / "figures", args.click_steps) for name in args.presets]
    meta = provenance(probe_minutes=args.minutes, wall_seconds=time.perf_counter() - start)
    write_json_atomic(args.out / "toy_datacard.json", {"meta": meta, "presets": cards})
    write_text_atomic(args.out / "toy_datacard.md", render_markdown(cards, meta))
    for card in cards:
        print(
            f"{card['preset']}: colour classifier {card['colour_classifier']['total_miou']:.1f} mIoU, "
            f"5-min probe {card['learnability_probe']['total_miou']:.1f} mIoU"
        )
    if any(math.isnan(c["learnability_probe"]["total_miou"]) for c in cards):
        raise SystemExit("a probe produced NaN mIoU")


if __name__ == "__main__":
    main()
