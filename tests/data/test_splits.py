import pytest

from pwslib.data import class_split
from pwslib.data.splits import ClassSplit, real_benchmark_split
from pwslib.io import DataError


def test_real_benchmark_splits_have_the_published_sizes():
    coco, ade = real_benchmark_split("coco_stuff_10k"), real_benchmark_split("ade20k")
    assert (coco.num_classes, len(coco.base_classes), len(coco.novel_classes)) == (171, 128, 43)
    assert (ade.num_classes, len(ade.base_classes), len(ade.novel_classes)) == (150, 112, 38)
    for split in range(1, 5):
        assert len(real_benchmark_split("ade20k", split).novel_classes) == 38


def test_toy_split_by_name():
    split = class_split("toy-stuff", 1)
    assert "boat" in [split.class_names[c] for c in split.novel_classes]


@pytest.mark.parametrize("novel, message", [((7,), "unknown class ids"), ((1, 1), "twice"), ((), "at least one")])
def test_bad_splits_are_clear_errors(novel, message):
    with pytest.raises(DataError, match=message):
        ClassSplit(("a", "b", "c"), novel)


def test_unknown_benchmark_and_split():
    with pytest.raises(DataError, match="unknown benchmark"):
        real_benchmark_split("pascal")
    with pytest.raises(DataError, match="splits"):
        real_benchmark_split("ade20k", 9)
    with pytest.raises(DataError, match="unknown dataset"):
        class_split("mnist")
