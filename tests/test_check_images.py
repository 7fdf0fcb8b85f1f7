"""`convert --check-images DIR`: the .irb on real image files (its own preprocessing) against
the PyTorch model fed by the torchvision-style pipeline; and the check fails when the runtime's
image path deviates."""
from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch
from PIL import Image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from helpers import randomize_bn  # noqa: E402

from export.check_images import check_images, format_images_report  # noqa: E402
from export.convert import convert, main  # noqa: E402
from export.models import create_model  # noqa: E402

SIZES = [(375, 500), (500, 375), (257, 300), (32, 32), (40, 30), (1, 300), (224, 224), (90, 700)]


def photo(h, w, seed):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 16 + 2, w // 16 + 2, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(base).resize((w, h), Image.BICUBIC)).astype(np.int16)
    return np.clip(smooth + rng.integers(-20, 21, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("images")
    for i, (h, w) in enumerate(SIZES):
        img = Image.fromarray(photo(h, w, i))
        img.save(d / f"{i}.png") if i % 2 else img.save(d / f"{i}.jpg", quality=92)
    (d / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    return d


@pytest.fixture(scope="module")
def resnet20(tmp_path_factory):
    torch.manual_seed(0)
    model = create_model("resnet20", num_classes=10)
    randomize_bn(model)
    out = tmp_path_factory.mktemp("m") / "r20.irb"
    convert(model, str(out), arch="resnet20")
    return model.eval(), str(out)


def test_agrees_on_real_images(resnet20, folder):
    model, path = resnet20
    report = check_images(path, model, str(folder))
    assert report["images"] == len(SIZES)
    assert report["top1_agreement"] == 1.0 and report["rel_diff"] < 1e-4, format_images_report(report)
    assert [p for p, _ in report["unreadable"]] == [str(folder / "broken.png")]
    assert report["ok"]


def test_fails_when_the_runtime_resizes_differently(resnet20, folder, monkeypatch):
    """A check that can fail: nearest-neighbour resizing in the runtime is caught."""
    import irnet_infer.preprocess as P
    model, path = resnet20

    def nearest(im, resize, crop_h, crop_w, name="image"):
        w, h = im.size
        new_h, new_w = P.resized_size(h, w, resize)
        _, top, _ = P.center_crop_span(new_h, crop_h)
        _, left, _ = P.center_crop_span(new_w, crop_w)
        big = im.resize((new_w, new_h), Image.NEAREST)
        return np.asarray(big.crop((left, top, left + crop_w, top + crop_h)))
    monkeypatch.setattr(P, "resize_and_crop", nearest)
    report = check_images(path, model, str(folder))
    assert not report["ok"] and report["rel_diff"] > 1e-3


def test_cli_prints_preprocess_sources_and_image_check(folder, tmp_path, capsys):
    torch.manual_seed(1)
    model = create_model("resnet20", num_classes=10)
    randomize_bn(model)
    ckpt = tmp_path / "c.pth"
    torch.save({"arch": "resnet20", "state_dict": model.state_dict(),
                "preprocess": {"mean": [0.5, 0.5, 0.5]}}, ckpt)
    code = main([str(ckpt), str(tmp_path / "c.irb"), "--std", "0.25", "0.25", "0.25",
                 "--check-images", str(folder)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "mean          [0.5, 0.5, 0.5]" in out and "(checkpoint)" in out
    assert "std           [0.25, 0.25, 0.25]" in out and "(flag)" in out
    assert "resize        32" in out and "(resnet20 default)" in out
    assert f"images: {len(SIZES)} compared, top-1 agreement 100.0%" in out


def test_not_a_folder(resnet20, tmp_path):
    model, path = resnet20
    with pytest.raises(ValueError, match="not a directory"):
        check_images(path, model, str(tmp_path / "nope"))
    with pytest.raises(ValueError, match="no images"):
        check_images(path, model, str(tmp_path))
