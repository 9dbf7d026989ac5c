"""Is a resource series growing? The pure verdict of the soak run (tests/bench/soak.py).

A series is a list of ``(seconds since the workload started, value)`` samples. The first
``warmup_fraction`` of the run (caches filling, first connections) is left out; a straight
line (``numpy.polyfit``, degree 1) is fitted to the rest. The series counts as **growing**
only when all four hold:

1. the slope exceeds the series' tolerance per hour (``Tolerance.per_hour``);
2. the slope is distinguishable from the noise: more than ``SIGNIFICANCE`` standard errors
   of the fitted slope (a flat but noisy series has a large standard error);
3. the rise the line predicts over the fitted window exceeds ``Tolerance.min_rise`` (one more
   file descriptor or thread in a short run is not a trend);
4. the growth persists: a line fitted to the last half of the window also rises faster than
   the tolerance and than ``SIGNIFICANCE`` of its standard errors (one step — a new worker thread and its malloc arena — followed by a plateau
   is not a leak; a leak keeps its slope).

A fitted window shorter than ``MIN_WINDOW_S`` (a smoke run) or fewer than ``MIN_FIT_SAMPLES``
samples after the warm-up give no verdict ("inconclusive"): over a minute or two, the process
is still warming up and a slope per hour means nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

SIGNIFICANCE = 3.0
"""Standard errors of the slope a growth trend must exceed."""
MIN_FIT_SAMPLES = 5
MIN_WINDOW_S = 240.0
"""Shortest fitted window (after the warm-up) that gets a verdict: runs of 5 minutes or more."""


@dataclass(frozen=True)
class Tolerance:
    per_hour: float
    """Largest slope (units per hour) that still counts as no growth."""
    min_rise: float
    """A fitted rise over the measured window at most this large is noise, whatever the slope."""
    unit: str


TOLERANCES: dict[str, Tolerance] = {
    "rss_mib": Tolerance(per_hour=5.0, min_rise=2.0, unit="MiB"),
    "fds": Tolerance(per_hour=2.0, min_rise=2.0, unit="fds"),
    "threads": Tolerance(per_hour=2.0, min_rise=2.0, unit="threads"),
}
"""The series soak.py judges: the server process's RSS, open file descriptors and threads."""


