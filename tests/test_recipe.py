import pandas as pd

from pwslib.recipe import recipe_rows, write_precision_report


def test_every_recipe_row_is_a_valid_config_and_the_default_row_changes_nothing():
    from pwslib.config import config_for

    rows = recipe_rows()
    for name, (method, overrides) in rows.items():
        config_for(method, **overrides)
    assert rows["ours: pretrained, lr 2e-3, 50 warm-up iterations (default)"] == ("ours", {})
    assert rows["full_supervision: random init, lr 1e-3 (the earlier recipe)"][1]["pretrained_backbone"] is False


def test_the_precision_report_compares_means_with_a_welch_test(tmp_path):
    runs = pd.DataFrame(
        [
            {
                "method": "ours",
                "precision": p,
                "seed": s,
                "base_miou": 1.0,
                "novel_miou": 1.0,
                "total_miou": v,
                "hiou": v,
                "images_per_second": 100.0,
                "git_commit": "abc",
            }
            for p, values in (("float32", (40.0, 41.0, 42.0)), ("bfloat16", (40.5, 41.5, 41.0)))
            for s, v in enumerate(values)
        ]
    )
    text = write_precision_report(runs, 500, tmp_path)
    assert "| ours | total_miou | 41.0 ± 1.0 | 41.0 ± 0.5 |" in text
    assert (tmp_path / "precision.csv").exists()
