"""Image preprocessing with a model's own settings (the `preprocess` metadata of its file):
resize the shorter side, center crop, scale, normalize, lay out as (C, H, W) float32.
numpy only; Pillow is used just to open image files and PIL images when it is installed."""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from irnet_infer.paths import require_file


def load_image(path: str | os.PathLike) -> np.ndarray:
    """An image file as a uint8 (H, W, 3) RGB array."""
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise ImportError("reading image files needs Pillow: pip install pillow "
                          "(or pass a uint8 (H, W, C) array)") from None
    path = require_file(path, "image")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except UnidentifiedImageError:
        # Pillow's own message repeats the file name; say it once.
        raise ValueError(f"cannot read image {path!r}: not an image format Pillow reads") from None
    except OSError as e:
        raise ValueError(f"cannot read image {path!r}: {e}") from None


def pil_to_array(image: Any) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W, C) -> (height, width, C) float32, bilinear with half-pixel centers (as PIL/cv2)."""
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image.astype(np.float32)

    def axis(n_in: int, n_out: int):
        pos = (np.arange(n_out, dtype=np.float64) + 0.5) * n_in / n_out - 0.5
        pos = np.clip(pos, 0, n_in - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (pos - lo).astype(np.float32)

    y0, y1, fy = axis(h, height)
    x0, x1, fx = axis(w, width)
    img = image.astype(np.float32)
    rows = img[y0] * (1 - fy)[:, None, None] + img[y1] * fy[:, None, None]
    return rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]


def preprocess_image(image: np.ndarray, settings: dict) -> np.ndarray:
    """A uint8 (H, W, C) image -> the network's float32 (C, H, W) input."""
    if image.dtype != np.uint8 or image.ndim != 3:
        raise ValueError(f"an image must be a uint8 (H, W, C) array, got {image.dtype} {image.shape}")
    channels, out_h, out_w = settings["input_size"]
    if image.shape[2] == 4 and channels == 3:
        image = image[:, :, :3]
    if image.shape[2] == 1 and channels == 3:
        image = np.repeat(image, 3, axis=2)
    if image.shape[2] == 3 and channels == 1:
        image = image.mean(axis=2, keepdims=True).astype(np.uint8)
    if image.shape[2] != channels:
        raise ValueError(f"image has {image.shape[2]} channels, the model takes {channels}")
    if image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image is empty: shape {image.shape}")
    if settings.get("channel_order", "RGB") == "BGR":
        image = image[:, :, ::-1]
    resize = settings.get("resize") or min(out_h, out_w)
    h, w = image.shape[:2]
    scale = resize / min(h, w)
    new_h, new_w = max(out_h, round(h * scale)), max(out_w, round(w * scale))
    img = resize_bilinear(image, new_h, new_w)
    top, left = (new_h - out_h) // 2, (new_w - out_w) // 2
    img = img[top:top + out_h, left:left + out_w]
    img = img * np.float32(settings.get("scale", 1 / 255))
    mean = np.asarray(settings.get("mean", [0.0] * channels), dtype=np.float32)
    std = np.asarray(settings.get("std", [1.0] * channels), dtype=np.float32)
    img = (img - mean) / std
    return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)
