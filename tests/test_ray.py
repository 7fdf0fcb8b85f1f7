"""irnet_infer.ray on a local Ray Data (num_cpus=2, started once for the module): every
prediction equals `Model.predict` on the same image file; an unreadable file is one row's error.

Oracles: `Model.predict(path)` (one image, one process, no Ray) for logits; torch.topk and
torch.softmax for the top-k labels and probabilities; the folder layout for labels."""
import io
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import ray
import torch
from PIL import Image

from irnet_infer import Model
from irnet_infer import __main__ as cli
from irnet_infer import ray as irnet_ray

CLASSES = ["cat", "dog", "fox"]
PER_CLASS = 8
BROKEN = os.path.join("dog", "broken.png")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    from export.convert import convert
    from export.models import create_model
    from helpers import randomize_bn
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ray") / "resnet20.irb"
    convert(randomize_bn(create_model("resnet20")).eval(), str(path), arch="resnet20")
    return str(path)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """root/train/<class>/ (fixes the class numbering) and root/val/<class>/*.png of varied
    sizes and modes (RGB, grey, RGBA, palette), plus one file that is not an image."""
    root = tmp_path_factory.mktemp("ray_images")
    rng = np.random.default_rng(0)
    modes = ["RGB", "L", "RGBA", "P"]
    for c in CLASSES:
        (root / "train" / c).mkdir(parents=True)
        (root / "val" / c).mkdir(parents=True)
        for i in range(PER_CLASS):
            h, w = rng.integers(20, 70, size=2)
            pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels).convert(modes[i % len(modes)]).save(root / "val" / c / f"{i}.png")
    (root / "val" / BROKEN).write_bytes(b"\x89PNG\r\n\x1a\n but not really")
    return root


@pytest.fixture(scope="module")
def local_ray():
    # Ray runs its workers at nice 15: next to other busy processes (a parallel test run, a
    # shared CI host) they would crawl. The setting is read when ray.init starts the raylet.
    niceness = os.environ.get("RAY_worker_niceness")
    os.environ["RAY_worker_niceness"] = "0"
    # address="local": a fresh Ray of our own even when another one runs on this machine.
    ray.init(address="local", num_cpus=2, object_store_memory=200 * 2**20, include_dashboard=False,
             logging_level=logging.WARNING)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()
    if niceness is None:
        del os.environ["RAY_worker_niceness"]
    else:
        os.environ["RAY_worker_niceness"] = niceness


def image_files(root):
    return sorted(str(p) for p in (root / "val").rglob("*.png"))


def oracle(model_path, files):
    """{path: Model.predict(path)} for every readable file."""
    model = Model(model_path, num_threads=1)
    return {p: model.predict(p) for p in files if not p.endswith(BROKEN)}


def check_row(row, expected, k):
    z = torch.from_numpy(expected)
    assert np.array_equal(row["logits"], expected), row["path"]
    assert row["top_k_labels"].tolist() == torch.topk(z, k).indices.tolist()
    np.testing.assert_allclose(row["top_k_probs"], torch.softmax(z.double(), 0)[row["top_k_labels"].tolist()].numpy(),
                               rtol=1e-6)


def test_image_folder_equals_model_predict(local_ray, model_path, folder):
    files = image_files(folder)
    expected = oracle(model_path, files)
    predictions = irnet_ray.predict_image_folder(model_path, str(folder / "val"), CLASSES, actors=2,
                                                 threads_per_actor=1, batch_size=5).materialize()
    rows = predictions.take_all()
    assert sorted(r["path"] for r in rows) == files
    equal = 0
    for row in rows:
        assert row["class"] == os.path.basename(os.path.dirname(row["path"]))
        assert row["label"] == CLASSES.index(row["class"])
        assert "bytes" not in row
        if row["path"].endswith(BROKEN):
            assert row["error"].startswith("UnidentifiedImageError") and "cannot identify" in row["error"]
            assert np.isnan(row["logits"]).all() and np.isnan(row["top_k_probs"]).all()
            assert (row["top_k_labels"] == -1).all()
            continue
        assert row["error"] == ""
        check_row(row, expected[row["path"]], 5)
        equal += 1
    print(f"\n{equal} of {len(expected)} readable images equal Model.predict exactly; "
          f"{len(rows) - equal} row(s) with an error")
    assert equal == len(expected) == len(CLASSES) * PER_CLASS

    # accuracy() against labels from the folder and the oracle's logits
    labels = {p: CLASSES.index(os.path.basename(os.path.dirname(p))) for p in expected}
    top5 = {p: torch.topk(torch.from_numpy(z), 5).indices.tolist() for p, z in expected.items()}
    r = irnet_ray.accuracy(predictions)
    assert r["count"] == len(expected) and r["errors"] == 1 and r["unlabelled"] == 0
    assert r["error_examples"][0][0].endswith(BROKEN)
    assert r["top1"] == sum(top5[p][0] == labels[p] for p in expected) / len(expected)
    assert r["top5"] == sum(labels[p] in top5[p] for p in expected) / len(expected)


