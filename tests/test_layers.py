"""tools/check_layers.py, the CI check that C++ includes only look down a layer: it passes on
the real tree and fails, naming the file, line and include, on copies with an upward include,
an unranked folder, or an upward include spelled relative to the including file."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "check_layers.py"


def run_check(csrc: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), str(csrc)], capture_output=True, text=True)


@pytest.fixture
def csrc_copy(tmp_path):
    dst = tmp_path / "csrc"
    shutil.copytree(ROOT / "csrc", dst)
    return dst


def plant(path: Path, line: str) -> int:
    """Adds `line` after the first line of `path`; returns its line number (1-based)."""
    lines = path.read_text().splitlines(keepends=True)
    lines.insert(1, line + "\n")
    path.write_text("".join(lines))
    return 2


def test_real_tree_passes():
    r = run_check(ROOT / "csrc")
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("victim,include,layers", [
    ("kernels/bgemm.h", '#include "ops/op.h"', "(ops), a layer above its own (kernels)"),
    ("model/desc.h", '#include "graph/plan.h"', "(graph), a layer above its own (model)"),
    ("ops/op.h", '#include "graph/plan.h"', "(graph), a layer above its own (ops)"),
    ("kernels/config.cpp", '#  include <model/desc.h>', "(model), a layer above its own (kernels)"),
    ("common.h", '#include "kernels/config.h"', "(kernels), a layer above its own (base)"),
])
def test_upward_include_fails(csrc_copy, victim, include, layers):
    assert run_check(csrc_copy).returncode == 0  # the copy itself is clean
    line = plant(csrc_copy / victim, include)
    r = run_check(csrc_copy)
    assert r.returncode == 1
    name = include.split("include", 1)[1].strip().strip('<>"')
    assert f'csrc/{victim}:{line}: includes "{name}" {layers}' in r.stderr, r.stderr


def test_include_relative_to_the_file_is_resolved(csrc_copy):
    # A quoted include is looked up beside the including file first: "../ops/op.h" from a
    # kernel reaches the ops layer as surely as "ops/op.h" does.
    line = plant(csrc_copy / "kernels" / "bitpack.h", '#include "../ops/op.h"')
    r = run_check(csrc_copy)
    assert r.returncode == 1
    assert f'csrc/kernels/bitpack.h:{line}: includes "../ops/op.h" (ops)' in r.stderr, r.stderr


def test_downward_and_same_layer_includes_pass(csrc_copy):
    plant(csrc_copy / "graph" / "plan.h", '#include "kernels/bgemm.h"')
    plant(csrc_copy / "ops" / "op.h", '#include "ops/parallel.h"')
    plant(csrc_copy / "kernels" / "bgemm.h", '#include <vector>')
    r = run_check(csrc_copy)
    assert r.returncode == 0, r.stderr


def test_unranked_folder_fails(csrc_copy):
    (csrc_copy / "extras").mkdir()
    (csrc_copy / "extras" / "thing.h").write_text("#pragma once\n")
    r = run_check(csrc_copy)
    assert r.returncode == 1
    assert "csrc/extras: not ranked in a layer" in r.stderr, r.stderr


def test_unranked_file_fails(csrc_copy):
    (csrc_copy / "helpers.h").write_text("#pragma once\n")
    r = run_check(csrc_copy)
    assert r.returncode == 1
    assert "csrc/helpers.h: not ranked in a layer" in r.stderr, r.stderr
