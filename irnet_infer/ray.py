"""Batch inference on Ray Data: one `.irb` over a dataset of images, one model per actor.

    import ray
    from irnet_infer.ray import predict_image_folder, accuracy

    ray.init()                                   # or ray.init(address="ray://head:10001")
    predictions = predict_image_folder("model.irb", "val/", actors=4, threads_per_actor=2)
    print(accuracy(predictions))                 # {"count", "top1", "top5", "errors", ...}

`Predictor` is the callable class for `Dataset.map_batches` (any dataset of images, bytes,
paths or network inputs); `predict` applies it with an actor pool. Needs the `ray` extra
(`pip install 'irnet-infer[ray]'`); `import irnet_infer` never imports this module. docs/RAY.md
has the cluster run and how to size actors x threads.
"""
from __future__ import annotations

import inspect
import io
import os
import tempfile
from typing import Any

import numpy as np

try:
    import ray.data
    from ray.data.datasource import Partitioning
except ImportError:
    raise ImportError("irnet_infer.ray needs Ray Data: pip install 'irnet-infer[ray]' "
                      "(or pip install 'ray[data]')") from None

from irnet_infer.datasets import IMAGE_EXTENSIONS
from irnet_infer.model import Model
from irnet_infer.image_io import pillow, to_8bit
from irnet_infer.preprocess import load_image, preprocess_image

# The input column, when not named: the first of these that a batch has. `bytes` comes before
# `path` because read_binary_files(include_paths=True) gives both and the bytes are already read.
INPUT_COLUMNS = ("image", "bytes", "path")
OUTPUT_COLUMNS = ("logits", "top_k_labels", "top_k_probs", "error")


class Predictor:
    """Callable class for `Dataset.map_batches(Predictor, compute=ActorPoolStrategy(...))`:
    each actor loads the model once, then predicts batch after batch.

    Args:
        model: the `.irb` path (readable where the actor runs) or the file's bytes.
        num_threads: engine threads of this actor (reserve as many CPUs: `num_cpus=`).
        top_k: how many labels and probabilities per row (at most the number of classes).
        column: the input column; default the first of "image", "bytes", "path" in the batch.
        keep_input: also return the input column (dropped by default: it is the heavy one).

    Each row of the input column is one of: a uint8 (H, W, C) image, encoded image bytes, an
    image path (these three get the model file's preprocessing, as in `Model.predict`), or a
    float (C, H, W) network input. The other columns pass through; added are `logits` (float32,
    one per class), `top_k_labels` (int64 class indices, best first), `top_k_probs` (float32
    softmax probabilities) and `error` ("" or why that row could not be read). A failed row
    has NaN logits and probabilities and -1 labels; it never fails the batch.
    """

    def __init__(self, model: str | os.PathLike | bytes, num_threads: int = 1, top_k: int = 5,
                 column: str | None = None, keep_input: bool = False, isa: str | None = None):
        self.model = _load_model(model, num_threads, isa)
        if len(self.model.output_shape) != 1:
            raise ValueError(f"the model's output {self.model.output_shape} is not one score per class")
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
            raise ValueError(f"top_k must be an int >= 1, got {top_k!r}")
        self.num_classes = self.model.output_shape[0]
        self.top_k = min(top_k, self.num_classes)
        self.column = column
        self.keep_input = keep_input

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        column = self._input_column(batch)
        rows = batch[column]
        n = len(rows)
        inputs, ok = [], np.zeros(n, dtype=bool)
        errors = np.full(n, "", dtype=object)
        for i, row in enumerate(rows):
            try:
                inputs.append(self._network_input(row))
                ok[i] = True
            except Exception as e:  # noqa: BLE001
                # Decoders raise many types for a bad file (OSError, ValueError, SyntaxError,
                # DecompressionBombError...); any of them is this row's failure, not the job's.
                errors[i] = f"{type(e).__name__}: {e}"
        logits = np.full((n, self.num_classes), np.nan, dtype=np.float32)
        labels = np.full((n, self.top_k), -1, dtype=np.int64)
        probs = np.full((n, self.top_k), np.nan, dtype=np.float32)
        if inputs:
            z = self.model.predict(np.stack(inputs))
            logits[ok] = z
            labels[ok], probs[ok] = top_k(z, self.top_k)
        out = {k: v for k, v in batch.items() if k != column or self.keep_input}
        out.update(logits=logits, top_k_labels=labels, top_k_probs=probs, error=errors)
        return out

    def _input_column(self, batch: dict) -> str:
        if self.column is not None:
            if self.column not in batch:
                raise ValueError(f"the batch has no column {self.column!r} (columns: {sorted(batch)})")
            return self.column
        for name in INPUT_COLUMNS:
            if name in batch:
                return name
        raise ValueError(f"the batch has none of the input columns {INPUT_COLUMNS} (columns: "
                         f"{sorted(batch)}); name the input with column=")

    def _network_input(self, row: Any) -> np.ndarray:
        """One row -> float32 (C, H, W), preprocessed as Model.predict would."""
        settings = self.model.preprocess_settings
        if isinstance(row, (bytes, bytearray, memoryview)):
            return preprocess_image(decode_image(row), settings)
        if isinstance(row, (str, os.PathLike)):
            return preprocess_image(load_image(row), settings)
        if not isinstance(row, np.ndarray):
            raise TypeError(f"a row must be an image array, image bytes, a path or a float "
                            f"(C, H, W) array, got {type(row).__name__}")
        if row.dtype == np.uint8:
            return preprocess_image(row, settings)
        if row.dtype.kind != "f" or row.shape != self.model.input_shape:
            raise ValueError(f"a network input must be float {self.model.input_shape}, got "
                             f"{row.dtype} {row.shape}")
        if not np.isfinite(row).all():
            raise ValueError("input contains NaN or Inf")
        return row.astype(np.float32, copy=False)


