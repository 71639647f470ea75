"""Networks: two heads on one backbone, shapes, parameter counts, errors."""
import pytest
import torch

from promix_tutorial.models import MODEL_NAMES, build_model, count_parameters


@pytest.mark.parametrize("name,shape,kw", [
    ("resnet18", (2, 3, 32, 32), {}),
    ("preact_resnet18", (2, 3, 32, 32), {}),
    ("fast_cnn", (2, 3, 32, 32), {}),
    ("fast_cnn", (2, 3, 32, 32), {"widths": (32, 64, 128)}),
    ("airbench94", (2, 3, 32, 32), {}),
    ("airbench95", (2, 3, 32, 32), {}),
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
    # airbench94: 1.97 M weights; frozen: the stem's filters and the BatchNorm scales
    assert 1_900_000 < count_parameters(build_model("airbench94", 10)) < 2_000_000
    assert 4_000_000 < count_parameters(build_model("airbench95", 10)) < 5_000_000


def test_bad_names_and_widths():
    assert set(MODEL_NAMES) == {"resnet18", "preact_resnet18", "fast_cnn", "airbench94",
                                "airbench95", "digits_net"}
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet50", 10)
    with pytest.raises(ValueError, match="widths"):
        build_model("fast_cnn", 10, widths=(0, 64))
    with pytest.raises(ValueError, match="widths"):
        build_model("airbench94", 10, widths=(0, 64))


def test_fast_cnn_logit_scale(tmp_path):
    """logit_scale multiplies both heads' logits (airbench's 1/9) and nothing else; the config
    field reaches the network; it is refused for other models and when not positive."""
    from promix_tutorial.config import make_config, with_added_fields
    from promix_tutorial.engine import Trainer
    torch.manual_seed(0)
    plain = build_model("fast_cnn", 10, widths=(8, 16)).eval()
    scaled = build_model("fast_cnn", 10, widths=(8, 16), logit_scale=1 / 9).eval()
    scaled.load_state_dict(plain.state_dict())  # no parameter of its own
    x = torch.randn(3, 3, 32, 32)
    for a, b in zip(plain(x), scaled(x)):
        assert torch.allclose(b, a / 9, atol=1e-6)
    with pytest.raises(ValueError, match="logit_scale"):
        build_model("fast_cnn", 10, logit_scale=0.0)
    cfg = make_config("cpu", "digits", "sym:0.5", model="fast_cnn", n_train=None, n_test=None,
                      logit_scale=0.25, epochs=2, warmup_epochs=1)
    trainer = Trainer(cfg, tmp_path, progress=False)
    assert all(net.logit_scale == 0.25 for net in trainer.nets)
    assert with_added_fields({})["logit_scale"] == 1.0  # runs saved before the field: unscaled
    with pytest.raises(ValueError, match="logit_scale"):
        make_config("paper", "cifar10", "sym:0.5", logit_scale=0.5)   # not fast_cnn / airbench
    with pytest.raises(ValueError, match="logit_scale"):
        make_config("fast", "cifar10", "sym:0.5", logit_scale=-1.0)
