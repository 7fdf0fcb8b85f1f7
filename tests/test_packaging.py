"""What a wheel installs, and the converter reachable as `irnet-infer convert`."""
import subprocess
import sys
from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_claims_no_generic_top_level_name():
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert all(p == "irnet_infer" or p.startswith("irnet_infer.") for p in setuptools["packages"])
    # The checkout's export/ is what installs as irnet_infer.export.
    assert setuptools["package-dir"]["irnet_infer.export"] == "export"
    assert (ROOT / setuptools["package-dir"]["irnet_infer.export"] / "convert.py").is_file()


def _cli(*args, code_before=""):
    code = f"{code_before}import sys; from irnet_infer.__main__ import main; sys.exit(main({list(args)!r}))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_convert_command_hands_every_argument_to_the_converter():
    r = _cli("convert", "--help")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("usage: irnet-infer convert") and "--arch" in r.stdout


def test_convert_command_without_torch_says_what_to_install():
    # torch made unimportable in the child, as in a runtime-only install.
    r = _cli("convert", "a.pth", "b.irb", code_before="import sys; sys.modules['torch'] = None; ")
    assert r.returncode == 2
    assert "needs PyTorch" in r.stderr and "pip install" in r.stderr
    assert "Traceback" not in r.stderr


def test_other_commands_still_refuse_unknown_arguments():
    r = _cli("info", "m.irb", "--bogus")
    assert r.returncode == 2 and "unrecognized arguments: --bogus" in r.stderr


def test_digits_without_scikit_learn_names_its_extra():
    code = ("import sys; sys.modules['sklearn'] = None; sys.modules['sklearn.datasets'] = None\n"
            "from irnet_infer.datasets import digits_images\n"
            "try:\n    digits_images()\nexcept ImportError as e:\n    print(e)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert "pip install 'irnet-infer[digits]'" in r.stdout, r.stdout + r.stderr
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(d.startswith("scikit-learn") for d in extras["digits"])
