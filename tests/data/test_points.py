import json

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import ndimage

from pwslib.data.points import base_label_map, cooccurrence, read_points, simulate_image_points, simulate_points
from pwslib.io import DataError, write_json_atomic


def scene():
    """0 = sky top half, 1 = grass bottom half, 3 = boat square on grass, 4 = cow disk in sky, row 0 unlabelled."""
    label = np.zeros((32, 32), dtype=np.uint8)
    label[16:] = 1
    label[20:30, 4:14] = 3
    yy, xx = np.mgrid[0:32, 0:32]
    label[(yy - 8) ** 2 + (xx - 22) ** 2 < 25] = 4
    label[0] = 255
    return label


def test_base_label_map_hides_novel_pixels(tiny_split):
    label = scene()
    base = base_label_map(label, tiny_split)
    assert (base[label == 3] == 255).all() and (base[label == 4] == 255).all()
    assert (base[label == 1] == 1).all()


@pytest.mark.parametrize("rule", ["uniform", "centre"])
@pytest.mark.parametrize("k", [1, 3, 5, 10])
def test_positive_points_lie_on_their_class(tiny_split, rule, k):
    label = scene()
    result = simulate_image_points(label, tiny_split, k, rule, 3, np.random.default_rng(0))
    points = np.array(result["points"])
    for cls in (3, 4):
        mine = points[points[:, 2] == cls]
        assert len(mine) == k
        assert (label[mine[:, 0], mine[:, 1]] == cls).all()
    base = points[~np.isin(points[:, 2], [3, 4])]
    assert len(base) == 3 and (label[base[:, 0], base[:, 1]] == base[:, 2]).all()
    assert result["image_labels"] == [0, 1, 3, 4]


def test_centre_rule_picks_the_pixel_farthest_from_the_boundary(tiny_split):
    label = scene()
    points = np.array(simulate_image_points(label, tiny_split, 3, "centre", 0, np.random.default_rng(1))["points"])
    depth = ndimage.distance_transform_edt(np.pad(label == 3, 1))[1:-1, 1:-1]
    first = points[points[:, 2] == 3][0]
    assert depth[first[0], first[1]] == depth.max()
    others = points[points[:, 2] == 3][1:]
    assert (depth[others[:, 0], others[:, 1]] >= depth.max() / 2).all()


def test_uniform_rule_covers_the_mask(tiny_split):
    label = scene()
    seen = set()
    for seed in range(200):
        (y, x, _), *_ = [
            p
            for p in simulate_image_points(label, tiny_split, 1, "uniform", 0, np.random.default_rng(seed))["points"]
            if p[2] == 3
        ]
        seen.add((y, x))
    assert len(seen) > 60  # many different pixels of the 100-pixel boat


def test_same_seed_gives_identical_file_and_another_seed_does_not(tiny_split, tmp_path):
    labels, names = [scene(), scene()[::-1].copy()], ["a", "b"]
    write_json_atomic(tmp_path / "p1.json", simulate_points(labels, names, tiny_split, seed=5))
    write_json_atomic(tmp_path / "p2.json", simulate_points(labels, names, tiny_split, seed=5))
    write_json_atomic(tmp_path / "p3.json", simulate_points(labels, names, tiny_split, seed=6))
    assert (tmp_path / "p1.json").read_bytes() == (tmp_path / "p2.json").read_bytes()
    assert (tmp_path / "p1.json").read_bytes() != (tmp_path / "p3.json").read_bytes()


def test_image_without_novel_class_has_only_base_clicks(tiny_split):
    label = np.zeros((8, 8), dtype=np.uint8)
    result = simulate_image_points(label, tiny_split, 1, "uniform", 2, np.random.default_rng(0))
    assert all(p[2] == 0 for p in result["points"]) and len(result["points"]) == 2


def test_label_out_of_range_and_empty_split_are_clear_errors(tiny_split):
    bad = scene()
    bad[5, 5] = 9
    with pytest.raises(DataError, match=r"image 'x'.*out of range"):
        simulate_points([bad], ["x"], tiny_split)
    with pytest.raises(DataError, match="empty split"):
        simulate_points([], [], tiny_split)


