"""`--check` sees what the deployment sign rule changes: exact zeros entering a binarization
(training-time torch.sign(0) = 0, deployed +1) are counted per layer and named, and the engine
is compared with the model's own forward too."""
import torch

from export.check import format_report
from export.convert import convert
from export.models import create_model
from helpers import randomize_bn


def _resnet20(zero_channel):
    torch.manual_seed(0)
    model = randomize_bn(create_model("resnet20")).eval()
    if zero_channel:
        # gamma = beta = 0 in the stem's BatchNorm: channel 3 is exactly 0 after hardtanh,
        # and it enters layer1.0.conv1's binarization.
        with torch.no_grad():
            model.bn1.weight[3] = 0.0
            model.bn1.bias[3] = 0.0
    return model


def test_zeros_counted_and_named(tmp_path):
    result = convert(_resnet20(True), str(tmp_path / "m.irb"), check=True)
    report = result["check"]
    names = [z["name"] for z in report["zeros"]]
    assert "layer1.0.conv1" in names
    row = report["zeros"][names.index("layer1.0.conv1")]
    assert row["zeros"] >= 8 * 32 * 32  # the whole channel, for each of the 8 samples
    text = format_report(report)
    assert "layer1.0.conv1" in text and "sign(0) = 0" in text
    # The engine equals the deployment-rule reference, but not the model's own forward.
    assert report["top1_agreement"] == 1.0
    assert report["own_forward"]["rel_diff"] > 1e-3
    assert not report["ok"] and text.endswith("MISMATCH")


def test_no_zeros_no_rows(tmp_path):
    report = convert(_resnet20(False), str(tmp_path / "m.irb"), check=True)["check"]
    assert report["zeros"] == [] and report["ok"]
    assert report["own_forward"]["top1_agreement"] == 1.0


def test_zero_standardized_weight_counted(tmp_path):
    """A weight equal to its channel's mean standardizes to exactly 0: torch.sign gives 0."""
    model = _resnet20(False)
    with torch.no_grad():
        w = model.layer2[1].conv2.weight
        w[5].fill_(0.0)
        w[5, 0, 0, 0] = 1.0
        w[5, 1, 0, 0] = -1.0  # mean 0: every other weight of channel 5 standardizes to 0
    report = convert(model, str(tmp_path / "m.irb"), check=True)["check"]
    rows = {z["name"]: z for z in report["zeros"]}
    assert rows["layer2.1.conv2"]["weight_zeros"] == 32 * 9 - 2
    assert "standardized weights" in format_report(report)
