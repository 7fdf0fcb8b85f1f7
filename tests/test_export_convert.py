"""The converter: graph ops and params per docs/FORMAT.md, bit packing, unsupported modules,
and a small executor of the written graph (the file's semantics) against reference_forward."""
import json

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from export.check import compare
from export.convert import convert, export_graph, main
from export.irnet import IRConv2d, binary_weight
from export.models import MODELS, create_model
from irnet_infer import _engine
from irnet_infer.format import unpack_signs as unpack_sign_bits
from export.reference import reference_forward
from helpers import randomize_bn

SMALL_INPUT = {"resnet18": (3, 64, 64), "resnet34": (3, 64, 64)}
U64, I8, F32 = np.dtype(np.uint64), np.dtype(np.int8), np.dtype(np.float32)




def tail_bits(bits, cin):
    """The bits of the last word past Cin, which the format requires to be 0."""
    used = cin - 64 * (bits.shape[-1] - 1)
    return bits[..., -1] >> np.uint64(used) if used < 64 else np.zeros(bits.shape[:3], np.uint64)


def _exported(name):
    torch.manual_seed(0)
    model = randomize_bn(create_model(name, input_size=SMALL_INPUT.get(name))).eval()
    graph, tensors = export_graph(model, model.input_size)
    return model, graph, tensors


