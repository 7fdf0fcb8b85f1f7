"""Fixtures and hooks of the benchmark suite. Each test measures one side (engine or torch) of
one case; the session's Collector pairs them at the end, fills `speedup_vs_torch` into every
engine benchmark's extra_info (before pytest-benchmark saves its own JSON), prints one table and
writes benchmarks/results/latest.{json,md} (+ a timestamped copy)."""
import os
import statistics
import time

import pytest

from benchmarks._common import Collector, ceilings, machine_info, machine_line, text_table, write_results

_COLLECTOR = Collector()


def timing(**overrides):
    """pytest-benchmark marker options: short runs by default (the whole suite in a few
    minutes on 2 cores); IRNET_BENCH_MAX_TIME / IRNET_BENCH_MIN_ROUNDS lengthen them."""
    opts = {"min_rounds": int(os.environ.get("IRNET_BENCH_MIN_ROUNDS", "5")),
            "max_time": float(os.environ.get("IRNET_BENCH_MAX_TIME", "0.25")),
            "warmup": True, "warmup_iterations": 3}
    opts.update(overrides)
    return opts


def thread_counts():
    """1 and all physical cores (what the engine uses by default)."""
    from irnet_infer.model import default_num_threads
    n = default_num_threads()
    return [1] if n == 1 else [1, n]


NEEDS = ("the benchmarks compare with PyTorch and need torch and pytest-benchmark: "
         "pip install -e '.[bench]' (CPU-only torch: see the README)")


def pytest_configure(config):
    # Without torch every benchmark would be skipped and the run would pass with nothing
    # measured; say what to install instead, in one line, and fail.
    try:
        import pytest_benchmark  # noqa: F401
        import torch  # noqa: F401
    except ImportError:
        raise pytest.UsageError(NEEDS) from None


@pytest.fixture(scope="session")
def collector():
    ceilings()  # the CPU's peak loops run once, before the first measurement
    return _COLLECTOR


def interleaved(benchmark, engine_call, args, others: dict):
    """Times `engine_call(*args)` with pytest-benchmark and each of `others` (name -> callable
    taking the same args) by the wall clock, one call of each per round, in rounds that
    alternate the order, so every implementation sees the same phases of a shared machine.
    Rounds: enough to fill IRNET_BENCH_MAX_TIME (at least IRNET_BENCH_MIN_ROUNDS), estimated
    from warm-up calls. Returns (engine result, {name: median seconds})."""
    opts = timing()
    calls = {"engine": engine_call, **others}
    round_s = 0.0
    for call in calls.values():
        for _ in range(opts["warmup_iterations"]):
            call(*args)
        t0 = time.perf_counter()
        call(*args)
        round_s += time.perf_counter() - t0
    rounds = int(min(1000, max(opts["min_rounds"], opts["max_time"] / max(round_s, 1e-9))))
    times = {name: [] for name in others}
    order = list(others)

    def setup():
        order.reverse()
        for name in order:
            t0 = time.perf_counter()
            others[name](*args)
            times[name].append(time.perf_counter() - t0)
        return args, {}
    result = benchmark.pedantic(engine_call, setup=setup, rounds=rounds, iterations=1)
    return result, {name: statistics.median(v) for name, v in times.items() if v}


@pytest.fixture
def torch_threads():
    """Sets torch's intra-op threads for one benchmark and restores them after."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def record(benchmark, collector, **kw):
    """Adds this benchmark's median to the session (nothing when benchmarks are disabled)."""
    stats = getattr(benchmark, "stats", None)
    if stats is None or getattr(stats, "stats", None) is None:
        return None
    return collector.add(seconds=float(stats.stats.median), extra_info=benchmark.extra_info, **kw)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session, exitstatus):
    if not _COLLECTOR.entries:
        return
    _COLLECTOR.pair()
    ceilings(again=True)
    try:
        path = write_results(_COLLECTOR)
        session.config._irnet_results = path
    except OSError as e:  # a read-only checkout must not fail the run
        session.config._irnet_results = f"(not written: {e})"


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not _COLLECTOR.entries:
        return
    tr = terminalreporter
    tr.section("irnet-infer vs OpenVINO vs PyTorch (medians, same run)")
    tr.write_line(machine_line(machine_info()))
    for note in _COLLECTOR.notes:
        tr.write_line(f"note: {note}")
    tr.write_line(text_table(_COLLECTOR.rows()))
    path = getattr(config, "_irnet_results", None)
    if path is not None:
        tr.write_line(f"results: {path} (and latest.json / latest.md); report: python -m benchmarks.report")
