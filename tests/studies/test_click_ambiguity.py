import dataclasses
import json

import numpy as np

from pwslib.data.toy import PRESETS, generate_subset, render_scene, shape_mask
from studies import click_ambiguity
from studies.click_ambiguity import CANDIDATE, completed, registered, render, variants, with_outline_bands, with_pools


def digest(*arrays):
    import hashlib

    h = hashlib.sha256()
    for array in arrays:
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


def test_the_candidate_is_deterministic_with_valid_labels_and_things_that_wear_other_classes_looks():
    first = generate_subset(CANDIDATE, "train", seed=1, count=8, size=96, progress=False)
    assert digest(*first) == digest(*generate_subset(CANDIDATE, "train", seed=1, count=8, size=96, progress=False))
    labels = first[1]
    assert ((labels < len(CANDIDATE.class_names)) | (labels == 255)).all()
    stuff_looks = {(s.pattern, s.frequency) for s in CANDIDATE.stuff}
    for thing in CANDIDATE.things:
        assert len(thing.looks) >= 3 and set(thing.looks) <= stuff_looks, thing.name  # a click's texture is a stuff's
    shared = {a.name for a in CANDIDATE.things for b in CANDIDATE.things if a is not b and set(a.looks) & set(b.looks)}
    assert shared == {t.name for t in CANDIDATE.things}  # every pool overlaps another class's
    assert any(t.shape == "rod" for t in CANDIDATE.things)  # thin
    assert max(t.radius[1] for t in CANDIDATE.things) >= 2 * min(t.radius[1] for t in CANDIDATE.things)  # large, small
    development = set(CANDIDATE.novel_splits[0])
    assert all(not set(CANDIDATE.novel_splits[n - 1]) & development for n in CANDIDATE.reporting_splits)


def test_each_instance_draws_its_own_looks_and_things_are_put_against_each_other():
    cow = next(t for t in CANDIDATE.things if t.name == "cow")
    drawn = {cow.draw_appearances(np.random.default_rng(i)) for i in range(30)}
    assert len(drawn) > 3 and all(len(looks) == cow.part_count for looks in drawn)
    thin = shape_mask("rod", *np.meshgrid(np.linspace(-1.2, 1.2, 97), np.linspace(-1.2, 1.2, 97)))
    assert thin.any(1).sum() < thin.any(0).sum() / 5  # far longer than wide
    touching = 0
    for i in range(40):
        labels = render_scene(CANDIDATE, np.random.default_rng([5, 0, i]), 96)[1]
        things = labels >= len(CANDIDATE.stuff)
        down = things[1:] & things[:-1] & (labels[1:] != labels[:-1])
        right = things[:, 1:] & things[:, :-1] & (labels[:, 1:] != labels[:, :-1])
        touching += bool(down.any() or right.any())
    assert touching >= 10  # two things of different classes share a border in many images


def test_camouflage_paints_things_with_the_texture_of_the_stuff_under_them():
    """With camouflage 1 every part of a thing is painted with the pattern of the stuff at its centre: the image of
    a one-thing scene then has about the texture statistics of that stuff inside the thing."""
    import dataclasses

    hidden = dataclasses.replace(CANDIDATE, camouflage=1.0, things_per_image=(1, 1))
    plain = dataclasses.replace(CANDIDATE, things_per_image=(1, 1))
    changed = 0
    for i in range(6):
        image, labels = render_scene(hidden, np.random.default_rng([3, 0, i]), 96)
        assert ((labels < len(CANDIDATE.class_names)) | (labels == 255)).all()
        changed += not np.array_equal(image, render_scene(plain, np.random.default_rng([3, 0, i]), 96)[0])
    assert changed >= 3


def test_the_variants_grow_pools_and_parts_and_register_only_for_their_probe():
    grown = with_pools(CANDIDATE, parts=3, pool=5)
    assert all(len(t.looks) == 5 and len(set(t.looks)) == 5 and t.part_count == 3 for t in grown.things)
    assert {"toy-stuff (reference)", "toy-scene (reference)"} <= set(variants())
    with registered(CANDIDATE, "toy-candidate-test") as name:
        assert PRESETS[name].things == CANDIDATE.things
    assert "toy-candidate-test" not in PRESETS


def test_the_report_marks_the_ratios_inside_the_literature_band(tmp_path):
    rows = [
        {"variant": "a", "ratio": 0.98, "novel_clicks": 27.0, "novel_full_masks": 27.5, "total_full_masks": 50.0},
        {"variant": "b", "ratio": 0.65, "novel_clicks": 20.0, "novel_full_masks": 30.8, "total_full_masks": 48.0,
         "scored_on": "validation"},
    ]
    meta = {"git_commit": "abc", "machine": "m", "date_utc": "d", "steps": 1000, "wall_seconds": 1.0}
    text = render(rows, meta)
    assert "| a | uniform | 1000 | test images | 0.98 | no |" in text  # probed before probes were scored on validation
    assert "| b | uniform | 1000 | validation images | 0.65 | yes |" in text
    assert "0.60-0.73" in text and "`abc`, d |" in text
    (tmp_path / "click_ambiguity.json").write_text(json.dumps({"meta": meta, "rows": rows}))
    click_ambiguity.main(["--report-only", "--reports", str(tmp_path)])
    assert (tmp_path / "click_ambiguity.md").read_text() == text


