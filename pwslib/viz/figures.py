"""Plotting helpers: label maps in a fixed palette, clicks drawn over images."""

from __future__ import annotations

import colorsys
import re

import numpy as np
import torch

from pwslib.data.points import base_label_map, simulate_image_points
from pwslib.data.splits import IGNORE_INDEX
from pwslib.io import save_figure
from pwslib.model.maskformer import mask_probabilities


def label_palette(num_classes: int, novel_classes=()) -> np.ndarray:
    """(256, 3) uint8 colours: well-separated hues for classes, black for ignore (255). With ``novel_classes``,
    those take saturated colours of a qualitative palette (Tableau 10, each distinct from the others) and every
    base class a paler, greyer hue, so that novel classes stand apart from the base ones and from each other."""
    palette = np.zeros((256, 3), dtype=np.uint8)
    novel = list(novel_classes)
    for c in range(num_classes):
        hue = (c * 0.618033988749895) % 1.0
        light, saturation = (0.45 + 0.2 * ((c // 3) % 2), 0.75) if not novel else (0.72 + 0.1 * (c % 2), 0.3)
        palette[c] = np.array(colorsys.hls_to_rgb(hue, light, saturation)) * 255
    if novel:
        from matplotlib import colormaps

        tableau = colormaps["tab10"].colors  # ten qualitative colours, as matplotlib's default cycle
        for rank, c in enumerate(novel):
            palette[c] = np.array(tableau[rank % len(tableau)]) * 255
    palette[IGNORE_INDEX] = 0
    return palette


def colourise(label: np.ndarray | torch.Tensor, num_classes: int, novel_classes=()) -> np.ndarray:
    """(H, W) class ids -> (H, W, 3) uint8 image (``label_palette``'s colours)."""
    label = label.numpy() if isinstance(label, torch.Tensor) else np.asarray(label)
    return label_palette(num_classes, novel_classes)[label.astype(np.int64)]


def draw_points(ax, points: np.ndarray, novel_classes, num_classes: int) -> None:
    """Clicks ``[y, x, class]``: novel clicks as large stars, base clicks (negatives) as small crosses."""
    palette = label_palette(num_classes) / 255.0
    novel = set(int(c) for c in novel_classes)
    for y, x, cls in np.asarray(points).reshape(-1, 3):
        if cls < 0:
            continue
        if int(cls) in novel:
            ax.scatter([x], [y], marker="*", s=160, c=[palette[cls]], edgecolors="white", linewidths=1.2)
        else:
            ax.scatter([x], [y], marker="x", s=40, c="white", linewidths=1.5)


def _pyplot():
    import matplotlib.pyplot as plt

    return plt


def _clear_ticks(axes) -> None:
    for ax in np.asarray(axes).flat:
        ax.set_xticks([])
        ax.set_yticks([])


def sample_grid(dataset, indices=range(6), title: str = ""):
    """Training samples: image (titled with its classes, * = novel), full label, base label + clicks."""
    plt = _pyplot()
    indices = list(indices)
    split = dataset.split
    fig, axes = plt.subplots(3, len(indices), figsize=(2.2 * len(indices), 6.8), squeeze=False)
    for column, index in enumerate(indices):
        sample = dataset[index]
        axes[0, column].imshow(sample["image"].permute(1, 2, 0).numpy())
        axes[1, column].imshow(colourise(sample["full_label"], split.num_classes))
        axes[2, column].imshow(colourise(sample["base_label"], split.num_classes))
        draw_points(axes[2, column], sample["points"].numpy(), split.novel_classes, split.num_classes)
        present = [
            split.class_names[c] + ("*" if c in split.novel_classes else "")
            for c in sample["image_labels"].nonzero().flatten().tolist()
        ]
        axes[0, column].set_title(", ".join(present), fontsize=7)
    for row, name in enumerate(["image", "full label", "base label + clicks"]):
        axes[row, 0].set_ylabel(name)
    _clear_ticks(axes)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def cooccurrence_heatmap(matrix: np.ndarray, split, title: str = ""):
    """P(column | row) as a heat map, novel classes starred."""
    import seaborn as sns

    plt = _pyplot()
    names = [n + ("*" if i in split.novel_classes else "") for i, n in enumerate(split.class_names)]
    size = 4 + 0.28 * len(names)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    sns.heatmap(
        matrix,
        ax=ax,
        xticklabels=names,
        yticklabels=names,
        cmap="viridis",
        vmin=0,
        vmax=1,
        cbar_kws={"label": "P(column class | row class)"},
    )
    ax.set_title(title)
    fig.tight_layout()
    return fig


def visual_comparison(
    images: np.ndarray,
    ground_truth: np.ndarray,
    predictions: dict[str, np.ndarray],
    split,
    title: str = "",
    row_labels: list[str] | None = None,
):
    """Grid: one row per test image; columns image, ground truth, then every method's prediction. Novel classes
    wear saturated colours, base classes pale ones (``label_palette``); novel pixels of the ground truth are
    outlined in white on every label panel; the legend names every class shown, novel ones with ``*``, and the
    unlabelled pixels. ``row_labels``: a caption left of each row.

    images (K, H, W, 3) uint8, ground_truth (K, H, W), predictions name -> (K, H, W). Returns the figure.
    """
    plt = _pyplot()
    from matplotlib import patheffects
    from matplotlib.patches import Patch

    palette = label_palette(split.num_classes, split.novel_classes)
    columns = ["image", "ground truth", *predictions]
    fig, axes = plt.subplots(len(images), len(columns), figsize=(1.9 * len(columns) + 2.2, 1.9 * len(images)), squeeze=False)
    for row in range(len(images)):
        novel_pixels = np.isin(ground_truth[row], split.novel_classes)
        labels = [ground_truth[row], *(p[row] for p in predictions.values())]
        axes[row, 0].imshow(images[row])
        for column, label in enumerate(labels, start=1):
            axes[row, column].imshow(palette[np.asarray(label).astype(np.int64)])
            if novel_pixels.any():
                outline = axes[row, column].contour(novel_pixels, levels=[0.5], colors="white", linewidths=1.0)
                outline.set_path_effects([patheffects.withStroke(linewidth=2.2, foreground="black")])
        for column, name in enumerate(columns):
            if row == 0:
                axes[row, column].set_title(name, fontsize=9)
        if row_labels:
            axes[row, 0].set_ylabel(row_labels[row], fontsize=7, rotation=0, ha="right", va="center")
    _clear_ticks(axes)
    shown = np.unique(np.concatenate([ground_truth.ravel(), *(p.ravel() for p in predictions.values())]))
    handles = [
        Patch(color=palette[c] / 255, label=split.class_names[c] + (" *" if c in split.novel_classes else ""))
        for c in shown
        if c < split.num_classes
    ]
    if IGNORE_INDEX in shown:
        handles.append(Patch(color="black", label="unlabelled"))
    fig.legend(handles=handles, loc="center right", fontsize=8, title="class (* novel;\noutline: novel\npixels)",
               title_fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0, 1 - 2.2 / (1.9 * len(columns) + 2.2), 1))
    return fig


def per_class_iou_bars(per_class: dict[str, dict[str, float | None]], split, title: str = ""):
    """Grouped bars of per-class IoU (methods side by side), novel classes shaded. per_class: method -> class -> IoU."""
    plt = _pyplot()
    names = list(split.class_names)
    methods = list(per_class)
    width = 0.8 / max(1, len(methods))
    fig, ax = plt.subplots(figsize=(max(8, 0.45 * len(names)), 3.8))
    for c in split.novel_classes:
        ax.axvspan(c - 0.45, c + 0.45, color="0.92", zorder=0)
    for k, method in enumerate(methods):
        values = [per_class[method].get(n) or 0.0 for n in names]
        ax.bar(np.arange(len(names)) + (k - (len(methods) - 1) / 2) * width, values, width, label=method, zorder=2)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(
        [n + ("*" if i in split.novel_classes else "") for i, n in enumerate(names)],
        rotation=60,
        ha="right",
        fontsize=8,
    )
    ax.set_ylabel("IoU (%)")
    ax.set_title(title or "per-class IoU (* and grey: novel classes)")
    ax.legend(fontsize=7, ncol=min(6, len(methods)))
    fig.tight_layout()
    return fig


def training_curves(
    logs: dict[str, "object"], terms: tuple[str, ...] = ("loss",), title: str = "", columns: int | None = None
):
    """Loss curves (smoothed over 20 steps) of several runs; logs: name -> DataFrame of a run's log.csv.

    One panel per term (``columns`` per row, default all in one row); a run keeps its colour in every panel."""
    plt = _pyplot()
    columns = min(columns or len(terms), len(terms))
    rows = -(-len(terms) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(4.5 * columns, 3.2 * rows), squeeze=False)
    for ax, term in zip(axes.flat, terms):
        for index, (name, log) in enumerate(logs.items()):
            if term in log and log[term].notna().any():
                ax.plot(log["step"], log[term].rolling(20, min_periods=1).mean(), label=name, color=f"C{index}")
        ax.set_xlabel("training step")
        ax.set_ylabel(f"{'total' if term == 'loss' else term} loss (mean of 20 steps)", fontsize=8)
        ax.set_title(term)
    for ax in axes.flat[len(terms) :]:
        ax.set_visible(False)
    axes[0, 0].legend(fontsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def convergence_figure(curves: dict[str, list[dict]], plateaus: dict[str, float], budget: int | None = None, path=None):
    """Total mIoU against iterations, one panel per dataset; ``curves``: "dataset/method/iterations[/recipe]" ->
    evaluations, ``plateaus``: "dataset/method" -> the plateau drawn as a dotted line in the method's colour.

    A colour per method; each method's longest curve drawn bold, its shorter ones thin (a shorter run's schedule
    decays sooner, so it levels off lower); a line style per recipe when the curves hold more than one; the main
    job's ``budget`` (iterations) marked; the legend inside the first panel. Saved to ``path`` (PNG) when given."""
    plt = _pyplot()
    from matplotlib.lines import Line2D

    parts = {name: name.split("/", 2) for name in curves}  # dataset, method, "16000" or "16000/pretraining_steps=..."
    datasets = list(dict.fromkeys(dataset for dataset, _, _ in parts.values()))
    methods = list(dict.fromkeys(method for _, method, _ in parts.values()))
    recipes = list(dict.fromkeys(variant.partition("/")[2] for _, _, variant in parts.values()))
    colours = {method: f"C{index}" for index, method in enumerate(methods)}
    styles = {recipe: ("-", "--", ":", "-.")[index % 4] for index, recipe in enumerate(recipes)}
    longest = {}
    for name, (dataset, method, _) in parts.items():
        key = f"{dataset}/{method}"
        longest[key] = max(longest.get(key, 0), curves[name][-1]["iteration"])
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.4 * len(datasets), 4.2), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        for name, (curve_dataset, method, variant) in parts.items():
            if curve_dataset != dataset:
                continue
            curve = curves[name]
            bold = curve[-1]["iteration"] == longest[f"{dataset}/{method}"]
            ax.plot(
                [point["iteration"] for point in curve], [point["total_miou"] for point in curve],
                color=colours[method], linestyle=styles[variant.partition("/")[2]],
                linewidth=1.8 if bold else 0.8, alpha=1.0 if bold else 0.45,
            )
        for method in methods:
            if f"{dataset}/{method}" in plateaus:
                ax.axhline(plateaus[f"{dataset}/{method}"], color=colours[method], linestyle=":", linewidth=1.2)
        if budget is not None:
            ax.axvline(budget, color="0.3", linestyle="--", linewidth=1)
            ax.annotate(f"main job: {budget:,}", (budget, 0.02), xycoords=("data", "axes fraction"),
                        xytext=(4, 0), textcoords="offset points", fontsize=8, color="0.3")
        ax.set_xlabel("iterations (each curve's own schedule)")
        ax.set_ylabel("total mIoU on test images (%)")
        ax.set_title(dataset)
        ax.grid(alpha=0.3)
    handles = [Line2D([], [], color=colours[method], linewidth=1.8, label=method) for method in methods]
    if plateaus:
        handles.append(Line2D([], [], color="grey", linestyle=":", label="plateau of the method"))
    if budget is not None:
        handles.append(Line2D([], [], color="0.3", linestyle="--", linewidth=1, label="the main job's iterations"))
    if len(recipes) > 1:  # a recipe's name is long: the legend goes under the panels
        handles += [
            Line2D([], [], color="grey", linestyle=styles[recipe], label=recipe or "today's recipe") for recipe in recipes
        ]
        legend_inches = 0.2 * ((len(handles) + 1) // 2) + 0.1  # two columns of 8-point lines
        fig.set_figheight(4.2 + legend_inches)  # first the height, then the layout within it
        fig.legend(handles=handles, loc="lower center", ncol=2, fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, legend_inches / fig.get_figheight(), 1, 1))
    else:
        axes[0][0].legend(handles=handles, loc="lower right", fontsize=8, framealpha=0.9)
        fig.tight_layout()
    if path is not None:
        save_figure(fig, path, close=True)
    return fig


def click_rules_figure(
    image: np.ndarray, label: np.ndarray, split, counts=(1, 5), rules=("uniform", "centre"), seed: int = 0
):
    """One image's base label map with the clicks each (K, rule) simulates."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 1 + len(counts) * len(rules), figsize=(2.6 * (1 + len(counts) * len(rules)), 2.8))
    axes[0].imshow(image)
    axes[0].set_title("image", fontsize=9)
    base = colourise(base_label_map(label, split), split.num_classes)
    for ax, (k, rule) in zip(axes[1:], [(k, r) for k in counts for r in rules]):
        clicks = simulate_image_points(label, split, k, rule, 3, np.random.default_rng(seed))["points"]
        ax.imshow(base)
        draw_points(ax, np.array(clicks), split.novel_classes, split.num_classes)
        ax.set_title(f"K={k}, {rule}", fontsize=9)
    _clear_ticks(axes)
    fig.tight_layout()
    return fig


@torch.no_grad()
def proposals_figure(model, dataset, image_index: int = 0, count: int = 6):
    """A test image and the masks of its ``count`` most confident queries, titled with their class."""
    plt = _pyplot()
    sample = dataset[image_index]
    outputs = model.eval()(sample["image"][None])
    probability = outputs["class_logits"].softmax(-1)[0]  # (N, C+1)
    confidence, classes = probability[:, :-1].max(-1)
    order = confidence.argsort(descending=True)[:count]
    masks = mask_probabilities(outputs["mask_logits"], tuple(sample["image"].shape[-2:]))[0]
    names = dataset.split.class_names
    fig, axes = plt.subplots(1, count + 1, figsize=(2.2 * (count + 1), 2.5))
    axes[0].imshow(sample["image"].permute(1, 2, 0).numpy())
    axes[0].set_title("image", fontsize=8)
    for ax, query in zip(axes[1:], order.tolist()):
        ax.imshow(masks[query].numpy(), cmap="magma", vmin=0, vmax=1)
        ax.set_title(f"query {query}: {names[classes[query]]} ({confidence[query]:.2f})", fontsize=7)
    _clear_ticks(axes)
    fig.tight_layout()
    return fig


def annotation_budget_figure(points, title: str = ""):
    """Novel mIoU (mean ± std over seeds) against annotation seconds per image, one panel per dataset;
    ``points``: a DataFrame of runs with columns dataset, method, seconds, novel_miou."""
    plt = _pyplot()
    datasets = list(dict.fromkeys(points["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.2 * len(datasets), 3.8), squeeze=False)
    for ax, dataset in zip(axes[0], datasets):
        subset = points[points["dataset"] == dataset]
        for method, group in subset.groupby("method", sort=False):
            spread = group.groupby("seconds")["novel_miou"].agg(["mean", "std"]).reset_index()
            masks = method == "full_supervision"
            label = f"{method} ({spread['seconds'].iloc[0]:.0f} s)" if masks else method
            ax.errorbar(
                spread["seconds"],
                spread["mean"],
                yerr=spread["std"].fillna(0),
                marker="s" if masks else "o",
                capsize=3,
                label=label,
            )
        ax.set_xscale("log")
        budgets = sorted(subset.loc[subset["method"] != "full_supervision", "seconds"].unique())  # the click budgets
        ax.set_xticks(budgets, [f"{seconds:.0f}" for seconds in budgets], minor=False)
        ax.set_xticks([], minor=True)
        ax.set_xlabel("annotation seconds per image (log)")
        ax.set_ylabel("novel mIoU (%)")
        ax.set_title(dataset)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


CHART_SCORES = ("Base", "Novel", "hIoU")  # the bars of a table's chart


def table_chart(scores, title: str = ""):
    """A table of runs in two rows of panels, one column per dataset. Top: every row's base mIoU, novel mIoU and
    hIoU as grouped bars (mean over seeds, error bar = std), ``*`` over a bar that differs from the reference row
    beyond the seed noise. Bottom: each row minus the reference row, on an axis of its own so that a gap of a few
    points is as visible as it is large, error bar = the std of a difference of two seeds' draws
    (sqrt(std² + std_ref²)). ``scores``: ``experiments.report.score_cells`` (columns row, dataset, score, mean,
    std, differs, reference); other scores are not drawn."""
    plt = _pyplot()
    names = list(CHART_SCORES)
    scores = scores[scores["score"].isin(names)]
    datasets = list(dict.fromkeys(scores["dataset"]))
    rows = list(dict.fromkeys(scores["row"]))
    references = list(dict.fromkeys(scores.loc[scores["reference"].astype(bool), "row"]))
    others = [row for row in rows if row not in references]
    width = 0.8 / len(names)
    fig, axes = plt.subplots(
        2, len(datasets), figsize=(max(5.0, 0.75 * len(rows) + 1.5) * len(datasets), 7.4), squeeze=False,
        sharey="row", gridspec_kw={"height_ratios": [3, 2]},
    )
    for column, dataset in enumerate(datasets):
        subset = scores[scores["dataset"] == dataset].set_index(["row", "score"])
        top, bottom = axes[0][column], axes[1][column]
        for offset, name in enumerate(names):
            shift = (offset - (len(names) - 1) / 2) * width
            cells = [subset.loc[(row, name)] if (row, name) in subset.index else None for row in rows]
            means = np.array([cell["mean"] if cell is not None else np.nan for cell in cells])
            spreads = np.array([cell["std"] if cell is not None else 0.0 for cell in cells])
            top.bar(np.arange(len(rows)) + shift, means, width, yerr=np.nan_to_num(spreads), capsize=2, label=name, color=f"C{offset}")
            for position, mean, spread, cell in zip(np.arange(len(rows)) + shift, means, spreads, cells):
                if cell is not None and cell["differs"]:
                    top.text(position, mean + np.nan_to_num(spread) + 0.8, "*", ha="center", fontsize=11)
            if references and (references[0], name) in subset.index:
                reference = subset.loc[(references[0], name)]
                gaps = [subset.loc[(row, name)] if (row, name) in subset.index else None for row in others]
                bottom.bar(
                    np.arange(len(others)) + shift,
                    [gap["mean"] - reference["mean"] if gap is not None else np.nan for gap in gaps],
                    width,
                    yerr=[np.hypot(gap["std"], reference["std"]) if gap is not None else 0.0 for gap in gaps],
                    capsize=2,
                    color=f"C{offset}",
                )
        top.set_ylim(0, np.nanmax((scores["mean"] + scores["std"].fillna(0)).to_numpy()) + 12)  # room for the legend
        top.set_xticks(np.arange(len(rows)), rows, rotation=30, ha="right", fontsize=8)
        top.set_ylabel("mIoU / hIoU (%)")
        top.set_title(dataset)
        top.grid(axis="y", alpha=0.3)
        bottom.axhline(0, color="black", linewidth=0.8)
        bottom.set_xticks(np.arange(len(others)), others, rotation=30, ha="right", fontsize=8)
        bottom.set_ylabel("minus the reference row (points)", fontsize=8)
        bottom.grid(axis="y", alpha=0.3)
    axes[0][0].legend(fontsize=8, loc="upper left", ncol=len(names))
    named = f"reference row: {references[0]}; " if references else ""
    fig.suptitle(f"{title}\n{named}* differs from it beyond the seed noise (Welch, p < 0.05)", fontsize=9, wrap=True)
    fig.tight_layout()
    return fig


def learning_curves_figure(curves, score: str = "hiou", budget: int | None = None):
    """One panel per preset: ``score`` against iterations per method, the seed mean as a line and the range over
    seeds as a band, each method's plateau (mean of the last two evaluations) dotted, the budget marked.
    ``curves``: a DataFrame with preset, method, seed, iteration and ``score`` columns."""
    plt = _pyplot()
    presets = list(dict.fromkeys(curves["preset"]))
    fig, axes = plt.subplots(1, len(presets), figsize=(4.6 * len(presets), 3.8), squeeze=False)
    for ax, preset in zip(axes[0], presets):
        for index, (method, group) in enumerate(curves[curves.preset == preset].groupby("method", sort=False)):
            by_iteration = group.groupby("iteration")[score]
            mean, low, high = by_iteration.mean(), by_iteration.min(), by_iteration.max()
            colour = f"C{index}"
            seeds = group["seed"].nunique()
            ax.plot(mean.index, mean.values, color=colour, label=f"{method} ({seeds} seed{'s' * (seeds > 1)})")
            ax.fill_between(mean.index, low.values, high.values, color=colour, alpha=0.2, linewidth=0)
            ax.axhline(mean.values[-2:].mean(), color=colour, linestyle=":", linewidth=1)
        if budget:
            ax.axvline(budget, color="grey", linestyle="--", linewidth=1)
            ax.text(budget, ax.get_ylim()[0], " main job's budget", color="grey", fontsize=7, va="bottom")
        ax.set_title(preset)
        ax.set_xlabel("iterations")
        ax.set_ylabel(f"{'hIoU' if score == 'hiou' else score} (%)")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    return fig


def transfer_gain_figure(summary):
    """The gain of ``ours`` over ``point_naive`` (hIoU points, at the budget and at the plateau) against the click
    probe's ratio (what one click per novel class gives a per-pixel network, over full masks), one point per
    preset. ``summary``: ``studies.learning_curves.summary``'s table."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    for column, marker in (("ours − point_naive at budget", "o"), ("ours − point_naive at plateau", "s")):
        xs, ys, names = [], [], []
        for _, row in summary.iterrows():
            if row["click probe ratio"] == "-" or row[column] == "-":
                continue
            xs.append(float(row["click probe ratio"]))
            ys.append(float(row[column].split()[0]))
            names.append(row["preset"])
        ax.scatter(xs, ys, marker=marker, label=column.replace("ours − point_naive ", ""))
        for x, y, name in zip(xs, ys, names):
            ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.axhline(0, color="grey", linewidth=1)
    ax.set_xlabel("click probe: novel mIoU with one click / with full masks")
    ax.set_ylabel("ours − point_naive (hIoU points)")
    ax.set_title("transfer gain against click ambiguity")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def click_probe_figure(rows: list[dict], band: tuple[float, float]):
    """The click probe's ratio (novel mIoU with one click per novel class / with full masks) of every generator
    variant in ``rows`` (``studies.click_ambiguity``'s record, each row with its ``point_rule``, ``clicked`` and
    ``steps``), lowest first, against ``band``, the ratio on real photographs; a bar's colour says where the clicks
    land and which classes are clicked, its label how long the probe trained."""
    plt = _pyplot()
    ordered = sorted(rows, key=lambda row: row["ratio"])
    fig, ax = plt.subplots(figsize=(13, 0.26 * len(ordered) + 1.6), layout="constrained")
    kinds = {
        ("uniform", "novel"): ("tab:blue", "uniform clicks on novel classes, base masks"),
        ("centre", "novel"): ("tab:orange", "centre clicks on novel classes, base masks"),
        ("centre", "every class"): ("tab:purple", "centre clicks on every class, no mask"),
    }
    positions = np.arange(len(ordered))
    ax.axvspan(*band, color="tab:green", alpha=0.15, label=f"real photographs ({band[0]:.2f}-{band[1]:.2f})")
    for kind, (colour, label) in kinds.items():
        picked = [i for i, row in enumerate(ordered) if (row["point_rule"], row["clicked"]) == kind]
        if picked:
            ax.barh(positions[picked], [ordered[i]["ratio"] for i in picked], color=colour, label=label)
    names = [re.sub(r", probe trained \d+x longer", "", row["variant"]) for row in ordered]  # the steps say it
    ax.set_yticks(positions, [f"{name} ({row['steps']:,} steps)" for name, row in zip(names, ordered)], fontsize=6)
    ax.set_xlim(min(0.5, ordered[0]["ratio"] - 0.05), 1.05)
    ax.set_xlabel("click probe: novel mIoU with one click / with full masks")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=2, frameon=False)
    return fig
