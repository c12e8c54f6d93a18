import hashlib
import json

import numpy as np
import pytest

from pwslib.data.toy import PRESETS, generate_subset, get_preset, load_toy, render_scene
from pwslib.io import DataError


def digest(*arrays):
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_meet_the_specification(name):
    preset = get_preset(name)
    assert len(preset.class_names) >= 24
    assert len(set(preset.class_names)) == len(preset.class_names)
    assert len(preset.novel_splits) >= 3
    for index in range(1, len(preset.novel_splits) + 1):
        split = preset.split(index)
        assert len(split.base_classes) == 3 * len(split.novel_classes)
    assert preset.num_train >= 2000 and preset.num_test >= 500 and preset.image_size == 96


def test_toy_scene_has_more_classes_more_stuff_and_smaller_things():
    stuff, scene = get_preset("toy-stuff"), get_preset("toy-scene")
    assert len(scene.class_names) > len(stuff.class_names)
    assert len(scene.stuff) > len(stuff.stuff)
    assert np.mean([t.radius[1] for t in scene.things]) < np.mean([t.radius[1] for t in stuff.things])


def test_same_seed_gives_byte_identical_data_and_another_seed_differs():
    preset = get_preset("toy-stuff")
    first = generate_subset(preset, "train", seed=3, count=6, size=64, progress=False)
    second = generate_subset(preset, "train", seed=3, count=6, size=64, progress=False)
    other = generate_subset(preset, "train", seed=4, count=6, size=64, progress=False)
    assert digest(*first) == digest(*second)
    assert digest(*first) != digest(*other)


def test_train_and_test_subsets_are_different_images():
    preset = get_preset("toy-stuff")
    train = generate_subset(preset, "train", seed=0, count=3, size=64, progress=False)
    test = generate_subset(preset, "test", seed=0, count=3, size=64, progress=False)
    assert not np.array_equal(train[0], test[0])


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_validation_images_are_none_of_the_training_or_test_images(name, tmp_path):
    data = load_toy(name, 0, tmp_path, num_train=40, num_test=20, progress=False)
    assert len(data.images["validation"]) == 20  # a shrunk preset gets a test-sized validation set
    seen = {digest(image) for subset in ("train", "test") for image in np.asarray(data.images[subset])}
    assert not seen & {digest(image) for image in np.asarray(data.images["validation"])}
    labels = np.asarray(data.labels["validation"])
    assert ((labels < len(data.preset.class_names)) | (labels == 255)).all()


def test_the_validation_subset_joins_an_existing_cache_without_touching_its_arrays(tmp_path):
    from pwslib.data.toy import VALIDATION_META

    data = load_toy("toy-stuff", 0, tmp_path, num_train=6, num_test=3, progress=False)
    meta_before = (data.folder / "meta.json").read_text()
    stamp = (data.folder / "train_images.npy").stat().st_mtime_ns
    for name in ("validation_images.npy", "validation_labels.npy", VALIDATION_META):  # a cache made before it existed
        (data.folder / name).unlink()
    again = load_toy("toy-stuff", 0, tmp_path, num_train=6, num_test=3, progress=False)
    assert (data.folder / "meta.json").read_text() == meta_before
    assert (data.folder / "train_images.npy").stat().st_mtime_ns == stamp
    assert np.array_equal(np.asarray(data.images["validation"]), np.asarray(again.images["validation"]))
    larger = load_toy("toy-stuff", 0, tmp_path, num_train=6, num_test=3, num_validation=5, progress=False)
    assert len(larger.images["validation"]) == 5
    assert np.array_equal(np.asarray(larger.images["validation"][:3]), np.asarray(again.images["validation"]))


def test_a_damaged_validation_file_is_refused_by_its_checksum(tmp_path):
    from pwslib.data import toy

    data = load_toy("toy-scene", 0, tmp_path, num_train=4, num_test=2, progress=False)
    images = np.load(data.folder / "validation_images.npy")
    images[0, 0, 0] ^= 255
    np.save(data.folder / "validation_images.npy", images)
    toy._VERIFIED.clear()
    with pytest.raises(DataError, match="validation_images.npy does not match the checksum"):
        load_toy("toy-scene", 0, tmp_path, num_train=4, num_test=2, progress=False)


