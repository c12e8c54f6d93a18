"""The README's numbers are read back from the reports they cite: a table that moves without its prose fails here."""

import json
import re
from pathlib import Path

import pandas as pd

from pwslib.experiments.schedules import SCHEDULES, table_iterations
from studies.guide import README, guide_text

ROOT = Path(__file__).resolve().parents[1]
TEXT = README.read_text()
WORDS = " ".join(TEXT.split())  # line breaks do not matter to a reader


def test_the_readme_checks_are_every_preregistered_check_as_reported():
    assert guide_text(TEXT) == TEXT, "run python -m studies.guide"
    rows = [line for line in TEXT.splitlines() if line.startswith("| split ")]
    assert len(rows) == 8 and sum("did not hold" in row for row in rows) == 3  # the misses are shown too


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


def test_the_quick_presets_share_of_the_plateaus_is_the_convergence_reports():
    ratios = [row["ratio"] for row in json.loads((ROOT / "reports" / "convergence.json").read_text())["ratios"]["quick"]]
    stated = re.search(r"iterations per run, the most that fits in 30 minutes: (\d\.\d+)-(\d\.\d+) of", WORDS)
    assert stated and (float(stated[1]), float(stated[2])) == (min(ratios), max(ratios))


def test_the_curve_point_naives_plateau_comes_from_on_toy_stuff_is_the_convergence_reports():
    ratios = json.loads((ROOT / "reports" / "convergence.json").read_text())["ratios"]["quick"]
    curve = next(row["plateau's curve"] for row in ratios if (row["dataset"], row["method"]) == ("toy-stuff", "point_naive"))
    assert f"`point_naive`'s on toy-stuff from a {int(curve.split('/')[0]):,}-iteration curve" in WORDS


def test_the_gaps_at_the_plateaus_are_the_convergence_reports():
    levelled = pd.DataFrame(json.loads((ROOT / "reports" / "convergence.json").read_text())["levelling_off"])
    levelled = levelled.set_index(["dataset", "method"])

    def gap(dataset, score):
        ours, naive = (levelled.loc[(dataset, method), f"plateau {score}"] for method in ("ours", "point_naive"))
        return f"{ours - naive:+.1f}"

    stated = (
        f"`ours` − `point_naive` is {gap('toy-stuff', 'novel')} / {gap('toy-scene', 'novel')} novel mIoU "
        f"(toy-stuff / toy-scene), {gap('toy-stuff', 'hIoU')} / {gap('toy-scene', 'hIoU')} hIoU and "
        f"{gap('toy-stuff', 'total')} / {gap('toy-scene', 'total')} total mIoU"
    )
    assert stated in WORDS


def test_the_click_probe_ratios_and_the_literature_band_are_the_data_cards():
    from studies.datacard import CLICK_BAND

    cards = {card["preset"]: card for card in json.loads((ROOT / "reports" / "toy_datacard.json").read_text())["presets"]}
    ratios = " / ".join(f"{cards[name]['click_probe']['novel_ratio']:.2f}" for name in ("toy-stuff", "toy-scene"))
    assert f"click probe {ratios} of full masks" in WORDS
    assert f"on PASCAL VOC, {CLICK_BAND[0]:.2f}-{CLICK_BAND[1]:.2f} (Bearman et al.)" in WORDS


def test_the_ratio_without_masks_is_the_click_ambiguity_record_s():
    rows = json.loads((ROOT / "reports" / "click_ambiguity.json").read_text())["rows"]
    (ratio,) = [r["ratio"] for r in rows if r.get("clicked") == "every class" and r["variant"].startswith("toy-stuff")]
    (masks,) = [r["ratio"] for r in rows if r["variant"] == "toy-stuff, clicks at the centre, probe trained 4x longer"]
    assert f"with none, one centre click per class gives {ratio:.2f} on toy-stuff ({masks:.2f} with base masks)" in WORDS
