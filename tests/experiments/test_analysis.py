import json

import pandas as pd

from pwslib.experiments.analysis import drops_against


def test_drops_are_measured_against_the_reference_row_whatever_its_name():
    results = pd.DataFrame(
        {
            "row": ["ours (renamed)", "ours (renamed)", "variant", "variant"],
            "hiou": [40.0, 42.0, 35.0, 37.0],
            "reference": [True, True, False, False],
        }
    )
    drops = drops_against(results)
    assert drops.loc["variant", "difference"] == -5.0 and drops.loc["ours (renamed)", "difference"] == 0.0
    assert "difference" not in drops_against(results.assign(reference=False))  # no reference: hIoU only


def test_heldout_results_are_read_by_split(tmp_path):
    from pwslib.experiments.analysis import heldout_results

    for split in (3, 2):
        pd.DataFrame([{"row": "ours", "dataset": "toy-stuff", "seed": 0, "hiou": float(split)}]).to_csv(
            tmp_path / f"table1_split{split}.csv", index=False
        )
    (tmp_path / "table2.csv").write_text("row\n")
    results = heldout_results(tmp_path)
    assert list(results) == [2, 3] and results[3]["hiou"].tolist() == [3.0]
    (tmp_path / "table3_bank_split2.csv").write_text("row,hiou\nours,1.0\n")
    assert list(heldout_results(tmp_path, "table3_bank")) == [2]
    (tmp_path / "table1_split2_4000.csv").write_text("row,hiou\nours,40.0\n")
    assert heldout_results(tmp_path)[2]["hiou"].tolist() == [2.0]  # the longer table is not split 24000
    assert heldout_results(tmp_path, suffix="_4000")[2]["hiou"].tolist() == [40.0]


def test_base_and_novel_gaps_compare_each_method_with_the_bounds():
    from pwslib.experiments.analysis import base_and_novel_gaps

    rows = [
        ("base_only", 40.0, 0.0),
        ("full_supervision", 44.0, 30.0),
        ("ours", 36.0, 27.0),
        ("point_naive", 37.0, 24.0),
    ]
    results = pd.DataFrame(
        [
            {"row": row, "dataset": "toy-stuff", "seed": seed, "base_miou": base + seed, "novel_miou": novel + seed}
            for row, base, novel in rows
            for seed in (0, 1)
        ]
    )
    gaps = base_and_novel_gaps(results)
    assert list(gaps.index) == ["ours", "point_naive"]
    assert gaps.loc["ours", "toy-stuff base − base_only"] == -4.0
    assert gaps.loc["point_naive", "toy-stuff novel, % of full"] == round(100 * 24.5 / 30.5)


def test_class_iou_reads_the_chosen_classes_of_every_run(tmp_path):
    from pwslib.experiments.analysis import class_iou

    records = []
    for row, seed, ious in (("ours", 0, (10.0, 30.0)), ("ours", 1, (20.0, 40.0)), ("without bank", 0, (5.0, 5.0))):
        folder = tmp_path / f"{row}-{seed}"
        folder.mkdir()
        per_class = {"box": ious[0], "tyre": ious[1], "sky": 99.0}
        scores = dict.fromkeys(("base_miou", "novel_miou", "total_miou", "hiou"), 0.0)  # a finished run's scores
        (folder / "metrics.json").write_text(json.dumps({**scores, "per_class_iou": per_class}))
        records.append({"row": row, "dataset": "toy-stuff", "seed": seed, "run": str(folder)})
    table = class_iou(pd.DataFrame(records), {"toy-stuff": ["box", "tyre"]})
    assert list(table.columns) == ["toy-stuff box", "toy-stuff tyre", "mean"]
    assert table.loc["ours", "toy-stuff box"] == "15.0 ± 7.1" and table.loc["ours", "mean"] == "25.0 ± 7.1"
    assert table.loc["without bank", "mean"] == "5.0"  # one seed: the mean alone