def test_real_benchmarks_have_no_validation_subset_here():
    from pwslib.data import open_source

    with pytest.raises(DataError, match="no validation subset"):
        open_source("ade20k", "validation")


def test_cache_is_reused_without_regenerating(tmp_path):
    data = load_toy("toy-scene", 0, tmp_path, num_train=5, num_test=2, progress=False)
    stamp = (data.folder / "train_images.npy").stat().st_mtime_ns
    again = load_toy("toy-scene", 0, tmp_path, num_train=5, num_test=2, progress=False)
    assert (again.folder / "train_images.npy").stat().st_mtime_ns == stamp
    assert np.array_equal(np.asarray(data.images["train"]), np.asarray(again.images["train"]))


def test_unreadable_cache_names_the_folder_and_the_fix(tmp_path):
    data = load_toy("toy-stuff", 0, tmp_path, num_train=3, num_test=2, progress=False)
    (data.folder / "test_labels.npy").write_bytes(b"not an array")
    with pytest.raises(DataError, match="delete that folder"):
        load_toy("toy-stuff", 0, tmp_path, num_train=3, num_test=2, progress=False)


def test_empty_subset_and_unknown_preset_are_clear_errors():
    with pytest.raises(DataError, match="empty"):
        generate_subset(get_preset("toy-stuff"), "train", 0, count=0, size=64, progress=False)
    with pytest.raises(DataError, match="unknown toy preset"):
        get_preset("toy-nothing")


def test_colour_is_drawn_per_instance_not_per_class():
    preset = get_preset("toy-stuff")
    means = {}
    for i in range(40):
        image, label = render_scene(preset, np.random.default_rng([0, 0, i]), 96)
        for cls in np.unique(label):
            if cls != 255:
                means.setdefault(int(cls), []).append(image[label == cls].mean(0))
    spreads = [np.std(np.array(v), axis=0).mean() for v in means.values() if len(v) >= 5]
    assert len(spreads) >= 10
    assert min(spreads) > 15  # the same class shows up in very different colours


def test_scenes_have_several_instances_unlabelled_pixels_and_partners():
    preset = get_preset("toy-stuff")
    boat, water = preset.class_names.index("boat"), preset.class_names.index("water")
    unlabelled, classes_per_image, boats, boats_on_water = [], [], 0, 0
    for i in range(150):
        _, label = render_scene(preset, np.random.default_rng([1, 0, i]), 96)
        present = set(np.unique(label).tolist()) - {255}
        unlabelled.append((label == 255).mean())
        classes_per_image.append(len(present))
        if boat in present:
            boats += 1
            boats_on_water += water in present
    assert 0.01 < np.mean(unlabelled) < 0.08  # a few percent carry no label
    assert np.mean(classes_per_image) >= 3
    assert boats >= 10 and boats_on_water / boats > 0.8  # boats come with water


def test_a_damaged_toy_cache_is_refused_by_its_checksum(tmp_path):
    import pwslib.data.toy as toy

    folder = load_toy("toy-stuff", 0, tmp_path, progress=False, num_train=6, num_test=3).folder
    images = np.load(folder / "train_images.npy")
    images[2, :10] = 0  # zeros written over part of one image
    np.save(folder / "train_images.npy", images)
    toy._VERIFIED.clear()
    with pytest.raises(DataError, match="train_images.npy does not match the checksum"):
        load_toy("toy-stuff", 0, tmp_path, progress=False, num_train=6, num_test=3)


def test_out_of_range_test_labels_are_refused_before_any_training(tmp_path):
    import pwslib.data.toy as toy

    folder = load_toy("toy-stuff", 0, tmp_path, progress=False, num_train=6, num_test=3).folder
    labels = np.load(folder / "test_labels.npy")
    labels[0, 0, 0] = 200
    np.save(folder / "test_labels.npy", labels)
    meta = json.loads((folder / "meta.json").read_text())
    meta["sha256"]["test_labels.npy"] = toy._array_digest(folder / "test_labels.npy")  # consistent, but wrong ids
    (folder / "meta.json").write_text(json.dumps(meta))
    toy._VERIFIED.clear()
    with pytest.raises(DataError, match=r"test_labels.npy holds label ids \[200\] outside 0..23"):
        load_toy("toy-stuff", 0, tmp_path, progress=False, num_train=6, num_test=3)


