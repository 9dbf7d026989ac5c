"""Is a resource series growing? The pure verdict of the soak run (tests/bench/soak.py).

A series is a list of ``(seconds since the workload started, value)`` samples. The first
``warmup_fraction`` of the run (caches filling, first connections) is left out; a straight
line (``numpy.polyfit``, degree 1) is fitted to the rest. The series counts as **growing**
only when all three hold:

1. the slope exceeds the series' tolerance per hour (``Tolerance.per_hour``);
2. the slope is distinguishable from the noise: more than ``SIGNIFICANCE`` standard errors
   of the fitted slope (a flat but noisy series has a large standard error);
3. the rise the line predicts over the fitted window exceeds ``Tolerance.min_rise`` (one more
   file descriptor or thread in a short run is not a trend).

Fewer than ``MIN_FIT_SAMPLES`` samples after the warm-up give no verdict ("inconclusive").
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

SIGNIFICANCE = 3.0
"""Standard errors of the slope a growth trend must exceed."""
MIN_FIT_SAMPLES = 5


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
        return {**out, "slope_per_h": None, "slope_se_per_h": None, "noise_sd": None, "rise_in_window": None}
    slope, intercept = np.polyfit(tf, vf, 1)
    residuals = vf - (slope * tf + intercept)
    dof = len(tf) - 2
    noise_sd = math.sqrt(float(residuals @ residuals) / dof) if dof > 0 else 0.0
    spread = float(((tf - tf.mean()) ** 2).sum())
    se = noise_sd / math.sqrt(spread) if spread > 0 else math.inf
    return {
        **out,
        "slope_per_h": float(slope * 3600),
        "slope_se_per_h": float(se * 3600),
        "noise_sd": noise_sd,
        "rise_in_window": float(slope * (tf[-1] - tf[0])),
    }


def judge(stats: Mapping[str, Any], tol: Tolerance) -> dict[str, Any]:
    """``{"verdict": "no growth trend" | "growth trend" | "inconclusive", "reason": ...}``."""
    slope = stats.get("slope_per_h")
    if slope is None:
        return {"verdict": "inconclusive", "reason": f"{stats.get('n_fit', 0)} samples after the warm-up"}
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
