"""Start-up benchmark (``make bench``; a script, not a pytest test).

    python tests/bench/bench_startup.py [--quick] [--runs N]

What the Electron parent waits for, measured on real ``python -m backend serve`` processes:

- **ready** — from ``Popen`` to the ``{"event":"ready",…}`` line on stdout (the handshake);
- **model ready** — from the ready line until ``/v1/status`` shows the embedding model
  ``ready`` (it loads in the background; keyword search works before that);
- **RSS** at the ready line and once idle (model loaded, 2 s later);
- **idle CPU** — CPU seconds the idle sidecar burns in the next 3 s (pollers, spinning threads);
- **exit** — from SIGTERM to process exit.

Each run starts on a fresh data dir (database created and migrated) and again on the same,
now existing, data dir. References measured in the same run on the same interpreter: a bare
``python -c pass`` and a minimal Litestar + uvicorn app that prints a line once it serves (the
framework floor); the table reports the sidecar's ready time as a ratio to that floor.
Prints markdown; writes JSON to tests/bench/out/startup.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO), str(Path(__file__).resolve().parent)]

import machine as bench_machine  # noqa: E402

from tests.helpers.process import read_line  # noqa: E402

MINIMAL_APP = """
import asyncio, json, socket, uvicorn
from litestar import Litestar, get

@get("/v1/health", sync_to_thread=False)
def health() -> dict[str, str]:
    return {"status": "ok"}

sock = socket.socket()
sock.bind(("127.0.0.1", 0))
sock.listen(128)
server = uvicorn.Server(uvicorn.Config(Litestar([health]), log_config=None, lifespan="on"))

async def main() -> None:
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        await asyncio.sleep(0.005)
    print(json.dumps({"event": "ready", "port": sock.getsockname()[1]}), flush=True)
    await task

asyncio.run(main())
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCSIDECAR_")}
    env["PYTHONPATH"] = str(REPO)
    return env


def _rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def _cpu_s(pid: int) -> float:
    t = psutil.Process(pid).cpu_times()
    return float(t.user + t.system)


def _stop(proc: subprocess.Popen[bytes]) -> float:
    t0 = time.perf_counter()
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    seconds = time.perf_counter() - t0
    if proc.stdout is not None:
        proc.stdout.close()
    return seconds


