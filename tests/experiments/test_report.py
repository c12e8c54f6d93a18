import pandas as pd

from pwslib.experiments.report import differs, summarise


def test_summary_formats_mean_and_std():
    results = pd.DataFrame(
        {
            "row": ["a", "a", "b"],
            "dataset": ["d"] * 3,
            "base_miou": [10.0, 20.0, 5.0],
            "novel_miou": [1.0, 3.0, 2.0],
            "total_miou": [5.0, 5.0, 5.0],
            "hiou": [2.0, 4.0, 3.0],
            "reference": [True, True, False],
            "run": ["a0", "a1", "b0"],
        }
    )
    table = summarise(results)
    assert table.loc["a", "d Base"] == "15.0 ± 7.1" and table.loc["b", "d hIoU"] == "3.0"


def test_summary_marks_differences_beyond_the_seed_noise():
    seeds = 3
    results = pd.DataFrame(
        {
            "row": ["ours"] * seeds + ["far"] * seeds + ["near"] * seeds,
            "dataset": ["d"] * 3 * seeds,
            "base_miou": [50.0, 51.0, 49.0, 30.0, 31.0, 29.0, 50.5, 48.0, 51.5],
            "novel_miou": [1.0] * 3 * seeds,
            "total_miou": [1.0] * 3 * seeds,
            "hiou": [1.0] * 3 * seeds,
            "reference": [True] * seeds + [False] * 2 * seeds,
            "run": [f"r{i}" for i in range(3 * seeds)],
        }
    )
    table = summarise(results)
    assert table.loc["far", "d Base"] == "30.0 ± 1.0*"  # 20 points apart, std 1: Welch p < 0.001
    assert table.loc["near", "d Base"] == "50.0 ± 1.8"  # within the noise: no mark
    assert table.loc["ours", "d Base"] == "50.0 ± 1.0"  # the reference is never marked
    assert not differs(pd.Series([1.0, 1.0]), pd.Series([1.0, 1.0]))
    assert differs(pd.Series([1.0, 1.0]), pd.Series([2.0, 2.0]))
