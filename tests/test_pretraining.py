import json

import numpy as np
import pytest
import torch

from pwslib import pretraining
from pwslib.config import config_for
from pwslib.data.toy import PRESETS, render_scene
from pwslib.io import DataError
from pwslib.model.backbone import SmallResNet
from pwslib.pretraining import (
    PRETRAINING_SCENES,
    PretrainingRecipe,
    file_sha256,
    pretrain,
    pretrained_backbone,
    save_weights,
    weights_files,
)

TINY_RECIPE = PretrainingRecipe(widths=(8, 16, 16, 16), steps=3, batch_size=2, num_train=6, num_test=2)


def test_pretraining_classes_share_no_name_texture_or_shape_with_any_toy_class():
    toy = [c for preset in PRESETS.values() for c in (*preset.stuff, *preset.things)]
    pretraining = [*PRETRAINING_SCENES.stuff, *PRETRAINING_SCENES.things]
    assert not {c.name for c in pretraining} & {c.name for c in toy}
    assert not {c.pattern for c in pretraining} & {c.pattern for c in toy}
    toy_shapes = {t.shape for preset in PRESETS.values() for t in preset.things}
    assert not {t.shape for t in PRETRAINING_SCENES.things} & toy_shapes
    assert not [t for t in PRETRAINING_SCENES.things if t.partner]  # no co-occurrence structure to learn


def test_pretraining_scenes_are_deterministic_and_label_only_pretraining_classes():
    first = render_scene(PRETRAINING_SCENES, np.random.default_rng([0, 0, 5]), 96)
    again = render_scene(PRETRAINING_SCENES, np.random.default_rng([0, 0, 5]), 96)
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    labels = np.unique(first[1])
    assert set(labels) <= set(range(len(PRETRAINING_SCENES.class_names))) | {255}


def test_pretrained_backbone_is_cached_deterministic_and_loads_into_the_small_resnet(tmp_path):
    weights = pretrained_backbone(TINY_RECIPE, tmp_path, progress=False)
    cached = sorted(p.name for p in (tmp_path / "pretrained").iterdir())
    assert cached == [f"small_resnet_{TINY_RECIPE.key()}.json", f"small_resnet_{TINY_RECIPE.key()}.pt"]
    again = pretrained_backbone(TINY_RECIPE, tmp_path / "elsewhere", progress=False)  # trained again from scratch
    for name in weights:
        assert torch.equal(weights[name], again[name]), name
    backbone = SmallResNet(TINY_RECIPE.widths)
    backbone.load_state_dict(weights)
    assert not torch.equal(backbone.stem[0][0].weight, SmallResNet(TINY_RECIPE.widths).stem[0][0].weight)


def test_the_recipe_key_changes_with_every_field():
    assert PretrainingRecipe().key() != PretrainingRecipe(steps=10).key()
    assert PretrainingRecipe().key() != PretrainingRecipe(widths=(16, 32, 48, 64)).key()


