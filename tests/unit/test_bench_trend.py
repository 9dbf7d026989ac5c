"""The soak test's verdict (tests/bench/trend.py, pure): a leak is called a growth trend; a flat
or noisy series, warm-up growth and a single step are not; a smoke run gets no verdict."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from tests.bench.trend import TOLERANCES, Tolerance, assess, fit, judge

RSS = TOLERANCES["rss_mib"]
FDS = TOLERANCES["fds"]


def series(minutes: float, every_s: float, f: object) -> tuple[list[float], list[float]]:
    t = list(np.arange(0.0, minutes * 60 + 1e-9, every_s))
    return t, [float(f(x)) for x in t]  # type: ignore[operator]


def verdict(t: list[float], v: list[float], tol: Tolerance) -> str:
    return str(judge(fit(t, v), tol)["verdict"])


def test_a_steady_leak_is_a_growth_trend() -> None:
    noise = np.random.default_rng(1).normal(0, 1.5, 400)
    t, v = series(30, 5, lambda x: 300 + 20 * x / 3600)  # 20 MiB/h
    v = [a + b for a, b in zip(v, noise, strict=False)]
    stats = fit(t, v)
    assert judge(stats, RSS)["verdict"] == "growth trend"
    assert 15 < stats["slope_per_h"] < 25
    assert stats["start"] == v[0] and stats["end"] == v[-1] and stats["max"] == max(v)


def test_a_noisy_flat_series_is_not_a_trend() -> None:
    noise = np.random.default_rng(2).normal(0, 4.0, 400)
    t, v = series(30, 5, lambda x: 300)
    assert verdict(t, [a + n for a, n in zip(v, noise, strict=False)], RSS) == "no growth trend"


def test_growth_during_the_warm_up_is_left_out() -> None:
    # caches fill in the first 5 minutes (of 30), then the process is flat
    t, v = series(30, 5, lambda x: 250 + 60 * min(x, 300) / 300)
    assert verdict(t, v, RSS) == "no growth trend"
    assert fit(t, v)["start"] == 250 and fit(t, v)["after_warmup"] == 310


def test_growth_below_the_tolerance_passes() -> None:
    t, v = series(30, 5, lambda x: 300 + 3 * x / 3600)  # 3 MiB/h < 5
    assert verdict(t, v, RSS) == "no growth trend"


def test_one_more_descriptor_at_the_end_is_not_a_trend() -> None:
    t, v = series(10, 5, lambda x: 30 if x < 540 else 31)
    stats = fit(t, v)
    assert stats["slope_per_h"] > FDS.per_hour  # the slope alone would flag it
    assert judge(stats, FDS)["verdict"] == "no growth trend"


def test_one_step_then_a_plateau_is_not_a_trend() -> None:
    # a new worker thread and its malloc arena just after the warm-up, flat afterwards
    t, v = series(10, 5, lambda x: 468 if x < 135 else 482)
    stats = fit(t, v)
    assert stats["slope_per_h"] > 3 * stats["slope_se_per_h"] and stats["rise_in_window"] > RSS.min_rise
    result = judge(stats, RSS)
    assert result["verdict"] == "no growth trend" and "step" in result["reason"]


def test_a_descriptor_per_minute_is_a_leak() -> None:
    t, v = series(30, 5, lambda x: 25 + x // 60)
    assert verdict(t, v, FDS) == "growth trend"


def test_too_few_samples_or_a_smoke_run_give_no_verdict() -> None:
    assert verdict([0.0, 5.0, 10.0], [1.0, 2.0, 3.0], RSS) == "inconclusive"
    assert fit([], [])["n"] == 0
    t, v = series(2, 2, lambda x: 300 + 100 * x / 3600)  # 2 minutes: still warming up
    assert verdict(t, v, RSS) == "inconclusive"
    t, v = series(5, 2, lambda x: 300 + 100 * x / 3600)  # 5 minutes: judged
    assert verdict(t, v, RSS) == "growth trend"


def test_assess_names_the_growing_series_and_growth_outranks_inconclusive() -> None:
    samples = [{"t_s": float(t), "rss_mib": 300.0, "fds": 20 + t // 30} for t in range(0, 1800, 5)]
    report = assess(samples)  # no "threads" at all: that series is inconclusive
    assert report["series"]["rss_mib"]["verdict"] == "no growth trend"
    assert report["series"]["threads"]["verdict"] == "inconclusive"
    assert report["verdict"] == "growth trend" and report["growing"] == ["fds"]
    flat = [{**s, "fds": 20, "threads": 12} for s in samples]
    assert assess(flat)["verdict"] == "no growth trend"


@given(level=st.floats(0, 1e5), minutes=st.integers(5, 120), every_s=st.sampled_from([1.0, 2.0, 5.0, 10.0]))
def test_a_constant_series_never_grows(level: float, minutes: int, every_s: float) -> None:
    t, v = series(minutes, every_s, lambda x: level)
    assert verdict(t, v, RSS) == "no growth trend"


@given(per_hour=st.floats(10, 1e4), minutes=st.integers(20, 120))
def test_a_clean_line_steeper_than_the_tolerance_always_grows(per_hour: float, minutes: int) -> None:
    t, v = series(minutes, 5, lambda x: 100 + per_hour * x / 3600)
    stats = fit(t, v)
    assert judge(stats, RSS)["verdict"] == "growth trend"
    assert abs(stats["slope_per_h"] - per_hour) < 1e-6 * per_hour + 1e-6
