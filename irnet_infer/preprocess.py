"""An image -> the network's float32 (C, H, W) input, with a model's `preprocess` settings.

The steps are torchvision's evaluation pipeline on PIL images, so that a model gets from an
image the same input its official evaluation gave it:
  Resize(resize)      shorter side to `resize`, longer side int(resize * long / short), bilinear
                      by Pillow's `Image.resize` (which widens its filter when it shrinks)
  CenterCrop(H, W)    offset int(round((size - crop) / 2.0)); zero padding when the crop is larger
  ToTensor            uint8 / 255 in float32
  Normalize           (x - mean) / std in float32
When resizing the whole image would be large (extreme aspect ratios), only a source window
around the crop is resized, with the same pixels (see `_axis_window`): a 1x20000 strip fed to
a 32x32 model costs a 64x32 resize, not a 640000x32 one.
"""
from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from irnet_infer.image_io import is_pil_image, open_image, pillow, to_8bit

# Pixels Pillow may compute for one image's resize (8 Mi: 32 MiB in its 4-byte RGB). Ordinary
# images are resized whole well within it (a 4000x3000 photo: 341x256 plus a 341x3000 first
# pass for ImageNet). Beyond it only a window around the crop is resized, which is cheap when
# the resize is an exact ratio (a 1xN strip); otherwise (a 3x20000 strip to 256 rows would be
# 1706666x256) the image is refused rather than computed.
MAX_RESIZE_PIXELS = 8 * 2**20


def resized_size(height: int, width: int, resize: int) -> tuple[int, int]:
    """(H, W) after torchvision's Resize(resize): the shorter side becomes `resize`, the longer
    int(resize * long / short) (Python float arithmetic, truncated, as torchvision computes it)."""
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = resize, int(resize * long / short)
    new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
    return new_h, new_w


def center_crop_span(size: int, crop: int) -> tuple[int, int, int]:
    """(pad_before, offset, length) of torchvision's CenterCrop along one axis of `size` pixels:
    take `length` pixels from `offset`, then pad `pad_before` zeros in front (and the rest of
    `crop` behind). torchvision pads a too-small axis to `crop` first, splitting the padding
    (crop - size) // 2 in front; the offset uses Python's round (half to even)."""
    if crop > size:
        return (crop - size) // 2, 0, size
    return 0, int(round((size - crop) / 2.0)), crop


def _axis_window(n: int, new_n: int, start: int, stop: int):
    """How to compute only the output pixels [start, stop) of an n -> new_n bilinear resize.

    Pillow computes output pixel x from the input around (x + 0.5) * n / new_n. Its `box`
    argument can start the output grid anywhere, but passes the box as C floats, which moves
    the grid for large or fractional offsets (and changes pixels). So the window is widened to
    output pixels that start on a whole input pixel: multiples of new_n / gcd(n, new_n)
    outputs, exactly n / gcd inputs. The source crop keeps the filter's reach on both sides;
    the box within it is then whole pixels and the coefficients are those of the full resize.
    Returns (src_lo, src_hi, box_lo, box_hi, out_len, skip): crop the source to
    [src_lo, src_hi), resize box [box_lo, box_hi) of it to out_len pixels, drop `skip` of them.
    """
    g = math.gcd(n, new_n)
    period_out, period_in = new_n // g, n // g
    lo, hi = start // period_out, -(-stop // period_out)
    a, b = lo * period_in, hi * period_in
    reach = math.ceil(max(n / new_n, 1.0)) + 1  # bilinear support is 1 input pixel per scale
    src_lo, src_hi = max(a - reach, 0), min(b + reach, n)
    return src_lo, src_hi, a - src_lo, b - src_lo, (hi - lo) * period_out, start - lo * period_out


