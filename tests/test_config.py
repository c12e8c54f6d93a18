import pytest
import torch

from pwslib.config import TrainConfig, config_for
from pwslib.io import DataError
from pwslib.model.maskformer import ModelConfig, PointWeakShotMaskFormer


def test_a_bfloat16_model_returns_float32_outputs_close_to_float32():
    torch.manual_seed(0)
    model = PointWeakShotMaskFormer(ModelConfig(num_classes=4, embedding_dim=16, backbone_widths=(8, 16, 16, 16)))
    half = PointWeakShotMaskFormer(
        ModelConfig(num_classes=4, embedding_dim=16, backbone_widths=(8, 16, 16, 16), precision="bfloat16")
    )
    half.load_state_dict(model.state_dict())
    image = torch.randint(0, 255, (2, 3, 64, 64), dtype=torch.uint8)
    points = torch.tensor([[[10.0, 12.0]], [[40.0, 30.0]]])
    with torch.no_grad():
        full, reduced = model(image, points), half(image, points)
    for name, value in reduced.items():
        assert value.dtype == torch.float32, name
        assert torch.allclose(value, full[name], atol=0.15 * float(full[name].abs().max()) + 0.05), name


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(iterations=-5), "iterations must not be negative"),
        (dict(iterations=0), "iterations must be positive"),
        (dict(iterations=30.5), "iterations must be a whole number"),
        (dict(iterations="abc"), "iterations must be a whole number"),
        (dict(batch_size=0), "batch_size must be positive"),
        (dict(class_union="union"), "unknown class_union 'union'; choose one of"),
        (dict(novel_supervision="masks"), "unknown novel_supervision"),
        (dict(memory_bank="on"), "unknown memory_bank"),
        (dict(keypoint_branch="yes"), "keypoint_branch must be true or false"),
        (dict(bank_momentum=1.5), "bank_momentum must be below 1"),
        (dict(backbone_widths=(32, 64)), "backbone_widths must be four"),
        (dict(embedding_dim=30), "divisible by attention_heads"),
        (dict(toy_options={"num_train": 0}), "toy_options num_train must be a positive whole number"),
        (dict(toy_options={"images": 5}), "unknown toy_options key 'images'"),
        (dict(learning_rate=float("inf")), "learning_rate must be a finite number"),
        (dict(learning_rate=float("nan")), "learning_rate must be a finite number"),
        (dict(temperature=float("-inf")), "temperature must be a finite number"),
        (dict(backbone_learning_rate_factor=float("nan")), "backbone_learning_rate_factor must be a finite number"),
        (dict(seed=2**40), "seed must be at most"),
        (dict(point_seed=-1), "point_seed must not be negative"),
        (dict(crop_size=50), "crop_size must be a positive multiple of 32"),
        (dict(crop_size=0), "crop_size must be a positive multiple of 32"),
        (dict(crop_size=128), "crop_size 128 is larger than the 96-pixel toy images"),
        (dict(toy_options={"size": 100}), "toy_options size must be a multiple of 32"),
    ],
)
def test_a_bad_config_value_is_refused_in_one_line_naming_the_field(overrides, message):
    with pytest.raises(DataError, match=message):
        config_for("ours", **overrides)


def test_whole_numbers_given_for_float_fields_are_accepted_and_hash_like_floats():
    assert config_for("ours", learning_rate=1).learning_rate == 1.0
    assert config_for("ours", consistency_weight=0).key() == config_for("ours", consistency_weight=0.0).key()


def test_the_toy_generator_is_part_of_the_key_and_old_run_folders_read_as_generator_2():
    from pwslib.data.toy import GENERATOR_VERSION

    current = config_for("ours")
    assert current.toy_generator == GENERATOR_VERSION
    assert config_for("ours", toy_generator=GENERATOR_VERSION - 1).key() != current.key()
    saved = current.to_dict()
    saved.pop("toy_generator")  # a config.json written before the field existed
    assert TrainConfig.from_saved(saved).toy_generator == 2
    assert TrainConfig.from_saved(current.to_dict()) == current


def test_a_run_of_an_older_toy_generator_is_refused_before_training(tmp_path):
    from pwslib.data.toy import GENERATOR_VERSION
    from pwslib.train import Trainer

    with pytest.raises(DataError, match="toy generator"):
        Trainer(config_for("ours", toy_generator=GENERATOR_VERSION - 1, iterations=1), tmp_path)


def test_switches_added_later_stay_out_of_the_key_at_their_neutral_value():
    import hashlib
    import json

    from pwslib.config import KEY_NEUTRAL

    config = config_for("ours")
    values = {name: value for name, value in config.to_dict().items() if name not in KEY_NEUTRAL}
    assert config.key() == hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()[:12]
    assert config_for("ours", learning_rate_decay="cosine").key() != config.key()
    assert config_for("ours", weight_average_decay=0.99).key() != config.key()
    assert config_for("ours", pixel_decoder_kernel=1).key() != config.key()
    with pytest.raises(DataError, match="weight_average_decay must be below 1"):
        config_for("ours", weight_average_decay=1.0)
    with pytest.raises(DataError, match=r"unknown pixel_decoder_kernel 5; choose one of \[1, 3\]"):
        config_for("ours", pixel_decoder_kernel=5)


def test_a_toy_preset_that_clicks_at_the_centre_gives_its_runs_centre_clicks_unless_overridden(monkeypatch):
    import dataclasses

    from pwslib.data.toy import PRESETS

    assert config_for("ours").point_rule == "uniform"
    centred = dataclasses.replace(PRESETS["toy-scene"], name="toy-centred", point_rule="centre")
    monkeypatch.setitem(PRESETS, "toy-centred", centred)
    assert config_for("ours", dataset="toy-centred").point_rule == "centre"
    assert config_for("ours", dataset="toy-centred", point_rule="uniform").point_rule == "uniform"
    assert config_for("ours", dataset="toy-scene").key() == config_for("ours", dataset="toy-scene", point_rule="uniform").key()
