"""Image preprocessing equals torchvision's evaluation pipeline on PIL images, and hostile images
get a named ValueError at a cost bounded by what is computed, not by the image's claims.

torchvision is not a dependency: the reference below is written from its documented semantics
(transforms.Resize / CenterCrop / ToTensor / Normalize on PIL images), independently of the
code under test: it resizes the WHOLE image with one Image.resize call and crops afterwards.
"""
from __future__ import annotations

import os
import sys
import tracemalloc

import numpy as np
import pytest
import torch
from PIL import Image

from irnet_infer import image_io
from irnet_infer import preprocess as P
from irnet_infer.preprocess import preprocess_image

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

IMAGENET = {"input_size": [3, 224, 224], "resize": 256, "channel_order": "RGB",
            "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225], "scale": 1 / 255}
CIFAR = dict(IMAGENET, input_size=[3, 32, 32], resize=32)


def tv_resize(img, size):
    """torchvision.transforms.Resize(size) on a PIL image (int size: shorter side)."""
    w, h = img.size
    short, long = (w, h) if w <= h else (h, w)
    new_short, new_long = size, int(size * long / short)
    new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    if (new_w, new_h) == (w, h):
        return img
    return img.resize((new_w, new_h), Image.BILINEAR)


def tv_center_crop(img, th, tw):
    """torchvision.transforms.CenterCrop((th, tw)) on a PIL image, padding with 0 if needed."""
    w, h = img.size
    if tw > w or th > h:
        canvas = Image.new(img.mode, (max(w, tw), max(h, th)), 0)
        canvas.paste(img, ((tw - w) // 2 if tw > w else 0, (th - h) // 2 if th > h else 0))
        img, (w, h) = canvas, canvas.size
    top, left = int(round((h - th) / 2.0)), int(round((w - tw) / 2.0))
    return img.crop((left, top, left + tw, top + th))


def tv_pipeline(img, settings):
    """Resize + CenterCrop + ToTensor + Normalize, as torch computes ToTensor/Normalize."""
    _, th, tw = settings["input_size"]
    img = tv_center_crop(tv_resize(img.convert("RGB"), settings["resize"]), th, tw)
    pixels = np.asarray(img)
    t = torch.from_numpy(pixels.copy()).permute(2, 0, 1).contiguous().to(torch.float32).div(255)
    mean = torch.as_tensor(settings["mean"], dtype=torch.float32).view(-1, 1, 1)
    std = torch.as_tensor(settings["std"], dtype=torch.float32).view(-1, 1, 1)
    return pixels, t.sub(mean).div(std).numpy()


def photo(h, w, seed=0):
    """A photo-like RGB image: smooth structure plus sensor noise."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (h // 16 + 2, w // 16 + 2, 3), dtype=np.uint8)
    smooth = np.asarray(Image.fromarray(base).resize((w, h), Image.BICUBIC)).astype(np.int16)
    return np.clip(smooth + rng.integers(-20, 21, (h, w, 3)), 0, 255).astype(np.uint8)


SIZES = [(375, 500), (500, 375), (257, 300), (300, 257), (1, 1), (3, 7), (224, 224), (256, 256),
         (225, 225), (32, 32), (33, 31), (255, 1000), (2000, 37), (640, 480), (1024, 768),
         (37, 2000), (462, 62), (1146, 576), (1312, 203), (9, 187)]


@pytest.mark.parametrize("settings", [IMAGENET, CIFAR, dict(CIFAR, resize=36),
                                      dict(CIFAR, resize=20), dict(IMAGENET, input_size=[3, 224, 160])],
                         ids=["imagenet", "cifar", "cifar-resize36", "resize-below-crop", "non-square"])
@pytest.mark.parametrize("hw", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
def test_equals_torchvision_pipeline(hw, settings):
    img = photo(*hw, seed=hw[0] * 7 + hw[1])
    pixels_ref, x_ref = tv_pipeline(Image.fromarray(img), settings)
    _, th, tw = settings["input_size"]
    np.testing.assert_array_equal(P.resize_and_crop(Image.fromarray(img), settings["resize"], th, tw),
                                  pixels_ref)  # uint8 after resize+crop: bit-exact
    for given in (img, Image.fromarray(img)):
        x = preprocess_image(given, settings)
        assert x.dtype == np.float32 and x.shape == (3, th, tw)
        np.testing.assert_array_equal(x, x_ref)  # float tensors: equal, not close


@pytest.mark.parametrize("hw", [(1, 20000), (20000, 1), (2, 3000), (3000, 2), (5000, 1), (1, 777),
                                (700, 3), (37, 2000), (2000, 37), (3, 1000), (4, 4001)])
@pytest.mark.parametrize("resize,crop", [(32, 32), (36, 32), (256, 224)])
def test_window_resize_equals_whole_resize(hw, resize, crop):
    """The path for extreme aspect ratios (resize only a window around the crop) gives the
    pixels of resizing the whole image, on this Pillow (whose pass order varies by version)."""
    img = Image.fromarray(photo(*hw, seed=sum(hw)))
    new_h, new_w = P.resized_size(*hw, resize)
    if new_h * new_w > 4e7 or (new_h, new_w) == hw:
        pytest.skip("reference too large to compute in a test")
    _, top, th = P.center_crop_span(new_h, crop)
    _, left, tw = P.center_crop_span(new_w, crop)
    whole = np.asarray(img.resize((new_w, new_h), Image.BILINEAR).crop((left, top, left + tw, top + th)))
    saved, P.MAX_RESIZE_PIXELS = P.MAX_RESIZE_PIXELS, 10**9
    try:
        window = np.asarray(P._resize_window(img, new_h, new_w, top, left, th, tw, "t"))
    finally:
        P.MAX_RESIZE_PIXELS = saved
    np.testing.assert_array_equal(window, whole)


def test_strip_costs_little_memory(tmp_path):
    """A 1x20000 PNG to a 32x32 model: the whole-image resize would be 640000x32 (82 MB in
    Pillow, 500 MB before this change); only a window is resized now."""
    strip = np.random.default_rng(0).integers(0, 256, (1, 20000, 3), dtype=np.uint8)
    path = tmp_path / "strip.png"
    Image.fromarray(strip).save(path)
    preprocess_image(str(path), CIFAR)  # warm up imports and caches
    tracemalloc.start()
    x = preprocess_image(str(path), CIFAR)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert x.shape == (3, 32, 32)
    # Pillow's image memory is not seen by tracemalloc; it is bounded separately below.
    assert peak < 2 * 2**20, peak
    w, h = 20000, 1
    new_h, new_w = P.resized_size(h, w, 32)
    assert (new_h, new_w) == (32, 640000)
    sy0, sy1, _, _, out_h, _ = P._axis_window(h, new_h, *(lambda s: (s[1], s[1] + s[2]))(P.center_crop_span(new_h, 32)))
    sx0, sx1, _, _, out_w, _ = P._axis_window(w, new_w, *(lambda s: (s[1], s[1] + s[2]))(P.center_crop_span(new_w, 32)))
    assert out_w * out_h <= 64 * 32 and (sx1 - sx0) <= 8  # pixels Pillow computes / reads


def test_rss_of_strip_is_small(tmp_path):
    """Process-level bound (Pillow allocates outside tracemalloc): RSS grows by < 40 MiB."""
    resource = pytest.importorskip("resource")
    strip = np.random.default_rng(1).integers(0, 256, (1, 20000, 3), dtype=np.uint8)
    path = tmp_path / "strip.png"
    Image.fromarray(strip).save(path)
    import subprocess
    code = ("import resource, sys\n"
            "from irnet_infer.preprocess import preprocess_image\n"
            "s = {'input_size': [3, 32, 32], 'resize': 32, 'mean': [0.5]*3, 'std': [0.5]*3}\n"
            "import numpy\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            f"preprocess_image({str(path)!r}, s)\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True)
    grown_kib = int(out.stdout.strip().splitlines()[-1])
    assert grown_kib < 40 * 1024, grown_kib


def test_extreme_aspect_that_cannot_be_windowed_is_refused():
    img = Image.fromarray(photo(3, 20000))  # 3 rows: 256 x 1706666 resized, no short period
    with pytest.raises(ValueError, match=r"aspect ratio 6667:1.*MAX_RESIZE_PIXELS"):
        preprocess_image(img, IMAGENET)


def test_large_images_are_refused_before_decoding(tmp_path, monkeypatch):
    path = tmp_path / "big.png"
    Image.new("L", (300, 200)).save(path)
    monkeypatch.setattr(image_io, "MAX_IMAGE_PIXELS", 300 * 200 - 1)
    with pytest.raises(ValueError, match=r"big.png.*300x200 = 60000 pixels, over the limit"):
        preprocess_image(str(path), CIFAR)


def test_huge_jpeg_is_drafted_not_refused(tmp_path, monkeypatch):
    path = tmp_path / "big.jpg"
    Image.fromarray(photo(400, 600)).save(path, quality=90)
    monkeypatch.setattr(image_io, "MAX_IMAGE_PIXELS", 400 * 600 // 3)  # needs 1/2 scale
    with image_io.open_image(path) as im:
        assert im.size == (300, 200)
    x = preprocess_image(str(path), CIFAR)
    assert x.shape == (3, 32, 32) and np.isfinite(x).all()


def test_decompression_bomb_is_a_value_error(tmp_path, monkeypatch):
    path = tmp_path / "bomb.png"
    Image.new("L", (1000, 1000)).save(path)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # Pillow errors above twice this
    with pytest.raises(ValueError, match=r"bomb.png.*too large to decode"):
        preprocess_image(str(path), CIFAR)


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_unreadable_files_are_value_errors(tmp_path, content):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"bad.png"):
        preprocess_image(str(path), CIFAR)


def test_truncated_png_is_a_value_error(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(photo(64, 64)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut.png"):
        preprocess_image(str(path), CIFAR)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        preprocess_image(str(tmp_path / "nope.png"), CIFAR)


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    gray8 = photo(40, 50)[:, :, 0]
    Image.fromarray(gray8).save(tmp_path / "g8.png")
    Image.fromarray(gray8.astype(np.uint16) * 257).save(tmp_path / "g16.png")  # 8 bits stored as 16
    with Image.open(tmp_path / "g16.png") as im:
        assert im.mode.startswith("I")  # Pillow reads it as I;16 (or I)
    x8 = preprocess_image(str(tmp_path / "g8.png"), CIFAR)
    x16 = preprocess_image(str(tmp_path / "g16.png"), CIFAR)
    np.testing.assert_array_equal(x16, x8)
    # Pillow's own convert("RGB") clips: almost every pixel would become 255.
    with Image.open(tmp_path / "g16.png") as im:
        assert (np.asarray(im.convert("RGB")) == 255).mean() > 0.9


def test_sixteen_bit_gray_equals_sixteen_bit_rgb_high_byte():
    values = np.random.default_rng(3).integers(0, 65536, (20, 30), dtype=np.uint16)
    gray16 = Image.fromarray(values)
    got = preprocess_image(gray16, CIFAR)
    expect = preprocess_image(np.repeat((values >> 8).astype(np.uint8)[:, :, None], 3, 2), CIFAR)
    np.testing.assert_array_equal(got, expect)


def test_mode_I_is_treated_as_sixteen_bit():
    values = np.random.default_rng(4).integers(-5, 70000, (20, 30)).astype(np.int32)
    got = preprocess_image(Image.fromarray(values, "I"), CIFAR)
    expect8 = (np.clip(values, 0, 65535) >> 8).astype(np.uint8)
    np.testing.assert_array_equal(got, preprocess_image(np.repeat(expect8[:, :, None], 3, 2), CIFAR))


@pytest.mark.parametrize("mode", ["P", "LA", "RGBA", "CMYK", "1", "L", "YCbCr", "F"])
def test_other_modes_as_official_convert_rgb(mode):
    """Every other mode is what the official loader's convert("RGB") gives."""
    rgb = Image.fromarray(photo(45, 61, seed=9))
    img = rgb.convert(mode) if mode != "F" else rgb.convert("L").convert("F")
    _, expect = tv_pipeline(img.convert("RGB"), CIFAR)
    np.testing.assert_array_equal(preprocess_image(img, CIFAR), expect)


def test_float_image_with_nan_is_refused():
    a = np.full((10, 10), 3.0, np.float32)
    a[2, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        preprocess_image(Image.fromarray(a, "F"), CIFAR)


def test_arrays_with_alpha_or_gray():
    img = photo(40, 40)
    rgba = np.concatenate([img, np.full((40, 40, 1), 7, np.uint8)], axis=2)
    np.testing.assert_array_equal(preprocess_image(rgba, CIFAR), preprocess_image(img, CIFAR))
    gray = img[:, :, :1]
    _, expect = tv_pipeline(Image.fromarray(gray[:, :, 0]), CIFAR)
    np.testing.assert_array_equal(preprocess_image(gray, CIFAR), expect)


def test_bgr_and_digits_scale():
    img = photo(32, 32)
    bgr = preprocess_image(img, dict(CIFAR, channel_order="BGR"))
    np.testing.assert_array_equal(bgr, preprocess_image(np.ascontiguousarray(img[:, :, ::-1]), CIFAR))
    x = preprocess_image(img, dict(CIFAR, scale=1 / 16, mean=[0.0] * 3, std=[1.0] * 3))
    np.testing.assert_array_equal(x, img.transpose(2, 0, 1).astype(np.float32) / 16)


def test_official_cifar_constants_are_the_default():
    """The official CIFAR-10 trainers (1w1a and 1w32a) normalize with the ImageNet statistics."""
    from export.preprocess import explain_preprocess
    from irnet_infer.preprocess_defaults import cifar10_preprocess, default_preprocess, imagefolder_preprocess
    for arch in ("resnet20", "vgg_small", "resnet18_cifar"):
        pre = default_preprocess(arch, (3, 32, 32))
        assert pre["mean"] == [0.485, 0.456, 0.406] and pre["std"] == [0.229, 0.224, 0.225]
        assert pre["resize"] == 32
    assert default_preprocess("resnet18", (3, 224, 224))["resize"] == 256
    assert cifar10_preprocess() == default_preprocess("resnet20", (3, 32, 32))
    assert imagefolder_preprocess()["resize"] == 256 and imagefolder_preprocess((3, 64, 64))["resize"] == 64
    pre, src = explain_preprocess("resnet20", (3, 32, 32), {"mean": [0.1, 0.2, 0.3]}, std=[1, 2, 3])
    assert src["mean"] == "checkpoint" and src["std"] == "flag" and src["resize"] == "resnet20 default"
    assert pre["mean"] == [0.1, 0.2, 0.3] and pre["std"] == [1.0, 2.0, 3.0]


def test_training_tensors_are_the_official_pipeline(tmp_path):
    """export.train's CIFAR-10 tensors are exactly the official test transform (ToTensor +
    Normalize with the ImageNet statistics), and the checkpoint's preprocess says so."""
    from test_train import _write_cifar

    from export.data import load_data
    from irnet_infer import datasets
    root = str(tmp_path / "cifar")
    _write_cifar(root)
    d = load_data(f"cifar10:{root}")
    assert d.preprocess["mean"] == [0.485, 0.456, 0.406] and d.preprocess["std"] == [0.229, 0.224, 0.225]
    images, _, _ = datasets.read_cifar10(root, "train")
    for i in (0, 7, 29):
        _, expect = tv_pipeline(Image.fromarray(images[i]), d.preprocess)
        np.testing.assert_array_equal(d.train[i][0].numpy(), expect)
