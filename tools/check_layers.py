"""Fails when a C++ file in csrc/ includes a header of a layer above its own.

The engine's layers only look down (docs/ARCHITECTURE.md):

    base headers (csrc/common.h, csrc/aligned.h)
    < kernels < model < ops < graph < bindings (csrc/bindings/: the Python module, python.cpp,
    and the Python-free runtime, runtime/)

A file may include headers of its own layer and of the layers below it. Every folder and file
directly under csrc/ must be ranked in LAYERS: a new one is an error until it is placed, so no
code can sit outside the order. Usage: python tools/check_layers.py [CSRC_DIR] (default: the
csrc/ next to this script's folder); exit status 1 and one line per problem when it fails.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

# Entry directly under csrc/ (a folder, or a file) -> rank. Higher ranks may include lower.
LAYERS = {
    "common.h": 0,
    "aligned.h": 0,
    "kernels": 1,
    "model": 2,
    "ops": 3,
    "graph": 4,
    "bindings": 5,
}
LAYER_NAMES = {0: "base", 1: "kernels", 2: "model", 3: "ops", 4: "graph", 5: "bindings"}
SOURCE_SUFFIXES = {".h", ".hpp", ".cpp", ".cc", ".inc"}
INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def rank_of(path: Path, csrc: Path) -> int | None:
    """The layer rank of a file in csrc/, or None when its top-level entry is not ranked."""
    return LAYERS.get(path.relative_to(csrc).parts[0])


def resolve(include: str, quoted: bool, source: Path, csrc: Path) -> Path | None:
    """The file in csrc/ an include names, as the compiler finds it (a quoted include is
    looked up beside the including file first, then under csrc/, the include directory);
    None for a header from outside csrc/ (the standard library, pybind11, ...)."""
    candidates = ([source.parent / include] if quoted else []) + [csrc / include]
    for c in candidates:
        if c.is_file():
            c = c.resolve()
            if c.is_relative_to(csrc):
                return c
    return None


def check(csrc: Path) -> list[str]:
    csrc = csrc.resolve()
    problems = []
    for entry in sorted(csrc.iterdir()):
        if entry.name not in LAYERS:
            problems.append(f"{entry.relative_to(csrc.parent)}: not ranked in a layer: add "
                            f"'{entry.name}' to LAYERS in tools/check_layers.py")
    for source in sorted(csrc.rglob("*")):
        if source.suffix not in SOURCE_SUFFIXES or not source.is_file():
            continue
        own = rank_of(source, csrc)
        if own is None:
            continue  # reported above
        lines = source.read_text(encoding="utf-8", errors="replace").splitlines()
        for number, line in enumerate(lines, 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            target = resolve(m.group(2), m.group(1) == '"', source, csrc)
            if target is None:
                continue
            theirs = rank_of(target, csrc)
            if theirs is not None and theirs > own:
                problems.append(
                    f"{source.relative_to(csrc.parent)}:{number}: includes \"{m.group(2)}\" "
                    f"({LAYER_NAMES[theirs]}), a layer above its own ({LAYER_NAMES[own]})")
    return problems


def main(argv: list[str]) -> int:
    csrc = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent / "csrc"
    if not csrc.is_dir():
        print(f"check_layers: {csrc} is not a directory", file=sys.stderr)
        return 2
    problems = check(csrc)
    for p in problems:
        print(p, file=sys.stderr)
    if problems:
        print(f"check_layers: {len(problems)} problem(s); layers only look down "
              "(base < kernels < model < ops < graph < bindings)", file=sys.stderr)
        return 1
    print(f"check_layers: every #include in {csrc} looks down a layer")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
