"""Image files and PIL images -> 8-bit RGB (or L) PIL images, refusing what is too big to decode.

What the official pipelines do (torchvision's `pil_loader`: `Image.open(f).convert("RGB")`) is
kept wherever it is right: palette, alpha (dropped, as `convert("RGB")` drops it), CMYK, YCbCr,
bilevel and float images go through Pillow's own `convert`. 16-bit images are the exception:
`convert` clips their 0..65535 values to 255, so they are scaled to 8 bits here instead (the
high byte, as Pillow itself reads 16-bit colour PNGs), and an 8-bit image stored as 16 bits
(value * 257) gives back exactly the 8-bit pixels.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from irnet_infer.paths import require_file

# Decoded pixels a file may have (64 Mi: 8192 x 8192, 256 MiB as Pillow's 4-byte RGB). A
# compressed PNG of that many equal pixels is a few hundred KB, so the bound is what keeps a
# small file from buying a large decode. JPEGs above it are decoded at 1/2, 1/4 or 1/8 scale
# by the JPEG decoder itself (Pillow's `draft`), which is NOT the same pixels as a full decode
# plus resize: below the bound every image is decoded in full so that results equal the
# official pipeline's; above it the choice is between a close answer and a refusal.
MAX_IMAGE_PIXELS = 64 * 2**20

_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def pillow():
    try:
        from PIL import Image
    except ImportError:
        raise ImportError("reading images needs Pillow: pip install pillow") from None
    return Image


def is_pil_image(x: Any) -> bool:
    return type(x).__module__.startswith("PIL.") and hasattr(x, "convert") and hasattr(x, "size")


def _without_name(e: Exception, path: str) -> str:
    """Pillow's message without the file name it often repeats (the caller names the file)."""
    if type(e).__name__ == "UnidentifiedImageError":
        return "not an image format Pillow reads"
    text = str(e).replace(repr(path), "").replace(path, "").strip(" :")
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def open_image(path: str | os.PathLike) -> Any:
    """The decoded image in `path` (any mode). Errors name the file: FileNotFoundError when it
    is missing, ValueError for anything Pillow cannot read or that is over MAX_IMAGE_PIXELS."""
    Image = pillow()
    path = require_file(path, "image")  # the wording of every command's path errors
    try:
        im = Image.open(path)
    except Image.DecompressionBombError as e:
        raise ValueError(f"image {path!r} is too large to decode: {e}") from None
    except Exception as e:  # noqa: BLE001 - Pillow raises many kinds; all mean "not readable"
        raise ValueError(f"cannot read image {path!r}: {_without_name(e, path)}") from None
    try:
        w, h = im.size
        if w < 1 or h < 1:
            raise ValueError(f"image {path!r} is empty ({w}x{h})")
        if w * h > MAX_IMAGE_PIXELS:
            _draft_or_refuse(im, path)
        im.load()
        return im
    except ValueError:
        im.close()
        raise
    except Exception as e:  # noqa: BLE001 - truncated data, decoder errors, MemoryError
        im.close()
        raise ValueError(f"cannot decode image {path!r}: {type(e).__name__}: {e}") from None


def _draft_or_refuse(im: Any, path: str) -> None:
    w, h = im.size
    if im.format == "JPEG":
        for factor in (2, 4, 8):
            if -(-w // factor) * -(-h // factor) <= MAX_IMAGE_PIXELS:
                im.draft(im.mode, (w // factor, h // factor))
                if im.size[0] * im.size[1] <= MAX_IMAGE_PIXELS:
                    return
    raise ValueError(f"image {path!r} is {w}x{h} = {w * h} pixels, over the limit of "
                     f"{MAX_IMAGE_PIXELS} (irnet_infer.image_io.MAX_IMAGE_PIXELS); "
                     "scale it down first")


def to_8bit(im: Any, channels: int, name: str = "image") -> Any:
    """`im` as an 8-bit "RGB" (channels 3) or "L" (channels 1) PIL image."""
    Image = pillow()
    target = {3: "RGB", 1: "L"}.get(channels)
    if target is None:
        raise ValueError(f"{name}: the model takes {channels} channels; image files can feed "
                         "1- or 3-channel models (pass a uint8 (H, W, C) array instead)")
    if im.mode == target:
        return im
    try:
        if im.mode in _SIXTEEN_BIT_MODES:
            # I;16* are 0..65535; "I" is how some Pillow versions read 16-bit grayscale PNGs.
            values = np.clip(np.asarray(im, dtype=np.int64), 0, 65535)
            im = Image.fromarray((values >> 8).astype(np.uint8), "L")
        elif im.mode == "F":
            values = np.asarray(im)
            if not np.isfinite(values).all():
                raise ValueError(f"{name} (mode F) contains NaN or Inf")
        return im.convert(target)
    except ValueError as e:
        raise ValueError(f"{name}: cannot convert mode {im.mode} to {target}: {e}") from None
