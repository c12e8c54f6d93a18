"""Numbers the docs quote from a report are read back from that report."""

import re

import pandas as pd

from pwslib.experiments.report import differs
from pwslib.io import CHECKOUT


def test_the_click_loss_weight_sentence_is_the_point_weight_reports():
    text = (CHECKOUT / "docs" / "method.md").read_text()
    results = pd.read_csv(CHECKOUT / "reports" / "point_weights.csv")
    naive = results[results["method"] == "point_naive"]
    weight = naive["row"].str.extract(r"at ([\d.]+)")[0]
    scores = {w: group for w, group in naive.groupby(weight)}
    mean = {w: {s: round(group[s].mean(), 1) for s in ("base_miou", "novel_miou", "total_miou", "hiou")} for w, group in scores.items()}
    sentence = re.search(r"0\.3 against 1: (.*?)\| `keypoint_pseudo`", text, re.S)[1]
    assert f"base mIoU {mean['1']['base_miou']} → {mean['0.3']['base_miou']}" in sentence
    assert f"total {mean['1']['total_miou']} → {mean['0.3']['total_miou']} beyond the seed noise" in sentence
    assert f"hIoU {mean['1']['hiou']} → {mean['0.3']['hiou']} and novel {mean['1']['novel_miou']} → {mean['0.3']['novel_miou']} within it" in sentence
    assert f"(0.1: total {mean['0.1']['total_miou']}, novel {mean['0.1']['novel_miou']}, none beyond the noise" in sentence
    assert f"novel {mean['3']['novel_miou']} and {mean['10']['novel_miou']} within it" in sentence
    def beyond(weight: str, score: str) -> bool:
        return differs(scores[weight][score], scores["0.3"][score])

    assert not any(beyond("0.1", s) for s in ("base_miou", "novel_miou", "total_miou", "hiou"))
    assert all(beyond(w, s) for w in ("3", "10") for s in ("base_miou", "total_miou", "hiou"))
    assert not any(beyond(w, "novel_miou") for w in ("3", "10"))
    assert beyond("1", "base_miou") and beyond("1", "total_miou") and not beyond("1", "hiou") and not beyond("1", "novel_miou")
