import json

import pandas as pd
import pytest
from conftest import SMALL_TOY

from pwslib.data.toy import PRESETS
from studies import learning_curves
from studies.learning_curves import (
    click_probe_ratios,
    continued_configs,
    not_flat,
    grid_configs,
    iterations_to_reach,
    lead_table,
    read_curves,
    summary,
    write_report,
)


def synthetic_curves(levels: dict[str, float], seeds=(0, 1, 2), preset="toy-stuff") -> pd.DataFrame:
    """Curves that rise to ``levels[method]`` by iteration 400 and stay there (a seed adds 0.1 per index)."""
    rows = []
    for method, level in levels.items():
        for seed in seeds:
            for iteration in range(100, 1100, 100):
                value = level * min(1.0, iteration / 400) + 0.1 * seed
                rows.append({"preset": preset, "method": method, "seed": seed, "iteration": iteration, "hiou": value})
    return pd.DataFrame.from_records(rows)


def test_every_curve_runs_on_a_reporting_split_disjoint_from_the_development_split():
    configs = grid_configs(["toy-stuff", "toy-scene"], ["ours"], [0, 1], 100, {})
    assert [(c.dataset, c.seed) for c in configs] == [("toy-stuff", 0), ("toy-scene", 0), ("toy-stuff", 1), ("toy-scene", 1)]
    for config in configs:
        assert config.split == learning_curves.SPLIT != 1 and config.split in PRESETS[config.dataset].reporting_splits


def test_the_curves_run_on_the_split_their_preregistration_names():
    from pwslib.io import CHECKOUT

    protocol = (CHECKOUT / "reports" / "protocol.md").read_text()
    assert f"## Preregistered: learning curves on split {learning_curves.SPLIT}," in protocol
    assert {config.split for config in grid_configs(["toy-stuff", "toy-scene"], ["ours"], [0], 100, {})} == {7}


def test_iterations_to_reach_read_the_seed_mean():
    curves = synthetic_curves({"ours": 50.0, "full_supervision": 60.0})
    assert iterations_to_reach(curves, "toy-stuff", "ours", 0.5 * 50) == 200
    assert iterations_to_reach(curves, "toy-stuff", "ours", 100.0) is None


def test_the_summary_gives_the_plateaus_the_gaps_and_the_click_probe_of_the_same_split():
    curves = synthetic_curves({"point_naive": 45.0, "ours": 50.0, "full_supervision": 60.0})
    budget = pd.DataFrame.from_records(
        [{"preset": "toy-stuff", "method": m, "seed": s, "hiou": v + s} for m, v in (("point_naive", 30), ("ours", 40), ("full_supervision", 45)) for s in (0, 1, 2)]
    )
    table = summary(curves, budget, {"toy-stuff": {learning_curves.SPLIT: 0.97}})
    row = table.iloc[0]
    assert row["ours at plateau"] == "50.1 ± 0.1" and row["point_naive at plateau"].endswith("*")
    assert row["ours at budget"] == "41.0 ± 1.0"  # every column names when it is read: at budget or at plateau
    assert row["ours − point_naive at plateau"].startswith("+5.0") and row["ours − point_naive at budget"].startswith("+10.0")
    assert row["ours / full at plateau"] == f"{50.1 / 60.1:.3f}" and row["ours / full at budget"] == f"{41 / 46:.3f}"
    assert row["ours: iterations to 0.9x full"] == "-"  # 50 never reaches 54
    assert row["point_naive: iterations to 0.9x full"] == "-"
    assert row["curves flat"] == "9 of 9" and row["click probe ratio"] == "0.97"


def test_the_readme_lead_has_a_budget_and_a_plateau_row_per_preset_from_the_summary():
    curves = synthetic_curves({"point_naive": 45.0, "ours": 50.0, "full_supervision": 60.0})
    budget = pd.DataFrame.from_records(
        [{"preset": "toy-stuff", "method": m, "seed": s, "hiou": v + s} for m, v in (("point_naive", 30), ("ours", 40), ("full_supervision", 45)) for s in (0, 1, 2)]
    )
    records = summary(curves, budget, {}).to_dict("records")
    lead = lead_table(records)
    assert list(lead["when"]) == ["5,000 iterations", "plateau"]
    assert list(lead["`ours`"]) == ["41.0 ± 1.0", "50.1 ± 0.1"]
    assert lead["`ours` − `point_naive`"].iloc[1].startswith("+5.0")
    assert list(lead["`ours` / full"]) == [f"{41 / 46:.3f}", f"{50.1 / 60.1:.3f}"]
    assert set(lead["preset"]) == {f"toy-stuff (split {learning_curves.SPLIT})"}


