"""Training, data sources and `irnet_infer eval`: short runs on digits, the EDE schedule
against its formula, dataset readers on fixture files written here, DDP with 2 CPU processes."""
import math
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from export import train
from export.data import RandomCropFlip, load_data
from export.irnet import IRConv2d, ede_schedule, set_ede
from export.models import create_model
from irnet_infer import datasets as rd
from irnet_infer.preprocess_defaults import digits_preprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
QUICK = ["--train-subset", "256", "--test-subset", "64", "--max-steps", "2",
         "--batch-size", "32", "--threads", "1", "--no-progress"]


def _run(args, timeout=120):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""),
               OMP_NUM_THREADS="1")
    return subprocess.run([sys.executable] + args, cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


# -- EDE schedule ----------------------------------------------------------------------------

@pytest.mark.parametrize("epoch,epochs", [(0, 10), (3, 10), (5, 10), (9, 10), (10, 10), (7, 400)])
def test_ede_schedule_matches_formula(epoch, epochs):
    t_min, t_max = 0.1, 10.0
    t = 10 ** (math.log10(t_min) + (math.log10(t_max) - math.log10(t_min)) / epochs * epoch)
    k, got_t = ede_schedule(epoch, epochs)
    assert got_t == pytest.approx(t, rel=1e-12)
    assert k == pytest.approx(max(1 / t, 1.0), rel=1e-12)


def test_ede_schedule_endpoints_and_set_ede():
    assert ede_schedule(0, 8) == pytest.approx((10.0, 0.1))
    assert ede_schedule(4, 8) == pytest.approx((1.0, 1.0))
    assert ede_schedule(8, 8) == pytest.approx((1.0, 10.0))
    model = create_model("resnet20", 10)
    set_ede(model, 2.5, 0.4)
    convs = [m for m in model.modules() if isinstance(m, IRConv2d)]
    assert convs and all(float(m.k) == 2.5 and float(m.t) == pytest.approx(0.4) for m in convs)


# -- digits ----------------------------------------------------------------------------------

def test_digits_split_is_fixed_stratified_and_shared():
    a = rd.load_digits_split((3, 32, 32))
    b = rd.load_digits_split((3, 32, 32))
    assert a["x_train"].shape == (1437, 3, 32, 32) and a["x_test"].shape == (360, 3, 32, 32)
    np.testing.assert_array_equal(a["x_test"], b["x_test"])
    np.testing.assert_array_equal(a["y_test"], b["y_test"])
    counts = np.bincount(a["y_test"], minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # stratified: ~20% of each ~180
    data = load_data("digits")  # the torch side serves the very same arrays
    np.testing.assert_array_equal(data.test.tensors[0].numpy(), a["x_test"])
    assert data.classes == [str(i) for i in range(10)]
    assert data.preprocess == digits_preprocess((3, 32, 32))


def test_digits_are_8bit_images_and_a_png_of_one_reads_the_same(tmp_path):
    from PIL import Image
    from irnet_infer.preprocess import load_image, preprocess_image
    d = rd.load_digits_split((3, 32, 32))
    images = d["images_test"]
    assert images.dtype == np.uint8 and images.shape == (360, 8, 8, 1) and images.max() == 255
    assert d["preprocess"]["scale"] == pytest.approx(1 / 255)
    for i in range(0, 360, 37):
        path = tmp_path / f"{i}.png"
        Image.fromarray(images[i, :, :, 0], mode="L").save(path)
        # An ordinary grayscale PNG of a test digit gives exactly the test split's input.
        np.testing.assert_array_equal(preprocess_image(load_image(path), d["preprocess"]), d["x_test"][i])


def test_split_validation_is_a_disjoint_seeded_share():
    from torch.utils.data import TensorDataset
    from export.data import split_validation
    ds = TensorDataset(torch.arange(200))
    train_a, val_a = split_validation(ds, 0.1, seed=3)
    train_b, val_b = split_validation(ds, 0.1, seed=3)
    assert len(val_a) == 20 and len(train_a) == 180 and val_a.indices == val_b.indices
    assert not set(train_a.indices) & set(val_a.indices)
    assert sorted(train_a.indices + val_a.indices) == list(range(200))
    assert split_validation(ds, 0, seed=3) == (ds, None)
    with pytest.raises(ValueError, match="val-fraction"):
        split_validation(ds, 1.0)


def test_augmentation_shapes_and_identity():
    pre = digits_preprocess((3, 32, 32))
    x = torch.randn(5, 3, 32, 32)
    assert RandomCropFlip(4, True, pre)(x).shape == x.shape
    torch.testing.assert_close(RandomCropFlip(0, False, pre)(x), x)
    # With pad p, every output is a shifted window of the padded input.
    y = RandomCropFlip(1, False, pre)(x)
    fill = -pre["mean"][0] / pre["std"][0]
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1), value=fill)
    for i in range(5):
        assert any(torch.allclose(y[i], padded[i, :, dy:dy + 32, dx:dx + 32])
                   for dy in range(3) for dx in range(3))


