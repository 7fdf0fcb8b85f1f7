"""Shared pieces of the benchmark suite: the session's measurements, pairing each engine
benchmark with its PyTorch twin, machine details, and the results table (text, markdown, JSON).
No pytest or torch imports here, so `python -m benchmarks.report` reuses it."""
from __future__ import annotations

import datetime
import json
import os
import platform
from pathlib import Path

from benchmarks.ceilings import describe

RESULTS_DIR = Path(__file__).resolve().parent / "results"

# name -> (H, W, Cin, Cout); 3x3, stride 1, zero padding 1, batch 1 (issue 3)
LAYERS = {
    "A": (56, 56, 64, 64),
    "B": (28, 28, 128, 128),
    "C": (14, 14, 256, 256),
    "D": (7, 7, 512, 512),
    "E": (32, 32, 16, 16),
    "F": (16, 16, 32, 32),
    "G": (8, 8, 64, 64),
}
PER_ISA_LAYERS = ("A", "B", "C", "D")
# name -> input size (C, H, W)
NETWORKS = {"resnet18": (3, 224, 224), "resnet20": (3, 32, 32), "vgg_small": (3, 32, 32),
            # 1W/32A: binary weights expanded to floats at load, float activations
            "resnet20_1w32a": (3, 32, 32), "resnet18_1w32a": (3, 224, 224)}


def layer_ops(name: str) -> int:
    """2 * H * W * Cin * Cout * kh * kw for a 3x3 stride-1 padded layer."""
    h, w, cin, cout = LAYERS[name]
    return 2 * h * w * cin * cout * 9


def layer_label(name: str) -> str:
    h, w, cin, cout = LAYERS[name]
    return f"{name} {h}x{w} {cin}->{cout}"


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


_CEILINGS: dict = {}


def ceilings(again: bool = False) -> dict:
    """The CPU's one-core ceilings (benchmarks/ceilings.py), measured at the first call; with
    `again` measured once more and each kept at the faster of the two (a shared machine can
    only slow a peak loop down), as the suite does at its end."""
    if not _CEILINGS or again:
        from benchmarks.ceilings import measure
        new = measure()
        for key, value in new.items():
            if key != "reason" and isinstance(_CEILINGS.get(key), float):
                value = max(value, _CEILINGS[key])
            _CEILINGS[key] = value
    return dict(_CEILINGS)


def machine_info() -> dict:
    import irnet_infer
    from irnet_infer.model import default_num_threads
    info = {"cpu": cpu_model(), "machine": platform.machine(), "system": platform.system(),
            "logical_cpus": os.cpu_count(), "physical_cores_used": default_num_threads(),
            "isas": list(irnet_infer.available_isas()), "isa": irnet_infer.available_isas()[0],
            "irnet_infer": irnet_infer.__version__, "python": platform.python_version()}
    try:
        import torch
        info["torch"] = torch.__version__
    except ImportError:
        pass
    try:
        import openvino
        info["openvino"] = openvino.__version__
    except ImportError:
        pass
    info["ceilings"] = ceilings()
    if hasattr(os, "getloadavg"):
        info["load_average"] = [round(v, 2) for v in os.getloadavg()]
    return info


