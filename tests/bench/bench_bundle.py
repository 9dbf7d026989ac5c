"""Desktop bundle benchmark (``make bench``; a script, not a pytest test).

    python tests/bench/bench_bundle.py [--quick] [--runs N] [--binary dist/docsidecar/docsidecar]

For the PyInstaller one-folder binary and for ``python -m backend`` (the reference, measured in
the same run, runs interleaved so load drifts hit both alike):

- spawn → ready line (the handshake Electron waits for), median and max over the runs;
- spawn → model ready (``/v1/status`` shows the embedding component ``ready``);
- idle RSS 2 s after model ready: the spawned process, and with its children (the extraction
  worker);
- bundle size (uncompressed, on disk) with its largest parts.

A one-file build (``dist/onefile/docsidecar``), when present, is measured too, to show why the
app ships the folder.

Goals (issue 7): ready line ≤ 1.5× source mode; bundle ≤ 250 MB. When the binary is missing it
is built first (``packaging/build.py --skip-smoke``; needs the ``package`` extra, which
``make bench`` installs). Prints markdown; writes JSON to tests/bench/out/bundle.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(REPO / "packaging")]

import bundle_tools  # noqa: E402
import httpx  # noqa: E402
import psutil  # noqa: E402
import smoke  # noqa: E402

OUT = REPO / "tests" / "bench" / "out" / "bundle.json"
DEFAULT_BINARY = REPO / "dist" / "docsidecar" / bundle_tools.executable_name()
DEFAULT_ONEFILE = REPO / "dist" / "onefile" / bundle_tools.executable_name()
READY_GOAL = 1.5
SIZE_BUDGET_MB = 250.0
IDLE_S = 2.0
TOKEN = "bench-bundle-token-0123456789abcdefghijklmnop"


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
        "cores_logical": os.cpu_count(),
        "cores_physical": psutil.cpu_count(logical=False),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": platform.platform(),
        "python": platform.python_version(),
        "load_avg_start": [round(x, 2) for x in os.getloadavg()],
    }


def one_run(command: list[str], tmp: Path) -> dict[str, float]:
    """Start, wait for the ready line and the model, sit idle, measure, SIGTERM."""
    env = smoke.child_env(os.environ, home=tmp / "home")
    env["DOCSIDECAR_TOKEN"] = TOKEN
    (tmp / "home").mkdir()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*command, "serve", "--data-dir", str(tmp / "data"), "--port", "0"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = smoke.read_line(proc.stdout, 120)
        ready_s = time.perf_counter() - started
        if line is None:
            raise RuntimeError(f"{command[0]}: no ready line")
        port = json.loads(line)["port"]
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30
        ) as c:
            while True:
                comp = c.get("/v1/status").json()["components"]["embedding"]
                if comp["state"] == "ready":
                    model_s = time.perf_counter() - started
                    break
                if comp["state"] == "failed" or time.perf_counter() - started > 120:
                    raise RuntimeError(f"embedding did not become ready: {comp}")
                time.sleep(0.01)
        time.sleep(IDLE_S)
        ps = psutil.Process(proc.pid)
        rss = ps.memory_info().rss
        tree = rss + sum(ch.memory_info().rss for ch in ps.children(recursive=True))
        proc.send_signal(signal.SIGTERM)
        if proc.wait(30) != 0:
            raise RuntimeError(f"{command[0]}: exit code {proc.returncode} after SIGTERM")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    return {"ready_s": ready_s, "model_ready_s": model_s, "rss_mb": rss / 2**20, "rss_tree_mb": tree / 2**20}


def summarise(runs: list[dict[str, float]]) -> dict[str, Any]:
    keys = runs[0].keys()
    return {
        k: {
            "median": statistics.median(r[k] for r in runs),
            "max": max(r[k] for r in runs),
            "all": [r[k] for r in runs],
        }
        for k in keys
    }


def bundle_parts(bundle: Path, top: int = 8) -> list[tuple[str, float]]:
    internal = bundle / "_internal"
    parts = []
    for p in internal.iterdir():
        if p.is_symlink():
            continue  # PyInstaller links shared libraries to their package folder; counted there
        size = bundle_tools.tree_size(p) if p.is_dir() else p.stat().st_size
        parts.append((p.name, size / 1e6))
    return sorted(parts, key=lambda x: -x[1])[:top]


def ensure_binary(binary: Path) -> None:
    if binary.exists():
        return
    print(f"{binary} is missing: building it (packaging/build.py --skip-smoke)", file=sys.stderr)
    code = subprocess.call([sys.executable, str(REPO / "packaging" / "build.py"), "--skip-smoke"], cwd=REPO)
    if code != 0 or not binary.exists():
        raise SystemExit("could not build the bundle; run `make package` and look at its output")


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    modes = report["modes"]
    others = [k for k in modes if k != "source"]
    label = {"binary": "binary (one-folder)", "onefile": "one-file binary", "source": "`python -m backend`"}
    lines = [
        "## Desktop bundle (PyInstaller) vs `python -m backend`",
        "",
        f"Machine: {m['cpu']}, {m['cores_logical']} logical / {m['cores_physical']} physical cores, "
        f"{m['ram_gb']} GB RAM, load average {m['load_avg_start']} → {report['load_avg_end']}; "
        f"{report['runs']} runs per mode, interleaved; medians (max).",
        "",
        "| | "
        + " | ".join(label[k] for k in [*others, "source"])
        + " | "
        + " | ".join(f"{k} / source" for k in others)
        + " |",
        "|---" * (2 * len(others) + 2) + "|",
    ]
    rows = [
        ("spawn → ready line", "ready_s", "s"),
        ("spawn → model ready", "model_ready_s", "s"),
        ("idle RSS, the spawned process", "rss_mb", "MB"),
        ("idle RSS, with children", "rss_tree_mb", "MB"),
    ]
    for text, key, unit in rows:
        cells = [f"{modes[k][key]['median']:.2f} {unit} ({modes[k][key]['max']:.2f})" for k in [*others, "source"]]
        ratios = [f"{modes[k][key]['median'] / modes['source'][key]['median']:.2f}×" for k in others]
        lines.append(f"| {text} | " + " | ".join(cells + ratios) + " |")
    size = report["bundle"]
    lines += [
        "",
        f"Bundle: **{size['size_mb']:.1f} MB** uncompressed in {size['files']} files (budget {SIZE_BUDGET_MB:.0f} MB); "
        "largest parts: " + ", ".join(f"{n} {mb:.1f} MB" for n, mb in size["largest"]) + ".",
    ]
    if "onefile_mb" in report:
        lines.append(f"One-file executable: {report['onefile_mb']:.1f} MB (compressed; unpacked on every start).")
    lines += [
        "",
        f"Goals: ready line ≤ {READY_GOAL}× source mode → {report['ready_ratio']:.2f}× "
        f"({'met' if report['ready_goal_met'] else 'NOT met'}); bundle ≤ {SIZE_BUDGET_MB:.0f} MB → "
        f"{'met' if report['size_goal_met'] else 'NOT met'}.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 runs per mode instead of 7")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--binary", type=Path, default=DEFAULT_BINARY)
    parser.add_argument(
        "--onefile",
        type=Path,
        default=DEFAULT_ONEFILE,
        help="one-file build to measure too, if it exists (packaging/build.py --onefile)",
    )
    args = parser.parse_args()
    runs = args.runs or (3 if args.quick else 7)
    ensure_binary(args.binary)
    modes = {"binary": [str(args.binary)], "source": [sys.executable, "-m", "backend"]}
    if args.onefile.is_file():
        modes = {"binary": modes["binary"], "onefile": [str(args.onefile)], "source": modes["source"]}
    report: dict[str, Any] = {"machine": machine(), "runs": runs}
    results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    for command in modes.values():  # warm-up, not counted: page cache, first-run costs
        with tempfile.TemporaryDirectory() as tmp:
            one_run(command, Path(tmp))
    for i in range(runs):
        order = list(modes) if i % 2 == 0 else list(reversed(list(modes)))
        for name in order:
            with tempfile.TemporaryDirectory() as tmp:
                results[name].append(one_run(modes[name], Path(tmp)))
    report["modes"] = {name: summarise(r) for name, r in results.items()}
    bundle = args.binary.parent
    report["bundle"] = {
        "path": str(bundle),
        "size_mb": bundle_tools.tree_size(bundle) / 1e6,
        "files": sum(1 for f in bundle.rglob("*") if f.is_file() and not f.is_symlink()),
        "largest": bundle_parts(bundle),
    }
    if args.onefile.is_file():
        report["onefile_mb"] = args.onefile.stat().st_size / 1e6
    ratio = report["modes"]["binary"]["ready_s"]["median"] / report["modes"]["source"]["ready_s"]["median"]
    report["ready_ratio"] = ratio
    report["ready_goal_met"] = ratio <= READY_GOAL
    report["size_goal_met"] = report["bundle"]["size_mb"] <= SIZE_BUDGET_MB
    report["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    print(markdown(report))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
