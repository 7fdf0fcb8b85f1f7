"""The benchmark suite's bookkeeping (pairing with the torch twin, tables, results files, the
report) on made-up numbers: fast, no timing. The benchmarks themselves are not collected here."""
import builtins
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a folder of the repository, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks import report  # noqa: E402
from benchmarks._common import Collector, floor_rows, layer_ops, load_latest, text_table, write_results  # noqa: E402


def fake_collector():
    c = Collector()
    extras = {}

    def add(case, group, threads, impl, isa, layout, seconds, batch=1):
        extra = {}
        extras[(case, threads, impl, isa, layout, batch)] = extra
        c.add(group=group, case=case, label=f"{case} label", threads=threads, impl=impl, isa=isa,
              layout=layout, seconds=seconds, ops=layer_ops("A") if group == "layers" else 10**9,
              extra_info=extra, batch=batch)
    add("A", "layers", 1, "engine", "avx512", "nhwc", 0.001)  # before its twins: paired at the end
    add("A", "layers", 1, "torch", None, "nchw", 0.010)
    add("A", "layers", 1, "torch", None, "channels_last", 0.008)
    add("A", "layers", 1, "engine", "scalar", "nhwc", 0.004)
    add("resnet20", "networks", 2, "torch", None, "nchw", 0.02)
    add("resnet20", "networks", 2, "engine", "avx512", "nchw", 0.002)
    add("B", "layers", 1, "torch", None, "nchw", 0.003)  # no engine partner
    add("resnet20", "networks", 2, "openvino", "avx512", "nchw", 0.003)
    add("A", "layers", 1, "openvino", "avx512", "nchw", 0.005)  # interleaved with the avx512 row only
    add("resnet20", "networks", 2, "engine", "avx512", "nchw", 0.008, batch=8)
    add("resnet20", "networks", 2, "openvino", None, "nchw", 0.016, batch=8)  # pairs with batch 8 only
    c.note("OpenVINO rows are missing: test")
    return c, extras


def test_pairing_uses_the_faster_torch_layout_and_fills_extra_info():
    c, extras = fake_collector()
    rows = c.rows()
    a = next(r for r in rows if r["case"] == "A" and r["isa"] == "avx512")
    assert a["torch_layout"] == "channels_last" and a["speedup"] == pytest.approx(8.0)
    assert extras[("A", 1, "engine", "avx512", "nhwc", 1)]["speedup_vs_torch"] == pytest.approx(8.0)
    assert extras[("A", 1, "engine", "scalar", "nhwc", 1)]["speedup_vs_torch"] == pytest.approx(2.0)
    assert extras[("A", 1, "engine", "avx512", "nhwc", 1)]["gops"] == pytest.approx(layer_ops("A") / 0.001 / 1e9)
    r1 = next(r for r in rows if r["case"] == "resnet20" and r["batch"] == 1)
    r8 = next(r for r in rows if r["case"] == "resnet20" and r["batch"] == 8)
    assert r1["openvino_ratio"] == pytest.approx(1.5) and r1["speedup"] == pytest.approx(10.0)
    assert r8["openvino_ratio"] == pytest.approx(2.0) and r8.get("speedup") is None  # no batch-8 torch row
    assert r8["images_per_s"] == pytest.approx(1000.0)
    assert next(r for r in rows if r["case"] == "B")["speedup"] is None
    assert a["openvino_ratio"] == pytest.approx(5.0)
    assert next(r for r in rows if r["case"] == "A" and r["isa"] == "scalar").get("openvino_ratio") is None
    assert [r["group"] for r in rows][-1] == "networks"
    assert "8.00x" in text_table(rows)


def test_results_files_and_report(tmp_path, monkeypatch):
    c, _ = fake_collector()
    machine = {"cpu": "Test CPU", "isa": "avx512", "isas": ["avx512", "scalar"], "logical_cpus": 2,
               "physical_cores_used": 2, "torch": "x"}
    write_results(c, tmp_path, machine)
    data = load_latest(tmp_path)
    assert data["machine"]["cpu"] == "Test CPU" and len(data["rows"]) == 5
    latest = (tmp_path / "latest.md").read_text()
    assert "| A label | 1 | 1 | avx512 |" in latest and "OpenVINO rows are missing: test" in latest
    assert report.main(["--results", str(tmp_path)]) == 0
    text = (tmp_path / "REPORT.md").read_text()
    assert "Layers per ISA" in text and "Networks" in text and "Test CPU" in text
    assert "OpenVINO / engine" in text and "OpenVINO rows are missing: test" in text
    real_import = builtins.__import__

    def no_matplotlib(name, *a, **k):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib")
        return real_import(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    (tmp_path / report.CHART).unlink(missing_ok=True)
    assert report.main(["--results", str(tmp_path)]) == 0
    assert "matplotlib is not installed" in (tmp_path / "REPORT.md").read_text()
    assert not (tmp_path / report.CHART).exists()


def test_floor_of_one_thread_network_rows(tmp_path):
    # 3 G binary MACs at 600 G/s and 0.1 G float MACs at 50 G/s: 5 ms + 2 ms = 7 ms per image.
    c = Collector()
    for threads, impl, seconds in ((1, "engine", 0.028), (1, "openvino", 0.035), (2, "engine", 0.016)):
        c.add(group="networks", case="resnet18", label="resnet18 224x224", threads=threads, impl=impl,
              isa="avx2", layout="nchw", seconds=seconds, ops=2 * 3.1e9 * 2, extra_info={}, batch=2,
              macs_per_image=(3e9, 1e8) if impl == "engine" else None)
    ceilings = {"avx2_nibble_bit_macs": 600e9, "avx2_hs_bit_macs": 500e9, "avx2_lut_bit_macs": 300e9,
                "popcnt64_bit_macs": 200e9, "fma_f32_macs": 50e9}
    (f,) = floor_rows(c.rows(), ceilings)  # the 2-thread row has no floor: the ceilings are one core's
    assert f["floor_s"] == pytest.approx(0.014) and f["engine_over_floor"] == pytest.approx(2.0)
    assert f["openvino_over_floor"] == pytest.approx(2.5)
    assert floor_rows(c.rows(), {"reason": "no compiler"}) == []
    write_results(c, tmp_path, {"cpu": "Test CPU", "isa": "avx2", "ceilings": ceilings})
    assert report.main(["--results", str(tmp_path)]) == 0
    text = (tmp_path / "REPORT.md").read_text()
    assert "## Floor (1 thread)" in text and "| resnet18 224x224 | 2 | 28.000 | 14.000 | 2.00 | 2.50 |" in text


def test_report_without_results(tmp_path, capsys):
    assert report.main(["--results", str(tmp_path)]) == 2
    assert "pytest benchmarks --benchmark-only" in capsys.readouterr().err


def test_plain_pytest_does_not_collect_benchmarks():
    tomllib = pytest.importorskip("tomllib")
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert cfg["tool"]["pytest"]["ini_options"]["testpaths"] == ["tests"]


def test_benchmarks_without_torch_fail_saying_what_to_install(tmp_path):
    import os
    import subprocess
    # A `torch` package that cannot be imported stands in for a machine without torch.
    (tmp_path / "torch").mkdir()
    (tmp_path / "torch" / "__init__.py").write_text("raise ImportError('No module named torch')\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(ROOT)]))
    r = subprocess.run([sys.executable, "-m", "pytest", "benchmarks", "--benchmark-only", "-q", "-p",
                        "no:cacheprovider"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    out = (r.stdout + r.stderr).strip()
    assert r.returncode != 0, out
    assert out.count("\n") == 0 and "pip install" in out and "torch" in out, out