def _expected_params(op, tensors):
    """{role: (dtype, shape)} the format requires for an op."""
    a = op["attrs"]
    if op["type"] in ("conv2d", "bconv2d"):
        cout, cin, (kh, kw) = a["out_channels"], a["in_channels"], a["kernel_size"]
        if op["type"] == "conv2d":
            spec = {"weight": (F32, (cout, cin, kh, kw))}
        else:
            spec = {"weight_bits": (U64, (cout, kh, kw, (cin + 63) // 64)), "shift": (I8, (cout,))}
        if "bias" in op["params"]:
            spec["bias"] = (F32, (cout,))
        return spec
    if op["type"] == "batch_norm":
        c = tensors[op["params"]["mean"]].shape
        return {r: (F32, c) for r in ("mean", "var", "weight", "bias")}
    if op["type"] == "linear":
        spec = {"weight": (F32, (a["out_features"], a["in_features"]))}
        if "bias" in op["params"]:
            spec["bias"] = (F32, (a["out_features"],))
        return spec
    return {}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_graph_ops_and_params(name):
    model, graph, tensors = _exported(name)
    assert graph["inputs"] == [{"name": "x", "shape": list(model.input_size)}]
    written, referenced = {"x"}, []
    for op in graph["ops"]:
        assert op["type"] in _engine.op_types()  # the converter writes only what the engine runs
        assert all(t in written for t in op["inputs"]), op
        assert not set(op["outputs"]) & written, op
        written |= set(op["outputs"])
        spec = _expected_params(op, tensors)
        assert set(op["params"]) == set(spec), op
        for role, (dtype, shape) in spec.items():
            arr = tensors[op["params"][role]]
            assert arr.dtype == dtype and arr.shape == shape and arr.flags.c_contiguous, (op, role)
        referenced += list(op["params"].values())
        json.dumps(op)  # attrs are plain JSON values
    assert graph["outputs"][0] in written
    assert sorted(referenced) == sorted(tensors)  # each tensor used by exactly one param


@pytest.mark.parametrize("name", ["resnet20", "vgg_small"])
def test_bit_packing_round_trips(name):
    model, graph, tensors = _exported(name)
    modules = dict(model.named_modules())
    bconvs = [op for op in graph["ops"] if op["type"] == "bconv2d"]
    assert bconvs
    for op in bconvs:
        w_std, shift = binary_weight(modules[op["name"]])
        bits = tensors[op["params"]["weight_bits"]]
        cin = op["attrs"]["in_channels"]
        signs = unpack_sign_bits(bits, cin)
        assert np.array_equal(signs, np.where(w_std.numpy() < 0, -1.0, 1.0))
        assert not tail_bits(bits, cin).any()
        assert tensors[op["params"]["shift"]].tolist() == shift.tolist()


def test_tail_bits_zero_for_odd_channels():
    torch.manual_seed(0)
    conv = IRConv2d(70, 3, 3, padding=1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(-conv.weight.abs() - 0.1 + torch.rand_like(conv.weight) * 0.05)
        conv.weight[:, :, 0, 0] += 5  # mostly negative after standardizing: many set bits
    model = nn.Sequential(conv)
    model.input_size = (70, 5, 5)
    graph, tensors = export_graph(model, model.input_size)
    bits = tensors["0.weight_bits"]
    assert bits.shape == (3, 3, 3, 2) and not tail_bits(bits, 70).any()
    w_std, _ = binary_weight(conv)
    assert np.array_equal(unpack_sign_bits(bits, 70), np.where(w_std.numpy() < 0, -1.0, 1.0))


class _GeluNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.act = nn.GELU()

    def forward(self, x):
        return torch.flatten(self.act(self.conv(x)), 1)


def test_unsupported_module_is_named():
    with pytest.raises(ValueError, match=r"unsupported module 'act' \(torch.nn.GELU\)"):
        export_graph(_GeluNet(), (3, 8, 8))


def test_unsupported_function_is_named():
    class Net(nn.Module):
        def forward(self, x):
            return torch.sigmoid(x)
    with pytest.raises(ValueError, match="unsupported function .*sigmoid"):
        export_graph(Net(), (3, 4, 4))


# --- executing the graph with the file's semantics ---------------------------------------------

def _run_graph(graph, tensors, x):
    """Executes a graph as docs/FORMAT.md describes, from the file's tensors only."""
    p = lambda op, role: (torch.from_numpy(tensors[op["params"][role]].astype(np.float32))
                          if role in op["params"] else None)
    env = {graph["inputs"][0]["name"]: x}
    for op in graph["ops"]:
        a, ins = op["attrs"], [env[n] for n in op["inputs"]]
        t = op["type"]
        if t == "conv2d":
            y = F.conv2d(ins[0], p(op, "weight"), p(op, "bias"), a["stride"], a["padding"])
        elif t == "bconv2d":
            bits = tensors[op["params"]["weight_bits"]]
            w = torch.from_numpy(np.ascontiguousarray(unpack_sign_bits(bits, a["in_channels"])))
            xs = torch.where(ins[0] < 0, -1.0, 1.0)
            y = F.conv2d(xs, w, None, a["stride"], a["padding"])
            y = y * (2.0 ** p(op, "shift")).view(1, -1, 1, 1)
            if "bias" in op["params"]:
                y = y + p(op, "bias").view(1, -1, 1, 1)
        elif t == "batch_norm":
            y = F.batch_norm(ins[0], p(op, "mean"), p(op, "var"), p(op, "weight"),
                             p(op, "bias"), False, 0.0, a["eps"])
        elif t == "hardtanh":
            y = F.hardtanh(ins[0], a["min_val"], a["max_val"])
        elif t == "relu":
            y = F.relu(ins[0])
        elif t == "max_pool2d":
            y = F.max_pool2d(ins[0], a["kernel_size"], a["stride"], a["padding"])
        elif t == "avg_pool2d":
            y = F.avg_pool2d(ins[0], a["kernel_size"], a["stride"], a["padding"],
                             count_include_pad=a["count_include_pad"])
        elif t == "global_avg_pool":
            y = ins[0].mean((2, 3), keepdim=True)
        elif t == "flatten":
            y = ins[0].flatten(1)
        elif t == "linear":
            y = F.linear(ins[0], p(op, "weight"), p(op, "bias"))
        elif t == "add":
            y = ins[0] + ins[1]
        elif t == "shortcut_a":
            s = a["stride"]
            y = F.pad(ins[0][:, :, ::s, ::s], (0, 0, 0, 0, a["pad_before"], a["pad_after"]))
        elif t == "log_softmax":
            y = F.log_softmax(ins[0], -1)
        else:
            raise AssertionError(t)
        env[op["outputs"][0]] = y
    return env


@pytest.mark.parametrize("name", sorted(MODELS))
def test_graph_semantics_match_reference(name):
    model, graph, tensors = _exported(name)
    x = torch.randn(4, *model.input_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        env = _run_graph(graph, tensors, x)
    _, reference = reference_forward(model, x, capture=True)
    engine = {k: v.numpy() for k, v in env.items()}
    report = compare(reference, engine, graph["outputs"][0])
    assert report["ok"], report
    assert report["max_abs_diff"] < 1e-4
    assert len(report["layers"]) >= len(graph["ops"])  # every op's output was compared


def test_compare_flags_mismatch():
    ref = {"out": torch.tensor([[1.0, 2.0], [3.0, 0.0]])}
    assert compare(ref, {"out": ref["out"].numpy()}, "out")["ok"]
    bad = compare(ref, {"out": np.array([[2.0, 1.0], [3.0, 0.0]], np.float32)}, "out")
    assert not bad["ok"] and bad["top1_agreement"] == 0.5
    assert not compare(ref, {}, "out")["ok"]


# --- convert() and the CLI ------------------------------------------------------------------

def _metadata(path):
    from safetensors import safe_open
    with safe_open(str(path), framework="numpy") as f:
        return f.metadata(), {k: f.get_tensor(k) for k in f.keys()}


def test_convert_checkpoint_file(tmp_path):
    model = create_model("resnet20", num_classes=4)
    ckpt = tmp_path / "m.pth"
    torch.save({"arch": "resnet20", "state_dict": {f"module.{k}": v for k, v in
                                                   model.state_dict().items()}}, ckpt)
    (tmp_path / "classes.txt").write_text("a\nb\nc\nd\n")
    out = tmp_path / "m.irb"
    assert main([str(ckpt), str(out), "--classes", str(tmp_path / "classes.txt")]) == 0
    meta, tensors = _metadata(out)
    graph = json.loads(meta["graph"])
    pre = json.loads(meta["preprocess"])
    assert json.loads(meta["classes"]) == ["a", "b", "c", "d"]
    assert pre["input_size"] == [3, 32, 32] and pre["resize"] == 32
    # The official CIFAR-10 trainers' test transform normalizes with the ImageNet statistics.
    assert pre["mean"] == [0.485, 0.456, 0.406] and pre["std"] == [0.229, 0.224, 0.225]
    assert json.loads(meta["producer"])["arch"] == "resnet20"
    assert graph["ops"][-1]["attrs"]["out_features"] == 4
    assert tensors["layer1.0.conv1.weight_bits"].dtype == np.uint64


def test_convert_bare_state_dict_needs_arch(tmp_path, capsys):
    ckpt = tmp_path / "sd.pth"
    torch.save(create_model("vgg_small").state_dict(), ckpt)
    assert main([str(ckpt), str(tmp_path / "o.irb")]) == 2
    assert "pass --arch" in capsys.readouterr().err
    assert main([str(ckpt), str(tmp_path / "o.irb"), "--arch", "vgg_small",
                 "--mean", "0.5", "0.5", "0.5", "--std", "0.25", "0.25", "0.25"]) == 0
    pre = json.loads(_metadata(tmp_path / "o.irb")[0]["preprocess"])
    assert pre["mean"] == [0.5] * 3 and pre["std"] == [0.25] * 3


def test_convert_errors_are_one_line(tmp_path, capsys):
    assert main([str(tmp_path / "missing.pth"), str(tmp_path / "o.irb")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1
    ckpt = tmp_path / "wrong.pth"
    torch.save({"arch": "resnet20", "state_dict": create_model("vgg_small").state_dict()}, ckpt)
    assert main([str(ckpt), str(tmp_path / "o.irb")]) == 2
    assert "does not match arch 'resnet20'" in capsys.readouterr().err


def test_convert_module_imagenet_preprocess(tmp_path):
    model = create_model("resnet18", num_classes=5)
    result = convert(model, str(tmp_path / "r.irb"), arch="resnet18")
    pre = result["preprocess"]
    assert pre["resize"] == 256 and pre["input_size"] == [3, 224, 224]
    assert pre["mean"] == [0.485, 0.456, 0.406]


class _OfficialStyleHead(nn.Module):
    """The official code's idioms: size-derived pool kernel, view(N, -1), F.max_pool2d,
    a no-op Sequential, eval-mode dropout, iadd and ReLU."""

    def __init__(self):
        super().__init__()
        self.conv = IRConv2d(3, 8, 3, padding=1, bias=True)
        self.shortcut = nn.Sequential()
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(8, 3)

    def forward(self, x):
        out = F.max_pool2d(self.conv(x), 2)
        out += self.shortcut(out)
        out = F.relu(out)
        out = F.avg_pool2d(out, out.size()[3])
        out = self.drop(out.view(out.size(0), -1))
        return F.log_softmax(self.fc(out), dim=1)


def test_official_idioms_fold_and_execute():
    torch.manual_seed(0)
    model = _OfficialStyleHead().eval()
    graph, tensors = export_graph(model, (3, 8, 8))
    types_ = [op["type"] for op in graph["ops"]]
    assert types_ == ["bconv2d", "max_pool2d", "add", "relu", "global_avg_pool", "flatten",
                      "linear", "log_softmax"]
    assert graph["ops"][1]["attrs"] == {"kernel_size": [2, 2], "stride": [2, 2],
                                        "padding": [0, 0]}
    x = torch.randn(3, 3, 8, 8)
    with torch.no_grad():
        env = _run_graph(graph, tensors, x)
    torch.testing.assert_close(env[graph["outputs"][0]], reference_forward(model, x))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_engine_matches_reference(tmp_path, name):
    from export.check import check_file
    # Seeded: with unseeded weights, one of millions can equal its channel's mean, standardize
    # to exactly 0, and make the model's own forward (torch.sign(0) = 0) differ from the
    # engine's +1, which check_file rightly reports as a mismatch.
    torch.manual_seed(0)
    model = randomize_bn(create_model(name, input_size=SMALL_INPUT.get(name))).eval()
    path = str(tmp_path / f"{name}.irb")
    convert(model, path, arch=name)
    report = check_file(path, model, model.input_size, batch=4)
    assert report["ok"], report
