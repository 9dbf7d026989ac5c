"""Build the desktop bundle and prove it works: ``make package`` runs this.

1. verify the bundled model files against their manifests (size + sha256);
2. run PyInstaller with ``packaging/docsidecar.spec`` into ``dist/docsidecar/`` (one folder;
   ``--onefile`` builds ``dist/onefile/docsidecar`` instead);
3. inspect the bundle: sqlite-vec, onnxruntime, tokenizers, models, migrations present; test,
   build and ML-framework packages absent; size against the 250 MB budget;
4. make the bundle read-only (and, when run as root, run the binary as ``nobody`` so the
   missing write bits are enforced), then run the smoke test (``packaging/smoke.py``) and the
   Node client's test suite against the binary; a before/after snapshot of the bundle proves
   nothing was written inside it.

Exit status 0 only if every step passed. PyInstaller builds for the OS it runs on: run this on
macOS and Windows to get those bundles (see README, "Desktop bundle").
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bundle_tools  # noqa: E402
import smoke  # noqa: E402

from backend.errors import SidecarError  # noqa: E402
from backend.settings import Settings  # noqa: E402

REPO = bundle_tools.REPO
SPEC = HERE / "docsidecar.spec"
ELECTRON = HERE / "electron"
SIZE_BUDGET = 250 * 1000 * 1000  # "≤ 250 MB uncompressed"
DEFAULT_MODEL = str(Settings.__dataclass_fields__["model_id"].default)


def log(msg: str) -> None:
    print(msg, flush=True)


class Build:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.dist = Path(args.dist).absolute()
        if args.onefile:
            self.dist = self.dist / "onefile"
        self.work = REPO / "build" / ("pyinstaller-onefile" if args.onefile else "pyinstaller")
        self.bundle = self.dist / "docsidecar"
        self.exe = self.bundle if args.onefile else self.bundle / bundle_tools.executable_name()
        self.models_dir = Path(args.models_dir).absolute()
        self.manifests: list[bundle_tools.ModelManifest] = []
        self.failures: list[str] = []

    def step(self, name: str, fn: Callable[[], bool]) -> bool:
        log(f"==> {name}")
        started = time.monotonic()
        ok = fn()
        log(f"    {'done' if ok else 'FAILED'} in {time.monotonic() - started:.1f} s")
        if not ok:
            self.failures.append(name)
        return ok

    # --- steps ------------------------------------------------------------------------------

    def verify_models(self) -> bool:
        try:
            self.manifests = bundle_tools.verify_models(self.models_dir, self.args.model)
        except SidecarError as exc:
            log(f"    {exc.message}")
            return False
        for m in self.manifests:
            log(f"    {m.id}: {len(m.files)} files verified in {m.dir_in(self.models_dir)}")
        return True

    def pyinstaller(self) -> bool:
        try:
            import PyInstaller  # noqa: F401
        except ImportError:
            log("    PyInstaller is not installed: `make package` installs it (pip install -e '.[package]')")
            return False
        spec_args = ["--models-dir", str(self.models_dir)]
        for model_id in self.args.model:
            spec_args += ["--model", model_id]
        if self.args.onefile:
            spec_args.append("--onefile")
        cmd = [
            sys.executable,
            "-m",
            "PyInstaller",
            str(SPEC),
            "--noconfirm",
            "--clean",
            "--log-level",
            "WARN",
            "--distpath",
            str(self.dist),
            "--workpath",
            str(self.work),
            "--",
            *spec_args,
        ]
        if self.bundle.exists():
            bundle_tools.set_read_only(self.bundle, False)  # a previous smoke run left it read-only
        self.work.mkdir(parents=True, exist_ok=True)
        logfile = self.work / "pyinstaller.log"
        with logfile.open("wb") as out:
            code = subprocess.call(cmd, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        if code != 0:
            tail = logfile.read_text(errors="replace").splitlines()[-30:]
            log("    PyInstaller failed:\n      " + "\n      ".join(tail))
            return False
        log(f"    built {self.exe} (log: {logfile})")
        return True

    def inspect(self) -> bool:
        if self.args.onefile:
            size = self.exe.stat().st_size
            log(f"    one-file executable: {size / 1e6:.1f} MB")
            return size <= SIZE_BUDGET
        pyz = self.work / "docsidecar" / "PYZ-00.pyz"
        report = bundle_tools.inspect_bundle(self.bundle, pyz, self.manifests)
        log(f"    bundle size {report.size_bytes / 1e6:.1f} MB (budget {SIZE_BUDGET / 1e6:.0f} MB)")
        if report.size_bytes > SIZE_BUDGET:
            report.problems.append(f"bundle is {report.size_bytes / 1e6:.1f} MB, over the budget")
        for p in report.problems:
            log(f"    problem: {p}")
        return not report.problems

    def smoke_and_node(self) -> bool:
        # the installed location: the bundle folder, or the folder holding the one-file executable
        installed = self.bundle if self.bundle.is_dir() else self.exe.parent
        before = bundle_tools.snapshot(installed)
        bundle_tools.set_read_only(installed, True)
        try:
            ok = self.step("smoke test of the binary (read-only bundle)", self._smoke)
            if not self.args.skip_node:
                ok = self.step("Node client tests against the binary", self._node) and ok
        finally:
            bundle_tools.set_read_only(installed, False)
        changes = bundle_tools.snapshot_changes(before, bundle_tools.snapshot(installed))
        log("==> nothing written inside the bundle")
        if changes:
            log("    FAILED: the bundle changed while it ran:\n      " + "\n      ".join(changes[:20]))
            self.failures.append("nothing written inside the bundle")
            ok = False
        else:
            log(f"    done: {len(before)} paths unchanged")
        return ok

    def _smoke(self) -> bool:
        run_as = _unprivileged_user() if hasattr(os, "geteuid") and os.geteuid() == 0 else None
        if run_as is not None and not self._can_run_as(run_as):
            log(
                f"    uid {run_as[0]} cannot reach {self.exe} (a parent folder is private): running as root, "
                "so the missing write bits are not enforced; the before/after snapshot still checks"
            )
            run_as = None
        if run_as is not None:
            log(f"    running as uid {run_as[0]} so the read-only bundle is enforced (we are root)")
            if not self._write_refused(run_as):
                return False
        with tempfile.TemporaryDirectory(prefix="docsidecar-smoke-") as tmp:
            os.chmod(tmp, 0o755)  # noqa: S103 - the unprivileged user must reach its workdir
            workdir = Path(tmp) / "run"
            workdir.mkdir()
            res = smoke.Smoke([str(self.exe)], workdir, run_as=run_as).run()
        log(smoke.format_steps(res))
        log("    figures: " + ", ".join(f"{k}={v:.3f}" for k, v in res.figures.items()))
        return res.ok

    def _can_run_as(self, run_as: tuple[int, int]) -> bool:
        try:
            return (
                subprocess.call(
                    [str(self.exe), "--version"],
                    user=run_as[0],
                    group=run_as[1],
                    extra_groups=[],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    timeout=120,
                )
                == 0
            )
        except (OSError, subprocess.TimeoutExpired):
            return False

    def _write_refused(self, run_as: tuple[int, int]) -> bool:
        """Check that the unprivileged user really cannot write into the bundle."""
        probe = (self.bundle / "_internal" if self.bundle.is_dir() else self.exe.parent) / ".write-probe"
        touch = shutil.which("touch") or "/usr/bin/touch"
        code = subprocess.call([touch, str(probe)], user=run_as[0], group=run_as[1], stderr=subprocess.DEVNULL)
        if code == 0 or probe.exists():
            probe.unlink(missing_ok=True)
            log(f"    the bundle is writable for uid {run_as[0]} although it was made read-only")
            return False
        return True

    def _node(self) -> bool:
        node = shutil.which("node")
        if node is None:
            log("    node is not installed: cannot run the Node client tests against the binary")
            return not os.environ.get("CI")
        env = {**os.environ, "DOCSIDECAR_BINARY": str(self.exe)}
        proc = subprocess.run(
            [node, "--test", "test/"], cwd=ELECTRON, env=env, capture_output=True, text=True, timeout=600
        )
        summary = [ln for ln in proc.stdout.splitlines() if ln.startswith(("# tests", "# pass", "# fail", "not ok"))]
        log("    " + "\n    ".join(summary))
        if proc.returncode != 0:
            log(proc.stdout[-4000:] + proc.stderr[-2000:])
        return proc.returncode == 0

    def run(self) -> int:
        if not self.step("verify model files (size + sha256)", self.verify_models):
            return 1
        if not self.args.skip_build and not self.step("PyInstaller build", self.pyinstaller):
            return 1
        if not self.exe.exists():
            log(f"no executable at {self.exe}: build first")
            return 1
        self.step("inspect the bundle", self.inspect)
        if not self.args.skip_smoke:
            self.smoke_and_node()
        if self.failures:
            log("\nFAILED: " + "; ".join(self.failures))
            return 1
        log(f"\nOK: {self.exe}")
        return 0


def _unprivileged_user() -> tuple[int, int] | None:
    import pwd

    try:
        pw = pwd.getpwnam("nobody")
    except KeyError:
        return None
    return pw.pw_uid, pw.pw_gid


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--onefile", action="store_true", help="build one executable (dist/onefile/docsidecar)")
    parser.add_argument("--dist", default=str(REPO / "dist"), help="output folder (default: dist/)")
    parser.add_argument("--models-dir", default=str(REPO / "models"))
    parser.add_argument("--model", action="append", help=f"model id to bundle (default: {DEFAULT_MODEL})")
    parser.add_argument("--skip-build", action="store_true", help="test an existing build")
    parser.add_argument("--skip-smoke", action="store_true", help="build only")
    parser.add_argument("--skip-node", action="store_true", help="no Node client tests against the binary")
    args = parser.parse_args()
    args.model = args.model or [DEFAULT_MODEL]
    return Build(args).run()


if __name__ == "__main__":
    sys.exit(main())
