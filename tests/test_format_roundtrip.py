"""An .irb file round-trips: what convert writes, read_irb gives back unchanged; and a checkpoint
shaped like one saved by the official IR-Net code (DataParallel 'module.' prefix, unused bn3 of
the ImageNet ResNet) converts with --arch and runs."""
import json

import numpy as np
import torch

import irnet_infer
from export.convert import export_graph, main
from export.models import create_model
from export.reference import reference_forward
from irnet_infer.format import read_irb, write_irb


def test_irb_round_trips(tmp_path):
    model = create_model("resnet20", num_classes=7).eval()
    graph, tensors = export_graph(model, (3, 32, 32))
    preprocess = {"input_size": [3, 32, 32], "mean": [0.5] * 3, "std": [0.25] * 3, "scale": 1 / 255}
    classes = [f"c{i}" for i in range(7)]
    path = tmp_path / "m.irb"
    write_irb(path, graph, tensors, preprocess, classes, {"arch": "resnet20"})
    f = read_irb(path)
    assert json.dumps(f.graph, sort_keys=True) == json.dumps(graph, sort_keys=True)
    assert f.preprocess == preprocess and f.classes == classes and f.producer == {"arch": "resnet20"}
    assert sorted(f.tensors) == sorted(tensors)
    for name, t in tensors.items():
        assert f.tensors[name].dtype == t.dtype and np.array_equal(f.tensors[name], t)


def test_official_style_imagenet_checkpoint_converts_with_arch(tmp_path):
    torch.manual_seed(0)
    model = create_model("resnet18", num_classes=10, input_size=(3, 64, 64)).eval()
    state = {f"module.{k}": v for k, v in model.state_dict().items()}
    for key, value in {"weight": torch.ones(10), "bias": torch.zeros(10), "running_mean": torch.zeros(10),
                       "running_var": torch.ones(10), "num_batches_tracked": torch.tensor(0)}.items():
        state[f"module.bn3.{key}"] = value  # defined but unused by the official forward
    ckpt, out = tmp_path / "official.pth", tmp_path / "official.irb"
    torch.save({"state_dict": state}, ckpt)
    assert main([str(ckpt), str(out), "--arch", "resnet18", "--num-classes", "10",
                 "--input-size", "3", "64", "64"]) == 0
    x = torch.randn(2, 3, 64, 64)
    got = irnet_infer.Model(str(out)).predict(x.numpy())
    np.testing.assert_allclose(got, reference_forward(model, x).numpy(), rtol=1e-4, atol=1e-4)


def test_op_types_are_the_documented_ones():
    """The engine's registry, which the reader, irnet-run and the fuzz tests take their op list
    from, runs exactly the op types docs/FORMAT.md documents."""
    import re
    from pathlib import Path

    from irnet_infer import _engine
    from irnet_infer.format import OP_TYPES
    doc = (Path(__file__).resolve().parents[1] / "docs" / "FORMAT.md").read_text()
    table = doc.split("### Op types", 1)[1].split("\n\n", 2)[1]
    documented = set(re.findall(r"^\| `(\w+)` \|", table, re.M))
    assert len(documented) >= 14
    assert set(_engine.op_types()) == documented and OP_TYPES == documented