def test_click_probe_ratios_read_every_split_of_the_data_card(tmp_path):
    card = {"presets": [{"preset": "toy-stuff", "click_probe": {"split": 1, "novel_ratio": 0.98},
                         "click_probes": [{"split": 1, "novel_ratio": 0.98}, {"split": 7, "novel_ratio": 0.9}]}]}
    (tmp_path / "card.json").write_text(json.dumps(card))
    assert click_probe_ratios(tmp_path / "card.json") == {"toy-stuff": {1: 0.98, 7: 0.9}}
    assert click_probe_ratios(tmp_path / "missing.json") == {}


def test_the_report_and_its_figures_are_written(tmp_path):
    curves = synthetic_curves({"point_naive": 45.0, "ours": 50.0, "full_supervision": 60.0})
    meta = {"git_commit": "abc", "machine": "m", "date_utc": "d", "iterations": 1000, "every": 100, "seeds": [0, 1, 2]}
    text = write_report(curves, pd.DataFrame(), {}, meta, tmp_path)
    assert "| toy-stuff |" in text and (tmp_path / "figures" / "learning_curves.png").exists()
    assert f"| toy-stuff (split {learning_curves.SPLIT}) | plateau |" in text  # the lead table comes first
    assert (tmp_path / "figures" / "transfer_gain.png").exists() and (tmp_path / "learning_curves.csv").exists()


@pytest.mark.slow
def test_the_study_trains_curves_and_budget_runs_resumably_and_reports_them(tmp_path, toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    monkeypatch.setattr(learning_curves, "BUDGET", 2)
    argv = [
        "--presets", "toy-stuff", "--methods", "ours", "--seeds", "0", "--iterations", "4", "--every", "2",
        "--test-images", "4", "--runs-root", str(tmp_path / "runs"), "--reports", str(tmp_path / "reports"),
        "--set", "batch_size=2", "embedding_dim=32", "pretrained_backbone=false", f"toy_options={json.dumps(SMALL_TOY)}",
    ]
    learning_curves.main(argv)
    configs = grid_configs(["toy-stuff"], ["ours"], [0], 4, {"batch_size": 2, "embedding_dim": 32, "pretrained_backbone": False, "toy_options": SMALL_TOY})
    curves = read_curves(tmp_path / "runs", configs)
    assert list(curves["iteration"]) == [2, 4]
    assert "| toy-stuff |" in (tmp_path / "reports" / "learning_curves.md").read_text()
    learning_curves.main(argv + ["--report-only"])  # from the runs, training nothing


def test_repeated_seeds_are_refused():
    with pytest.raises(SystemExit):
        learning_curves.main(["--seeds", "0", "0", "--report-only"])


def test_a_curve_not_flat_sends_seed_0_of_its_method_round_again_over_a_longer_schedule(tmp_path):
    curves = synthetic_curves({"ours": 50.0, "full_supervision": 60.0})
    rising = curves[curves.method == "ours"].copy()
    rising["hiou"] += rising["iteration"] / 100  # still gaining 1 point per 100 iterations at the end
    curves = pd.concat([curves[curves.method != "ours"], rising])
    assert not_flat(curves) == [("toy-stuff", "ours")]
    (config,) = continued_configs(curves, 1000, {})
    assert (config.method, config.seed, config.iterations, config.split) == ("ours", 0, 2000, learning_curves.SPLIT)
    longer = synthetic_curves({"ours": 52.0}, seeds=(0,))
    meta = {"git_commit": "abc", "machine": "m", "date_utc": "d", "iterations": 1000, "every": 100, "seeds": [0, 1, 2]}
    text = write_report(curves, pd.DataFrame(), {}, meta, tmp_path, continued=longer)
    assert "## Curves continued where one was not flat at 1,000 iterations" in text
    assert "| toy-stuff | ours | 0 | 1,000 | 52.0 | +0.0 | yes |" in text
