import numpy as np
from conftest import SMALL_TOY

from pwslib.data import build_dataset
from pwslib.data.summaries import (
    annotation_summary,
    clicked_object,
    first_image_with_novel,
    object_clicks,
    split_table,
    thing_classes,
)


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


def test_thing_classes_are_the_toy_things_and_unknown_elsewhere():
    from pwslib.data.toy import PRESETS

    things = thing_classes("toy-stuff")
    names = PRESETS["toy-stuff"].class_names
    assert {names[c] for c in things} == {t.name for t in PRESETS["toy-stuff"].things}
    assert thing_classes("ade20k") is None


def test_the_clicked_object_is_the_connected_region_under_the_click():
    label = np.zeros((8, 8), dtype=np.uint8)
    label[1:3, 1:3] = 5  # the clicked object
    label[5:7, 5:7] = 5  # another object of the same class, not connected
    label[0, 7] = 255
    obj = clicked_object(label, (1, 1))
    assert obj.sum() == 4 and not obj[5, 5]


def test_every_object_large_enough_gets_two_interior_clicks_far_apart():
    label = np.zeros((40, 40), dtype=np.uint8)
    label[5:15, 5:35] = 3  # a 10 x 30 bar: clicked at its middle, then near an end
    label[25:27, 5:35] = 4  # a 2-pixel line: no interior, never clicked
    label[30:33, 30:33] = 6  # 9 pixels: below the smallest object
    objects = object_clicks(label, min_pixels=40)
    assert [class_id for class_id, _, _ in objects] == [0, 3]  # the background region counts too
    _, bar, (first, second) = objects[1]
    assert bar.sum() == 300 and bar[first] and bar[second]
    assert first[0] in (9, 10) and abs(second[1] - first[1]) >= 15  # the deepest row, then the far end


def test_a_thing_is_clicked_before_a_stuff_region(toy_root):
    from pwslib.data.summaries import first_object_click

    test = build_dataset("toy-stuff", "test", root=toy_root, augment=False, **SMALL_TOY)
    things = thing_classes("toy-stuff")
    index, click, cls = first_object_click(test, test.split, things=things)
    if any(things & set(np.unique(test.source.load(i)[1]).tolist()) for i in range(len(test))):
        assert cls in things


def test_a_novel_object_pair_is_two_novel_things_of_one_image_each_clicked_inside(toy_root):
    from pwslib.data.summaries import first_object_pair, novel_object_pairs

    test = build_dataset("toy-stuff", "test", root=toy_root, augment=False, **SMALL_TOY)
    things, novel = thing_classes("toy-stuff"), set(test.split.novel_classes)
    pairs = list(novel_object_pairs(test, test.split, things))
    assert pairs, "the small toy test set holds images with two novel things"
    for index, (click, cls), (other, other_cls) in pairs:
        label = test.source.load(index)[1]
        assert cls < other_cls and {cls, other_cls} <= novel & things
        assert label[click] == cls and label[other] == other_cls
    assert first_object_pair(test, test.split, things) == pairs[0]
    assert list(novel_object_pairs(test, test.split, set())) == []  # no thing allowed, not every class
    lone = pairs[0][1][1]  # with one novel thing allowed, no pair: the first object of that class and another one
    index, (click, cls), (other, other_cls) = first_object_pair(test, test.split, {lone})
    label = test.source.load(index)[1]
    assert cls == lone and other_cls != lone and label[click] == cls and label[other] == other_cls
