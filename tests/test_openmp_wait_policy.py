"""The engine's OpenMP workers sleep at barriers (OMP_WAIT_POLICY=PASSIVE: no spinning) unless the
user chose a policy or a spin count, and the variable does not outlive the import (OpenMP
runtimes loaded later, such as torch's own libgomp, keep their defaults). The oracle is the
OpenMP runtime itself: with OMP_DISPLAY_ENV=VERBOSE libgomp prints the settings it started
with, among them how long a thread spins at a barrier before it sleeps (GOMP_SPINCOUNT)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRINT_ENV_AFTER = "import os, irnet_infer; print(os.environ.get('OMP_WAIT_POLICY'))"


def _spin_count_and_env_after(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(OMP_DISPLAY_ENV="VERBOSE", PYTHONPATH=str(ROOT), **extra)
    out = subprocess.run([sys.executable, "-c", PRINT_ENV_AFTER], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=120, check=True)
    spin = re.search(r"GOMP_SPINCOUNT = '(\d+)'", out.stderr)
    if not spin:
        pytest.skip("the OpenMP runtime is not libgomp (no GOMP_SPINCOUNT in its settings)")
    return int(spin.group(1)), out.stdout.strip()


def test_no_spinning_by_default_and_not_left_in_the_environment():
    spin, after = _spin_count_and_env_after()
    assert spin == 0
    assert after == "None"


def test_a_users_policy_is_kept():
    spin, after = _spin_count_and_env_after(OMP_WAIT_POLICY="ACTIVE")
    assert spin > 300000  # active: spin (practically) forever
    assert after == "ACTIVE"


def test_a_users_spin_count_is_kept():
    spin, after = _spin_count_and_env_after(GOMP_SPINCOUNT="300000")
    assert spin == 300000
    assert after == "None"
