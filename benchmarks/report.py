"""`python -m benchmarks.report`: benchmarks/results/REPORT.md with the tables of the latest
`pytest benchmarks --benchmark-only` run and a PNG chart of the engine's speedup over PyTorch
per layer and per network (CPU model and ISA in the caption). Without matplotlib
(`pip install -e '.[bench]'`) the report has the tables only and says so."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks._common import RESULTS_DIR, load_latest, machine_line, markdown_table

CHART = "speedup.png"


def _speedup_series(rows, group):
    """{threads: [(label, speedup)]} for the best-ISA engine rows of a group."""
    best = {}
    for r in rows:
        if r["group"] != group or r.get("speedup") is None:
            continue
        key = (r["case"], r["threads"])
        # the main row is the fastest ISA (the default); per-ISA rows are slower
        if key not in best or r["seconds"] < best[key]["seconds"]:
            best[key] = r
    series = {}
    for r in best.values():
        series.setdefault(r["threads"], []).append((r["label"], r["speedup"], r["isa"]))
    return series


def draw_chart(data: dict, path: Path) -> bool:
    """Writes the speedup chart; False when matplotlib is not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows, m = data["rows"], data["machine"]
    groups = [(g, t) for g, t in (("layers", "3x3 layers (batch 1)"), ("networks", "networks (batch 1)"))
              if any(r["group"] == g and r.get("speedup") for r in rows)]
    if not groups:
        return False
    fig, axes = plt.subplots(1, len(groups), figsize=(6 + 5 * len(groups), 4.8), squeeze=False,
                             gridspec_kw={"width_ratios": [2 if g == "layers" else 1 for g, _ in groups]})
    for ax, (group, title) in zip(axes[0], groups):
        series = _speedup_series(rows, group)
        labels = []
        for pts in series.values():
            for label, _, _ in pts:
                if label not in labels:
                    labels.append(label)
        threads = sorted(series)
        width = 0.8 / max(1, len(threads))
        for i, t in enumerate(threads):
            values = dict((label, s) for label, s, _ in series[t])
            xs = [j + (i - (len(threads) - 1) / 2) * width for j in range(len(labels))]
            ys = [values.get(label, 0) for label in labels]
            bars = ax.bar(xs, ys, width, label=f"{t} thread{'s' if t > 1 else ''}")
            for b, y in zip(bars, ys):
                if y:
                    ax.annotate(f"{y:.1f}x", (b.get_x() + b.get_width() / 2, y), ha="center", va="bottom",
                                fontsize=7, xytext=(0, 2), textcoords="offset points")
        ax.axhline(1.0, color="gray", lw=0.8, ls="--")
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels([label.replace(" ", "\n", 1) for label in labels], fontsize=8)
        ax.set_ylabel("speedup vs PyTorch fp32 (x)")
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.suptitle("irnet-infer speedup over PyTorch (medians, same run)", fontsize=11)
    fig.text(0.5, 0.005, machine_line(m), ha="center", fontsize=7)
    fig.tight_layout(rect=(0, 0.03, 1, 0.95))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True


def build_report(data: dict, directory: Path = RESULTS_DIR) -> str:
    m, rows = data["machine"], data["rows"]
    chart = draw_chart(data, directory / CHART)
    parts = [
        "# irnet-infer benchmark report", "",
        f"Run of {data['created']}. Machine: {machine_line(m)}.", "",
        "Medians of pytest-benchmark runs. GOPS = 2 x MACs / time (networks: the MACs of "
        "`Model.steps()`, binary and float). Speedup = PyTorch median / engine median, both "
        "measured in the same run; for layers PyTorch gets the faster of NCHW and channels_last.", "",
    ]
    if chart:
        parts += [f"![speedup over PyTorch]({CHART})", "",
                  f"*Speedup of irnet-infer over PyTorch fp32 per layer and per network, "
                  f"{m.get('cpu', '?')}, engine ISA {m.get('isa', '?')}.*", ""]
    else:
        parts += ["> No chart: matplotlib is not installed (`pip install -e '.[bench]'`), so this "
                  "report has the tables only.", ""]
    best_isa = m.get("isa")
    sections = [
        ("Layers, 3x3 stride 1 pad 1, batch 1",
         [r for r in rows if r["group"] == "layers" and r.get("isa") in (best_isa, None)]),
        ("Layers per ISA (engine forced to each kernel set)",
         [r for r in rows if r["group"] == "layers" and r.get("isa") not in (best_isa, None)]),
        ("Networks, batch 1", [r for r in rows if r["group"] == "networks"]),
    ]
    for title, sel in sections:
        if sel:
            parts += [f"## {title}", "", markdown_table(sel), ""]
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
