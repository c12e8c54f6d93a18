import numpy as np
from conftest import SMALL_TOY

from pwslib.data import build_dataset
from pwslib.data.summaries import annotation_summary, first_image_with_novel, split_table


def test_the_first_image_with_a_novel_click_has_one_and_no_earlier_image_has(toy_root):
    dataset = build_dataset("toy-stuff", "train", root=toy_root, augment=False, **SMALL_TOY)
    novel = set(dataset.split.novel_classes)
    index = first_image_with_novel(dataset)
    assert any(int(c) in novel for c in dataset.points[index][:, 2])
    assert not any(int(c) in novel for points in dataset.points[:index] for c in points[:, 2])


def test_annotation_summary_counts_clicks_against_the_mask_pixels_they_replace(toy_root):
    dataset = build_dataset("toy-stuff", "train", root=toy_root, augment=False, **SMALL_TOY)
    summary = annotation_summary(dataset)["value"]
    assert summary["training images"] == len(dataset)
    assert 0 < summary["images with a novel class"] <= len(dataset)
    assert summary["novel clicks (positives)"] < summary["novel pixels a mask would label"]


def test_split_table_names_every_class_base_or_novel():
    table = split_table("toy-stuff", 1)
    assert set(table["role"]) == {"base", "novel"}
    assert np.count_nonzero(table["role"] == "novel") == 6
