import numpy as np
import pytest
import torch
from conftest import SMALL_TOY
from PIL import Image

from pwslib.data import build_dataset, collate, open_source
from pwslib.data.dataset import Augmentation, FolderSource, PointSupervisionDataset, move_points
from pwslib.io import DataError


def test_sample_structure(toy_root):
    dataset = build_dataset("toy-stuff", "train", root=toy_root, **SMALL_TOY)
    sample = dataset[0]
    assert sample["image"].dtype == torch.uint8 and sample["image"].shape == (3, 96, 96)
    assert sample["full_label"].shape == sample["base_label"].shape == (96, 96)
    assert sample["points"].shape[1] == 3 and sample["image_labels"].shape == (24,)
    novel = list(dataset.split.novel_classes)
    assert not torch.isin(sample["base_label"], torch.tensor(novel)).any()


def test_crop_size_trains_on_crops_whose_clicks_stay_on_their_class(toy_root):
    dataset = build_dataset("toy-stuff", "train", root=toy_root, crop_size=64, **SMALL_TOY)
    for index in range(len(dataset)):
        sample = dataset[index]
        assert sample["image"].shape == (3, 64, 64) and sample["full_label"].shape == (64, 64)
        points = sample["points"]
        assert ((points[:, :2] >= 0) & (points[:, :2] < 64)).all()
        assert (sample["full_label"][points[:, 0], points[:, 1]] == points[:, 2]).all()
    assert build_dataset("toy-stuff", "test", root=toy_root, **SMALL_TOY)[0]["image"].shape == (3, 96, 96)


def test_augmentation_keeps_every_point_on_its_class(toy_root):
    dataset = build_dataset("toy-stuff", "train", root=toy_root, **SMALL_TOY)
    checked = 0
    for epoch in range(5):
        dataset.set_epoch(epoch)
        for index in range(len(dataset)):
            sample = dataset[index]
            y, x, cls = sample["points"].T
            assert torch.equal(sample["full_label"][y, x], cls)
            checked += len(cls)
            clicked_novel = {int(c) for c in cls if int(c) in dataset.split.novel_classes}
            labelled_novel = {
                c for c in sample["image_labels"].nonzero().flatten().tolist() if c in dataset.split.novel_classes
            }
            assert clicked_novel == labelled_novel
    assert checked > 300


def test_augmentation_is_deterministic_per_epoch_and_changes_between_epochs(toy_root):
    dataset = build_dataset("toy-stuff", "train", root=toy_root, **SMALL_TOY)
    first = dataset[3]["image"]
    assert torch.equal(first, dataset[3]["image"])
    dataset.set_epoch(1)
    assert not torch.equal(first, dataset[3]["image"])


def test_flip_and_crop_move_points_with_pixels():
    image = np.zeros((10, 10, 3), dtype=np.uint8)
    label = np.zeros((10, 10), dtype=np.uint8)
    label[2, 7] = 4
    points = np.array([[2, 7, 4]])
    augmentation = Augmentation((20, 20), min_scale=1.0, max_scale=1.0, aspect_range=(1, 1), flip=True)
    for seed in range(10):
        _, (moved_label,), moved = augmentation(image, [label], points, np.random.default_rng(seed))
        assert moved_label[moved[0, 0], moved[0, 1]] == 4


def test_points_not_read_after_downscaling_are_dropped():
    rows = np.array([0, 2, 4, 6])  # output pixel i reads source row 2i
    moved = move_points(np.array([[2, 0, 1], [3, 0, 1]]), rows, np.arange(8))
    assert moved.tolist() == [[1, 0, 1]]


def test_collate_pads_points(toy_root):
    dataset = build_dataset("toy-stuff", "train", root=toy_root, **SMALL_TOY)
    batch = collate([dataset[i] for i in range(4)])
    assert batch["image"].shape == (4, 3, 96, 96)
    counts = [len(dataset[i]["points"]) for i in range(4)]
    assert batch["points"].shape == (4, max(counts), 3)
    assert (batch["points"][:, :, 2] >= -1).all()


def test_test_subset_has_no_points_and_no_augmentation(toy_root):
    dataset = build_dataset("toy-stuff", "test", root=toy_root, **SMALL_TOY)
    assert dataset.augmentation is None and len(dataset[0]["points"]) == 0


