"""Dataset readers shared by training (export/data.py) and evaluation (`irnet_infer eval`).

numpy only (plus scikit-learn for `digits`, Pillow for image folders), never torch: the runtime
package must stay torch-free, and training must see exactly the split and pixels that
evaluation sees, so both import these functions instead of keeping two copies.

Sources: `digits` (scikit-learn's 8x8 handwritten digits), `cifar10:DIR` (the python-pickle
CIFAR-10 batches), `imagefolder:DIR` (DIR/train/<class>/*, DIR/val/<class>/*).
"""
from __future__ import annotations

import os
import pickle

import numpy as np

from irnet_infer.paths import require_dir, require_file
from irnet_infer.preprocess import normalize, preprocess_image
from irnet_infer.preprocess_defaults import digits_preprocess

DIGITS_CLASSES = [str(i) for i in range(10)]
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_FRACTION = 0.2
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".gif", ".tif", ".tiff", ".webp")


def parse_source(source: str) -> tuple[str, str | None]:
    """'digits' -> ('digits', None); 'cifar10:DIR' / 'imagefolder:DIR' -> (kind, DIR)."""
    kind, sep, path = str(source).partition(":")
    if kind == "digits" and not sep:
        return kind, None
    if kind in ("cifar10", "imagefolder") and sep and path:
        return kind, path
    raise ValueError(f"unknown data source {source!r}: use digits, cifar10:DIR or imagefolder:DIR")


# -- digits -----------------------------------------------------------------------------------

def digits_images() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as uint8 (N, 8, 8, 1) images with values 0..255 (white ink on
    black, as the dataset has them) and int64 labels. load_digits has pixel values 0..16; they
    are scaled once to 0..255, so the model takes ordinary 8-bit images: a PNG of a digit is
    read exactly as the dataset is."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError("the digits dataset needs scikit-learn: pip install 'irnet-infer[digits]' "
                          "(or pip install scikit-learn)") from None
    digits = load_digits()
    images = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)[..., None]
    return images, digits.target.astype(np.int64)


def load_digits_split(input_size=(3, 32, 32), test_fraction=DIGITS_TEST_FRACTION,
                      seed=DIGITS_SPLIT_SEED) -> dict:
    """The fixed stratified train/test split of load_digits, upscaled (bilinear) to `input_size`.
    Returns x_train, y_train, x_test, y_test (float32 NCHW, int64), images_test (the uint8
    (N, 8, 8, 1) test images), classes, preprocess."""
    images, labels = digits_images()
    from sklearn.model_selection import train_test_split
    idx_train, idx_test = train_test_split(np.arange(len(labels)), test_size=test_fraction,
                                           random_state=seed, stratify=labels)
    settings = digits_preprocess(input_size)
    # preprocess_image is the runtime's own path (channel replication, bilinear resize,
    # scale, normalize), so a digit fed to Model.predict as uint8 gets the same pixels.
    x = np.stack([preprocess_image(im, settings) for im in images])
    return {"x_train": x[idx_train], "y_train": labels[idx_train],
            "x_test": x[idx_test], "y_test": labels[idx_test], "images_test": images[idx_test],
            "classes": list(DIGITS_CLASSES), "preprocess": settings}


# -- CIFAR-10 pickle batches ------------------------------------------------------------------

class _CifarUnpickler(pickle.Unpickler):
    """Builds only what CIFAR-10 batches hold: dicts, lists, bytes, str, numbers and numpy
    arrays and scalars. A pickle naming any other callable (os.system, builtins.eval, ...) is
    refused before anything runs: unpickling a file must never run code from it."""

    # numpy's own reconstructors (1.x module paths, and 2.x's, which 1.x-made files map to).
    ALLOWED = frozenset({
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),  # protocol 5
        ("numpy", "ndarray"), ("numpy", "dtype"),
    })

    def find_class(self, module: str, name: str):
        if (module, name) == ("_codecs", "encode"):  # how protocols 0-2 spell bytes in Python 3
            return _latin1_bytes
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name}: a CIFAR-10 batch holds only "
                                         "arrays, lists and strings")
        return super().find_class(module, name)


def _latin1_bytes(text: str, encoding: str) -> bytes:
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refusing _codecs.encode with {encoding!r:.40}")
    return text.encode("latin1")


def _unpickle(path: str) -> dict:
    if not os.path.isfile(path):
        require_file(path, "CIFAR-10 file")  # the usual wording for a directory
        raise FileNotFoundError(f"CIFAR-10 file {path!r} does not exist (expected the python-pickle "
                                "batches data_batch_1..5, test_batch, batches.meta)")
    try:
        with open(path, "rb") as f:
            return _CifarUnpickler(f, encoding="bytes").load()
    except Exception as e:  # truncated, not a pickle, or not CIFAR-10's: name the file, in one line
        raise ValueError(f"CIFAR-10 file {path!r} is not a readable pickle of CIFAR-10 data: "
                         f"{type(e).__name__}: {e}") from None