class Collector:
    """Medians of every benchmark in this session. Engine rows are paired at the end with the
    fastest torch row and the OpenVINO row of the same (group, case, threads, batch), so the
    twins are always measured in the same run, whatever order pytest ran them in. `notes` holds
    why a kind of row is missing (e.g. openvino not installed)."""

    def __init__(self):
        self.entries = []
        self.notes = []

    def note(self, text: str):
        if text not in self.notes:
            self.notes.append(text)

    def add(self, *, group, case, label, threads, impl, isa, layout, seconds, ops, extra_info, batch=1,
            macs_per_image=None):
        """`macs_per_image`: (binary, float) MACs of one image, for the floor (floor_rows)."""
        e = {"group": group, "case": case, "label": label, "threads": threads, "batch": batch,
             "impl": impl, "isa": isa, "layout": layout, "seconds": seconds, "ops": ops,
             "gops": ops / seconds / 1e9 if seconds > 0 else None,
             "images_per_s": batch / seconds if seconds > 0 else None}
        if macs_per_image is not None:
            e["binary_macs"], e["float_macs"] = macs_per_image
        extra_info.update({"gops": e["gops"], "ops": ops, "median_s": seconds, "threads": threads,
                           "batch": batch, "impl": impl, "isa": isa, "layout": layout, "case": case})
        e["_extra"] = extra_info
        self.entries.append(e)
        self.pair()  # fills speedup at once when the twin already ran
        return e

    def _partner(self, e, impl):
        # An OpenVINO row carries the ISA of the engine row it ran interleaved with.
        rows = [t for t in self.entries if t["impl"] == impl and t["group"] == e["group"]
                and t["case"] == e["case"] and t["threads"] == e["threads"]
                and t.get("batch", 1) == e.get("batch", 1)
                and (impl != "openvino" or t.get("isa") in (None, e["isa"]))]
        return min(rows, key=lambda t: t["seconds"]) if rows else None

    def twin(self, e):
        return self._partner(e, "torch")

    def pair(self):
        for e in self.entries:
            if e["impl"] != "engine":
                continue
            t = self.twin(e)
            if t is not None:
                e["torch_seconds"], e["torch_layout"], e["torch_gops"] = t["seconds"], t["layout"], t["gops"]
                e["speedup"] = t["seconds"] / e["seconds"]
                e["_extra"].update({"speedup_vs_torch": e["speedup"], "torch_median_s": t["seconds"],
                                    "torch_gops": t["gops"], "torch_layout": t["layout"]})
            ov = self._partner(e, "openvino")
            if ov is not None:
                e["openvino_seconds"] = ov["seconds"]
                e["openvino_ratio"] = ov["seconds"] / e["seconds"]
                e["_extra"].update({"openvino_median_s": ov["seconds"],
                                    "openvino_over_engine": e["openvino_ratio"]})

    def rows(self) -> list[dict]:
        """One row per engine benchmark (with its twins' numbers), plus torch rows that have no
        engine partner (e.g. when -k selected only torch)."""
        self.pair()
        out = []
        for e in self.entries:
            if e["impl"] == "engine":
                out.append({k: v for k, v in e.items() if not k.startswith("_")})
        paired = {(r["group"], r["case"], r["threads"], r.get("batch", 1)) for r in out}
        for e in self.entries:
            key = (e["group"], e["case"], e["threads"], e.get("batch", 1))
            if e["impl"] == "torch" and key not in paired:
                out.append({"group": e["group"], "case": e["case"], "label": e["label"],
                            "threads": e["threads"], "batch": e.get("batch", 1), "impl": "torch",
                            "isa": None, "layout": None, "seconds": None, "ops": e["ops"], "gops": None,
                            "torch_seconds": e["seconds"], "torch_layout": e["layout"],
                            "torch_gops": e["gops"], "speedup": None})
                paired.add(key)
        order = {"layers": 0, "networks": 1}
        cases = list(LAYERS) + list(NETWORKS)
        isa_rank = {isa: i for i, isa in enumerate(["avx512", "neon", "avx2", "scalar"])}
        out.sort(key=lambda r: (order.get(r["group"], 9), r["threads"] != 1, r["threads"],
                                isa_rank.get(r["isa"], -1) if r["isa"] else -1, r.get("batch", 1),
                                cases.index(r["case"]) if r["case"] in cases else 99))
        return out

    def raw(self) -> list[dict]:
        return [{k: v for k, v in e.items() if not k.startswith("_")} for e in self.entries]


# -- tables ----------------------------------------------------------------------------------

HEADERS = ["bench", "threads", "batch", "isa", "engine ms", "engine img/s", "engine GOPS", "OpenVINO ms",
           "OpenVINO / engine", "torch ms", "torch layout", "torch GOPS", "speedup vs torch"]
_LEFT = {0, 3, 10}


def _fmt(v, spec):
    return "" if v is None else format(v, spec)


def _ms(seconds):
    return _fmt(seconds and seconds * 1e3, ".3f")


def table_cells(rows):
    cells = []
    for r in rows:
        cells.append([r["label"], str(r["threads"]), str(r.get("batch", 1)), r["isa"] or "",
                      _ms(r["seconds"]), _fmt(r.get("images_per_s"), ",.0f"), _fmt(r["gops"], ",.1f"),
                      _ms(r.get("openvino_seconds")),
                      _fmt(r.get("openvino_ratio"), ".2f") + ("x" if r.get("openvino_ratio") else ""),
                      _ms(r.get("torch_seconds")), r.get("torch_layout") or "", _fmt(r.get("torch_gops"), ",.1f"),
                      _fmt(r.get("speedup"), ".2f") + ("x" if r.get("speedup") else "")])
    return cells


def text_table(rows) -> str:
    cells = table_cells(rows)
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, h in enumerate(HEADERS)]

    def line(c):
        return "  ".join(x.ljust(w) if i in _LEFT else x.rjust(w) for i, (x, w) in enumerate(zip(c, widths)))
    return "\n".join([line(HEADERS), line(["-" * w for w in widths])] + [line(c) for c in cells])