# -- CIFAR-10 pickle fixture ------------------------------------------------------------------

def _write_cifar(root, n=6):
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(0)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    with open(os.path.join(root, "batches.meta"), "wb") as f:
        pickle.dump({b"label_names": [s.encode() for s in names]}, f)
    batches = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = list(rng.integers(0, 10, n))
        with open(os.path.join(root, name), "wb") as f:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": name.encode()}, f)
        batches[name] = (data, labels)
    return names, batches


def test_cifar10_reader(tmp_path):
    root = str(tmp_path / "cifar")
    names, batches = _write_cifar(root)
    images, labels, classes = rd.read_cifar10(root, "train")
    assert classes == names and images.shape == (30, 32, 32, 3) and images.dtype == np.uint8
    data, lab = batches["data_batch_1"]
    # Row layout: 1024 R values, then G, then B, each 32x32 row-major.
    assert images[0, 0, 0].tolist() == [data[0, 0], data[0, 1024], data[0, 2048]]
    assert images[0, 1, 2, 1] == data[0, 1024 + 32 + 2]
    np.testing.assert_array_equal(labels[:6], lab)
    d = load_data(f"cifar10:{root}")
    assert len(d.train) == 30 and len(d.test) == 6 and d.classes == names
    x0, _ = d.train[0]
    expect = (images[0, 0, 0, 0] / 255.0 - 0.485) / 0.229  # the official ImageNet statistics
    assert float(x0[0, 0, 0]) == pytest.approx(expect, rel=1e-5)
    total, batches_it = rd.eval_batches(f"cifar10:{root}", d.preprocess, 4)
    assert total == 6 and sum(len(y) for _, y in batches_it) == 6