def fit(times_s: Sequence[float], values: Sequence[float], warmup_fraction: float = 0.2) -> dict[str, Any]:
    """Start/end/min/max of the whole series and the linear trend after the warm-up."""
    if len(times_s) != len(values):
        raise ValueError("times and values differ in length")
    if not times_s:
        return {"n": 0, "n_fit": 0}
    t = np.asarray(times_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    cut = t[0] + warmup_fraction * (t[-1] - t[0])
    keep = t >= cut
    tf, vf = t[keep], v[keep]
    out: dict[str, Any] = {
        "n": len(t),
        "n_fit": len(tf),
        "start": float(v[0]),
        "after_warmup": float(vf[0]) if len(vf) else None,
        "end": float(v[-1]),
        "min": float(v.min()),
        "max": float(v.max()),
        "warmup_s": round(float(cut - t[0]), 1),
        "fit_window_s": round(float(tf[-1] - tf[0]), 1) if len(tf) else 0.0,
    }
    if len(tf) < MIN_FIT_SAMPLES or tf[-1] == tf[0]:
        return {**out, "slope_per_h": None, "slope_se_per_h": None, "noise_sd": None, "rise_in_window": None,
                "late_slope_per_h": None}  # fmt: skip
    slope, se, noise_sd = _line(tf, vf)
    late = tf >= (tf[0] + tf[-1]) / 2
    late_slope, late_se, _ = _line(tf[late], vf[late]) if late.sum() >= 3 else (None, None, None)
    return {
        **out,
        "slope_per_h": slope * 3600,
        "slope_se_per_h": se * 3600,
        "noise_sd": noise_sd,
        "rise_in_window": slope * float(tf[-1] - tf[0]),
        "late_slope_per_h": None if late_slope is None else late_slope * 3600,
        "late_slope_se_per_h": None if late_se is None else late_se * 3600,
    }


def _line(t: npt.NDArray[np.float64], v: npt.NDArray[np.float64]) -> tuple[float, float, float]:
    """Least-squares slope (units/s), its standard error and the residuals' standard deviation."""
    slope, intercept = np.polyfit(t, v, 1)
    residuals = v - (slope * t + intercept)
    dof = len(t) - 2
    noise_sd = math.sqrt(float(residuals @ residuals) / dof) if dof > 0 else 0.0
    spread = float(((t - t.mean()) ** 2).sum())
    se = noise_sd / math.sqrt(spread) if spread > 0 else math.inf
    return float(slope), se, noise_sd


def judge(stats: Mapping[str, Any], tol: Tolerance) -> dict[str, Any]:
    """``{"verdict": "no growth trend" | "growth trend" | "inconclusive", "reason": ...}``."""
    slope = stats.get("slope_per_h")
    if slope is None:
        return {"verdict": "inconclusive", "reason": f"{stats.get('n_fit', 0)} samples after the warm-up"}
    if stats["fit_window_s"] < MIN_WINDOW_S:
        return {"verdict": "inconclusive", "reason": f"{stats['fit_window_s']:g} s after the warm-up (too short)"}
    se, rise = stats["slope_se_per_h"], stats["rise_in_window"]
    if slope <= tol.per_hour:
        return {"verdict": "no growth trend", "reason": f"slope {slope:+.2f} {tol.unit}/h ≤ {tol.per_hour:g}"}
    if slope <= SIGNIFICANCE * se:
        return {"verdict": "no growth trend", "reason": f"slope {slope:+.2f} ≤ {SIGNIFICANCE:g}× its SE {se:.2f}"}
    if rise <= tol.min_rise:
        return {
            "verdict": "no growth trend",
            "reason": f"rise {rise:+.2f} {tol.unit} over the window ≤ {tol.min_rise:g}",
        }
    late, late_se = stats.get("late_slope_per_h"), stats.get("late_slope_se_per_h")
    if late is not None and (late <= tol.per_hour or late <= SIGNIFICANCE * late_se):
        return {
            "verdict": "no growth trend",
            "reason": f"slope {slope:+.2f} {tol.unit}/h, but {late:+.2f} (SE {late_se:.2f}) in the last half "
            "of the window: a step, not a trend",
        }
    return {
        "verdict": "growth trend",
        "reason": f"slope {slope:+.2f} {tol.unit}/h > {tol.per_hour:g} (SE {se:.2f}), rise {rise:+.2f} {tol.unit}",
    }


def assess(
    samples: Sequence[Mapping[str, Any]],
    tolerances: Mapping[str, Tolerance] = TOLERANCES,
    warmup_fraction: float = 0.2,
) -> dict[str, Any]:
    """Fit and judge every series named in ``tolerances``; samples carry ``t_s`` and the series.

    The overall verdict is "growth trend" if any series grows, else "inconclusive" if any series
    has too few samples, else "no growth trend".
    """
    series: dict[str, Any] = {}
    for name, tol in tolerances.items():
        rows = [s for s in samples if s.get(name) is not None]
        stats = fit([float(s["t_s"]) for s in rows], [float(s[name]) for s in rows], warmup_fraction)
        limits = {"per_hour": tol.per_hour, "min_rise": tol.min_rise, "unit": tol.unit}
        series[name] = {**stats, **judge(stats, tol), "tolerance": limits}
    verdicts = {s["verdict"] for s in series.values()}
    overall = next((v for v in ("growth trend", "inconclusive") if v in verdicts), "no growth trend")
    growing = sorted(n for n, s in series.items() if s["verdict"] == "growth trend")
    return {"verdict": overall, "growing": growing, "series": series}
