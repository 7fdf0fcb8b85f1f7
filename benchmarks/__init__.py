"""pytest-benchmark suite: the engine against PyTorch, layer by layer and whole networks.

    pytest benchmarks --benchmark-only      # writes benchmarks/results/latest.{json,md}
    python -m benchmarks.report             # benchmarks/results/REPORT.md + comparison.png

Not collected by a plain `pytest` (the project's testpaths is tests/). See docs/PERFORMANCE.md.
"""