def _folder(tmp_path, image_size=(8, 6), label=None):
    for sub in ("images/train", "labels/train"):
        (tmp_path / sub).mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((*image_size, 3), dtype=np.uint8)).save(tmp_path / "images/train/a.jpg")
    label = np.zeros((8, 6), dtype=np.uint8) if label is None else label
    Image.fromarray(label).save(tmp_path / "labels/train/a.png")
    return FolderSource(tmp_path, "train", num_classes=5)


def test_folder_source_reads_a_prepared_dataset(tmp_path):
    image, label = _folder(tmp_path).load(0)
    assert image.shape == (8, 6, 3) and label.shape == (8, 6)


def test_corrupt_image_names_the_file(tmp_path):
    source = _folder(tmp_path)
    (tmp_path / "images/train/a.jpg").write_bytes(b"\xff\xd8 truncated jpeg")
    with pytest.raises(DataError, match=r"a\.jpg is corrupt"):
        source.load(0)


def test_label_out_of_range_names_the_file(tmp_path):
    label = np.zeros((8, 6), dtype=np.uint8)
    label[1, 1] = 7
    with pytest.raises(DataError, match=r"a\.png has label ids \[7\] out of range"):
        _folder(tmp_path, label=label).load(0)
    with pytest.raises(DataError, match=r"a\.png has label ids \[7\] out of range"):
        _folder(tmp_path, label=label).check_labels()  # what a run calls on its test set before training


def test_palette_labels_are_read_as_their_indices_and_rgb_labels_are_refused(tmp_path):
    source = _folder(tmp_path)
    ids = np.array([[0, 3, 4, 255, 1, 2]] * 8, dtype=np.uint8)
    palette = Image.fromarray(ids, mode="P")
    palette.putpalette([value for i in range(256) for value in ((i * 37) % 256, (i * 91) % 256, (i * 53) % 256)])
    palette.save(tmp_path / "labels/train/a.png")  # VOC style: the palette's grey values are not the ids
    _, label = source.load(0)
    assert np.array_equal(label, ids)
    Image.fromarray(np.zeros((8, 6, 3), dtype=np.uint8)).save(tmp_path / "labels/train/a.png")
    with pytest.raises(DataError, match=r"a\.png is a RGB image, not a label map of class ids"):
        source.load(0)


def test_label_size_different_from_image(tmp_path):
    with pytest.raises(DataError, match="re-convert"):
        _folder(tmp_path, image_size=(9, 6)).load(0)


def test_missing_folder_and_empty_split(tmp_path):
    with pytest.raises(DataError, match="data_scripts/coco_stuff_10k.py"):
        open_source("coco_stuff_10k", "train", root=tmp_path)
    (tmp_path / "images/train").mkdir(parents=True)
    (tmp_path / "labels/train").mkdir(parents=True)
    with pytest.raises(DataError, match="split is empty"):
        FolderSource(tmp_path, "train", 5)


def test_points_file_from_another_dataset_is_rejected(toy_root, tmp_path, tiny_split):
    from pwslib.data.points import simulate_points
    from pwslib.io import write_json_atomic

    source = open_source("toy-stuff", "train", root=toy_root, **SMALL_TOY)
    split = build_dataset("toy-stuff", "train", root=toy_root, **SMALL_TOY).split
    labels = [source.load(i)[1] for i in range(len(source))]
    content = simulate_points(labels, source.names, split)
    content["images"][source.names[2]]["points"][0][0] = 200
    write_json_atomic(tmp_path / "p.json", content)
    with pytest.raises(DataError, match="outside"):
        PointSupervisionDataset(source, split, tmp_path / "p.json")


def test_a_points_file_made_with_other_parameters_is_refused(toy_root, tmp_path):
    import shutil

    from pwslib.data import ensure_points

    root = tmp_path / "data"
    shutil.copytree(toy_root, root)
    three = ensure_points("toy-stuff", points_per_class=3, root=root, **SMALL_TOY)
    one = three.with_name(three.name.replace("_k3_", "_k1_"))
    shutil.copy(three, one)  # a 3-click file saved under the 1-click name
    with pytest.raises(DataError, match="points_per_class=3, not points_per_class=1"):
        build_dataset("toy-stuff", "train", root=root, points_per_class=1, **SMALL_TOY)