def decode_image(data: bytes | bytearray | memoryview) -> np.ndarray:
    """Encoded image bytes -> uint8 (H, W, 3) RGB, as `load_image` reads the same file."""
    with pillow().open(io.BytesIO(data)) as im:
        return np.asarray(to_8bit(im, 3, "image bytes"))


def top_k(logits: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(N, classes) logits -> the k best class indices (ties: lower index first) and their
    softmax probabilities, computed in float64."""
    labels = np.argsort(-logits, axis=1, kind="stable")[:, :k]
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return labels.astype(np.int64), np.take_along_axis(p, labels, axis=1).astype(np.float32)


def _load_model(model, num_threads, isa) -> Model:
    if not isinstance(model, (bytes, bytearray, memoryview)):
        return Model(model, num_threads=num_threads, isa=isa)
    # Model reads a path; the whole file is read into memory there, so the temporary copy can
    # go as soon as it is loaded.
    with tempfile.NamedTemporaryFile(suffix=".irb") as f:
        f.write(model)
        f.flush()
        return Model(f.name, num_threads=num_threads, isa=isa)


def predict(dataset: "ray.data.Dataset", model: str | os.PathLike, actors: int = 1,
            threads_per_actor: int = 1, batch_size: int = 64, top_k: int = 5,
            column: str | None = None) -> "ray.data.Dataset":
    """`dataset` with the `Predictor` columns added, run by `actors` actors of
    `threads_per_actor` engine threads each (each reserves that many CPUs). The model file is
    read here and shipped to the actors, so the nodes need no copy of it."""
    for name, value in (("actors", actors), ("threads_per_actor", threads_per_actor),
                        ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    with open(os.fspath(model), "rb") as f:
        model_bytes = f.read()
    # Check the file here, once, rather than as an error in every actor.
    Predictor(model_bytes, num_threads=1, top_k=top_k, column=column)
    return dataset.map_batches(
        Predictor, batch_size=batch_size, batch_format="numpy",
        compute=ray.data.ActorPoolStrategy(size=actors), num_cpus=threads_per_actor,
        fn_constructor_kwargs={"model": model_bytes, "num_threads": threads_per_actor,
                               "top_k": top_k, "column": column})


def class_folders(root: str) -> list[str]:
    """The sorted names of the subfolders of `root` (a local path or a pyarrow filesystem URI
    such as s3://bucket/val)."""
    import pyarrow.fs as pafs
    fs, base = pafs.FileSystem.from_uri(root if "://" in root else os.path.abspath(root))
    if fs.get_file_info(base).type != pafs.FileType.Directory:
        raise FileNotFoundError(f"image folder {root!r} does not exist or is not a directory")
    entries = fs.get_file_info(pafs.FileSelector(base))
    return sorted(e.base_name for e in entries if e.type == pafs.FileType.Directory)


# Readers take num_cpus= since some Ray after 2.44 (which has only ray_remote_args=, deprecated
# in 2.60 for removal in 2.64).
_NO_CPU_READ = ({"num_cpus": 0} if "num_cpus" in inspect.signature(ray.data.read_binary_files).parameters
                else {"ray_remote_args": {"num_cpus": 0}})


def read_image_folder(root: str, classes: list[str] | None = None, **read_args) -> "ray.data.Dataset":
    """The image files under `root` with Ray's binary reader (decoding happens in the
    `Predictor`, so an unreadable file is one row's error): columns `bytes`, `path`, and when
    the images are laid out as root/<class>/<image>, `class` (the folder name) and `label`
    (its index in `classes`, default the sorted subfolder names; -1 for an image outside them).
    `read_args` go to `ray.data.read_binary_files` (e.g. override_num_blocks=, filesystem=).
    """
    classes = class_folders(root) if classes is None else list(classes)
    # Reading bytes is I/O, not compute: asking no CPU for it keeps the read going while the
    # actors hold every CPU (with num_cpus=1 reads, actors x threads = all CPUs would deadlock).
    ds = ray.data.read_binary_files(
        root, include_paths=True, **_NO_CPU_READ,
        file_extensions=[e.lstrip(".") for e in IMAGE_EXTENSIONS],
        partitioning=Partitioning("dir", base_dir=root, field_names=["class"]) if classes else None,
        **read_args)
    if not classes:
        return ds
    index = {name: i for i, name in enumerate(classes)}

    def add_labels(batch):
        batch["label"] = np.array([index.get(c, -1) for c in batch["class"]], dtype=np.int64)
        return batch
    return ds.map_batches(add_labels, batch_format="numpy", num_cpus=0)


def predict_image_folder(model: str | os.PathLike, root: str, classes: list[str] | None = None,
                         **predict_args) -> "ray.data.Dataset":
    """`predict(read_image_folder(root, classes), model, ...)`: lazy; run it with
    `accuracy(...)`, `.write_parquet(...)`, `.iter_batches()`..."""
    return predict(read_image_folder(root, classes), model, **predict_args)


def accuracy(predictions: "ray.data.Dataset", max_errors: int = 10, path_column: str | None = "path") -> dict:
    """Run `predictions` (with a `label` column) and count: {"count" (rows predicted with a
    label), "top1", "top5" (None when top_k < 5), "errors" (rows that failed), "error_examples"
    (up to max_errors (path, error)), "unlabelled" (rows with label -1)}."""
    count = top1 = top5 = errors = unlabelled = 0
    examples = []
    has_top5 = False
    columns = ["label", "top_k_labels", "error"] + ([path_column] if path_column else [])
    for b in predictions.select_columns(columns).iter_batches(batch_format="numpy"):
        failed = b["error"] != ""
        errors += int(failed.sum())
        for i in np.flatnonzero(failed)[:max(0, max_errors - len(examples))]:
            examples.append((str(b[path_column][i]) if path_column else "", str(b["error"][i])))
        labelled = ~failed & (b["label"] >= 0)
        unlabelled += int((~failed & (b["label"] < 0)).sum())
        y, best = b["label"][labelled], b["top_k_labels"][labelled]
        count += len(y)
        if len(y):
            top1 += int((best[:, 0] == y).sum())
            top5 += int((best[:, :5] == y[:, None]).any(axis=1).sum())
            has_top5 = best.shape[1] >= 5
    return {"count": count, "top1": top1 / count if count else None,
            "top5": top5 / count if count and has_top5 else None,
            "errors": errors, "error_examples": examples, "unlabelled": unlabelled}
