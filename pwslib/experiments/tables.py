"""Every table's rows, in one place: a row name -> (method, config overrides of that method).

Table 1 compares the methods; Table 2 switches the loss and cost terms of ``ours`` on and off;
Table 3 varies its network design; the diagnosis, base-pixel and annotation-budget tables are this
project's investigations. ``python -m pwslib.experiments <table>`` trains (or reuses) the runs of one.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from pwslib.config import METHODS, TrainConfig

Rows = dict[str, tuple[str, dict[str, Any]]]

# L_ctl switched off, and with it the memory bank it reads (Tables 2 and 3 and the diagnosis share this config).
WITHOUT_BANK: dict[str, Any] = dict(contrastive_weight=0.0, memory_bank="off")

# Table 2: loss terms and cost terms of `ours`, switched on cumulatively and left out one at a time. `ours`
# leaves L_in out by default (reports/protocol.md); the rows with L_in put it back at weight 1 (the poster's losses).
TABLE2_ROWS: dict[str, dict[str, Any]] = {
    "L_in + L_ex": dict(inclusion_weight=1.0, consistency_weight=0.0, **WITHOUT_BANK),
    "L_in + L_ex + L_con": dict(inclusion_weight=1.0, **WITHOUT_BANK),
    "+ L_in (L_in + L_ex + L_con + L_ctl)": dict(inclusion_weight=1.0),
    "w/o L_ex": dict(exclusion_weight=0.0),
    "w/o L_con": dict(consistency_weight=0.0),
    "w/o L_ctl": WITHOUT_BANK,
    "cost: class only": dict(novel_matching="class_only"),
    "cost: + J_in": dict(exclusion_cost=0.0, consistency_cost=0.0),
    "cost: + J_in + J_ex": dict(consistency_cost=0.0),
    "cost: w/o J_in": dict(inclusion_cost=0.0),
    "cost: w/o J_ex": dict(exclusion_cost=0.0),
    "ours (L_ex + L_con + L_ctl)": dict(),
}

# Table 3: network-design variants of `ours`.
TABLE3_ROWS: dict[str, dict[str, Any]] = {
    "ours (phi on, max, confident EMA bank, 1 point)": dict(),
    "keypoint head phi off": dict(keypoint_embedding_head=False),
    "union: noisy-OR": dict(class_union="noisy_or"),
    "bank without confidence": dict(memory_bank="plain"),
    "without bank": WITHOUT_BANK,
    "prototype: queue": dict(prototype="queue"),
    "3 points per class": dict(points_per_class=3),
    "5 points per class": dict(points_per_class=5),
    "10 points per class": dict(points_per_class=10),
}


def table1_rows() -> Rows:
    return {method: (method, {}) for method in METHODS}


def table2_rows() -> Rows:
    return {name: ("ours", overrides) for name, overrides in TABLE2_ROWS.items()}


def table3_rows() -> Rows:
    return {name: ("ours", overrides) for name, overrides in TABLE3_ROWS.items()}


def diagnosis_rows() -> Rows:
    """Where does `ours` stand against `point_naive`? The assignment cost and the keypoint-guided terms,
    changed one at a time."""
    log_costs = {"inclusion_cost": 1.0, "exclusion_cost": 1.0, "consistency_cost": 1.0}
    return {
        "ours": ("ours", {}),
        "ours with -log point costs, weights 1 (the poster's costs as written)": ("ours", {"point_cost": "log", **log_costs}),
        "ours with probability point costs, weights 1": ("ours", log_costs),
        "ours with class-only novel matching": ("ours", {"novel_matching": "class_only"}),
        "ours without L_con": ("ours", {"consistency_weight": 0.0}),
        "ours without L_ctl (no memory bank)": ("ours", WITHOUT_BANK),
        "ours with the keypoint loss and L_con at weight 0.25": (
            "ours",
            {"keypoint_weight": 0.25, "consistency_weight": 0.25},
        ),
        "point_naive": ("point_naive", {}),
    }


def base_pixel_rows() -> Rows:
    """Do novel masks spreading over base pixels cost the base classes? The complementary loss of
    ``image_weakshot`` (the union of the matched novel masks is 0 on pixels with a base label, 1 on R)
    added to the point-supervised methods (reports/archive/base_pixels.md measured where the pixels go)."""
    return {
        "ours": ("ours", {}),
        "ours + complementary loss (weight 1)": ("ours", {"complementary_weight": 1.0}),
        "ours + complementary loss (weight 0.3)": ("ours", {"complementary_weight": 0.3}),
        "point_naive": ("point_naive", {}),
        "point_naive + complementary loss (weight 1)": ("point_naive", {"complementary_weight": 1.0}),
    }


# Annotation time per image on PASCAL VOC 2012 (Bearman et al., "What's the Point", ECCV 2016): full
# masks 239.7 s, one click per class 22.1 s. A further click per class is assumed to cost as much again.
SECONDS_FULL_MASKS = 239.7
SECONDS_PER_CLICK_ROUND = 22.1
BUDGET_CLICKS = (1, 3, 5, 10)


def annotation_budget_rows() -> Rows:
    """Novel classes from 1, 3, 5 and 10 clicks per class (``ours``, ``point_naive``) against full masks."""
    rows = {
        f"{method}, {clicks} click{'s' if clicks > 1 else ''}": (
            method,
            {} if clicks == 1 else {"points_per_class": clicks},
        )
        for method in ("ours", "point_naive")
        for clicks in BUDGET_CLICKS
    }
    rows["full_supervision"] = ("full_supervision", {})
    return rows


def annotation_seconds(method: str, overrides: dict) -> float:
    """Annotation seconds per image of a run of ``method`` with these config ``overrides``: full masks, or
    ``points_per_class`` rounds of clicks."""
    if method == "full_supervision":
        return SECONDS_FULL_MASKS
    return overrides.get("points_per_class", TrainConfig.points_per_class) * SECONDS_PER_CLICK_ROUND


def annotation_budget_points(results: pd.DataFrame) -> pd.DataFrame:
    """``results`` of ``annotation_budget_rows`` with each run's ``seconds`` of annotation per image and ``method``,
    read from the row's definition (its method and overrides), not from its label."""
    rows = annotation_budget_rows()
    unknown = sorted(set(results["row"]) - set(rows))
    if unknown:
        raise ValueError(f"rows {unknown} are not annotation-budget rows; those are {list(rows)}")
    return results.assign(
        seconds=results["row"].map(lambda row: annotation_seconds(*rows[row])),
        method=results["row"].map(lambda row: rows[row][0]),
    )


def select_rows(rows: Rows, names: list[str]) -> Rows:
    """The rows called ``names``, plus the reference row (``ours`` with its defaults) the others are tested against."""
    unknown = [name for name in names if name not in rows]
    if unknown:
        raise ValueError(f"unknown rows {unknown}; this table has {list(rows)}")
    return {name: row for name, row in rows.items() if name in names or row == ("ours", {})}


TABLES = {
    "table1": (table1_rows, "Table 1: methods (Base / Novel / Total mIoU, hIoU)"),
    "table2": (table2_rows, "Table 2: loss and cost ablation"),
    "table3": (table3_rows, "Table 3: design variants"),
    "diagnosis": (diagnosis_rows, "Diagnosis: `ours` against `point_naive`, one change at a time"),
    "base_pixels": (base_pixel_rows, "Base pixels: novel masks kept off base pixels by the complementary loss"),
    "annotation_budget": (annotation_budget_rows, "Annotation budget: clicks per class against full masks"),
}