def test_cifar10_missing_and_malformed(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        load_data(f"cifar10:{tmp_path / 'nope'}")
    root = str(tmp_path / "cifar")
    _write_cifar(root)
    os.remove(os.path.join(root, "data_batch_3"))
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_data(f"cifar10:{root}")
    with open(os.path.join(root, "data_batch_3"), "wb") as f:
        f.write(b"\x80\x04not a pickle")
    with pytest.raises(ValueError, match="data_batch_3.*not a readable pickle"):
        load_data(f"cifar10:{root}")
    with open(os.path.join(root, "data_batch_3"), "wb") as f:
        pickle.dump({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}, f)
    with pytest.raises(ValueError, match=r"data_batch_3.*\(N, 3072\)"):
        load_data(f"cifar10:{root}")


# -- image folder fixture ---------------------------------------------------------------------

def _write_folder(root, size=(40, 36)):
    from PIL import Image
    rng = np.random.default_rng(1)
    for split, n in (("train", 3), ("val", 2)):
        for cls in ("cat", "dog"):
            os.makedirs(os.path.join(root, split, cls))
            for i in range(n):
                arr = rng.integers(0, 256, (size[0], size[1], 3), dtype=np.uint8)
                Image.fromarray(arr).save(os.path.join(root, split, cls, f"{i}.png"))
    open(os.path.join(root, "train", "cat", "notes.txt"), "w").close()  # not an image: skipped


def test_imagefolder_reader(tmp_path):
    root = str(tmp_path / "folder")
    _write_folder(root)
    paths, labels, classes = rd.list_image_folder(root, "train")
    assert classes == ["cat", "dog"] and len(paths) == 6 and labels.tolist() == [0, 0, 0, 1, 1, 1]
    d = load_data(f"imagefolder:{root}", (3, 32, 32))
    assert len(d.train) == 6 and len(d.test) == 4
    x, y = d.test[3]
    assert tuple(x.shape) == (3, 32, 32) and y == 1
    assert d.preprocess["input_size"] == [3, 32, 32]
    total, it = rd.eval_batches(f"imagefolder:{root}", d.preprocess, 3)
    assert total == 4 and [len(y) for _, y in it] == [3, 1]


def test_imagefolder_missing_and_malformed(tmp_path):
    with pytest.raises(FileNotFoundError, match="train"):
        load_data(f"imagefolder:{tmp_path}")
    os.makedirs(tmp_path / "train" / "a")
    os.makedirs(tmp_path / "val" / "a")
    with pytest.raises(ValueError, match="no images"):
        load_data(f"imagefolder:{tmp_path}", (3, 32, 32))
    with pytest.raises(ValueError, match="unknown data source"):
        load_data("mnist")
    with pytest.raises(ValueError, match="unknown data source"):
        load_data("cifar10:")


# -- training, conversion, eval CLI -----------------------------------------------------------

@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A checkpoint from 1 epoch of 2 steps on digits, and its .irb (converted with no flags)."""
    out = str(tmp_path_factory.mktemp("train") / "model.pth")
    assert train.main(["--epochs", "1", "--out", out] + QUICK) == 0
    irb = out[:-4] + ".irb"
    r = _run(["-m", "export.convert", out, irb])
    assert r.returncode == 0, r.stderr
    return out, irb


def test_train_checkpoint_has_everything_convert_needs(trained):
    out, irb = trained
    ckpt = torch.load(out, map_location="cpu", weights_only=True)
    for key in ("arch", "arch_kwargs", "state_dict", "preprocess", "classes", "accuracy", "options"):
        assert key in ckpt
    assert ckpt["arch"] == "resnet20" and ckpt["classes"] == [str(i) for i in range(10)]
    assert ckpt["options"]["data"] == "digits" and 0.0 <= ckpt["accuracy"] <= 1.0
    import irnet_infer
    m = irnet_infer.Model(irb)
    assert m.input_shape == (3, 32, 32) and m.classes == ckpt["classes"]
    assert m.preprocess_settings["mean"] == ckpt["preprocess"]["mean"]


def test_epoch_is_picked_on_validation_and_test_scored_once(trained):
    out, _ = trained
    ckpt = torch.load(out, map_location="cpu", weights_only=True)
    assert ckpt["epoch"] == 0 and ckpt["options"]["val_fraction"] == 0.1
    assert 0.0 <= ckpt["test_accuracy"] <= 1.0


def test_demo_png_accuracy_equals_array_accuracy_and_timing_is_interleaved(trained, tmp_path):
    from export.demo import png_accuracy, time_interleaved
    import irnet_infer
    _, irb = trained
    engine = irnet_infer.Model(irb, num_threads=1)
    d = rd.load_digits_split((3, 32, 32))
    n = 60
    want = float((engine.predict(d["x_test"][:n]).argmax(1) == d["y_test"][:n]).mean())
    got = png_accuracy(engine, d["images_test"][:n], d["y_test"][:n], str(tmp_path / "png"))
    assert got == want and len(os.listdir(tmp_path / "png")) == n
    calls = []
    rounds = []
    timed = time_interleaved({"a": lambda x: calls.append("a"), "b": lambda x: calls.append("b")},
                             d["x_test"], 20, rounds=5, on_round=lambda r, total: rounds.append((r, total)))
    assert rounds == [(r, 5) for r in range(1, 6)]  # progress as each round ends
    assert calls.count("a") == calls.count("b") == 25  # 5 warm-up + 20 timed each
    assert calls[10:12] != calls[12:14]  # the order rotates
    assert all(len(per_round) == 5 for _, per_round in timed.values())


def test_resume_continues_from_last_epoch(trained, tmp_path, capsys):
    out, _ = trained
    mine = str(tmp_path / "model.pth")
    for suffix in ("", ".last"):
        with open(out + suffix, "rb") as src, open(mine + suffix, "wb") as dst:
            dst.write(src.read())
    assert train.main(["--epochs", "2", "--out", mine, "--resume"] + QUICK) == 0
    assert "resumed" in capsys.readouterr().out
    assert torch.load(mine + ".last", map_location="cpu", weights_only=True)["epoch"] == 1
    assert train.main(["--out", str(tmp_path / "x.pth"), "--resume"] + QUICK) == 2


def test_eval_cli_prints_top1_without_torch(trained):
    _, irb = trained
    r = _run(["-m", "irnet_infer", "eval", irb, "--data", "digits", "--no-progress",
              "--batch-size", "50"])
    assert r.returncode == 0, r.stderr
    assert "360 images" in r.stdout and "top-1" in r.stdout and "top-5" in r.stdout
    assert "images/s" in r.stdout
    code = ("import sys, irnet_infer.__main__ as m; m.main(['eval', %r, '--data', 'digits', "
            "'--limit', '10', '--no-progress']); assert 'torch' not in sys.modules" % irb)
    r = _run(["-c", code])
    assert r.returncode == 0, r.stderr


def test_eval_cli_bad_input_is_one_line(trained, tmp_path):
    _, irb = trained
    for args in (["eval", irb, "--data", f"cifar10:{tmp_path / 'none'}"],
                 ["eval", str(tmp_path / "missing.irb"), "--data", "digits"],
                 ["eval", irb, "--data", "svhn"]):
        r = _run(["-m", "irnet_infer"] + args)
        assert r.returncode != 0
        assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error:")


def test_torchrun_two_processes(tmp_path):
    """DDP on CPU (gloo): 2 processes, one short epoch on a tiny subset, under 60 s."""
    if not torch.distributed.is_available():
        pytest.skip("torch.distributed not available")
    out = str(tmp_path / "ddp.pth")
    r = _run(["-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
              "-m", "export.train", "--epochs", "1", "--out", out] + QUICK, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.count("kept epoch") == 1  # only rank 0 prints
    assert "2 process(es)" in r.stdout
    ckpt = torch.load(out, map_location="cpu", weights_only=True)
    assert not any(k.startswith("module.") for k in ckpt["state_dict"])