def _write(tmp_path, content):
    path = tmp_path / "points.json"
    path.write_text(json.dumps(content))
    return path


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda c: c["images"]["a"]["points"].append([40, 3, 3]), "outside"),
        (lambda c: c["images"]["a"]["points"].append([0, 3, 0]), "ignore pixel"),
        (lambda c: c["images"]["a"]["points"].append([31, 0, 3]), "does not match its image"),
        (lambda c: c["images"]["a"].__setitem__("shape", [16, 16]), "does not match its image"),
        (lambda c: c["images"].pop("a"), "no points for 1 images"),
        (lambda c: c["meta"].__setitem__("novel_classes", [2]), "novel classes"),
        (lambda c: c["images"]["a"]["points"].append([3.5, 2.0, 3]), r"entry \[3.5, 2.0, 3\]; every point is"),
        (lambda c: c["images"]["a"]["points"].append([3, 2]), r"entry \[3, 2\]; every point is \[y, x, class\]"),
        (lambda c: c["images"]["a"].pop("points"), "has no list of points and shape"),
        (lambda c: c["images"].__setitem__("a", [1, 2]), "has no list of points and shape"),
        (lambda c: c["meta"].__setitem__("points_per_class", "1"), "points_per_class '1'"),
    ],
)
def test_points_file_that_does_not_match_its_images_is_rejected(tiny_split, tmp_path, mutate, message):
    content = simulate_points([scene()], ["a"], tiny_split)
    mutate(content)
    with pytest.raises(DataError, match=message):
        read_points(_write(tmp_path, content), ["a"], [scene()], tiny_split)


def test_missing_and_corrupt_point_files(tiny_split, tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_points(tmp_path / "none.json", ["a"], None, tiny_split)
    (tmp_path / "bad.json").write_text("{truncated")
    with pytest.raises(DataError, match="not a valid point file"):
        read_points(tmp_path / "bad.json", ["a"], None, tiny_split)


def test_cooccurrence_by_hand():
    # images: {0, 1}, {0, 1}, {0, 2}, {1}
    stats = cooccurrence([[0, 1], [0, 1], [0, 2], [1]], 4)
    assert stats[0, 1] == pytest.approx(2 / 3)  # P(1 | 0)
    assert stats[1, 0] == pytest.approx(2 / 3)  # P(0 | 1)
    assert stats[2, 0] == 1.0 and stats[0, 2] == pytest.approx(1 / 3)
    assert np.all(stats[3] == 0)  # never seen
    assert stats[0, 0] == stats[1, 1] == 1.0


@pytest.mark.parametrize("seed", [-3, 2**32, 1.5, True])
def test_a_point_seed_out_of_the_generators_range_is_refused_in_one_line(seed, tmp_path):
    from pwslib.data import ensure_points

    with pytest.raises(DataError, match="whole number in 0..4294967295"):
        ensure_points("toy-stuff", seed=seed, root=tmp_path)
    assert not list(tmp_path.rglob("*.json"))


def novel_clicks(content, name="a"):
    return [point for point in content["images"][name]["points"] if point[2] in (3, 4)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(k=st.sampled_from([1, 3]), rule=st.sampled_from(["uniform", "centre"]), seed=st.integers(0, 2**16), data=st.data())
def test_a_points_file_with_a_novel_click_missing_or_repeated_is_refused(tiny_split, tmp_path_factory, k, rule, seed, data):
    """Property: any simulated file reads back; dropping every click of one novel class, or repeating one beyond
    ``points_per_class``, is refused with a line naming the image."""
    content = simulate_points([scene()], ["a"], tiny_split, points_per_class=k, rule=rule, seed=seed)
    folder = tmp_path_factory.mktemp("points")
    read_points(_write(folder, content), ["a"], [scene()], tiny_split)
    target = data.draw(st.sampled_from(novel_clicks(content)))
    if data.draw(st.booleans()):
        content["images"]["a"]["points"] = [p for p in content["images"]["a"]["points"] if p[2] != target[2]]
        message = f"novel classes \\[{target[2]}\\] without a click"
    else:
        content["images"]["a"]["points"] += [target] * data.draw(st.integers(1, 50))
        message = "clicks per novel class, more than the file's points_per_class"
    with pytest.raises(DataError, match=message):
        read_points(_write(folder, content), ["a"], [scene()], tiny_split)
