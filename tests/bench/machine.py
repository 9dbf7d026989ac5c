"""What machine a benchmark ran on (every bench report names it)."""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

import psutil


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """CPU model, cores, RAM, OS, Python and the load average at the time of the call."""
    return {
        "cpu": cpu_model(),
        "arch": platform.machine(),
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cores": psutil.cpu_count(logical=True),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_avg_start": os.getloadavg(),
    }


def describe(m: dict[str, Any]) -> str:
    """One line for a report heading."""
    load = m.get("load_avg_start") or (0.0, 0.0, 0.0)
    return (
        f"{m['cpu']}, {m['physical_cores']} physical / {m['logical_cores']} logical cores, "
        f"{m['memory_gb']} GiB RAM, {m['os']}, Python {m['python']}, load average {load[0]:.2f}"
    )
