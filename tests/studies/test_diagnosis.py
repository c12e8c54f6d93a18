import numpy as np
import pandas as pd
import pytest

from studies.diagnosis import BASE_DESTINATIONS, NOVEL_DESTINATIONS, novel_takers, pixel_destinations, write_report


def confusion(tiny_split):
    """Classes 0, 1, 2 base; 3, 4 novel. Rows: true class, columns: predicted class (pixels)."""
    matrix = np.zeros((5, 5))
    matrix[0, 0], matrix[0, 1], matrix[0, 3] = 80, 10, 10  # sky: 10 to grass (base), 10 to boat (novel)
    matrix[1, 1], matrix[1, 4] = 70, 30  # grass: 30 to cow (novel)
    matrix[2, 2] = 100
    matrix[3, 3], matrix[3, 0], matrix[3, 4] = 50, 25, 25  # boat: 25 to sky (base), 25 to cow (novel)
    matrix[4, 4] = 100
    return matrix


def test_every_pixel_is_counted_once_by_where_it_goes(tiny_split):
    shares = pixel_destinations(confusion(tiny_split), tiny_split)
    assert shares["base: own class"] == pytest.approx(250 / 300 * 100)
    assert shares["base: another base class"] == pytest.approx(10 / 300 * 100)
    assert shares["base: a novel class"] == pytest.approx(40 / 300 * 100)
    assert shares["novel: own class"] == pytest.approx(150 / 200 * 100)
    assert shares["novel: a base class"] == pytest.approx(25 / 200 * 100)
    assert shares["novel: another novel class"] == pytest.approx(25 / 200 * 100)
    assert sum(shares[n] for n in BASE_DESTINATIONS) == pytest.approx(100)
    assert sum(shares[n] for n in NOVEL_DESTINATIONS) == pytest.approx(100)


def test_the_novel_classes_taking_most_base_pixels_come_first(tiny_split):
    assert novel_takers(confusion(tiny_split), tiny_split) == "cow 10.0, boat 3.3"
    assert novel_takers(np.eye(5), tiny_split) == "-"


def test_report_has_the_table_and_both_figures(tiny_split, tmp_path):
    shares = pixel_destinations(confusion(tiny_split), tiny_split)
    records = pd.DataFrame(
        [
            {"dataset": "toy-stuff", "method": m, "seed": s, **shares, "novel classes taking base pixels": "cow 10.0"}
            for m in ("base_only", "ours")
            for s in (0, 1)
        ]
    )
    log = pd.DataFrame({"step": range(30), "classification": np.linspace(3, 1, 30), "inclusion": np.ones(30)})
    logs = {("toy-stuff", "base_only"): log, ("toy-stuff", "ours"): log}
    calibration = pd.DataFrame(
        [
            {
                "dataset": "toy-stuff",
                "method": "ours",
                "seed": s,
                "novel scale": scale,
                "Base": b,
                "Novel": 20.0,
                "hIoU": 25.0,
            }
            for s in (0, 1)
            for scale, b in ((1.0, 30.0), (0.6, 32.0 + s))
        ]
    )
    text = write_report("quick", records, calibration, logs, ["toy-scene-ours-s0-abc"], tmp_path)
    assert "83.3 ± 0.0" in text and "runs not found (not trained yet): toy-scene-ours-s0-abc" in text
    assert "| toy-stuff | ours | 1.0 | 30.0 ± 0.0 |" in text and "| toy-stuff | ours | 0.6 | 32.5 ± 0.7 |" in text
    assert (tmp_path / "figures" / "base_pixels.png").stat().st_size > 0
    assert (tmp_path / "figures" / "base_pixels_loss_terms.png").stat().st_size > 0
