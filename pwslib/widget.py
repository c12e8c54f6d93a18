"""The keypoint-mask explorer: place clicks on a test image, watch the masks they make.

``KeypointMaskExplorer.compute`` is plain library code (tests call it headless); ``show`` wraps it in
ipywidgets sliders for a notebook. For the chosen clicks and class it returns:
- each click's keypoint mask s_j = sigmoid(phi(E[:, x_j]) . E);
- their class union S_c (max, or noisy-OR);
- the proposal the label assignment would give this class: the query of least novel cost
  (class + J_in + J_con, DESIGN §3) with the clicks as positives;
- the model's final semantic prediction.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from pwslib.matching import CostWeights, matching_cost, sample_at_points
from pwslib.model.keypoint_head import class_union
from pwslib.model.maskformer import mask_probabilities, semantic_scores
from pwslib.targets import Targets


class KeypointMaskExplorer:
    def __init__(self, model, dataset, split, class_union_rule: str = "max"):
        if model.keypoint_head is None:
            raise ValueError("this model has no keypoint branch; load a run of `ours` or `keypoint_pseudo`")
        self.model, self.dataset, self.split, self.rule = model.eval(), dataset, split, class_union_rule

    @torch.no_grad()
    def compute(self, image_index: int, points: list[tuple[int, int]], class_id: int) -> dict:
        """The masks made by clicks ``points`` ([(y, x), ...] in pixels) of class ``class_id`` on a test image."""
        if not points:
            raise ValueError("place at least one click")
        sample = self.dataset[image_index]
        image = sample["image"][None]
        size = tuple(image.shape[-2:])
        clicks = torch.tensor(points, dtype=torch.float32)[None]  # (1, P, 2)
        outputs = self.model(image, clicks)
        keypoint_probability = outputs["keypoint_mask_logits"].sigmoid()  # (1, P, h, w)
        height, width = keypoint_probability.shape[-2:]
        count = clicks.shape[1]
        union = class_union(keypoint_probability.flatten(2), torch.ones(1, 1, count), self.rule)  # (1, 1, L)
        targets = Targets(
            classes=torch.tensor([[class_id]]),
            valid=torch.tensor([[True]]),
            is_novel=torch.tensor([[True]]),
            masks=torch.zeros(1, 1, height * width),
            positive=torch.ones(1, 1, count),
            negative=torch.zeros(1, 1, count),
            points_yx=clicks,
            ignore_region=torch.ones(1, height * width),
            known_labels=None,
        )
        point_logits = sample_at_points(outputs["mask_logits"], clicks, size)
        cost = matching_cost(
            outputs["class_logits"], outputs["mask_logits"], point_logits, targets, union, CostWeights(exclusion=0.0)
        )
        best = int(cost[0, :, 0].argmin())

        def full_size(maps: torch.Tensor) -> np.ndarray:
            return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)[0].numpy()

        probabilities = outputs["class_logits"].softmax(-1)[0, :, :-1]
        masks = mask_probabilities(outputs["mask_logits"], size)[0]
        prediction = semantic_scores(outputs["class_logits"], outputs["mask_logits"], size)[0].argmax(-1).numpy()
        return {
            "image": sample["image"].permute(1, 2, 0).numpy(),
            "ground_truth": sample["full_label"].numpy(),
            "keypoint_masks": full_size(keypoint_probability),  # (P, H, W)
            "class_mask": full_size(union.view(1, 1, height, width))[0],  # (H, W)
            "proposal_index": best,
            "proposal_class": int(probabilities[best].argmax()),
            "proposal_mask": masks[best].numpy(),  # (H, W)
            "prediction": prediction,  # (H, W)
            "points": np.asarray(points),
        }

    def figure(self, result: dict, class_id: int):
        import matplotlib.pyplot as plt

        from pwslib.viz import colourise

        names = self.split.class_names
        panels = [
            ("image + clicks", result["image"], None),
            ("ground truth", colourise(result["ground_truth"], self.split.num_classes), None),
            ("keypoint masks s_j (max shown)", result["keypoint_masks"].max(0), "magma"),
            (f"class union S_c ({self.rule})", result["class_mask"], "magma"),
            (
                f"matched proposal #{result['proposal_index']} ({names[result['proposal_class']]})",
                result["proposal_mask"],
                "magma",
            ),
            ("prediction", colourise(result["prediction"], self.split.num_classes), None),
        ]
        fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels), 2.9))
        for ax, (title, panel, cmap) in zip(axes, panels):
            ax.imshow(panel, cmap=cmap, vmin=0 if cmap else None, vmax=1 if cmap else None)
            ax.scatter(result["points"][:, 1], result["points"][:, 0], marker="*", s=140, c="cyan", edgecolors="black")
            ax.set_title(title, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
        fig.suptitle(f"clicks labelled '{names[class_id]}'", fontsize=10)
        fig.tight_layout()
        return fig

    def show(self, max_points: int = 3):
        """An ipywidgets panel: image, class, and up to ``max_points`` clicks (sliders; tick to use a click)."""
        import ipywidgets as widgets
        import matplotlib.pyplot as plt
        from IPython.display import display

        height, width = self.dataset[0]["image"].shape[-2:]
        novel = list(self.split.novel_classes)
        controls = {
            "image_index": widgets.IntSlider(0, 0, len(self.dataset) - 1, description="image"),
            "class_id": widgets.Dropdown(
                options=[
                    (self.split.class_names[c] + (" (novel)" if c in novel else ""), c)
                    for c in range(self.split.num_classes)
                ],
                value=novel[0],
                description="class",
            ),
        }
        for k in range(max_points):
            controls[f"use_{k}"] = widgets.Checkbox(value=k == 0, description=f"click {k + 1}")
            controls[f"y_{k}"] = widgets.IntSlider(height // 2, 0, height - 1, description=f"y{k + 1}")
            controls[f"x_{k}"] = widgets.IntSlider(width // 2 + 10 * k, 0, width - 1, description=f"x{k + 1}")

        def update(**values):
            points = [(values[f"y_{k}"], values[f"x_{k}"]) for k in range(max_points) if values[f"use_{k}"]]
            if not points:
                print("tick at least one click")
                return
            self.figure(self.compute(values["image_index"], points, values["class_id"]), values["class_id"])
            plt.show()

        rows = [widgets.HBox([controls["image_index"], controls["class_id"]])]
        rows += [
            widgets.HBox([controls[f"use_{k}"], controls[f"y_{k}"], controls[f"x_{k}"]]) for k in range(max_points)
        ]
        display(widgets.VBox(rows), widgets.interactive_output(update, controls))
