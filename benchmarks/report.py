"""`python -m benchmarks.report`: benchmarks/results/REPORT.md with the tables of the latest
`pytest benchmarks --benchmark-only` run and a PNG chart of OpenVINO's and PyTorch's time
relative to the engine's per layer and per network (CPU model, ISA and ceilings in the caption). Without matplotlib
(`pip install -e '.[bench]'`) the report has the tables only and says so."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks._common import RESULTS_DIR, floor_markdown, load_latest, machine_line, markdown_table

CHART = "comparison.png"


def _best_rows(rows, group):
    """The best-ISA engine row per (case, threads, batch) of a group, in table order."""
    best = {}
    for r in rows:
        if r["group"] != group or r.get("seconds") is None:
            continue
        key = (r["case"], r["threads"], r.get("batch", 1))
        # the main row is the fastest ISA (the default); per-ISA rows are slower
        if key not in best or r["seconds"] < best[key]["seconds"]:
            best[key] = r
    return list(best.values())


def draw_chart(data: dict, path: Path) -> bool:
    """Writes the chart: per layer / network, the time of OpenVINO and of PyTorch relative to
    the engine's (engine = 1, log scale); False when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows, m = data["rows"], data["machine"]
    groups = [(g, t) for g, t in (("layers", "3x3 layers (batch 1)"), ("networks", "networks"))
              if _best_rows(rows, g)]
    if not groups:
        return False
    fig, axes = plt.subplots(len(groups), 1, figsize=(13, 4.6 * len(groups)), squeeze=False)
    for ax, (group, title) in zip(axes[:, 0], groups):
        sel = _best_rows(rows, group)
        labels = [f"{r['label'].split(' ')[0]}\n{r['threads']}t" + (f" b{r.get('batch', 1)}" if group == "networks" else "")
                  for r in sel]
        series = [("OpenVINO", [r.get("openvino_ratio") for r in sel]),
                  ("PyTorch fp32", [r.get("speedup") for r in sel])]
        width = 0.4
        for i, (name, values) in enumerate(series):
            xs = [j + (i - 0.5) * width for j in range(len(sel))]
            ys = [v or 0 for v in values]
            bars = ax.bar(xs, ys, width, label=f"{name} time / engine time")
            for b, y in zip(bars, ys):
                if y:
                    ax.annotate(f"{y:.2g}", (b.get_x() + b.get_width() / 2, y), ha="center", va="bottom",
                                fontsize=6, xytext=(0, 1), textcoords="offset points")
        ax.axhline(1.0, color="black", lw=1, ls="--", label="engine (irnet-infer) = 1")
        ax.set_yscale("log")
        ax.set_xticks(range(len(sel)))
        ax.set_xticklabels(labels, fontsize=7)
        ax.set_ylabel("time relative to the engine (higher = engine faster)")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.suptitle("irnet-infer vs OpenVINO vs PyTorch (medians, same run, interleaved)", fontsize=11)
    fig.text(0.5, 0.005, machine_line(m), ha="center", fontsize=6, wrap=True)
    fig.tight_layout(rect=(0, 0.04, 1, 0.96))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def build_report(data: dict, directory: Path = RESULTS_DIR) -> str:
    m, rows = data["machine"], data["rows"]
    chart = draw_chart(data, directory / CHART)
    parts = [
        "# irnet-infer benchmark report", "",
        f"Run of {data['created']}. Machine: {machine_line(m)}.", "",
        "Medians. GOPS = 2 x MACs / time (networks: the MACs of `Model.steps()`, binary and "
        "float). OpenVINO / engine and speedup vs torch = the other's median / the engine's, "
        "measured in the same run, interleaved (OpenVINO with every network and best-ISA layer, "
        "PyTorch with every network up to batch 8); for layers PyTorch gets the faster of NCHW "
        "and channels_last.", "",
    ]
    parts += [f"Note: {n}" for n in data.get("notes", [])] + ([""] if data.get("notes") else [])
    if chart:
        parts += [f"![time relative to the engine]({CHART})", "",
                  f"*Time of OpenVINO and PyTorch fp32 relative to irnet-infer per layer and per "
                  f"network, {m.get('cpu', '?')}, engine ISA {m.get('isa', '?')}.*", ""]
    else:
        parts += ["> No chart: matplotlib is not installed (`pip install -e '.[bench]'`), so this "
                  "report has the tables only.", ""]
    best_isa = m.get("isa")
    sections = [
        ("Layers, 3x3 stride 1 pad 1, batch 1",
         [r for r in rows if r["group"] == "layers" and r.get("isa") in (best_isa, None)]),
        ("Layers per ISA (engine forced to each kernel set)",
         [r for r in rows if r["group"] == "layers" and r.get("isa") not in (best_isa, None)]),
        ("Networks (batch 1, 8, 32)", [r for r in rows if r["group"] == "networks"]),
    ]
    for title, sel in sections:
        if sel:
            parts += [f"## {title}", "", markdown_table(sel), ""]
    parts += floor_markdown(rows, m.get("ceilings", {}))
    return "\n".join(parts)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__.split("\n\n")[0],
                                epilog="example:\n  pytest benchmarks --benchmark-only && python -m benchmarks.report",
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, default=RESULTS_DIR, help=f"results folder (default {RESULTS_DIR})")
    args = p.parse_args(argv)
    try:
        data = load_latest(args.results)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    text = build_report(data, args.results)
    out = args.results / "REPORT.md"
    out.write_text(text + "\n")
    print(f"wrote {out}" + ("" if (args.results / CHART).exists() else " (tables only: no matplotlib)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