def test_predictor_takes_arrays_bytes_paths_and_floats(model_path, folder):
    """The actor's class called directly on each kind of column (no Ray needed)."""
    files = [p for p in image_files(folder) if not p.endswith(BROKEN)][:4]
    expected = oracle(model_path, files)
    model = Model(model_path, num_threads=1)
    predictor = irnet_ray.Predictor(model_path, top_k=3)
    pixels = [np.asarray(Image.open(p).convert("RGB")) for p in files]
    floats = np.random.default_rng(1).standard_normal((3, *model.input_shape)).astype(np.float32)
    batches = {
        "path": np.array(files, dtype=object),
        "bytes": np.array([open(p, "rb").read() for p in files], dtype=object),
        "image": np.array(pixels + [None], dtype=object)[:-1],  # ragged: one array per row
    }
    for column, values in batches.items():
        out = predictor({column: values, "id": np.arange(len(values))})
        assert column not in out and out["id"].tolist() == list(range(len(values)))
        for i, p in enumerate(files):
            check_row({"path": p, **{k: out[k][i] for k in out}}, expected[p], 3)
    same_size = np.stack([pixels[0]] * 2)  # a uint8 (N, H, W, C) tensor column
    out = predictor({"image": same_size})
    assert np.array_equal(out["logits"], model.predict(same_size))
    out = irnet_ray.Predictor(model_path, column="x")({"x": floats})
    assert np.array_equal(out["logits"], model.predict(floats))


def test_predictor_bad_rows_are_row_errors(model_path, folder):
    predictor = irnet_ray.Predictor(model_path)
    c, h, w = predictor.model.input_shape
    good = np.zeros((c, h, w), np.float32)
    rows = [good, np.full((c, h, w), np.nan, np.float32), np.zeros((c, h + 1, w), np.float32),
            np.zeros((5, 5, 3), np.int32), b"not an image", str(folder / "missing.png"), 42]
    out = predictor({"image": np.array(rows + [None], dtype=object)[:-1]})
    errors = list(out["error"])
    assert errors[0] == "" and np.array_equal(out["logits"][0], Model(model_path).predict(good[None])[0])
    for needle, error in zip(["NaN", "float (3, 32, 32)", "float (3, 32, 32)", "UnidentifiedImageError",
                              "does not exist", "got int"], errors[1:]):
        assert needle in error, errors
    assert np.isnan(out["logits"][1:]).all() and (out["top_k_labels"][1:] == -1).all()
    with pytest.raises(ValueError, match="none of the input columns"):
        predictor({"pixels": np.zeros((1, 8, 8, 3), np.uint8)})
    with pytest.raises(ValueError, match="top_k"):
        irnet_ray.Predictor(model_path, top_k=0)


def test_cli_eval_ray(local_ray, model_path, folder, capsys):
    files = image_files(folder)
    expected = oracle(model_path, files)
    labels = {p: CLASSES.index(os.path.basename(os.path.dirname(p))) for p in expected}
    top5 = {p: torch.topk(torch.from_numpy(z), 5).indices.tolist() for p, z in expected.items()}
    top1 = sum(top5[p][0] == labels[p] for p in expected) / len(expected)
    top5 = sum(labels[p] in top5[p] for p in expected) / len(expected)
    code = cli.main(["eval", model_path, "--data", f"imagefolder:{folder}", "--ray", "--actors", "2",
                     "--batch-size", "7", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 1, out  # one image could not be read
    first, *rest = out.splitlines()
    assert f": {len(expected)} images  top-1 {top1:.2%}  top-5 {top5:.2%}  " in first
    assert "2 actors x 1 threads" in first
    assert rest[0] == "1 images could not be read:" and rest[1].strip().startswith(str(folder / "val" / BROKEN))


@pytest.mark.parametrize("argv, message", [
    (["--actors", "2"], "--address and --actors go with --ray"),
    (["--ray", "--data", "digits"], "image folders only"),
    (["--ray", "--actors", "0"], "--actors must be >= 1"),
])
def test_cli_eval_ray_argument_errors(model_path, folder, capsys, argv, message):
    argv = ["eval", model_path, "--data", f"imagefolder:{folder}"] + argv
    assert cli.main(argv) == 2
    assert message in capsys.readouterr().err


def test_importing_irnet_infer_does_not_import_ray():
    code = "import sys, irnet_infer, irnet_infer.__main__; assert 'ray' not in sys.modules, 'ray imported'"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr


def test_cli_eval_ray_without_ray_says_what_to_install(model_path, folder):
    code = ("import sys; sys.modules['ray'] = None; import irnet_infer.__main__ as m; "
            f"sys.exit(m.main(['eval', {model_path!r}, '--data', 'imagefolder:{folder}', '--ray']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: irnet_infer.ray needs Ray Data: pip install"), r.stderr