def test_outline_bands_are_painted_in_a_stuff_look_and_a_halo_leaves_the_band_to_the_stuff():
    one = dataclasses.replace(CANDIDATE, things_per_image=(1, 1), touching_probability=0.0)
    outlined, haloed = with_outline_bands(one), with_outline_bands(one, halos=True)
    assert all(t.rim_looks and t.rim_labelled for t in outlined.things)
    assert [t.rim_labelled for t in haloed.things[:4]] == [True, False, True, False]
    thing_pixels = {"plain": 0, "outlined": 0, "haloed": 0}
    repainted = 0
    for i in range(12):
        images = {}
        for name, preset in (("plain", one), ("outlined", outlined), ("haloed", haloed)):
            images[name], labels = render_scene(preset, np.random.default_rng([4, 0, i]), 96)
            thing_pixels[name] += int((labels >= len(one.stuff)).sum())
        repainted += not np.array_equal(images["plain"], images["outlined"])
    assert repainted >= 10  # the band repaints the thing
    assert thing_pixels["outlined"] == thing_pixels["plain"]  # a band of the thing keeps its label
    assert thing_pixels["haloed"] < thing_pixels["plain"]  # a halo's band is labelled as the stuff


def test_the_study_probes_only_the_variants_not_yet_in_its_record(tmp_path, monkeypatch):
    probed = []

    def fake_probe(label, variant):
        probed.append(label)
        return {"variant": label, "ratio": 0.9, "novel_clicks": 1.0, "novel_full_masks": 1.0, "total_full_masks": 1.0}

    class InProcess:
        def __init__(self, workers):
            pass

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def submit(self, function, *args):
            from concurrent.futures import Future

            future = Future()
            future.set_result(function(*args))
            return future

    monkeypatch.setattr(click_ambiguity, "probe_variant", fake_probe)
    monkeypatch.setattr(click_ambiguity, "ProcessPoolExecutor", InProcess)
    monkeypatch.setattr(click_ambiguity, "variants", lambda: {"a": None, "b": None})
    click_ambiguity.main(["--reports", str(tmp_path)])
    click_ambiguity.main(["--reports", str(tmp_path)])
    assert probed == ["a", "b"]
    assert [row["variant"] for row in json.loads((tmp_path / "click_ambiguity.json").read_text())["rows"]] == ["a", "b"]
    click_ambiguity.main(["--reports", str(tmp_path), "--fresh"])
    assert probed == ["a", "b", "a", "b"]


def test_the_protocol_states_the_record_s_probe_count_and_lowest_ratio():
    from pwslib.io import CHECKOUT
    from studies.datacard import CLICK_BAND

    record = json.loads((CHECKOUT / "reports" / "click_ambiguity.json").read_text())
    rows = [completed(row, record["meta"]) for row in record["rows"]]
    protocol = " ".join((CHECKOUT / "reports" / "protocol.md").read_text().split())
    assert set(variants()) == {row["variant"] for row in rows}  # every variant is in the record, and only those
    data_card_probes = [row for row in rows if row["clicked"] == "novel"]  # base masks kept, as in the data card
    lowest = min(row["ratio"] for row in data_card_probes)
    assert f"{len(data_card_probes)} probes, the lowest ratio {lowest:.2f}" in protocol
    if lowest > CLICK_BAND[1]:
        assert "is not yet part of this check" in protocol  # no variant in the band: no third preset is claimed
    without_masks = {row["variant"].split(",")[0]: row["ratio"] for row in rows if row["clicked"] == "every class"}
    assert f"toy-stuff {without_masks['toy-stuff']:.2f}, the candidate {without_masks['candidate']:.2f}" in protocol
    with_masks = {row["variant"]: row["ratio"] for row in rows}
    stuff, candidate = (with_masks[f"{name}, probe trained 4x longer"] for name in ("toy-stuff (reference)", "candidate"))
    assert f"uniform clicks the same presets give {stuff:.2f} and {candidate:.2f} at 4,000 steps" in protocol
    stuff, candidate = (with_masks[f"{name}, clicks at the centre, probe trained 4x longer"] for name in ("toy-stuff", "candidate"))
    assert f"the same centre clicks on the novel classes they give {stuff:.2f} and {candidate:.2f}" in protocol
    assert f"toy-stuff and on the candidate, 4,000 steps: {stuff:.2f} and {candidate:.2f}" in protocol
    scene, few = (with_masks[f"{name}, clicks at the centre, probe trained 4x longer"] for name in ("toy-scene", "toy-stuff, 300 training images"))
    assert f"on toy-scene {scene:.2f}, on toy-stuff with 300 training images {few:.2f}" in protocol
    short = [with_masks[f"{name}, clicks at the centre"] for name in ("toy-stuff", "candidate")]
    assert f"({short[0]:.2f} and {short[1]:.2f} at 1,000 steps)" in protocol
    added = sorted([stuff - without_masks["toy-stuff"], candidate - without_masks["candidate"]])
    assert f"the base masks add {added[0]:.2f}-{added[1]:.2f}" in protocol
