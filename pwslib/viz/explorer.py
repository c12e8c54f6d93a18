"""The keypoint-mask explorer: click on a test image, watch what trained runs make of the clicks.

``KeypointMaskExplorer.compute`` is plain library code (tests call it headless); ``show`` puts it on an
interactive matplotlib canvas (``ipympl``) with dropdowns for the run, the test image and the class of
new clicks. A click carries a class, as an annotator's does. For the chosen class c the explorer shows
what the method computes (keypoint masks, their union, the assignment cost), with the run's own settings:
- each click's keypoint mask s_j = sigmoid(phi(E[:, x_j]) . E), for c's clicks;
- their class union S_c (the run's rule: max or noisy-OR);
- the proposal the label assignment would give c: the query of least cost with c's clicks as positives
  and the other clicks as negatives, and the terms of that cost (class, J_in, J_ex, J_con), weighted by
  the run's cost settings;
- the run's final semantic prediction.
Runs without a keypoint branch (``point_naive``) show no keypoint masks and match by their own cost.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from pwslib.method import matching
from pwslib.method.matching import CostWeights, cost_terms, matching_cost, sample_at_points
from pwslib.model.keypoint_head import class_union
from pwslib.model.maskformer import mask_probabilities, semantic_scores
from pwslib.data.splits import IGNORE_INDEX
from pwslib.data.summaries import MIN_OBJECT_PIXELS, clicked_object, novel_object_pairs, object_clicks, thing_classes
from pwslib.metrics import keypoint_mask_scores
from pwslib.method.targets import Targets, downsample_labels
from pwslib.viz.figures import colourise, label_palette

# Panels of the figure and their axes in figure fractions (left, bottom, width, height): a 3 x 2 grid of
# squares on a 3:2 figure. The browser test clicks the centre of the "image" panel.
PANELS = ("image", "ground_truth", "keypoint_masks", "class_union", "proposal", "prediction")
PANEL_RECTS = {name: (0.01 + 0.33 * (k % 3), 0.53 - 0.5 * (k // 3), 0.31, 0.41) for k, name in enumerate(PANELS)}


def click_cost_terms() -> list:
    """The cost terms shown for a novel class: every term of ``matching.COST_TERMS`` (read when called, so a term
    added to the table shows) that does not price a full mask."""
    return [term for term in matching.COST_TERMS if term.prices != "mask"]


class KeypointMaskExplorer:
    """``runs`` maps a name (``ours``, ``point_naive``) to a restored run (``evaluate.load_model``);
    every run must be of the same dataset and split, whose test set the explorer shows."""

    def __init__(self, runs: dict, dataset):
        if not runs:
            raise ValueError("give at least one trained run")
        splits = {(trainer.config.dataset, trainer.config.split) for trainer in runs.values()}
        if len(splits) > 1:
            raise ValueError(f"the runs must share one dataset and split, got {sorted(splits)}")
        self.runs, self.dataset = runs, dataset
        self.split = next(iter(runs.values())).split
        for trainer in runs.values():
            trainer.model.eval()

    @torch.no_grad()
    def compute(self, run: str, image_index: int, clicks: list[tuple[int, int, int]], class_id: int) -> dict:
        """What run ``run`` makes of ``clicks`` ([(y, x, class), ...] in pixels) on test image ``image_index``,
        for class ``class_id``: keypoint masks (P_c, H, W) of c's clicks, their union S_c (H, W) (None
        without a keypoint branch), the matched proposal, its weighted cost terms, the prediction (H, W)."""
        trainer = self.runs[run]
        config = trainer.config
        sample = self.dataset[image_index]
        image = sample["image"][None]  # (1, 3, H, W)
        size = tuple(image.shape[-2:])
        clicks_yxc = torch.tensor(clicks, dtype=torch.float32).reshape(1, -1, 3)  # (1, P, 3)
        points = clicks_yxc[..., :2]  # (1, P, 2)
        has_keypoints = trainer.model.keypoint_head is not None and points.shape[1] > 0
        outputs = trainer.model(image, points if has_keypoints else None)
        height, width = outputs["mask_logits"].shape[-2:]
        is_class = clicks_yxc[..., 2] == class_id  # (1, P)
        union, keypoint_masks = None, np.zeros((0, *size), dtype=np.float32)
        if has_keypoints and is_class.any():
            keypoint_probability = outputs["keypoint_mask_logits"].sigmoid().flatten(2)  # (1, P, L)
            union = class_union(keypoint_probability, is_class[:, None].float(), config.class_union)  # (1, 1, L)
            chosen = outputs["keypoint_mask_logits"][:, is_class[0]].sigmoid()  # (1, P_c, h, w)
            keypoint_masks = _full_size(chosen, size)
        stride = size[0] // height
        base_small = downsample_labels(sample["base_label"][None], stride).flatten(1)  # (1, L)
        targets = Targets(
            classes=torch.tensor([[class_id]]),
            valid=torch.tensor([[True]]),
            is_novel=torch.tensor([[True]]),
            masks=torch.zeros(1, 1, height * width),
            positive=is_class[:, None].float(),
            negative=(~is_class)[:, None].float(),
            points_yx=points,
            ignore_region=(base_small == IGNORE_INDEX).float(),
            known_labels=None,
        )
        terms = cost_terms(
            outputs["class_logits"],
            outputs["mask_logits"],
            sample_at_points(outputs["mask_logits"], points, size),
            targets,
            union,
            CostWeights.of_config(config),
            point_terms=config.novel_matching == "points" and points.shape[1] > 0,
        )
        total = matching_cost(terms, targets.is_novel)[0, :, 0]  # (N,): the cost the run's matcher gives this class
        best = int(total.argmin())
        probabilities = outputs["class_logits"].softmax(-1)[0, :, :-1]  # (N, C)
        return {
            "image": sample["image"].permute(1, 2, 0).numpy(),
            "ground_truth": sample["full_label"].numpy(),
            "base_label": sample["base_label"].numpy(),  # novel classes unlabelled, as in training
            "keypoint_masks": keypoint_masks,  # (P_c, H, W)
            "class_mask": None if union is None else _full_size(union.view(1, 1, height, width), size)[0],
            "proposal_index": best,
            "proposal_class": int(probabilities[best].argmax()),
            "proposal_mask": mask_probabilities(outputs["mask_logits"], size)[0, best].numpy(),  # (H, W)
            "costs": {term.name: float(terms[term.name][0, best, 0]) for term in click_cost_terms()},
            "prediction": semantic_scores(outputs["class_logits"], outputs["mask_logits"], size)[0].argmax(-1).numpy(),
            "clicks": np.asarray(clicks, dtype=np.int64).reshape(-1, 3),
        }

    def panels(self, result: dict, run: str, class_id: int) -> dict[str, tuple[str, np.ndarray, str | None]]:
        """Title, picture and colour map of every panel of ``result``."""
        names, count = self.split.class_names, self.split.num_classes
        blank = np.zeros(result["ground_truth"].shape, dtype=np.float32)
        keypoint_masks = result["keypoint_masks"]
        if self.runs[run].model.keypoint_head is None:
            keypoint_title, union_title = f"{run}: no keypoint branch", "no class union S_c"
        elif not len(keypoint_masks):
            keypoint_title, union_title = f"no click of '{names[class_id]}' yet", "class union S_c"
        else:
            keypoint_title = f"keypoint masks s_j of {len(keypoint_masks)} click(s) (max)"
            union_title = f"class union S_c ({self.runs[run].config.class_union})"
        costs = result["costs"]
        cost_text = "  ".join(f"{term.symbol} {costs[term.name]:+.2f}" for term in click_cost_terms())
        return {
            "image": (f"test image: click to add '{names[class_id]}'", result["image"], None),
            "ground_truth": ("ground truth", colourise(result["ground_truth"], count), None),
            "keypoint_masks": (keypoint_title, keypoint_masks.max(0) if len(keypoint_masks) else blank, "magma"),
            "class_union": (union_title, blank if result["class_mask"] is None else result["class_mask"], "magma"),
            "proposal": (
                f"proposal #{result['proposal_index']} ({names[result['proposal_class']]}) for "
                f"'{names[class_id]}'\n{cost_text}",
                result["proposal_mask"],
                "magma",
            ),
            "prediction": (f"prediction of {run}", colourise(result["prediction"], count), None),
        }

    def object_scores(self, result: dict, click: tuple[int, int]) -> dict[str, float] | None:
        """``metrics.keypoint_mask_scores`` of ``result``'s class union S_c against the object under ``click``;
        None for a run without a keypoint branch or before a click of the class."""
        if result["class_mask"] is None:
            return None
        return keypoint_mask_scores(
            result["class_mask"], clicked_object(result["ground_truth"], click), result["base_label"] == IGNORE_INDEX
        )

    @torch.no_grad()
    def keypoint_mask_survey(self, run: str, images: int | None = None, min_pixels: int = MIN_OBJECT_PIXELS) -> pd.DataFrame:
        """Click every object of the first ``images`` test images (all by default) and score what ``run`` makes of it.

        An object is a connected region of one class with at least ``min_pixels`` pixels; its first click is its
        deepest pixel (where an annotator clicks), its second the interior pixel farthest from the first. One row
        per object and number of clicks (1: the keypoint mask, which is the class union of one click; 2: the
        union of both, by the run's rule), with the object's image, class, whether the class is novel and whether
        it is a thing, and ``metrics.keypoint_mask_scores``. One forward pass per image serves all its clicks."""
        trainer = self.runs[run]
        if trainer.model.keypoint_head is None:
            raise ValueError(f"run {run!r} has no keypoint branch: it makes no keypoint masks to survey")
        names, novel, things = self.split.class_names, set(self.split.novel_classes), thing_classes(trainer.config.dataset)
        rows = []
        for image_index in range(len(self.dataset) if images is None else min(images, len(self.dataset))):
            sample = self.dataset[image_index]
            label, unlabelled = sample["full_label"].numpy(), sample["base_label"].numpy() == IGNORE_INDEX
            objects = object_clicks(label, min_pixels)
            if not objects:
                continue
            points = torch.tensor([click for _, _, pair in objects for click in pair], dtype=torch.float32)[None]
            logits = trainer.model(sample["image"][None], points)["keypoint_mask_logits"]  # (1, 2K, h, w)
            probabilities = logits.sigmoid().flatten(2)  # (1, 2K, L)
            membership = torch.zeros(1, 2 * len(objects), 2 * len(objects))
            for k in range(len(objects)):
                membership[0, 2 * k, 2 * k] = 1  # one click
                membership[0, 2 * k + 1, 2 * k : 2 * k + 2] = 1  # both clicks
            unions = class_union(probabilities, membership, trainer.config.class_union).view(logits.shape)
            masks = _full_size(unions, tuple(label.shape))  # (2K, H, W)
            for k, (class_id, target, _) in enumerate(objects):
                for clicks in (1, 2):
                    rows.append({
                        "image": image_index, "class": names[class_id], "novel": class_id in novel,
                        "thing": None if things is None else class_id in things, "pixels": int(target.sum()),
                        "clicks": clicks, **keypoint_mask_scores(masks[2 * k + clicks - 1], target, unlabelled),
                    })
        return pd.DataFrame(rows)

    def moved_click_survey(self, run: str, things: set[int] | None, images: int = 20):
        """A click on one novel object, then the click moved to another novel object of the same image, in each of
        the first ``images`` test images holding two (``novel_object_pairs``): the moved click's class union
        against the new object (IoU) and the share of the first object it still covers (its recall there). A
        DataFrame with one row per image (none when no test image holds two)."""
        rows = []
        names = self.split.class_names
        for image_index, (first, first_class), (moved, moved_class) in novel_object_pairs(self.dataset, self.split, things):
            if len(rows) == images:
                break
            result = self.compute(run, image_index, [(*moved, moved_class)], moved_class)
            first_object = clicked_object(result["ground_truth"], first)
            rows.append(
                {"image": image_index, "first": names[first_class], "moved to": names[moved_class],
                 "new object IoU": round(self.object_scores(result, moved)["iou"]),
                 "first object %": round(100 * float((result["class_mask"][first_object] > 0.5).mean()))}
            )
        return pd.DataFrame(rows, columns=["image", "first", "moved to", "new object IoU", "first object %"])

    def figure(self, result: dict, run: str, class_id: int, figure=None):
        """Draw ``result`` on ``figure`` (a new 11 x 7.4 inch one by default): six large panels, clicks on the image."""
        import matplotlib.pyplot as plt

        figure = figure or plt.figure(figsize=(11, 7.4))
        figure.clear()
        click = self.first_click(result, class_id)
        target = None if click is None else clicked_object(result["ground_truth"], click)
        for name, (title, picture, cmap) in self.panels(result, run, class_id).items():
            ax = figure.add_axes(PANEL_RECTS[name], label=name)
            image = ax.imshow(picture, cmap=cmap, vmin=0 if cmap else None, vmax=1 if cmap else None, interpolation="nearest")
            ax.set_title(title, fontsize=9)
            ax.set_xticks([])
            ax.set_yticks([])
            if name == "image":
                self._draw_clicks(ax, result["clicks"], class_id)
            elif cmap:  # a probability map: its scale, and the clicked object's outline to judge it against
                figure.colorbar(image, ax=ax, fraction=0.046, pad=0.02, ticks=[0, 0.5, 1])
                if target is not None:
                    ax.contour(target, levels=[0.5], colors="cyan", linewidths=1)
        return figure

    @staticmethod
    def first_click(result: dict, class_id: int) -> tuple[int, int] | None:
        """(y, x) of the first click of ``class_id`` in ``result``, the one whose object the panels are judged
        against; None without one."""
        return next(((int(y), int(x)) for y, x, cls in result["clicks"] if cls == class_id), None)

    def scores_line(self, result: dict, class_id: int) -> str:
        """The class union's ``keypoint_mask_scores`` against the object under the class's first click, in words."""
        click = self.first_click(result, class_id)
        scores = None if click is None else self.object_scores(result, click)
        if scores is None:
            return "no class union to score (no click of this class, or no keypoint branch)"
        return (
            f"S_c against the object under the first click: IoU {scores['iou']:.0f} %, precision "
            f"{scores['precision']:.0f} %, spill onto labelled {scores['spill onto labelled']:.0f} % and onto "
            f"unlabelled {scores['spill onto unlabelled']:.0f} % of its pixels"
        )

    def _draw_clicks(self, ax, clicks: np.ndarray, class_id: int) -> None:
        palette = label_palette(self.split.num_classes) / 255.0
        for y, x, cls in clicks:
            chosen = cls == class_id
            ax.scatter(
                [x],
                [y],
                marker="*" if chosen else "X",
                s=260 if chosen else 110,
                color=palette[cls],
                edgecolors="white",
            )
        height, width = ax.images[0].get_array().shape[:2]  # the image drawn in this panel
        ax.set_xlim(-0.5, width - 0.5)
        ax.set_ylim(height - 0.5, -0.5)

    def show(self, image_index: int = 0, clicks: list[tuple[int, int, int]] | None = None, class_id: int | None = None):
        """The interactive explorer (run the notebook cell after ``%matplotlib widget``).

        Left click on the test image adds a click of the chosen class; right click (or shift + click)
        removes the nearest click. Dropdowns pick the run, the test image and the class of new clicks.
        Returns the widget box (its ``.explorer_state`` holds the current clicks, for tests)."""
        import ipywidgets as widgets
        import matplotlib.pyplot as plt

        names, novel = self.split.class_names, set(self.split.novel_classes)
        state = {"clicks": list(clicks or []), "image": image_index}
        run_choice = widgets.Dropdown(options=list(self.runs), description="run")
        image_choice = widgets.Dropdown(options=list(range(len(self.dataset))), value=image_index, description="image")
        class_choice = widgets.Dropdown(
            options=[(names[c] + (" (novel)" if c in novel else ""), c) for c in range(self.split.num_classes)],
            value=class_id if class_id is not None else min(novel),
            description="class",
        )
        clear = widgets.Button(description="remove all clicks")
        status = widgets.HTML()
        with plt.ioff():
            figure = plt.figure(figsize=(11, 7.4))
        if not isinstance(figure.canvas, widgets.DOMWidget):
            plt.close(figure)
            raise RuntimeError("the explorer draws on an interactive canvas: run `%matplotlib widget` (ipympl) first")
        figure.canvas.header_visible = False
        figure.canvas.toolbar_visible = False

        def redraw(*_):
            started = time.perf_counter()
            result = self.compute(run_choice.value, state["image"], state["clicks"], class_choice.value)
            self.figure(result, run_choice.value, class_choice.value, figure)
            figure.canvas.draw_idle()
            status.value = (
                f"{len(state['clicks'])} click(s); updated in {1000 * (time.perf_counter() - started):.0f} ms. "
                "Left click: add a click of the chosen class; right click or shift + click: remove the nearest.<br>"
                + self.scores_line(result, class_choice.value)
            )

        def on_click(event):
            if event.inaxes is None or event.inaxes.get_label() != "image" or event.xdata is None:
                return
            y, x = int(round(event.ydata)), int(round(event.xdata))
            if event.button == 3 or event.key == "shift":
                if state["clicks"]:
                    distances = [(cy - y) ** 2 + (cx - x) ** 2 for cy, cx, _ in state["clicks"]]
                    state["clicks"].pop(int(np.argmin(distances)))
            elif event.button == 1:
                state["clicks"].append((y, x, class_choice.value))
            redraw()

        def on_image(change):
            state["image"], state["clicks"] = change["new"], []
            redraw()

        def on_clear(_):
            state["clicks"].clear()
            redraw()

        figure.canvas.mpl_connect("button_press_event", on_click)
        run_choice.observe(redraw, "value")
        class_choice.observe(redraw, "value")
        image_choice.observe(on_image, "value")
        clear.on_click(on_clear)
        redraw()
        box = widgets.VBox([widgets.HBox([run_choice, image_choice, class_choice, clear]), status, figure.canvas])
        box.explorer_state = state
        return box


SURVEY_SCORES = ("iou", "recall", "precision", "spill onto labelled", "spill onto unlabelled")


def survey_summary(surveys: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Each run's ``keypoint_mask_survey`` averaged per kind of object (base, novel) and number of clicks: the mean
    of every score over the objects (in %), and how many objects were clicked."""
    frames = [
        survey.assign(run=run, objects=np.where(survey["novel"], "novel", "base"))
        for run, survey in surveys.items()
        if len(survey)
    ]
    if not frames:
        return pd.DataFrame()
    grouped = pd.concat(frames).groupby(["run", "objects", "clicks"], sort=False)
    return grouped[list(SURVEY_SCORES)].mean().round(1).assign(count=grouped.size())


def transfer_sentences(summary: pd.DataFrame) -> str:
    """Per run, in words: one click's IoU on novel objects against base ones (how far "how a point becomes a mask"
    transfers to classes without masks), and what a second click adds on novel objects."""
    lines = []
    for run in dict.fromkeys(summary.index.get_level_values("run")):
        scores = summary.loc[run]
        if ("novel", 1) not in scores.index or ("base", 1) not in scores.index:
            continue
        base, novel = scores.loc[("base", 1), "iou"], scores.loc[("novel", 1), "iou"]
        two = scores.loc[("novel", 2), "iou"] if ("novel", 2) in scores.index else novel
        lines.append(
            f"- `{run}`: one click gives a mask of IoU {novel:.1f} % on novel objects against {base:.1f} % on base "
            f"ones ({novel / max(base, 1e-9):.2f} of base); a second click on the novel object moves it to {two:.1f} %."
        )
    return "\n".join(lines)


def _full_size(maps: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """(1, K, h, w) -> (K, H, W) numpy, bilinearly upsampled."""
    return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)[0].numpy()