def _key(d: dict, name: str, path: str):
    for k in (name.encode(), name):
        if k in d:
            return d[k]
    raise ValueError(f"CIFAR-10 file {path!r} has no {name!r} entry")


def read_cifar10_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> (uint8 (N, 32, 32, 3) RGB images, int64 labels)."""
    d = _unpickle(path)
    if not isinstance(d, dict):
        raise ValueError(f"CIFAR-10 file {path!r} holds a {type(d).__name__}, not a dict")
    data = np.asarray(_key(d, "data", path))
    labels = np.asarray(_key(d, "labels", path), dtype=np.int64)
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"CIFAR-10 file {path!r}: data must be uint8 (N, 3072), "
                         f"got {data.dtype} {data.shape}")
    if labels.shape != (data.shape[0],):
        raise ValueError(f"CIFAR-10 file {path!r}: {labels.shape[0]} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"CIFAR-10 file {path!r}: labels outside 0..9")
    # Rows are 1024 R, then G, then B values, each row-major 32x32.
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def read_cifar10(root: str, split: str) -> tuple[np.ndarray, np.ndarray, list]:
    """split 'train' (data_batch_1..5) or 'test' (test_batch) -> (images, labels, classes)."""
    require_dir(root, "CIFAR-10 directory")
    meta = _unpickle(os.path.join(root, "batches.meta"))
    names = _key(meta, "label_names", os.path.join(root, "batches.meta"))
    classes = [n.decode() if isinstance(n, bytes) else str(n) for n in names]
    if len(classes) != 10:
        raise ValueError(f"CIFAR-10 batches.meta in {root!r} lists {len(classes)} classes, not 10")
    files = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    parts = [read_cifar10_batch(os.path.join(root, f)) for f in files]
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            classes)


def normalize_images(images: np.ndarray, settings: dict) -> np.ndarray:
    """uint8 (N, H, W, C) already at the input size -> float32 (N, C, H, W), scaled and
    normalized as preprocess_image does, in one vectorized step."""
    c, h, w = settings["input_size"]
    if images.shape[1:] != (h, w, c) or int(settings.get("resize") or min(h, w)) != min(h, w):
        return np.stack([preprocess_image(im, settings) for im in images])
    return normalize(images, settings)


# -- image folders ----------------------------------------------------------------------------

def list_image_folder(root: str, split: str, classes: list | None = None) -> tuple[list, np.ndarray, list]:
    """root/split/<class>/<image> -> (paths, int64 labels, classes). Classes are the sorted
    subfolder names of root/train unless given (so val labels use train's numbering)."""
    base = os.path.join(root, split)
    if not os.path.isdir(base):
        require_dir(root, "image folder")
        raise FileNotFoundError(f"image folder {base!r} does not exist (expected "
                                f"{root}/train/<class>/... and {root}/val/<class>/...)")
    if classes is None:
        train = os.path.join(root, "train")
        src = train if os.path.isdir(train) else base
        classes = sorted(d for d in os.listdir(src) if os.path.isdir(os.path.join(src, d)))
    if not classes:
        raise ValueError(f"image folder {base!r} has no class subfolders")
    paths, labels = [], []
    for label, name in enumerate(classes):
        folder = os.path.join(base, name)
        if not os.path.isdir(folder):
            continue  # a class absent from val is fine; its images are simply not there
        for f in sorted(os.listdir(folder)):
            if f.lower().endswith(IMAGE_EXTENSIONS):
                paths.append(os.path.join(folder, f))
                labels.append(label)
    if not paths:
        raise ValueError(f"image folder {base!r} has no images ({', '.join(IMAGE_EXTENSIONS)})")
    return paths, np.asarray(labels, dtype=np.int64), list(classes)


def load_folder_image(path: str, settings: dict) -> np.ndarray:
    """One image file -> the network input (C, H, W) float32, with the model's preprocess."""
    return preprocess_image(path, settings)


# -- evaluation batches -----------------------------------------------------------------------

def eval_batches(source: str, settings: dict, batch_size: int = 128):
    """(count, iterator of (x float32 NCHW, y int64)) over the held-out split of `source`,
    preprocessed with a model's `settings`."""
    kind, path = parse_source(source)
    if kind == "digits":
        d = load_digits_split(settings["input_size"])
        x, y = d["x_test"], d["y_test"]
        return len(y), ((x[i:i + batch_size], y[i:i + batch_size]) for i in range(0, len(y), batch_size))
    if kind == "cifar10":
        images, y, _ = read_cifar10(path, "test")

        def cifar():
            for i in range(0, len(y), batch_size):
                yield normalize_images(images[i:i + batch_size], settings), y[i:i + batch_size]
        return len(y), cifar()
    paths, y, _ = list_image_folder(path, "val")

    def folder():  # read lazily: a val set need not fit in memory
        for i in range(0, len(y), batch_size):
            yield np.stack([load_folder_image(p, settings) for p in paths[i:i + batch_size]]), y[i:i + batch_size]
    return len(y), folder()
