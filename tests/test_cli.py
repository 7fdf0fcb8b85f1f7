"""The command line: predict, info, bench (and the dispatcher's error handling). Fast: one small
ResNet-20 converted once, runs of a few iterations."""
import json
import subprocess
import sys

import numpy as np
import pytest

from irnet_infer import __main__ as cli
from irnet_infer import Model
from irnet_infer.cli_info import model_info
from irnet_infer.classify import probabilities

CLASSES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from export.convert import convert
    from export.models import create_model
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("cli") / "resnet20.irb"
    convert(create_model("resnet20"), str(path), arch="resnet20", classes=CLASSES)
    return str(path)


@pytest.fixture(scope="module")
def vgg_path(tmp_path_factory):
    pytest.importorskip("torch")
    from export.convert import convert
    from export.models import create_model
    path = tmp_path_factory.mktemp("cli") / "vgg.irb"
    convert(create_model("vgg_small"), str(path), arch="vgg_small")
    return str(path)


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- predict -------------------------------------------------------------------------------------

def test_predict_npy_text_and_json(model_path, tmp_path, capsys):
    x = np.random.default_rng(0).standard_normal((3, 3, 32, 32)).astype(np.float32)
    np.save(tmp_path / "batch.npy", x)
    code, out, _ = run_cli(capsys, "predict", model_path, tmp_path / "batch.npy", "--top", 3, "--json",
                           "--no-progress")
    assert code == 0
    results = json.loads(out)
    assert [r["image"] for r in results] == [f"{tmp_path / 'batch.npy'}[{i}]" for i in range(3)]
    logits = Model(model_path).predict(x)
    for r, z in zip(results, logits):
        assert len(r["top"]) == 3
        p = [t["probability"] for t in r["top"]]
        assert p == sorted(p, reverse=True)
        assert r["top"][0]["index"] == int(np.argmax(z))
        assert r["top"][0]["class"] == CLASSES[int(np.argmax(z))]
        np.testing.assert_allclose(p[0], probabilities(z[None], False)[0].max(), rtol=1e-6)
    code, out, _ = run_cli(capsys, "predict", model_path, tmp_path / "batch.npy", "-k", 2, "--no-progress")
    assert code == 0 and out.count("%") == 6 and CLASSES[int(np.argmax(logits[0]))] in out


