"""This CPU's one-core ceilings, measured by benchmarks/ceilings.cpp (compiled here with the
system C++ compiler, run once per session): binary MACs per second of the AVX2 binary GEMM's
instruction mix from registers (and with the kernel's operand loads from L1, and of simpler
popcount loops), AVX2 fp32 FMA MACs per second, and int16 multiply-add MACs per second
(vpmaddwd: what an exact integer stem could use on a CPU without VNNI). Every results table is
printed with them, so a figure can be read as a fraction of what the core can do. Returns {}
with a "reason" where they cannot be measured (not x86-64, no compiler, no AVX2)."""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

SOURCE = Path(__file__).resolve().parent / "ceilings.cpp"


def measure() -> dict:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return {"reason": f"peak loops are written for x86-64 AVX2, not {platform.machine()}"}
    cxx = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++") or shutil.which("clang++")
    if not cxx:
        return {"reason": "no C++ compiler found to build benchmarks/ceilings.cpp"}
    try:
        import irnet_infer
        if "avx2" not in irnet_infer.available_isas():
            return {"reason": "this CPU has no AVX2"}
    except ImportError:
        pass
    with tempfile.TemporaryDirectory() as d:
        exe = Path(d) / "ceilings"
        try:
            subprocess.run([cxx, "-O2", "-std=c++17", str(SOURCE), "-o", str(exe)], check=True,
                           capture_output=True, timeout=120)
            out = subprocess.run([str(exe)], check=True, capture_output=True, timeout=120, text=True).stdout
            return json.loads(out)
        except (subprocess.SubprocessError, OSError, ValueError) as e:
            return {"reason": f"peak loops failed: {e}"}


def describe(c: dict) -> str:
    if not c or "reason" in c:
        return f"CPU ceilings not measured ({(c or {}).get('reason', 'not run')})"

    def g(key, digits=0):
        return f"{c[key] / 1e9:,.{digits}f} G"

    # Results saved by earlier versions lack the keys measured since (nibble mix, L1, madd).
    binary = []
    if "avx2_nibble_bit_macs" in c:
        binary.append(f"{g('avx2_nibble_bit_macs')} bit-MAC/s (the AVX2 binary GEMM's mix, nibble-split XOR + "
                      f"LUT, from registers")
        if "avx2_nibble_l1_bit_macs" in c:
            binary.append(f"with the kernel's loads from L1 {g('avx2_nibble_l1_bit_macs')}")
        binary.append(f"its former carry-save mix {g('avx2_hs_bit_macs')}, one LUT per vector {g('avx2_lut_bit_macs')}")
    else:
        binary.append(f"{g('avx2_hs_bit_macs')} bit-MAC/s (AVX2 XOR + carry-save + nibble-LUT mix, from registers; "
                      f"one LUT per vector {g('avx2_lut_bit_macs')}")
    text = (f"one-core ceilings (best of 40 peak-loop runs): binary {'; '.join(binary)}, scalar popcnt "
            f"{g('popcnt64_bit_macs')}), fp32 FMA {g('fma_f32_macs', 1)} MAC/s (AVX2)")
    if "madd_i16_macs" in c:
        text += f", int16 multiply-add {g('madd_i16_macs', 1)} MAC/s (vpmaddwd)"
    return text
