import numpy as np
import torch
from conftest import SMALL_TOY

from pwslib.data import build_dataset
from pwslib.experiments import first_object_click
from pwslib.model.maskformer import ModelConfig, PointWeakShotMaskFormer
from pwslib.widget import KeypointMaskExplorer


def test_explorer_masks_follow_the_click_to_another_object(toy_root, monkeypatch):
    monkeypatch.setenv("PWSLIB_DATA", str(toy_root))
    test = build_dataset("toy-stuff", "test", **SMALL_TOY)
    torch.manual_seed(0)
    model = PointWeakShotMaskFormer(ModelConfig(num_classes=test.split.num_classes, embedding_dim=32))
    explorer = KeypointMaskExplorer(model, test, test.split)
    index, click, cls = first_object_click(test, test.split)
    first = explorer.compute(index, [click], cls)
    assert first["keypoint_masks"].shape == (1, 96, 96) and first["class_mask"].shape == (96, 96)
    assert 0 <= first["proposal_index"] < model.config.num_queries
    assert first["prediction"].shape == (96, 96)
    _, other, other_cls = first_object_click(test, test.split, image_index=index, avoid=cls)
    moved = explorer.compute(index, [other], other_cls)
    assert np.abs(moved["class_mask"] - first["class_mask"]).mean() > 1e-3
    two = explorer.compute(index, [click, other], cls)
    assert two["keypoint_masks"].shape[0] == 2
    assert (two["class_mask"] >= np.maximum(first["class_mask"], moved["class_mask"]) - 1e-5).all()  # max union
