"""IR-Net layers and networks of export/: construction, tracing, official names, EDE, signs."""
import math

import pytest
import torch
import torch.nn.functional as F

from export.irnet import (IRConv2d, binary_weight, deploy_sign, deploy_sign_rule, ede_schedule,
                          set_ede, standardize_weight)
from export.models import MODELS, create_model, load_checkpoint_state
from export.reference import reference_forward
from export.tracing import trace

# Small inputs keep the ImageNet nets fast; the adaptive avgpool makes them size-agnostic.
SMALL_INPUT = {"resnet18": (3, 64, 64), "resnet34": (3, 64, 64)}

EXPECTED_KEYS = {
    "resnet20": ["conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight",
                 "layer2.0.conv1.weight", "layer3.2.bn2.num_batches_tracked",
                 "bn2.running_mean", "linear.weight", "linear.bias"],
    "vgg_small": ["conv0.weight", "bn0.weight", "conv1.weight", "conv5.weight",
                  "bn5.running_var", "fc.weight", "fc.bias"],
    "resnet18_cifar": ["conv1.weight", "bn1.bias", "layer1.1.conv2.weight",
                       "layer2.0.shortcut.0.weight", "layer2.0.shortcut.1.running_var",
                       "layer4.1.bn2.weight", "bn2.weight", "linear.weight"],
    "resnet18": ["conv1.weight", "bn1.weight", "layer1.0.conv1.weight",
                 "layer2.0.downsample.0.weight", "layer2.0.downsample.1.running_mean",
                 "layer4.1.conv2.weight", "bn2.running_var", "fc.weight", "fc.bias"],
    "resnet34": ["layer3.5.conv2.weight", "layer4.0.downsample.0.weight", "fc.weight"],
}



def _model(name):
    return create_model(name, input_size=SMALL_INPUT.get(name))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_model_builds_runs_and_traces(name):
    model = _model(name).eval()
    x = torch.randn(2, *model.input_size)
    with torch.no_grad():
        y = model(x)
        traced = trace(model)(x)
    assert y.shape == (2, 10 if name in ("resnet20", "vgg_small", "resnet18_cifar") else 1000)
    torch.testing.assert_close(traced, y)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_official_state_dict_names(name):
    keys = set(_model(name).state_dict())
    assert set(EXPECTED_KEYS[name]) <= keys
    # EDE k/t are not persistent: official checkpoints do not have them.
    assert not [k for k in keys if k.endswith((".k", ".t"))]
    if name in ("resnet18", "resnet34"):
        assert not [k for k in keys if k.startswith("bn3.")]  # unused in the official forward


def test_official_style_checkpoint_loads():
    state = {f"module.{k}": v for k, v in _model("resnet18").state_dict().items()}
    state["module.bn3.weight"] = torch.ones(1000)
    state["module.bn3.running_mean"] = torch.zeros(1000)
    cleaned = load_checkpoint_state(state)
    assert not any(k.startswith(("module.", "bn3.")) for k in cleaned)
    _model("resnet18").load_state_dict(cleaned)  # strict
    assert load_checkpoint_state(state, "resnet18") == cleaned
    vgg = {f"module.{k}": v for k, v in _model("vgg_small").state_dict().items()}
    _model("vgg_small").load_state_dict(load_checkpoint_state(vgg))  # its bn3 is kept


def test_create_model_arguments():
    m = create_model("vgg_small", num_classes=7, input_size=(1, 16, 16))
    assert m.fc.in_features == 512 * 2 * 2 and m.fc.out_features == 7
    assert m(torch.randn(2, 1, 16, 16)).shape == (2, 7)
    with pytest.raises(ValueError, match="unknown arch"):
        create_model("alexnet")


@pytest.mark.parametrize("epoch,t,k", [(0, 0.1, 10.0), (50, 1.0, 1.0), (100, 10.0, 1.0)])
def test_ede_schedule(epoch, t, k):
    got_k, got_t = ede_schedule(epoch, 100)
    assert math.isclose(got_t, t, rel_tol=1e-9) and math.isclose(got_k, k, rel_tol=1e-9)
    expect_t = 10 ** (math.log10(0.1) + (math.log10(10) - math.log10(0.1)) * epoch / 100)
    assert math.isclose(got_t, expect_t) and got_k == max(1 / expect_t, 1)