def markdown_table(rows) -> str:
    cells = table_cells(rows)
    align = ["---" if i in _LEFT else "---:" for i in range(len(HEADERS))]
    lines = ["| " + " | ".join(HEADERS) + " |", "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(c) + " |" for c in cells]
    return "\n".join(lines)


def binary_ceiling(c: dict):
    """The one-core binary ceiling the floor uses: the mix of the AVX2 binary GEMM that runs
    (saved results from before the nibble-split kernel have only the carry-save mix)."""
    return c.get("avx2_nibble_bit_macs") or c.get("avx2_hs_bit_macs")


def floor_rows(rows, ceilings: dict) -> list[dict]:
    """For every 1-thread engine network row with its MACs: the time the core needs at its
    ceilings, batch x (binary MACs / binary ceiling + float MACs / FMA ceiling), and the
    engine's time over it. Empty without ceilings (not x86-64 AVX2, no compiler)."""
    bits, fma = binary_ceiling(ceilings or {}), (ceilings or {}).get("fma_f32_macs")
    if not bits or not fma:
        return []
    out = []
    for r in rows:
        if r["group"] == "networks" and r["threads"] == 1 and r.get("seconds") and "binary_macs" in r:
            floor = r["batch"] * (r["binary_macs"] / bits + r["float_macs"] / fma)
            out.append({"label": r["label"], "batch": r["batch"], "engine_s": r["seconds"], "floor_s": floor,
                        "engine_over_floor": r["seconds"] / floor,
                        "openvino_over_floor": r["openvino_seconds"] / floor if r.get("openvino_seconds") else None})
    return out


def floor_markdown(rows, ceilings: dict) -> list[str]:
    """The floor table's lines (title included), or none."""
    fl = floor_rows(rows, ceilings)
    if not fl:
        return []
    lines = ["## Floor (1 thread)", "",
             "Floor = batch x (binary MACs / binary ceiling + float MACs / fp32 FMA ceiling), with "
             "this run's one-core ceilings: what the core needs if every MAC ran at its peak loop's "
             "rate.", "",
             "| network | batch | engine ms | floor ms | engine / floor | OpenVINO / floor |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {f['label']} | {f['batch']} | {_ms(f['engine_s'])} | {_ms(f['floor_s'])} | "
              f"{f['engine_over_floor']:.2f} | {_fmt(f['openvino_over_floor'], '.2f')} |" for f in fl]
    return lines + [""]


def machine_line(m: dict) -> str:
    return (f"{m.get('cpu', '?')}, {m.get('physical_cores_used', '?')} cores used "
            f"({m.get('logical_cpus', '?')} logical CPUs), engine ISA {m.get('isa', '?')} "
            f"(available: {', '.join(m.get('isas', []))}), torch {m.get('torch', '?')}, "
            f"openvino {m.get('openvino', 'not installed')}; {describe(m.get('ceilings', {}))}"
            + (f"; load average at the end {m['load_average']} (1, 5, 15 min)" if m.get("load_average") else ""))


def results_markdown(data: dict) -> str:
    rows = data["rows"]
    parts = [f"# irnet-infer benchmark results ({data['created']})", "",
             f"Machine: {machine_line(data['machine'])}.", "",
             "Medians; GOPS = 2 x MACs / time; OpenVINO / engine and speedup vs torch = the other's "
             "median / the engine's, all measured in this run (torch: the faster of NCHW and "
             "channels_last for layers).", ""]
    parts += [f"Note: {n}" for n in data.get("notes", [])] + ([""] if data.get("notes") else [])
    for group, title in (("layers", "Layers (3x3, stride 1, pad 1, batch 1)"),
                         ("networks", "Networks")):
        sel = [r for r in rows if r["group"] == group]
        if sel:
            parts += [f"## {title}", "", markdown_table(sel), ""]
    parts += floor_markdown(rows, data["machine"].get("ceilings", {}))
    return "\n".join(parts)


def write_results(collector: Collector, directory: Path = RESULTS_DIR, machine: dict | None = None) -> Path:
    """results-<stamp>.json and .md, and latest.json / latest.md; returns the JSON path."""
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now()
    data = {"created": now.isoformat(timespec="seconds"), "machine": machine or machine_info(),
            "rows": collector.rows(), "entries": collector.raw(), "notes": list(collector.notes)}
    stamp = now.strftime("%Y%m%d-%H%M%S")
    text = json.dumps(data, indent=2)
    md = results_markdown(data)
    for name in (f"results-{stamp}", "latest"):
        (directory / f"{name}.json").write_text(text)
        (directory / f"{name}.md").write_text(md + "\n")
    return directory / f"results-{stamp}.json"


def load_latest(directory: Path = RESULTS_DIR) -> dict:
    path = directory / "latest.json"
    if not path.exists():
        stamped = sorted(directory.glob("results-*.json"))
        if not stamped:
            raise FileNotFoundError(f"no benchmark results in {directory}: run `pytest benchmarks --benchmark-only` first")
        path = stamped[-1]
    return json.loads(path.read_text())