def _pillow_vertical_first(h: int, w: int, new_h: int, new_w: int) -> bool:
    """Whether Pillow's one-call resize (h, w) -> (new_h, new_w) runs its vertical pass first.
    The passes round to 8 bits in between, so the order shows in the pixels, and it changed
    between releases: always horizontal first before 12.2; 12.2 goes vertical first for images
    more than 100 times taller than wide whose height shrinks; 13 when the height shrinks by
    more than twice the width does (tests/test_preprocess.py checks this against the installed
    Pillow on every path that uses it)."""
    from PIL import __version__
    version = tuple(int(p) for p in __version__.split(".")[:2] if p.isdigit())
    if new_h >= h or version < (12, 2):
        return False
    if version < (13, 0):
        return h > 100 * w
    return h - new_h > 2 * (w - new_w)


def _resize_window(im: Any, new_h: int, new_w: int, top: int, left: int, take_h: int, take_w: int,
                   name: str) -> Any:
    """Output pixels [top, top + take_h) x [left, left + take_w) of Pillow's bilinear resize
    of `im` to (new_h, new_w), computing little more than those pixels (see _axis_window)."""
    Image = pillow()
    w, h = im.size
    sy0, sy1, by0, by1, out_h, skip_y = _axis_window(h, new_h, top, top + take_h)
    sx0, sx1, bx0, bx1, out_w, skip_x = _axis_window(w, new_w, left, left + take_w)
    vertical_first = _pillow_vertical_first(h, w, new_h, new_w)
    sub_h, sub_w = sy1 - sy0, sx1 - sx0
    cost = out_w * out_h + (sub_w * out_h if vertical_first else out_w * sub_h)
    if cost > MAX_RESIZE_PIXELS:
        aspect = max(w, h) / min(w, h)
        raise ValueError(
            f"{name}: {w}x{h} (aspect ratio {aspect:.0f}:1) resized to {new_w}x{new_h} needs "
            f"{cost} pixels computed to crop {take_w}x{take_h} from it exactly, over the limit "
            f"of {MAX_RESIZE_PIXELS} (irnet_infer.preprocess.MAX_RESIZE_PIXELS); crop the image "
            "to a less extreme shape first")
    sub = im.crop((sx0, sy0, sx1, sy1))
    # One 1-D pass per call, in the order Pillow uses for the whole image.
    if vertical_first:
        sub = sub.resize((sub_w, out_h), Image.BILINEAR, box=(0, by0, sub_w, by1))
        out = sub.resize((out_w, out_h), Image.BILINEAR, box=(bx0, 0, bx1, out_h))
    else:
        sub = sub.resize((out_w, sub_h), Image.BILINEAR, box=(bx0, 0, bx1, sub_h))
        out = sub.resize((out_w, out_h), Image.BILINEAR, box=(0, by0, out_w, by1))
    return out.crop((skip_x, skip_y, skip_x + take_w, skip_y + take_h))


def resize_and_crop(im: Any, resize: int, crop_h: int, crop_w: int, name: str = "image") -> np.ndarray:
    """torchvision Resize(resize) + CenterCrop((crop_h, crop_w)) of a PIL image, as a uint8
    (crop_h, crop_w[, C]) array. Ordinary images are resized whole, as torchvision does; when
    that would cost more than MAX_RESIZE_PIXELS (extreme aspect ratios), only a window around
    the crop is resized, with the same pixels (see _axis_window), or the image is refused."""
    Image = pillow()
    w, h = im.size
    new_h, new_w = resized_size(h, w, resize)
    pad_y, top, take_h = center_crop_span(new_h, crop_h)
    pad_x, left, take_w = center_crop_span(new_w, crop_w)
    box = (left, top, left + take_w, top + take_h)
    if (new_h, new_w) == (h, w):
        region = im.crop(box)
    elif new_h * new_w + max(new_w * h, w * new_h) <= MAX_RESIZE_PIXELS:
        region = im.resize((new_w, new_h), Image.BILINEAR).crop(box)
    else:
        region = _resize_window(im, new_h, new_w, top, left, take_h, take_w, name)
    pixels = np.asarray(region)
    if (take_h, take_w) != (crop_h, crop_w):
        canvas = np.zeros((crop_h, crop_w) + pixels.shape[2:], np.uint8)
        canvas[pad_y:pad_y + take_h, pad_x:pad_x + take_w] = pixels
        pixels = canvas
    return pixels