def _wait_model_ready(base_url: str, token: str, timeout: float = 120.0) -> str:
    """Poll /v1/status until the embedding component leaves "starting"; returns its state."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=10) as c:
        while time.monotonic() < deadline:
            state = str(c.get("/v1/status").json()["components"]["embedding"]["state"])
            if state != "starting":
                return state
            time.sleep(0.02)
    raise SystemExit("the embedding model did not finish loading within the timeout")


def run_sidecar(data_dir: Path) -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "backend", "serve", "--data-dir", str(data_dir)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=_env(), cwd=REPO,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = read_line(proc.stdout, 120)
        ready_s = time.perf_counter() - t0
        if not line:
            raise SystemExit("the sidecar printed no ready line")
        event = json.loads(line)
        if event.get("event") != "ready":
            raise SystemExit(f"the sidecar did not start: {event}")
        rss_ready = _rss_mb(proc.pid)
        token = Path(event["token_file"]).read_text().strip()
        t1 = time.perf_counter()
        model_state = _wait_model_ready(f"http://127.0.0.1:{event['port']}", token)
        model_s = time.perf_counter() - t1
        time.sleep(2.0)
        rss_idle = _rss_mb(proc.pid)
        c0 = _cpu_s(proc.pid)
        time.sleep(3.0)
        idle_cpu = _cpu_s(proc.pid) - c0
    finally:
        exit_s = _stop(proc)
    return {
        "ready_s": ready_s,
        "model_ready_after_s": model_s,
        "model_state": model_state,
        "rss_ready_mb": rss_ready,
        "rss_idle_mb": rss_idle,
        "idle_cpu_s_per_3s": idle_cpu,
        "exit_s": exit_s,
        "exit_code": proc.returncode,
    }


def run_minimal_app() -> dict[str, Any]:
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", MINIMAL_APP], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL, env=_env(),
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = read_line(proc.stdout, 60)
        ready_s = time.perf_counter() - t0
        if not line:
            raise SystemExit("the minimal app printed no ready line")
        time.sleep(1.0)
        rss = _rss_mb(proc.pid)
    finally:
        _stop(proc)
    return {"ready_s": ready_s, "rss_idle_mb": rss}


def run_bare_python() -> dict[str, Any]:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], check=True, env=_env())
    return {"ready_s": time.perf_counter() - t0}


def _stats(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    values = sorted(float(r[key]) for r in rows)
    return {
        "median": statistics.median(values),
        "min": values[0],
        "max": values[-1],
        "p95": values[max(0, round(0.95 * len(values)) - 1)],
    }


def summarise(runs: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, rows in runs.items():
        keys = [k for k, v in rows[0].items() if isinstance(v, int | float) and not isinstance(v, bool)]
        out[name] = {k: _stats(rows, k) for k in keys if k != "exit_code"}
    floor = out["minimal_litestar_app"]["ready_s"]["median"]
    for name in ("sidecar_fresh_data_dir", "sidecar_existing_data_dir"):
        out[name]["ready_vs_minimal_app"] = out[name]["ready_s"]["median"] / floor
    return out


def markdown(report: dict[str, Any]) -> str:
    s = report["summary"]
    lines = [
        f"## Start-up — {bench_machine.describe(report['machine'])}",
        "",
        f"{report['runs']} runs each (median; min–max). Ready = Popen → ready line on stdout.",
        "",
        "| process | ready s | vs minimal app | model ready after s | RSS at ready MB | idle RSS MB "
        "| idle CPU s / 3 s | SIGTERM → exit s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def cell(row: dict[str, Any], key: str, fmt: str = "{:.3f}") -> str:
        if key not in row:
            return "—"
        v = row[key]
        return f"{fmt.format(v['median'])} ({fmt.format(v['min'])}–{fmt.format(v['max'])})"

    labels = {
        "sidecar_fresh_data_dir": "docsidecar serve, fresh data dir",
        "sidecar_existing_data_dir": "docsidecar serve, existing data dir",
        "minimal_litestar_app": "reference: minimal Litestar + uvicorn app",
        "bare_python": "reference: python -c pass",
    }
    for name, label in labels.items():
        row = s[name]
        ratio = f"{row['ready_vs_minimal_app']:.2f}×" if "ready_vs_minimal_app" in row else "—"
        lines.append(
            f"| {label} | {cell(row, 'ready_s')} | {ratio} | {cell(row, 'model_ready_after_s')} | "
            f"{cell(row, 'rss_ready_mb', '{:.0f}')} | {cell(row, 'rss_idle_mb', '{:.0f}')} | "
            f"{cell(row, 'idle_cpu_s_per_3s')} | {cell(row, 'exit_s')} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=None, help="runs per process kind (default 7; --quick 2)")
    ap.add_argument("--quick", action="store_true", help="a short smoke run")
    ap.add_argument("--out", type=Path, default=REPO / "tests/bench/out/startup.json")
    args = ap.parse_args()
    n = args.runs or (2 if args.quick else 7)
    report: dict[str, Any] = {"machine": bench_machine.machine(), "runs": n}
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in (
        "sidecar_fresh_data_dir", "sidecar_existing_data_dir", "minimal_litestar_app", "bare_python",
    )}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        for i in range(n):
            print(f"  run {i + 1}/{n} ...", file=sys.stderr, flush=True)
            data_dir = Path(tmp) / f"d{i}"
            runs["sidecar_fresh_data_dir"].append(run_sidecar(data_dir))
            runs["sidecar_existing_data_dir"].append(run_sidecar(data_dir))
            runs["minimal_litestar_app"].append(run_minimal_app())
            runs["bare_python"].append(run_bare_python())
    bad = [r for r in runs["sidecar_fresh_data_dir"] + runs["sidecar_existing_data_dir"] if r["exit_code"] != 0]
    if bad:
        raise SystemExit(f"a sidecar run exited uncleanly: {bad[0]}")
    report["raw"] = runs
    report["summary"] = summarise(runs)
    report["model_states"] = sorted({r["model_state"] for r in runs["sidecar_fresh_data_dir"]})
    report["load_avg_end"] = os.getloadavg()
    print(markdown(report))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"\nwrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
