"""Model.classify / Model.probabilities against PyTorch: softmax of the PyTorch model's logits,
and exp of the outputs for a network ending in LogSoftmax (detected from the file's graph)."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from export.convert import convert
from export.models import create_model
from export.reference import reference_forward
from helpers import randomize_bn
from irnet_infer import Model

CLASSES = [f"digit {i}" for i in range(10)]


@pytest.fixture(scope="module")
def logits_model(tmp_path_factory):
    torch.manual_seed(0)
    net = randomize_bn(create_model("resnet20")).eval()
    path = tmp_path_factory.mktemp("classify") / "logits.irb"
    convert(net, str(path), arch="resnet20", classes=CLASSES)
    return net, Model(str(path))


@pytest.fixture(scope="module")
def log_softmax_model(tmp_path_factory):
    torch.manual_seed(1)
    net = nn.Sequential(randomize_bn(create_model("resnet20"), seed=1), nn.LogSoftmax(dim=1)).eval()
    path = tmp_path_factory.mktemp("classify") / "log_softmax.irb"
    convert(net, str(path), input_size=(3, 32, 32))
    return net, Model(str(path))


def _inputs(n, seed):
    return np.random.default_rng(seed).standard_normal((n, 3, 32, 32)).astype(np.float32)


def _check(net, model, x, classes):
    want = torch.softmax(reference_forward(net, torch.from_numpy(x)).double(), dim=1)
    if isinstance(net[-1] if isinstance(net, nn.Sequential) else None, nn.LogSoftmax):
        want = torch.exp(reference_forward(net, torch.from_numpy(x)).double())
    want = want.numpy()
    got = model.probabilities(x)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got.sum(1), 1.0, rtol=1e-6)  # exp of float32 log-probabilities
    rows = model.classify(x, top=3)
    assert len(rows) == len(x)
    for row, p in zip(rows, want):
        order = np.argsort(-p)[:3]
        assert [name for name, _ in row] == [classes(i) for i in order]
        np.testing.assert_allclose([q for _, q in row], p[order], rtol=1e-4, atol=1e-6)


def test_classify_is_softmax_of_the_pytorch_logits(logits_model):
    net, model = logits_model
    _check(net, model, _inputs(6, 0), lambda i: CLASSES[i])


def test_classify_is_exp_for_a_network_ending_in_log_softmax(log_softmax_model):
    net, model = log_softmax_model
    # exp(log_softmax) is the softmax of the logits before it; a second softmax would not be.
    x = _inputs(6, 1)
    logits = reference_forward(net[0], torch.from_numpy(x)).double()
    np.testing.assert_allclose(model.probabilities(x), torch.softmax(logits, 1).numpy(),
                               rtol=1e-4, atol=1e-6)
    _check(net, model, x, lambda i: f"class {i}")


def test_classify_shapes_and_arguments(logits_model, tmp_path):
    _, model = logits_model
    x = _inputs(2, 2)
    one = model.classify(x[0])  # unbatched in, one list of pairs out, as predict
    assert len(one) == 5 and all(isinstance(n, str) and 0 <= p <= 1 for n, p in one)
    assert one == model.classify(x[:1])[0]
    assert len(model.classify(x, top=100)[0]) == 10
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="top"):
            model.classify(x, top=bad)
    Image = pytest.importorskip("PIL.Image")
    img = np.random.default_rng(3).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    assert model.classify(str(tmp_path / "a.png"), top=2) == model.classify(img, top=2)


def test_log_softmax_is_read_from_the_graph(logits_model, log_softmax_model):
    from irnet_infer.classify import ends_in_log_softmax
    assert ends_in_log_softmax(log_softmax_model[1].graph)
    assert not ends_in_log_softmax(logits_model[1].graph)
