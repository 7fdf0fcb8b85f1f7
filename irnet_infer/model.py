"""`Model`: load an `.irb` file once, then predict many times."""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from irnet_infer import _engine
from irnet_infer.classify import class_name, ends_in_log_softmax, probabilities, ranked
from irnet_infer.format import IrbFormatError, read_irb
from irnet_infer.image_io import is_pil_image
from irnet_infer.preprocess import preprocess_image

# A batch whose engine buffers would pass this is refused before anything is allocated.
DEFAULT_MAX_BATCH_BYTES = 4 * 1024**3


def isa_help() -> str:
    """The CLI's --isa help, from the engine's one list of ISA names."""
    return (f"force a kernel set: one of {', '.join(_engine.all_isas())} "
            f"(this machine runs {', '.join(_engine.available_isas())})")


def default_num_threads() -> int:
    """Physical cores available to this process: hyper-threads share one popcount unit, so
    counting them only adds contention."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:
        available = os.cpu_count() or 1
    try:
        siblings = set()
        for cpu in os.sched_getaffinity(0):
            path = f"/sys/devices/system/cpu/cpu{cpu}/topology/thread_siblings_list"
            with open(path) as f:
                siblings.add(f.read().strip())
        return max(1, min(available, len(siblings)))
    except (OSError, AttributeError):
        return max(1, available)


class Model:
    """A converted IR-Net model, ready to run.

    Args:
        path: the `.irb` file written by `python -m export.convert`.
        num_threads: OpenMP threads per call; default: the physical cores available.
        isa: force a kernel set, one of `irnet_infer.all_isas()` that this machine runs
            (`irnet_infer.available_isas()`); default: the `IRNET_ISA` environment variable,
            else the best this CPU runs.
        max_batch_bytes: refuse batches whose engine buffers would exceed this (default 4 GiB),
            checked from the input's shape before anything is allocated.

    Threads: one Model may be shared by any number of Python threads. `predict` releases the
    GIL while the engine runs, and the engine's run is const (each call takes its own buffers
    from a pool, scratch memory is per thread), so concurrent calls run in parallel and each
    returns exactly what it would return alone. Each call uses up to `num_threads` OpenMP
    threads; with many concurrent callers, pass a smaller `num_threads` to avoid oversubscription.

    Errors: a bad file raises `IrbFormatError` (a ValueError) naming the problem; a missing or
    unreadable file the usual OSError; bad inputs to `predict` a ValueError or TypeError, and
    NaN/Inf inputs a ValueError.
    """

    def __init__(self, path: str | os.PathLike, num_threads: int | None = None, isa: str | None = None,
                 max_batch_bytes: int = DEFAULT_MAX_BATCH_BYTES):
        if num_threads is not None and (isinstance(num_threads, bool) or not isinstance(num_threads, int)
                                        or not 1 <= num_threads <= 1024):
            raise ValueError(f"num_threads must be an int in 1..1024 or None, got {num_threads!r}")
        if isa is not None and not isinstance(isa, str):
            raise ValueError(f"isa must be a string or None, got {isa!r}")
        self.path = os.fspath(path)
        f = read_irb(self.path)
        self.preprocess_settings = f.preprocess
        self.classes = f.classes
        self.producer = f.producer
        self.graph = f.graph
        self.max_batch_bytes = int(max_batch_bytes)
        try:
            self._engine = _engine.Engine(f.graph, f.tensors, num_threads or default_num_threads(), isa or "")
        except ValueError as e:
            # A bad isa= / IRNET_ISA is the caller's error; everything else is about the file.
            if str(e).startswith(("unknown ISA '", "ISA '")):
                raise
            raise IrbFormatError(f"{self.path}: {e}") from None
        if self.classes is not None and (len(self.output_shape) != 1
                                         or len(self.classes) != self.output_shape[0]):
            raise IrbFormatError(f"{self.path}: {len(self.classes)} class names for output shape "
                                 f"{self.output_shape}")
        self._arena_bytes_per_sample = self._estimate_bytes_per_sample()

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one input."""
        return tuple(self._engine.input_shape)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(self._engine.output_shape)

    @property
    def num_threads(self) -> int:
        return self._engine.num_threads

    @property
    def isa(self) -> str:
        """The kernel set this model runs with."""
        return self._engine.isa

    def predict(self, x: Any) -> np.ndarray:
        """Run the network and return its outputs, as the PyTorch model's forward does (logits,
        or log-probabilities for a network ending in log_softmax; `classify` gives classes and
        probabilities).

        `x` is a float array (N, C, H, W) or (C, H, W) taken as the network input as is; or a
        uint8 (H, W, C) image, a PIL image, or an image path, preprocessed with the file's
        settings. Returns float32 (N, classes), or (classes,) for one unbatched input.
        """
        batch, unbatched = self._to_batch(x)
        out = self._engine.run(batch)
        return out[0] if unbatched else out

    def probabilities(self, x: Any) -> np.ndarray:
        """Class probabilities for `x` (any input `predict` takes): float64 (N, classes), or
        (classes,) for one unbatched input. The softmax of the outputs, or their exp when the
        network ends in log_softmax (read from the file's graph)."""
        out = self.predict(x)
        if out.ndim not in (1, 2) or len(self.output_shape) != 1:
            raise ValueError(f"the model's output {self.output_shape} is not a vector of class scores")
        p = probabilities(np.atleast_2d(out), ends_in_log_softmax(self.graph))
        return p[0] if out.ndim == 1 else p

    def classify(self, x: Any, top: int = 5) -> list:
        """The `top` most probable classes as (class name, probability) pairs, most probable
        first: a list of pairs for one image (a path, a PIL image, a uint8 (H, W, C) array or a
        float (C, H, W) input), a list of such lists for a batch. Classes without names in the
        file are called "class <index>"."""
        if isinstance(top, bool) or not isinstance(top, (int, np.integer)) or top < 1:
            raise ValueError(f"top must be an int >= 1, got {top!r}")
        p = self.probabilities(x)
        rows = [[(class_name(self.classes, int(i)), float(row[i])) for i in ranked(row, int(top))]
                for row in np.atleast_2d(p)]
        return rows[0] if p.ndim == 1 else rows

    def run_debug(self, x: Any) -> dict[str, np.ndarray]:
        """Every tensor the engine computes, in PyTorch layout (N, C, H, W) or (N, F), by the
        name of the graph op that writes it (the names of `irnet-infer info` and `convert
        --check`), in graph order. Ops the engine fuses into one step (a convolution with its
        batch_norm, activation, residual add) leave one tensor, named after the last of them."""
        batch, _ = self._to_batch(x)
        tensors = dict(self._engine.run_debug(batch))
        return {name: tensors[t] for t, name in self.tensor_op_names().items() if t in tensors}

    def tensor_op_names(self) -> dict[str, str]:
        """{tensor name in the graph: name of the op that writes it}, in graph order; a tensor
        no op writes (the input) keeps its own name, as does one whose op name is not unique
        (files written before op names were made unique)."""
        counts: dict[str, int] = {}
        for op in self.graph["ops"]:
            counts[op["name"]] = counts.get(op["name"], 0) + 1
        names = {i["name"]: i["name"] for i in self.graph["inputs"]}
        for op in self.graph["ops"]:
            for t in op["outputs"]:
                names[t] = op["name"] if counts[op["name"]] == 1 else t
        return names

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        """{tensor name in the graph: its shape per sample}, (C, H, W) for maps and (F,) for
        vectors, for every tensor of the graph (those the engine fuses away too), as the
        engine inferred them when it planned the network."""
        return {name: tuple(shape) for name, shape in self._engine.tensor_shapes().items()}

    def profile(self, x: Any) -> list[dict]:
        """Seconds spent in each engine step for one run, with the step's description."""
        batch, _ = self._to_batch(x)
        seconds = self._engine.profile(batch)
        steps = self._engine.steps()
        return [dict(step, seconds=s) for step, s in zip(steps, seconds)]

    def steps(self) -> list[dict]:
        """The planned steps: name, type, inputs, output, output_shape, MACs, fused ops."""
        return list(self._engine.steps())

    def summary(self) -> str:
        lines = [f"irnet-infer model {self.path}",
                 f"  arch: {self.producer.get('arch', '?')}   input: {self.input_shape}   "
                 f"output: {self.output_shape}   isa: {self.isa}   threads: {self.num_threads}"]
        binary = floats = 0
        for s in self.steps():
            binary += s["binary_macs"]
            floats += s["float_macs"]
            fused = f" (+{', '.join(s['fused'])})" if s["fused"] else ""
            lines.append(f"  {s['type']:<16} {s['name'] + fused:<40} -> {tuple(s['output_shape'])}")
        total = binary + floats
        share = 100.0 * binary / total if total else 0.0
        lines.append(f"  MACs: {binary / 1e6:.1f} M binary, {floats / 1e6:.1f} M float ({share:.1f}% binary)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Model({self.path!r}, input_shape={self.input_shape}, isa={self.isa!r}, num_threads={self.num_threads})"

    # -- input handling -------------------------------------------------------------------------

    def _check_image_layout(self, image: np.ndarray) -> None:
        """A uint8 array in (C, H, W) layout would be read as a tall, narrow image with H
        channels; say what the layout should be instead."""
        c = self.input_shape[0]
        if image.shape[0] == c and image.shape[2] not in (1, 3, 4):
            raise ValueError(f"uint8 images are (H, W, C); got shape {image.shape}, which looks "
                             f"like (C, H, W): pass image.transpose(1, 2, 0)")

    def _estimate_bytes_per_sample(self) -> int:
        c, h, w = self.input_shape
        biggest = c * h * w
        for s in self._engine.steps():
            n = 1
            for d in s["output_shape"]:
                n *= d
            biggest = max(biggest, n)
        # Live buffers plus per-op scratch (im2col) stay within a few times the largest tensor
        # times the largest kernel window; 32x is a safe, simple bound. A graph that keeps many
        # tensors alive at once is bounded by the engine's own arena size instead.
        return 4 * max(biggest * 32, self._engine.arena_floats_per_sample + 2 * biggest)

    def _to_batch(self, x: Any) -> tuple[np.ndarray, bool]:
        if isinstance(x, (str, os.PathLike)) or is_pil_image(x):
            return preprocess_image(x, self.preprocess_settings)[None], True
        if not isinstance(x, np.ndarray):
            raise TypeError(f"predict takes a numpy array, a PIL image or an image path, got {type(x).__name__}")
        if x.dtype == np.uint8:
            if x.ndim == 3:
                self._check_image_layout(x)
                return preprocess_image(x, self.preprocess_settings)[None], True
            if x.ndim == 4:
                if x.shape[0] == 0:
                    raise ValueError("empty batch: the input has 0 images")
                self._check_image_layout(x[0])
                return np.stack([preprocess_image(i, self.preprocess_settings) for i in x]), False
            raise ValueError(f"a uint8 input must be an (H, W, C) image or (N, H, W, C) images, got shape {x.shape}")
        if x.dtype.kind != "f":
            raise TypeError(f"unsupported input dtype {x.dtype}: use float32 (network input) or uint8 (images)")
        given = x.shape  # errors name the shape the caller passed, not the batched view
        unbatched = x.ndim == 3
        if unbatched:
            x = x[None]
        if x.ndim != 4:
            raise ValueError(f"input must be (N, C, H, W) or (C, H, W), got shape {given}")
        if tuple(x.shape[1:]) != self.input_shape:
            c, h, w = self.input_shape
            want = f"({c}, {h}, {w}) or (N, {c}, {h}, {w})"
            hint = ""
            if x.shape[-1] == c and x.shape[1] != c:
                hint = ("; it looks like (H, W, C): a float array is the network input in "
                        "(C, H, W) layout (transpose it), an image is given as uint8 (H, W, C)")
            raise ValueError(f"input must be {want}, got shape {given}{hint}")
        if x.shape[0] == 0:
            raise ValueError("empty batch: the input has 0 samples")
        if x.shape[0] * self._arena_bytes_per_sample > self.max_batch_bytes:
            raise ValueError(f"batch of {x.shape[0]} needs about {x.shape[0] * self._arena_bytes_per_sample / 2**30:.1f} GiB "
                             f"of engine buffers, over max_batch_bytes={self.max_batch_bytes}; split the batch")
        # astype keeps the memory layout (order "K"): a channels-last array stays channels-last
        # and the engine reads it without a transpose; other strides are copied there.
        x = x if x.dtype == np.float32 else x.astype(np.float32)
        if not np.isfinite(x).all():
            raise ValueError("input contains NaN or Inf; the engine refuses non-finite inputs")
        return x, unbatched
