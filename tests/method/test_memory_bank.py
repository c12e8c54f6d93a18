import pytest
import torch
import torch.nn.functional as F

from pwslib.method.memory_bank import MemoryBank, object_confidence


def test_object_confidence_by_hand():
    cooccurrence = torch.tensor([[1.0, 0.9, 0.2], [0.5, 1.0, 0.1], [0.3, 0.3, 1.0]])  # P(a | c) at [c, a]
    known = torch.tensor([[True, True, True], [True, False, True], [True, False, False]])
    confidence = object_confidence(cooccurrence, torch.tensor([0, 0, 0]), known)
    assert confidence.tolist() == pytest.approx([0.1, 0.8, 1.0])  # 1 - max over the other present classes


def test_ema_prototype_arithmetic_with_confidence():
    bank = MemoryBank(3, 2, "ema", momentum=0.5)
    bank.update(torch.tensor([[1.0, 0.0]]), torch.tensor([1]), torch.tensor([1.0]))
    assert bank.initialised.tolist() == [False, True, False]
    assert bank.prototypes[1].tolist() == pytest.approx([1.0, 0.0])
    bank.update(torch.tensor([[0.0, 1.0]]), torch.tensor([1]), torch.tensor([0.4]))
    step = (1 - 0.5) * 0.4
    expected = F.normalize(torch.tensor([1 - step, step]), dim=0)
    assert bank.prototypes[1].tolist() == pytest.approx(expected.tolist(), abs=1e-6)


def test_zero_confidence_moves_nothing_and_plain_bank_ignores_confidence():
    bank = MemoryBank(2, 2, "ema", momentum=0.5)
    bank.update(torch.tensor([[1.0, 0.0]]), torch.tensor([0]), torch.tensor([1.0]))
    bank.update(torch.tensor([[0.0, 1.0]]), torch.tensor([0]), torch.tensor([0.0]))
    assert bank.prototypes[0].tolist() == pytest.approx([1.0, 0.0])
    plain = MemoryBank(2, 2, "ema", momentum=0.5, use_confidence=False)
    plain.update(torch.tensor([[1.0, 0.0]]), torch.tensor([0]), torch.tensor([1.0]))
    plain.update(torch.tensor([[0.0, 1.0]]), torch.tensor([0]), torch.tensor([0.0]))
    assert plain.prototypes[0, 1] > 0


def test_queue_prototype_is_the_confidence_weighted_mean():
    bank = MemoryBank(1, 2, "queue", queue_size=2)
    bank.update(
        torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]), torch.tensor([0, 0, 0]), torch.tensor([1.0, 0.5, 0.25])
    )
    # the queue keeps the last two: (0, 1) weight 0.5 and (1, 1)/sqrt2 weight 0.25
    mean = 0.5 * torch.tensor([0.0, 1.0]) + 0.25 * F.normalize(torch.tensor([1.0, 1.0]), dim=0)
    assert bank.prototypes[0].tolist() == pytest.approx(F.normalize(mean, dim=0).tolist(), abs=1e-6)


def test_contrastive_loss_is_zero_without_prototypes_and_pulls_toward_the_own_prototype():
    bank = MemoryBank(2, 2, "ema", temperature=0.5)
    embedding = torch.tensor([[1.0, 1.0]], requires_grad=True)
    assert bank.contrastive_loss(embedding, torch.tensor([0]), torch.tensor([1.0])).item() == 0.0
    bank.update(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 1]), torch.tensor([1.0, 1.0]))
    loss = bank.contrastive_loss(embedding, torch.tensor([0]), torch.tensor([1.0]))
    assert loss.item() == pytest.approx(
        F.cross_entropy(torch.tensor([[1.0, 1.0]]) / 2**0.5 / 0.5, torch.tensor([0])).item(), abs=1e-5
    )
    loss.backward()
    assert embedding.grad[0, 0] < 0 < embedding.grad[0, 1]  # toward class 0's prototype, away from class 1's
    half = bank.contrastive_loss(embedding.detach(), torch.tensor([0]), torch.tensor([0.5]))
    assert half.item() == pytest.approx(loss.item() / 2)


def test_bank_state_round_trips_through_a_state_dict():
    bank = MemoryBank(2, 2, "queue", queue_size=3)
    bank.update(torch.tensor([[1.0, 0.0]]), torch.tensor([1]), torch.tensor([0.7]))
    copy = MemoryBank(2, 2, "queue", queue_size=3)
    copy.load_state_dict(bank.state_dict())
    assert torch.equal(copy.prototypes, bank.prototypes) and torch.equal(copy.queue_weights, bank.queue_weights)
