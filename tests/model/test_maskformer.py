import pytest
import torch

from pwslib.config import TrainConfig, config_for
from pwslib.model.backbone import ResNet50, SmallResNet
from pwslib.model.keypoint_head import KeypointHead, class_union, sample_embeddings
from pwslib.model.maskformer import ModelConfig, PointWeakShotMaskFormer, predict, semantic_scores
from pwslib.assembly import build_model


def test_forward_shapes():
    model = PointWeakShotMaskFormer(ModelConfig(num_classes=5, num_queries=6, embedding_dim=32))
    outputs = model(torch.zeros(2, 3, 64, 64, dtype=torch.uint8), torch.tensor([[[10.0, 20.0]] * 3] * 2))
    assert outputs["class_logits"].shape == (2, 6, 6)
    assert outputs["mask_logits"].shape == (2, 6, 16, 16)
    assert outputs["pixel_embeddings"].shape == (2, 32, 16, 16)
    assert outputs["keypoint_mask_logits"].shape == (2, 3, 16, 16)


def test_image_size_must_be_a_multiple_of_32_and_keypoints_need_the_branch():
    model = PointWeakShotMaskFormer(ModelConfig(num_classes=3, keypoint_branch=False))
    with pytest.raises(ValueError, match="multiple of 32"):
        model(torch.zeros(1, 3, 40, 64, dtype=torch.uint8))
    with pytest.raises(ValueError, match="keypoint branch"):
        model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8), torch.zeros(1, 1, 2))


def test_semantic_inference_is_the_class_weighted_sum_of_masks():
    class_logits = torch.tensor([[[10.0, -10.0, -10.0], [-10.0, 10.0, -10.0]]])  # query 0 -> class 0, 1 -> class 1
    mask_logits = torch.tensor([[[[10.0, -10.0]], [[-10.0, 10.0]]]])  # query 0 left pixel, query 1 right
    scores = semantic_scores(class_logits, mask_logits, (1, 2))  # (B, H, W, C)
    assert scores.argmax(-1).tolist() == [[[0, 1]]]
    assert scores[0, 0, 0, 0].item() == pytest.approx(1.0, abs=1e-3)


def test_predict_batched_equals_single():
    model = PointWeakShotMaskFormer(ModelConfig(num_classes=4)).eval()
    images = torch.randint(0, 255, (3, 3, 32, 32), dtype=torch.uint8)
    batched = predict(model, images)
    single = torch.cat([predict(model, images[i : i + 1]) for i in range(3)])
    assert torch.equal(batched, single)


def test_keypoint_mask_is_high_at_its_own_point_and_follows_the_embedding():
    embeddings = torch.zeros(1, 2, 4, 4)
    embeddings[0, 0, :, :2] = 3.0  # left half: direction 0
    embeddings[0, 1, :, 2:] = 3.0  # right half: direction 1
    head = KeypointHead(2, embedding_head=False)
    logits = head(embeddings, torch.tensor([[[6.0, 2.0]]]), (16, 16))  # a point in the left half
    probability = logits.sigmoid()[0, 0]
    assert (probability[:, :2] > 0.99).all() and (probability[:, 2:] == 0.5).all()


def test_sample_embeddings_reads_bilinear_values():
    embeddings = torch.arange(16.0).view(1, 1, 4, 4)
    value = sample_embeddings(embeddings, torch.tensor([[[6.0, 10.0]]]), (16, 16))  # centre of cell (1, 2)
    assert value.item() == pytest.approx(embeddings[0, 0, 1, 2].item() + (6.5 / 4 - 0.5 - 1) * 4 + (10.5 / 4 - 0.5 - 2))


def test_class_union_max_and_noisy_or():
    probability = torch.tensor([[[0.5, 0.2], [0.5, 0.9], [0.99, 0.99]]])  # (B, P=3, L=2)
    membership = torch.tensor([[[1.0, 1.0, 0.0]]])  # target owns keypoints 0 and 1
    assert class_union(probability, membership, "max")[0, 0].tolist() == pytest.approx([0.5, 0.9])
    assert class_union(probability, membership, "noisy_or")[0, 0].tolist() == pytest.approx([0.75, 0.92], abs=1e-5)
    with pytest.raises(ValueError, match="class union"):
        class_union(probability, membership, "min")


def test_small_resnet_strides():
    features = SmallResNet(TrainConfig().backbone_widths)(torch.zeros(1, 3, 64, 64))
    assert [f.shape[-1] for f in features] == [16, 8, 4, 2]


def test_resnet50_needs_torchvision_or_builds():
    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="pip install -e .\\[imagenet\\]"):
            ResNet50(pretrained=False)
    else:
        features = ResNet50(pretrained=False)(torch.zeros(1, 3, 64, 64))
        assert [f.shape[1] for f in features] == [256, 512, 1024, 2048]


def test_pixel_classifier_is_a_training_only_output_and_switchable():
    model = PointWeakShotMaskFormer(ModelConfig(num_classes=5))
    assert model(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))["pixel_logits"].shape == (1, 5, 8, 8)
    assert "pixel_logits" not in model.eval()(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    plain = PointWeakShotMaskFormer(
        ModelConfig(num_classes=5, pixel_classifier=False, mask_pooled_classification=False)
    )
    assert plain.pixel_classifier is None and plain.region_projection is None
    assert "pixel_logits" not in plain(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))


def test_class_scores_read_the_region_under_the_mask():
    """With mask pooling, changing the pixels under a query's mask changes that query's class logits."""
    model = PointWeakShotMaskFormer(ModelConfig(num_classes=4)).eval()
    image = torch.randint(0, 255, (1, 3, 32, 32), dtype=torch.uint8)
    other = image.clone()
    other[..., :16, :] = 255 - other[..., :16, :]
    with torch.no_grad():
        assert not torch.allclose(model(image)["class_logits"], model(other)["class_logits"])


def test_pixel_decoder_kernel_sets_the_fpn_output_convolutions_and_keeps_the_shapes():
    cheap = build_model(config_for("ours", pixel_decoder_kernel=1, pretrained_backbone=False), num_classes=5)
    default = build_model(config_for("ours", pretrained_backbone=False), num_classes=5)
    assert {conv[0].kernel_size for conv in cheap.pixel_decoder.output} == {(1, 1)}
    assert {conv[0].kernel_size for conv in default.pixel_decoder.output} == {(3, 3)}
    image = torch.zeros(1, 3, 64, 64, dtype=torch.uint8)
    assert cheap(image)["pixel_embeddings"].shape == default(image)["pixel_embeddings"].shape == (1, 64, 16, 16)


def test_semantic_scores_equal_the_class_weighted_sum_of_the_upsampled_masks():
    import torch.nn.functional as F

    class_logits, mask_logits = torch.randn(2, 5, 4), torch.randn(2, 5, 6, 6)
    masks = F.interpolate(mask_logits.sigmoid(), size=(24, 24), mode="bilinear", align_corners=False)
    expected = torch.einsum("bnc,bnhw->bhwc", class_logits.softmax(-1)[..., :-1], masks)
    assert torch.allclose(semantic_scores(class_logits, mask_logits, (24, 24)), expected, atol=1e-5)
