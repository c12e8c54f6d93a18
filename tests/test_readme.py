"""The README's numbers are read back from the reports they cite: a table that moves without its prose fails here."""

import json
import re
from pathlib import Path

import pandas as pd

from pwslib.experiments.schedules import SCHEDULES, table_iterations
from studies.guide import README, RESULTS, replace_block, results_block

ROOT = Path(__file__).resolve().parents[1]
TEXT = README.read_text()
WORDS = " ".join(TEXT.split())  # line breaks do not matter to a reader


def test_the_readme_results_are_the_preregistered_table_as_reported():
    assert replace_block(TEXT, results_block(pd.read_csv(RESULTS))) == TEXT, "run python -m studies.guide"


def last_cold_minutes(preset: str) -> int:
    """Minutes of ``preset``'s last reproduction that started from empty caches and trained its runs
    (reports/reproduction.json; a notebook re-run with ``--only`` that needs no run is not one)."""
    history = json.loads((ROOT / "reports" / "reproduction.json").read_text())[preset]
    cold = [record for record in history if record.get("runs_finished_before") == 0 and record.get("runs_trained")]
    return round(cold[-1]["wall_seconds"] / 60)


def test_the_main_job_minutes_are_those_of_the_last_reproduction_from_empty_caches():
    stated = re.search(r"runs the main job: .*?\((\d+) min on a 2-core CPU", WORDS)
    assert stated and int(stated[1]) == last_cold_minutes("quick")


def test_the_full_presets_minutes_are_those_of_its_last_reproduction_from_empty_caches():
    stated = re.search(r"`--preset full`; (\d+) min on a 2-core CPU when it last ran from empty caches", WORDS)
    assert stated and int(stated[1]) == last_cold_minutes("full")


def test_the_schedule_the_readme_states_is_the_quick_preset():
    quick = SCHEDULES["quick"]
    assert f"{quick.iterations:,} iterations per run" in WORDS and "(one seed," in WORDS and quick.seeds == (0,)
    ablation = table_iterations("quick", "table2")
    assert table_iterations("quick", "table3") == ablation and f"{ablation:,} iterations each" in WORDS


def test_the_readme_is_a_guide_not_a_lab_notebook():
    assert len(TEXT.split()) <= 1500
    assert not re.search(r"\b[0-9a-f]{7,12}\b", TEXT), "no commit hashes in the README"
    for link in re.findall(r"\]\(([^)#]+)\)", TEXT):
        assert (ROOT / link).exists(), f"README links to {link}, which does not exist"


def test_the_longer_main_jobs_count_of_runs_near_their_plateaus_is_the_convergence_reports():
    ratios = [row["ratio"] for row in json.loads((ROOT / "reports" / "convergence.json").read_text())["ratios"]["quick_5000"]]
    words = ["none", "one", "two", "three", "four", "five", "all"]
    stated = re.search(r"At 5,000 iterations (\w+) of the six reach 0\.9 .*? six runs alone take ([\d.]+) minutes", WORDS)
    assert len(ratios) == 6 and stated and stated[1] == words[sum(ratio >= 0.9 for ratio in ratios)]
    run_seconds = pd.read_csv(ROOT / "reports" / "table1_quick_5000.csv")["wall_seconds"].sum()
    assert float(stated[2]) == round(run_seconds / 60, 1)


def test_the_quick_presets_share_of_the_plateaus_is_the_convergence_reports():
    ratios = [row["ratio"] for row in json.loads((ROOT / "reports" / "convergence.json").read_text())["ratios"]["quick"]]
    stated = re.search(r"iterations per run, the most that fits in 30 minutes: (\d\.\d+)-(\d\.\d+) of", WORDS)
    assert stated and (float(stated[1]), float(stated[2])) == (min(ratios), max(ratios))


def test_the_length_at_which_point_naive_flattened_on_toy_stuff_is_the_convergence_reports():
    plateaus = json.loads((ROOT / "reports" / "convergence.json").read_text())["plateaus"]
    flat = [
        int(name.split("/")[2])
        for name, level in plateaus.items()
        if name.startswith("toy-stuff/point_naive/") and name.count("/") == 2 and level["last_quarter_gain"] <= 1.0
    ]
    assert flat and f"`point_naive`'s on toy-stuff only after {min(flat):,} iterations" in WORDS


def test_the_gaps_at_the_plateaus_are_the_convergence_reports():
    levelled = json.loads((ROOT / "reports" / "convergence.json").read_text())["levelling_off"]
    plateaus = {(row["dataset"], row["method"]): row for row in levelled}

    def gap(dataset, score):
        return f"{plateaus[(dataset, 'ours')][score] - plateaus[(dataset, 'point_naive')][score]:+.1f}"

    stated = (
        f"`ours` leads `point_naive` by {gap('toy-stuff', 'plateau novel')} / {gap('toy-scene', 'plateau novel')} "
        f"novel mIoU (toy-stuff / toy-scene) and {gap('toy-stuff', 'plateau hIoU')} / {gap('toy-scene', 'plateau hIoU')} "
        f"hIoU, while `point_naive` catches up on the base classes (total mIoU {gap('toy-stuff', 'plateau total')} / "
        f"{gap('toy-scene', 'plateau total')})"
    )
    assert stated in WORDS
