"""Networks: two heads on one backbone, shapes, parameter counts, errors."""
import pytest
import torch

from promix_tutorial.models import MODEL_NAMES, build_model, count_parameters


@pytest.mark.parametrize("name,shape,kw", [
    ("resnet18", (2, 3, 32, 32), {}),
    ("preact_resnet18", (2, 3, 32, 32), {}),
    ("fast_cnn", (2, 3, 32, 32), {}),
    ("fast_cnn", (2, 3, 32, 32), {"widths": (32, 64, 128)}),
    ("digits_net", (2, 1, 8, 8), {}),
])
def test_two_heads_shapes(name, shape, kw):
    net = build_model(name, 7, shape[1], **kw).eval()
    h, aux = net(torch.randn(*shape))
    assert h.shape == aux.shape == (2, 7)
    assert not torch.allclose(h, aux)  # two separately initialised heads


def test_heads_share_the_backbone():
    net = build_model("digits_net", 10, 1)
    h, aux = net(torch.randn(4, 1, 8, 8))
    aux.sum().backward()
    assert net.heads.primary.weight.grad is None          # only the aux head got gradient ...
    assert net.body[0].weight.grad.abs().sum() > 0         # ... and the shared backbone


def test_parameter_counts():
    assert 11_000_000 < count_parameters(build_model("preact_resnet18", 10)) < 11_300_000
    assert 11_100_000 < count_parameters(build_model("resnet18", 10)) < 11_300_000
    assert count_parameters(build_model("fast_cnn", 10, widths=(32, 64, 128))) < 400_000


def test_bad_names_and_widths():
    assert set(MODEL_NAMES) == {"resnet18", "preact_resnet18", "fast_cnn", "digits_net"}
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet50", 10)
    with pytest.raises(ValueError, match="widths"):
        build_model("fast_cnn", 10, widths=(0, 64))
