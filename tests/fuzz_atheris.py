"""Coverage-guided fuzzing of the .irb loader and engine with atheris (not run by pytest/CI).

    pip install atheris
    python tests/fuzz_atheris.py -atheris_runs=200000 -max_len=1000000 [CORPUS_DIR]

Each input is a file's bytes: loaded with `irnet_infer.Model` and, if it loads, run once. Any
exception other than IrbFormatError, or a crash, is a finding (atheris writes crash-<hash>;
replay with `python tests/fuzz_atheris.py crash-<hash>`). The corpus starts from the seed models
of tests/fuzz_cases.py, and a custom mutator mixes libFuzzer's byte mutations with the structured
ones of fuzz_cases.mutate (graph JSON edits, tensor edits with a valid content hash), so deep
checks are reached. See docs/ROBUSTNESS.md for C++ coverage and sanitizer builds.
"""
from __future__ import annotations

import os
import random
import sys
import tempfile

import atheris

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

with atheris.instrument_imports():
    import numpy as np

    import irnet_infer
    import irnet_infer.format
    import irnet_infer.model
    from irnet_infer import IrbFormatError

import fuzz_cases  # noqa: E402

_FD, _PATH = tempfile.mkstemp(suffix=".irb", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
os.close(_FD)


def test_one_input(data: bytes) -> None:
    with open(_PATH, "wb") as f:
        f.write(data)
    try:
        model = irnet_infer.Model(_PATH, num_threads=1, max_batch_bytes=64 * 2**20)
    except IrbFormatError:
        return
    x = np.zeros((1, *model.input_shape), np.float32)
    try:
        model.predict(x)
    except ValueError as e:
        if "max_batch_bytes" not in str(e):
            raise


def custom_mutator(data: bytes, max_size: int, seed: int) -> bytes:
    r = random.Random(seed)
    if r.random() < 0.5:
        try:
            fuzz_cases.split(data)  # still a well-formed file: mutate its structure
            out = fuzz_cases.mutate(data, seed)
            return out[:max_size]
        except Exception:
            pass
    return atheris.Mutate(data, max_size)


def main() -> None:
    args = sys.argv[:]
    corpus = [a for a in args[1:] if not a.startswith("-")]
    if not corpus:  # a fresh corpus directory
        corpus = [tempfile.mkdtemp(prefix="irb_corpus_")]
        args.append(corpus[0])
    if os.path.isdir(corpus[0]) and not os.listdir(corpus[0]):  # start from the seed models
        fuzz_cases.make_seeds(corpus[0], with_torch=os.environ.get("IRNET_FUZZ_TORCH_SEEDS", "1") == "1")
    atheris.Setup(args, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
