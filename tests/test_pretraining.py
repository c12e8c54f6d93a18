import numpy as np
import torch

from pwslib.data.toy import PRESETS, render_scene
from pwslib.model.backbone import SmallResNet
from pwslib.pretraining import PRETRAINING_SCENES, PretrainingRecipe, pretrained_backbone

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