def test_a_cache_without_checksums_is_generated_again_never_blessed(tmp_path):
    import pwslib.data.toy as toy

    folder = load_toy("toy-stuff", 0, tmp_path, progress=False, num_train=6, num_test=3).folder
    clean = np.load(folder / "train_images.npy")
    damaged = clean.copy()
    damaged[1, :8] = 0
    np.save(folder / "train_images.npy", damaged)
    meta = json.loads((folder / "meta.json").read_text())
    del meta["sha256"]
    (folder / "meta.json").write_text(json.dumps(meta))
    toy._VERIFIED.clear()
    with pytest.warns(UserWarning, match="without checksums"):
        data = load_toy("toy-stuff", 0, tmp_path, progress=False, num_train=6, num_test=3)
    assert np.array_equal(data.images["train"], clean)
    assert json.loads((folder / "meta.json").read_text())["sha256"]["train_images.npy"] == toy._array_digest(
        folder / "train_images.npy"
    )


def test_part_index_cuts_an_object_into_equal_bands_along_its_axis():
    from pwslib.data.toy import part_index

    v = np.tile(np.linspace(-1, 1, 12)[:, None], (1, 5))  # (12, 5): v grows down the rows
    where = np.zeros_like(v, dtype=bool)
    where[2:11] = True  # the object spans rows 2..10
    part = part_index(v, where, 3)
    assert [int(p) for p in part[2:11, 0]] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert (part_index(v, where, 1) == 0).all()


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_multi_part_things_show_different_textures_in_their_parts(name):
    """Every split has novel things of 2-3 parts, and the parts of one object are painted differently."""
    preset = get_preset(name)
    multi = {t.name for t in preset.things if t.num_parts > 1}
    assert all(t.num_parts <= 3 for t in preset.things)
    assert all(len(multi & set(novel)) >= 2 for novel in preset.novel_splits)
    for t in preset.things:
        patterns = [pattern for pattern, _ in (t.looks or t.appearances)]
        assert len(set(patterns)) == len(patterns), t.name  # each part (or each look of a pool) its own texture


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_split_has_novel_things_on_a_novel_stuff(name):
    preset = get_preset(name)
    for novel in preset.novel_splits:
        on_novel = [t.name for t in preset.things if t.name in novel and t.partner in novel]
        assert len(on_novel) >= 2, (novel, on_novel)


def test_unseparated_partners_leave_a_novel_thing_surrounded_by_unlabelled_pixels():
    from pwslib.data.summaries import unlabelled_surroundings

    preset = get_preset("toy-stuff")
    labels = np.stack([render_scene(preset, np.random.default_rng([2, 0, i]), 96)[1] for i in range(60)])
    shares = unlabelled_surroundings(labels, preset.split(1))
    assert set(shares) == {"boat", "cow", "ball", "sign", "moon", "sand"}
    assert shares["ball"] > 50 > shares["boat"]  # ball sits on novel sand, boat on base water


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_reporting_splits_share_no_novel_class_with_the_development_split(name):
    preset = get_preset(name)
    assert preset.reporting_splits, "every preset names the splits it is reported on"
    development = set(preset.novel_splits[0])
    for number in preset.reporting_splits:
        assert not set(preset.novel_splits[number - 1]) & development, number


@pytest.mark.parametrize(
    "name, expected", [("toy-stuff", "11f8cd5f27e8c360"), ("toy-scene", "b0dedfcc126c5d07")]
)
def test_the_scenes_of_both_presets_are_those_every_cached_run_was_trained_on(name, expected):
    """The generator's extra levers (looks pools, touching, camouflage) draw nothing for a preset that does not use
    them: the first scenes of seed 0 keep the digest they had before the levers existed."""
    scenes = [render_scene(get_preset(name), np.random.default_rng([0, 0, i]), 96) for i in range(5)]
    assert digest(*[array for scene in scenes for array in scene])[:16] == expected