def test_predict_image_file(model_path, tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image")
    img = np.random.default_rng(1).integers(0, 256, (40, 50, 3), dtype=np.uint8)
    Image.fromarray(img).save(tmp_path / "a.png")
    code, out, _ = run_cli(capsys, "predict", model_path, tmp_path / "a.png", "--json")
    assert code == 0
    [r] = json.loads(out)
    assert len(r["top"]) == 5
    assert sum(t["probability"] for t in r["top"]) <= 1 + 1e-9


def test_probabilities_softmax_and_log_softmax():
    z = np.array([[1.0, 2.0, 3.0]])
    p = probabilities(z, False)
    np.testing.assert_allclose(p.sum(), 1.0)
    ls = z - np.log(np.exp(z).sum())
    np.testing.assert_allclose(probabilities(ls, True), p)


@pytest.fixture(scope="module")
def log_softmax_path(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from export.convert import convert
    from export.models import create_model
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("cli") / "resnet20_log_softmax.irb"
    net = torch.nn.Sequential(create_model("resnet20"), torch.nn.LogSoftmax(dim=1)).eval()
    convert(net, str(path), arch="resnet20", classes=CLASSES)
    return str(path)


def test_predict_uses_exp_when_model_ends_in_log_softmax(log_softmax_path, model_path, tmp_path, capsys,
                                                          monkeypatch):
    from irnet_infer import model as model_module
    from irnet_infer.classify import ends_in_log_softmax
    m = Model(log_softmax_path)
    assert m.graph["ops"][-1]["type"] == "log_softmax"
    assert ends_in_log_softmax(m.graph)
    assert not ends_in_log_softmax(Model(model_path).graph)  # ends in a linear layer
    flags = []
    real = model_module.probabilities
    monkeypatch.setattr(model_module, "probabilities", lambda z, ls: flags.append(ls) or real(z, ls))
    x = np.random.default_rng(2).standard_normal((3, 32, 32)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    code, out, _ = run_cli(capsys, "predict", log_softmax_path, tmp_path / "x.npy", "--json", "--top", 10)
    assert code == 0 and flags == [True]
    z = m.predict(x).astype(np.float64)  # log-probabilities
    top = json.loads(out)[0]["top"]
    # exp of the log-probabilities themselves, bit for bit (a softmax over them would
    # subtract the max and divide by the sum, which rounds differently).
    assert [t["probability"] for t in top] == [float(np.exp(z[t["index"]])) for t in top]
    np.testing.assert_allclose(sum(t["probability"] for t in top), 1.0, rtol=1e-5)
    assert top[0]["class"] == CLASSES[int(np.argmax(z))]


# -- info ----------------------------------------------------------------------------------------

def test_info_table_and_totals(model_path, capsys):
    code, out, _ = run_cli(capsys, "info", model_path)
    assert code == 0
    for word in ("bconv2d", "binary", "compression", "format version:    1", "producer", "resnet20", "layer1.0.conv1"):
        assert word in out
    info = model_info(model_path)
    t = info["totals"]
    m = Model(model_path)
    steps = m.steps()
    assert t["binary_macs"] == sum(s["binary_macs"] for s in steps)
    assert t["total_macs"] == sum(s["binary_macs"] + s["float_macs"] for s in steps)
    assert 0.5 < t["binary_mac_share"] < 1
    assert t["float32_bytes"] > t["param_bytes"] and t["compression"] > 1
    assert t["format_version"] == 1 and t["producer"]["arch"] == "resnet20"
    conv = next(r for r in info["layers"] if r["name"] == "layer1.0.conv1")
    assert conv["kind"] == "binary" and conv["params"] == 16 * 16 * 9
    assert conv["input_shape"] == [[16, 32, 32]] and conv["output_shape"] == [16, 32, 32]
    code, out, _ = run_cli(capsys, "info", model_path, "--json")
    assert code == 0 and json.loads(out)["totals"]["ops"] == len(m.graph["ops"])


# The paper's five networks and a 1W/32A twin; the ImageNet ones on a 64x64 input (the layer
# structure is the same, the conversion faster).
INFO_NETWORKS = [("resnet20", 32), ("vgg_small", 32), ("resnet18_cifar", 32), ("resnet18", 64),
                 ("resnet34", 64), ("resnet20_1w32a", 32)]


@pytest.mark.parametrize("arch,size", INFO_NETWORKS)
def test_info_shapes_are_the_pytorch_models(tmp_path, capsys, arch, size):
    """Every op's input and output shapes printed by `irnet-infer info --json` are the shapes
    of the tensors the PyTorch model computes (graph tensor names are the traced model's node
    names, so each op's tensors are looked up among the values of a PyTorch forward pass)."""
    torch = pytest.importorskip("torch")
    from export.convert import convert
    from export.models import create_model
    from export.tracing import run_recording, trace
    torch.manual_seed(0)
    model = create_model(arch, input_size=(3, size, size)).eval()
    path = tmp_path / f"{arch}.irb"
    convert(model, str(path), arch=arch)
    with torch.no_grad():
        _, values = run_recording(trace(model), torch.randn(2, 3, size, size))
    torch_shape = {name: list(v.shape[1:]) for name, v in values.items() if torch.is_tensor(v)}
    code, out, _ = run_cli(capsys, "info", path, "--json")
    assert code == 0
    rows = json.loads(out)["layers"]
    ops = Model(path).graph["ops"]
    assert [r["name"] for r in rows] == [op["name"] for op in ops]
    for row, op in zip(rows, ops):
        assert row["output_shape"] == torch_shape[op["outputs"][0]], (row["name"], op["type"])
        assert row["input_shape"] == [torch_shape[t] for t in op["inputs"]], (row["name"], op["type"])


# -- bench ---------------------------------------------------------------------------------------

def test_bench_latency_and_per_layer(model_path, capsys):
    code, out, _ = run_cli(capsys, "bench", model_path, "--threads", 1, "--batch", 2, "--iterations", 3,
                           "--warmup", 1, "--per-layer", "--no-progress")
    assert code == 0
    for word in ("p50", "p90", "p99", "images/s", "GOPS", "share", "layer1.0.conv1", "total"):
        assert word in out
    code, out, _ = run_cli(capsys, "bench", model_path, "--threads", 1, "--iterations", 3, "--json",
                           "--per-layer", "--isa", "scalar", "--no-progress")
    r = json.loads(out)
    assert code == 0 and r["isa"] == "scalar" and r["threads"] == 1 and r["iterations"] == 3
    assert r["latency_ms"]["p50"] <= r["latency_ms"]["p99"]
    np.testing.assert_allclose(sum(s["share"] for s in r["layers"]), 1.0, rtol=1e-6)
    assert len(r["layers"]) == len(Model(model_path).steps())


# -- errors: one line, non-zero ------------------------------------------------------------------

@pytest.mark.parametrize("argv", [
    ["info", "missing.irb"],
    ["bench", "missing.irb"],
    ["predict", "missing.irb", "missing.png"],
])
def test_missing_files(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *argv)
    assert code != 0 and err.startswith("error: ") and err.count("\n") == 1 and "missing" in err


def test_bad_irb_gives_format_error(tmp_path, capsys):
    bad = tmp_path / "bad.irb"
    bad.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all}")
    for argv in (["info", bad], ["bench", bad], ["predict", bad, bad]):
        code, _, err = run_cli(capsys, *argv)
        assert code != 0 and err.startswith("error: ") and err.count("\n") == 1, (argv, err)


def test_bad_arguments(model_path, tmp_path, capsys):
    np.save(tmp_path / "wrong.npy", np.zeros((3, 8, 8), np.float32))
    for argv in (["bench", model_path, "--batch", 0], ["predict", model_path, tmp_path / "wrong.npy"],
                 ["predict", model_path, tmp_path / "wrong.npy", "--top", 0],
                 ["bench", model_path, "--isa", "nosuchisa", "--iterations", 1]):
        code, _, err = run_cli(capsys, *argv)
        assert code != 0 and err.startswith("error: ") and err.count("\n") == 1, (argv, err)


@pytest.mark.parametrize("command", ["predict", "info", "bench", "eval"])
def test_help_has_examples(command, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([command, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert f"irnet-infer {command}" in out and "example" in out


def test_module_entry_point_and_no_torch(model_path):
    code = ("import sys, irnet_infer.__main__ as m; rc = m.main(['info', %r]); "
            "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)" % model_path)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sys.executable, "-m", "irnet_infer", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "bench" in r.stdout and "predict" in r.stdout


# -- predict with several images: each result, each failure, non-zero at the end ----------------

def test_predict_reports_each_image_and_fails_at_the_end(model_path, tmp_path, capsys):
    Image = pytest.importorskip("PIL.Image")
    rng = np.random.default_rng(3)
    good = []
    for i in range(2):
        good.append(tmp_path / f"good{i}.png")
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(good[-1])
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    missing = tmp_path / "missing.png"
    code, out, err = run_cli(capsys, "predict", model_path, good[0], text, missing, good[1])
    assert code == 1
    m = Model(model_path)
    for path in good:  # the good images still get their results, as Model.classify gives them
        assert str(path) in out
        name, p = m.classify(str(path), top=1)[0]
        assert f"{name}" in out and f"{p:8.4%}".strip() in out
    lines = err.strip().splitlines()
    assert len(lines) == 3 and lines[-1] == "error: 2 of 4 images failed"
    assert lines[0].startswith("error: ") and lines[0].count(str(text)) == 1
    assert lines[1].startswith("error: ") and lines[1].count(str(missing)) == 1
    assert "does not exist" in lines[1]
    code, out, err = run_cli(capsys, "predict", model_path, good[0], text, "--json")
    results = json.loads(out)
    assert code == 1 and "top" in results[0] and results[1]["image"] == str(text)
    assert results[1]["error"].count(str(text)) == 1


# -- path errors: one wording in every command -------------------------------------------------

@pytest.mark.parametrize("command", [["info"], ["bench", "--iterations", "1"], ["eval", "--data", "digits"],
                                     ["predict", "IMAGE"]])
def test_path_errors_have_one_wording(command, model_path, tmp_path, capsys):
    def argv(model):
        rest = [model_path if a == "IMAGE" else a for a in command[1:]]
        return [command[0], model] + rest
    code, _, err = run_cli(capsys, *argv(str(tmp_path / "nope.irb")))
    assert code == 2 and err == f"error: model file {str(tmp_path / 'nope.irb')!r} does not exist\n"
    code, _, err = run_cli(capsys, *argv(str(tmp_path)))
    assert code == 2 and err == f"error: model file {str(tmp_path)!r} is a directory, not a file\n"


def test_image_path_errors(model_path, tmp_path, capsys):
    code, _, err = run_cli(capsys, "predict", model_path, tmp_path)
    assert code == 1 and err == f"error: image {str(tmp_path)!r} is a directory, not a file\n"
    with pytest.raises(IsADirectoryError, match="is a directory, not a file"):
        Model(model_path).predict(str(tmp_path))


def test_system_errors_are_reworded():
    from irnet_infer.paths import describe_os_error
    try:
        open("/nonexistent/dir/x.irb")
    except OSError as e:
        assert describe_os_error(e) == "'/nonexistent/dir/x.irb' does not exist"
    assert "[Errno" not in describe_os_error(PermissionError(13, "Permission denied", "m.irb"))


# -- .irb files follow the umask -------------------------------------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_irb_written_with_umask_permissions(model_path, tmp_path, umask):
    import os
    import stat
    from irnet_infer.format import read_irb, write_irb
    f = read_irb(model_path)
    old = os.umask(umask)
    try:
        out = tmp_path / "copy.irb"
        write_irb(out, f.graph, f.tensors, f.preprocess, f.classes, f.producer)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o666 & ~umask
    np.testing.assert_array_equal(Model(str(out)).predict(np.zeros((3, 32, 32), np.float32)),
                                  Model(model_path).predict(np.zeros((3, 32, 32), np.float32)))


# -- bench runs for the time asked, inputs are reported as passed -------------------------------

def test_bench_runs_for_the_seconds_asked(model_path):
    from irnet_infer.cli_bench import MIN_ITERATIONS, benchmark
    r = benchmark(Model(model_path, num_threads=1), seconds=0.5, show_progress=False)
    # The timed runs add up to at least the budget (the loop watches the clock).
    assert r["iterations"] * r["latency_ms"]["mean"] / 1e3 >= 0.5
    assert r["iterations"] >= MIN_ITERATIONS
    r = benchmark(Model(model_path, num_threads=1), iterations=4, show_progress=False)
    assert r["iterations"] == 4


def test_input_errors_name_the_shape_passed_and_the_layout(model_path):
    m = Model(model_path)
    with pytest.raises(ValueError) as e:
        m.predict(np.zeros((32, 32, 3), np.float32))
    assert "got shape (32, 32, 3)" in str(e.value) and "(H, W, C)" in str(e.value)
    with pytest.raises(ValueError) as e:
        m.predict(np.zeros((2, 32, 32, 3), np.float32))
    assert "got shape (2, 32, 32, 3)" in str(e.value)
    with pytest.raises(ValueError, match=r"looks like \(C, H, W\).*transpose\(1, 2, 0\)"):
        m.predict(np.zeros((3, 40, 50), np.uint8))
    with pytest.raises(ValueError, match=r"looks like \(C, H, W\)"):
        m.predict(np.zeros((2, 3, 40, 50), np.uint8))
    assert m.predict(np.zeros((40, 50, 3), np.uint8)).shape == (10,)  # HWC still fine


# -- one naming of layers across info, steps, run_debug and convert --check ----------------------

def test_layer_names_match_across_info_run_debug_and_check(tmp_path):
    torch = pytest.importorskip("torch")
    from export.check import check_file
    from export.convert import convert
    from export.models import create_model
    from export.reference import reference_forward
    from helpers import randomize_bn
    torch.manual_seed(0)
    # Non-trivial BatchNorm: with the default one, integer dots of 0 enter binarizations as
    # exact zeros, where the model's own forward (sign(0) = 0) rightly fails --check.
    net = randomize_bn(create_model("resnet20")).eval()
    path = str(tmp_path / "r20.irb")
    convert(net, path, arch="resnet20")
    info = [r["name"] for r in model_info(path)["layers"]]
    assert len(info) == len(set(info))  # a block's two adds are two names
    assert "layer1.0.add" in info and "layer1.0.add_1" in info
    m = Model(path)
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    debug = m.run_debug(x)
    assert set(debug) <= set(info) | {"x"} and len(debug) > 10
    assert all(s["name"] in info for s in m.steps())
    report = check_file(path, net, (3, 32, 32))
    assert report["ok"] and {r["name"] for r in report["layers"]} <= set(info) | {"x"}
    # The names point at the same tensors: run_debug's value under a name is the reference's
    # value of the op that info lists under that name.
    _, ref = reference_forward(net, torch.from_numpy(x), capture=True)
    graph_ops = {op["name"]: op for op in m.graph["ops"]}
    for name, got in debug.items():
        if name in graph_ops:
            want = ref[graph_ops[name]["outputs"][0]].numpy()
            np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_convert_path_errors_use_the_same_wording(tmp_path, capsys):
    pytest.importorskip("torch")
    from export.convert import main as convert_main
    assert convert_main([str(tmp_path / "nope.pth"), str(tmp_path / "o.irb")]) == 2
    assert capsys.readouterr().err == f"error: checkpoint {str(tmp_path / 'nope.pth')!r} does not exist\n"
    assert convert_main([str(tmp_path), str(tmp_path / "o.irb")]) == 2
    assert capsys.readouterr().err == f"error: checkpoint {str(tmp_path)!r} is a directory, not a file\n"


def test_no_progress_bars_off_a_terminal(capsys):
    """Written to a log file, tqdm's redraws would pile up into one line of thousands of
    characters; off a terminal the bars stay silent (pytest's capture is not a terminal)."""
    from irnet_infer.progress import progress
    with progress(500) as bar:
        for _ in range(500):
            bar.update(1)
            bar.set_postfix(acc="1%")
    assert capsys.readouterr().err == ""
    pytest.importorskip("torch")
    from export.train import _progress
    assert list(_progress(range(300), True, desc="epoch")) == list(range(300))
    assert capsys.readouterr().err == ""