def test_ede_backward_matches_formula():
    torch.manual_seed(0)
    conv = IRConv2d(4, 3, 3, padding=1, bias=False)
    k, t = 2.0, 0.7
    set_ede(conv, k, t)
    x = torch.randn(2, 4, 5, 5, requires_grad=True)
    w_std = standardize_weight(conv.weight).detach().requires_grad_(True)
    conv(x).sum().backward()
    # Hand-built graph: the same conv with the sign replaced by its EDE surrogate's slope.
    shift = binary_weight(conv)[1].float().view(-1, 1, 1, 1)
    bw = torch.sign(w_std).detach() * 2 ** shift
    ba = torch.sign(x).detach().requires_grad_(True)
    F.conv2d(ba, bw, padding=1).sum().backward()
    expect_dx = k * t * (1 - torch.tanh(t * x.detach()) ** 2) * ba.grad
    torch.testing.assert_close(x.grad, expect_dx)
    assert "k" not in conv.state_dict() and "t" not in conv.state_dict()


def test_ede_sign_gradient_elementwise():
    from export.irnet import EDESign
    x = torch.linspace(-2, 2, 11, requires_grad=True)
    k, t = torch.tensor([1.5]), torch.tensor([3.0])
    EDESign.apply(x, k, t, False).sum().backward()
    torch.testing.assert_close(x.grad, 1.5 * 3.0 * (1 - torch.tanh(3.0 * x.detach()) ** 2))


def test_deploy_sign_maps_zero_to_plus_one():
    x = torch.tensor([-1.0, -0.0, 0.0, 2.0, -1e-30])
    assert deploy_sign_rule(x).tolist() == [-1.0, 1.0, 1.0, 1.0, -1.0]
    conv = IRConv2d(2, 1, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0]).view(1, 2, 1, 1))
    zeros = torch.zeros(1, 2, 1, 1)
    with torch.no_grad():
        assert conv(zeros).item() == 0.0  # training rule: sign(0) = 0
        with deploy_sign(torch.nn.Sequential(conv)):
            assert conv.deploy
            assert conv(zeros).item() == 0.0  # (+1)(+1) + (+1)(-1), times 2**0
            assert conv(torch.tensor([0.0, -1.0]).view(1, 2, 1, 1)).item() == 2.0
    assert not conv.deploy


def test_irconv_forward_by_hand():
    torch.manual_seed(1)
    conv = IRConv2d(5, 4, 3, stride=2, padding=1, bias=True)
    x = torch.randn(2, 5, 7, 7)
    x[0, 0, 0, 0] = 0.0
    w = conv.weight.detach()
    mean = w.view(4, -1).mean(-1).view(4, 1, 1, 1)
    w_std = (w - mean) / (w - mean).view(4, -1).std(-1, unbiased=True).view(4, 1, 1, 1)
    shift = torch.round(torch.log2(w_std.abs().view(4, -1).mean(-1)))
    with torch.no_grad():
        for deploy in (False, True):
            sign = deploy_sign_rule if deploy else torch.sign
            conv.deploy = deploy
            expect = F.conv2d(sign(x), sign(w_std) * (2 ** shift).view(4, 1, 1, 1), conv.bias,
                              stride=2, padding=1)
            torch.testing.assert_close(conv(x), expect)
    got_w, got_shift = binary_weight(conv)
    torch.testing.assert_close(got_w, w_std)
    assert got_shift.tolist() == shift.long().tolist()


def test_reference_capture_names_are_node_names():
    model = _model("resnet20")
    model.train()
    x = torch.randn(2, 3, 32, 32)
    out, values = reference_forward(model, x, capture=True)
    assert model.training  # restored
    assert "layer1_0_conv1" in values and "linear" in values and "x" in values
    torch.testing.assert_close(values["linear"], out)
    torch.testing.assert_close(reference_forward(model, x), out)