def normalize(pixels: np.ndarray, settings: dict) -> np.ndarray:
    """uint8 (..., H, W, C) at the input size -> float32 (..., C, H, W), scaled and normalized
    with the same float32 operations as torchvision's ToTensor and Normalize: a scale of 1/k
    (1/255) is a division by k, then (x - mean) / std."""
    x = pixels.astype(np.float32)
    scale = float(settings.get("scale", 1 / 255))
    divisor = 1.0 / scale if scale else 0.0
    if scale and abs(divisor - round(divisor)) <= 1e-9 * divisor:
        x /= np.float32(round(divisor))
    else:
        x *= np.float32(scale)
    channels = pixels.shape[-1]
    mean = np.asarray(settings.get("mean", [0.0] * channels), dtype=np.float32)
    std = np.asarray(settings.get("std", [1.0] * channels), dtype=np.float32)
    x = (x - mean) / std
    return np.ascontiguousarray(np.moveaxis(x, -1, -3))


def _bands(image: np.ndarray, channels: int) -> list:
    """A uint8 (H, W, C) array as PIL images whose channels, stacked, are the model's input."""
    Image = pillow()
    c = image.shape[2]
    if c == 4 and channels == 3:
        image, c = image[:, :, :3], 3  # RGBA: alpha dropped, as convert("RGB") drops it
    if c == 3 and channels == 3:
        return [Image.fromarray(np.ascontiguousarray(image), "RGB")]
    if c == 1 and channels in (1, 3):
        gray = Image.fromarray(np.ascontiguousarray(image[:, :, 0]), "L")
        return [gray.convert("RGB") if channels == 3 else gray]
    if c == 3 and channels == 1:
        return [Image.fromarray(np.ascontiguousarray(image), "RGB").convert("L")]
    if c != channels:
        raise ValueError(f"image has {c} channels, the model takes {channels}")
    return [Image.fromarray(np.ascontiguousarray(image[:, :, i]), "L") for i in range(c)]


def preprocess_image(image: Any, settings: dict) -> np.ndarray:
    """A uint8 (H, W, C) array, a PIL image or an image path -> the network's float32
    (C, H, W) input, with `settings` (the file's `preprocess` metadata, docs/FORMAT.md)."""
    channels = int(settings["input_size"][0])
    if isinstance(image, (str, os.PathLike)):
        name = f"image {os.fspath(image)!r}"
        with open_image(image) as im:  # closing frees the decoded image: finish inside
            return _to_input([to_8bit(im, channels, name)], settings, name)
    if is_pil_image(image):
        return _to_input([to_8bit(image, channels, "PIL image")], settings, "PIL image")
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3:
            raise ValueError(f"an image must be a uint8 (H, W, C) array, got {image.dtype} {image.shape}")
        if image.shape[0] < 1 or image.shape[1] < 1:
            raise ValueError(f"image is empty: shape {image.shape}")
        return _to_input(_bands(image, channels), settings, "image array")
    raise TypeError(f"an image must be a uint8 array, a PIL image or a path, got {type(image).__name__}")


def _to_input(bands: list, settings: dict, name: str) -> np.ndarray:
    _, out_h, out_w = (int(v) for v in settings["input_size"])
    resize = int(settings.get("resize") or min(out_h, out_w))
    parts = [resize_and_crop(b, resize, out_h, out_w, name) for b in bands]
    pixels = parts[0] if len(parts) == 1 else np.stack(parts, axis=-1)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if settings.get("channel_order", "RGB") == "BGR":
        pixels = pixels[:, :, ::-1]
    return normalize(pixels, settings)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as a uint8 (H, W, 3) RGB array (16-bit images scaled, not clipped)."""
    with open_image(path) as im:
        return np.asarray(to_8bit(im, 3, f"image {os.fspath(path)!r}"))
