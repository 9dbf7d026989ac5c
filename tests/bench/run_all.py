"""Run every benchmark and collect one report (``make bench``).

    python tests/bench/run_all.py [--quick] [--only startup,embed] [--out-dir DIR]

Each ``tests/bench/bench_<name>.py`` is a standalone script that prints a markdown section on
stdout and writes ``tests/bench/out/<name>.json``; this runner starts them one after another
(never in parallel: they measure the same CPU), passes ``--quick`` through, shows their
progress (stderr) live, and writes ``tests/bench/out/report.md``: the machine, the commit, and
every section in order, with a failure noted in place of a section that did not finish. Exits
non-zero if any benchmark failed (after running the rest).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parents[1]
sys.path.insert(0, str(BENCH_DIR))

import machine as bench_machine  # noqa: E402

FIRST = ("startup", "embed")
"""Run these first (then the rest alphabetically): the cheapest and the foundation's own."""


def discover() -> list[str]:
    names = sorted(p.stem.removeprefix("bench_") for p in BENCH_DIR.glob("bench_*.py"))
    return [n for n in FIRST if n in names] + [n for n in names if n not in FIRST]


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
        return out + (" (with uncommitted changes)" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def run_one(name: str, quick: bool) -> tuple[int, str, float]:
    """Run one benchmark; returns (exit code, its stdout, seconds). stderr goes to ours."""
    cmd = [sys.executable, str(BENCH_DIR / f"bench_{name}.py")]
    if quick:
        cmd.append("--quick")
    print(f"== bench_{name}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True, check=False)
    seconds = time.perf_counter() - t0
    sys.stdout.write(proc.stdout)
    sys.stdout.flush()
    return proc.returncode, proc.stdout, seconds


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="pass --quick to every benchmark (a smoke run)")
    ap.add_argument("--only", default="", help="comma-separated benchmark names (default: all)")
    ap.add_argument("--out-dir", type=Path, default=BENCH_DIR / "out")
    args = ap.parse_args()
    names = discover()
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = sorted(set(wanted) - set(names))
        if unknown:
            print(f"unknown benchmark(s): {', '.join(unknown)}; have: {', '.join(names)}", file=sys.stderr)
            return 2
        names = [n for n in names if n in wanted]
    m = bench_machine.machine()
    started = datetime.now(UTC)
    sections: list[str] = []
    summary: list[dict[str, object]] = []
    for name in names:
        code, out, seconds = run_one(name, args.quick)
        summary.append({"bench": name, "exit_code": code, "seconds": round(seconds, 1)})
        if code == 0:
            sections.append(out.strip() + f"\n\n_bench_{name}.py: {seconds:.0f} s_")
        else:
            sections.append(
                f"## bench_{name}.py FAILED (exit code {code} after {seconds:.0f} s)\n\n"
                + (out.strip() or "(no output; see the run's stderr)")
            )
    header = [
        "# docsidecar benchmark report",
        "",
        f"* Machine: {bench_machine.describe(m)}",
        f"* Load average at the end: {os.getloadavg()[0]:.2f}",
        f"* Commit: {git_commit()}; started {started:%Y-%m-%d %H:%M} UTC; mode: {'quick' if args.quick else 'full'}",
        "* Benchmarks: " + ", ".join(f"{s['bench']} ({s['seconds']} s, exit {s['exit_code']})" for s in summary),
        "",
    ]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    report = args.out_dir / "report.md"
    report.write_text("\n".join(header) + "\n" + "\n\n".join(sections) + "\n", encoding="utf-8")
    (args.out_dir / "run_all.json").write_text(
        json.dumps({"machine": m, "quick": args.quick, "benchmarks": summary}, indent=2) + "\n", encoding="utf-8"
    )
    print(f"\nwrote {report}", file=sys.stderr)
    failed = [s["bench"] for s in summary if s["exit_code"] != 0]
    if failed:
        print(f"failed: {', '.join(map(str, failed))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
