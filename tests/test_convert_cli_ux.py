"""The converter's command line as a new user meets it: help, wrong kinds of files, custom
networks with --model, the variant it assumed for a bare state_dict."""
import sys

import numpy as np
import pytest
import torch
import torch.nn as nn

import irnet_infer
from export.convert import main
from export.models import create_model
from helpers import calibrate_bn


def test_help_documents_every_argument(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for text in ("the .pth file", "the .irb file to write", "NAME_1w32a", "per-sample input",
                 "per-channel mean", "per-channel std", "examples:", "--model",
                 "resnet20_1w32a", "state_dict()"):
        assert text in out, text


def test_whole_pickled_module_gets_the_way_forward(tmp_path, capsys):
    torch.save(nn.Sequential(nn.Conv2d(3, 4, 3)), tmp_path / "whole.pth")
    assert main([str(tmp_path / "whole.pth"), str(tmp_path / "m.irb")]) == 2
    err = capsys.readouterr().err
    assert "\x1b" not in err and len(err.strip().splitlines()) == 1
    assert "torch.save(model.state_dict()" in err and "convert(model" in err
    assert "torch.nn.modules.container.Sequential" in err


def test_text_file_named_pth_is_refused_clearly(tmp_path, capsys):
    (tmp_path / "notes.pth").write_text("hello\n")
    assert main([str(tmp_path / "notes.pth"), str(tmp_path / "m.irb")]) == 2
    err = capsys.readouterr().err
    assert "not a PyTorch checkpoint" in err and "notes.pth" in err


def test_bare_state_dict_variant_is_stated(tmp_path, capsys):
    torch.save(create_model("resnet20").state_dict(), tmp_path / "w.pth")
    assert main([str(tmp_path / "w.pth"), str(tmp_path / "a.irb"), "--arch", "resnet20"]) == 0
    out = capsys.readouterr().out
    assert "1W/1A assumed" in out and "--arch resnet20_1w32a" in out
    assert main([str(tmp_path / "w.pth"), str(tmp_path / "b.irb"),
                 "--arch", "resnet20_1w32a"]) == 0
    assert "variant: IR-Net 1W32A" in capsys.readouterr().out
    types = [s["type"] for s in irnet_infer.Model(str(tmp_path / "b.irb")).steps()]
    assert "bwconv2d" in types and "bconv2d" not in types


def test_1w32a_state_dict_keys_equal_1w1a():
    for arch in ("resnet20", "vgg_small", "resnet18_cifar", "resnet18", "resnet34"):
        assert list(create_model(arch).state_dict()) == \
            list(create_model(arch + "_1w32a").state_dict())


FACTORY_SOURCE = '''
import torch.nn as nn
import torch.nn.functional as F
from export.irnet import IRConv2d

class Tiny(nn.Module):
    def __init__(self, num_classes=10):
        super().__init__()
        self.input_size = (3, 16, 16)
        self.conv0 = nn.Conv2d(3, 32, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(32)
        self.conv1 = IRConv2d(32, 32, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.fc = nn.Linear(32, num_classes)

    def forward(self, x):
        x = F.hardtanh(self.bn0(self.conv0(x)))
        x = F.hardtanh(self.bn1(self.conv1(x)))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))

def make_tiny(num_classes=10):
    return Tiny(num_classes)
'''


def test_model_factory_converts_a_custom_network(tmp_path, monkeypatch, capsys):
    pkg = tmp_path / "mynets"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "tiny.py").write_text(FACTORY_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    from mynets.tiny import make_tiny
    torch.manual_seed(0)
    net = calibrate_bn(make_tiny(7), torch.randn(16, 3, 16, 16))
    torch.save({"state_dict": net.state_dict()}, tmp_path / "w.pth")
    rc = main([str(tmp_path / "w.pth"), str(tmp_path / "m.irb"), "--model",
               "mynets.tiny:make_tiny", "--num-classes", "7"])
    assert rc == 0, capsys.readouterr().err
    x = torch.randn(8, 3, 16, 16)
    from export.reference import reference_forward
    want = reference_forward(net, x).numpy()
    got = irnet_infer.Model(str(tmp_path / "m.irb")).predict(x.numpy())
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5 * np.abs(want).max())


@pytest.mark.parametrize("spec,message", [
    ("nocolon", "expects package.module:factory"),
    ("no_such_module_xyz:f", "cannot import no_such_module_xyz"),
    ("export.models:no_such_factory", "has no attribute 'no_such_factory'"),
    ("export.models:arch_names", "not a torch.nn.Module"),
])
def test_model_factory_errors(tmp_path, capsys, spec, message):
    torch.save(create_model("resnet20").state_dict(), tmp_path / "w.pth")
    assert main([str(tmp_path / "w.pth"), str(tmp_path / "m.irb"), "--model", spec]) == 2
    assert message in capsys.readouterr().err
