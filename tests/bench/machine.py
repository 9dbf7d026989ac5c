"""The machine a benchmark ran on (CPU, cores, RAM, load), for the reports."""

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
    return {
        "cpu": cpu_model(),
        "physical_cores": psutil.cpu_count(logical=False),
        "logical_cores": psutil.cpu_count(logical=True),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_avg_start": [round(x, 2) for x in os.getloadavg()],
    }


def describe(m: dict[str, Any]) -> str:
    return (
        f"{m['cpu']}, {m['physical_cores']} cores / {m['logical_cores']} threads, {m['memory_gb']} GiB, "
        f"load average at start {m['load_avg_start']}"
    )
