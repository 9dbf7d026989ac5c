"""Running a command in a private mount namespace, where it may mount a small tmpfs or make a
directory read-only for real without touching the rest of the machine: the mounts vanish with
the process, even if the test is killed.

As root: ``unshare --mount``. Otherwise an unprivileged user namespace (``unshare -r -m``) or
passwordless ``sudo``. Tests that need one skip with the reason when none works — except under
``CI``, where that is a failure.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import tempfile

import pytest

_CANDIDATES = (
    ["unshare", "--mount", "--propagation", "private"],
    ["unshare", "--user", "--map-root-user", "--mount", "--propagation", "private"],
    ["sudo", "-n", "unshare", "--mount", "--propagation", "private"],
)


@functools.cache
def mount_namespace_prefix() -> tuple[str, ...] | None:
    if shutil.which("unshare") is None:
        return None
    for prefix in _CANDIDATES:
        if prefix[0] == "unshare" and "--user" not in prefix and os.geteuid() != 0:
            continue
        with tempfile.TemporaryDirectory() as where:
            probe = [*prefix, "sh", "-c", f"mount -t tmpfs -o size=1m tmpfs '{where}' && umount '{where}'"]
            try:
                ok = subprocess.run(probe, capture_output=True, timeout=20).returncode == 0
            except (OSError, subprocess.TimeoutExpired):
                ok = False
        if ok:
            return tuple(prefix)
    return None


def require_mount_namespace() -> tuple[str, ...]:
    prefix = mount_namespace_prefix()
    if prefix is None:
        reason = "needs a private mount namespace (root, unprivileged user namespaces, or sudo) for a real tmpfs"
        if os.environ.get("CI"):
            raise AssertionError(reason)
        pytest.skip(reason)
    return prefix