def test_a_cached_backbone_whose_bytes_changed_is_refused(tmp_path):
    pretrained_backbone(TINY_RECIPE, tmp_path, progress=False)
    weights_path, report_path = weights_files(TINY_RECIPE, tmp_path / "pretrained")
    assert json.loads(report_path.read_text())["sha256"] == file_sha256(weights_path)
    data = bytearray(weights_path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte inside a tensor
    weights_path.write_bytes(bytes(data))
    with pytest.raises(DataError, match="damaged"):
        pretrained_backbone(TINY_RECIPE, tmp_path, progress=False)


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    """TINY_RECIPE's weights shipped in a folder of their own, and a pretraining that fails the test if called:
    (folder, state, report)."""
    state, report = pretrain(TINY_RECIPE, tmp_path, progress=False)
    folder = tmp_path / "shipped"
    save_weights(state, report, folder)
    monkeypatch.setattr(pretraining, "SHIPPED", folder)
    monkeypatch.setattr(pretraining, "pretrain", lambda *a, **k: pytest.fail("pretrained although weights ship"))
    return folder, state, report


def test_shipped_weights_are_used_before_the_cache_and_verified(tmp_path, shipped):
    shipped, state, report = shipped
    loaded = pretrained_backbone(TINY_RECIPE, tmp_path / "empty_root", progress=False)
    assert all(torch.equal(loaded[name], state[name]) for name in state)
    report_path = weights_files(TINY_RECIPE, shipped)[1]
    report_path.write_text(json.dumps({**report, "sha256": "0" * 64}))
    with pytest.raises(DataError, match="--rebuild --ship"):
        pretrained_backbone(TINY_RECIPE, tmp_path / "empty_root", progress=False)


def test_a_shipped_weights_file_gone_from_beside_its_report_stops_with_how_to_restore_it(tmp_path, shipped):
    weights_files(TINY_RECIPE, shipped[0])[0].unlink()
    with pytest.raises(DataError, match=r"\.pt is missing beside .*\.json; restore it \(git checkout -- pwslib/data/pretrained\)"):
        pretrained_backbone(TINY_RECIPE, tmp_path / "empty_root", progress=False)


def test_the_default_recipe_ships_with_the_package_and_matches_its_checksum():
    recipe = PretrainingRecipe.of_run(config_for("ours"))
    weights_path, report_path = weights_files(recipe, pretraining.SHIPPED)
    assert weights_path.exists() and report_path.exists(), "the default backbone must ship (no pretraining in the main job)"
    report = json.loads(report_path.read_text())
    assert report["sha256"] == file_sha256(weights_path)
    assert report["recipe"]["steps"] == recipe.steps and tuple(report["recipe"]["widths"]) == recipe.widths
    SmallResNet(recipe.widths).load_state_dict(pretrained_backbone(recipe))


def test_an_interrupted_pretraining_resumes_where_it_stopped_and_ends_as_an_uninterrupted_one(tmp_path):
    whole, _ = pretrain(TINY_RECIPE, tmp_path / "whole", progress=False)
    assert not pretraining.partial_checkpoint(TINY_RECIPE, tmp_path / "whole").exists()
    assert pretrain(TINY_RECIPE, tmp_path / "cut", progress=False, stop_after=1) is None
    checkpoint = pretraining.partial_checkpoint(TINY_RECIPE, tmp_path / "cut")
    assert checkpoint.exists() and not weights_files(TINY_RECIPE, tmp_path / "cut" / "pretrained")[0].exists()
    resumed = pretrained_backbone(TINY_RECIPE, tmp_path / "cut", progress=False)
    assert all(torch.equal(resumed[name], whole[name]) for name in whole)
    assert not checkpoint.exists() and weights_files(TINY_RECIPE, tmp_path / "cut" / "pretrained")[1].exists()


def test_a_pretraining_checkpoint_of_another_recipe_is_refused(tmp_path):
    pretrain(TINY_RECIPE, tmp_path, progress=False, stop_after=1)
    other = PretrainingRecipe(widths=(8, 16, 16, 16), steps=4, batch_size=2, num_train=6, num_test=2)
    pretraining.partial_checkpoint(TINY_RECIPE, tmp_path).rename(pretraining.partial_checkpoint(other, tmp_path))
    with pytest.raises(DataError, match="another pretraining recipe"):
        pretrain(other, tmp_path, progress=False)


@pytest.mark.parametrize(
    "arguments, message",
    [(["--steps", "0"], "--steps and --widths must be whole numbers"), (["--steps", "-5"], "of at least 1"),
     (["--widths", "8", "0", "8", "8"], "of at least 1")],
)
def test_the_pretraining_command_refuses_bad_flags_in_one_line(arguments, message, capsys, tmp_path):
    from pwslib.pretraining import main

    with pytest.raises(SystemExit):
        main(arguments)
    assert message in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--out", str(tmp_path)])
    assert "is a folder; name the report's file" in capsys.readouterr().err
