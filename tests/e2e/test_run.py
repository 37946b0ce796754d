"""`make run` stopped the way a process supervisor stops it (SIGTERM to make) stops every process
it started: Envoy and the mock provider (and redis/RLS in global mode) must not outlive it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import harness  # noqa: E402


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its ')'.
        fields = stat.rsplit(")", 1)[1].split()
        if fields[0] != "Z":
            tree.setdefault(int(fields[1]), []).append(int(entry.name))
    return tree


def _descendants(pid: int) -> set[int]:
    tree, found, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_sigterm_to_make_run_stops_envoy_and_the_mock_provider():
    env = dict(os.environ, PORT=str(harness.free_port()), ADMIN_PORT=str(harness.free_port()))
    # `-o build`: the modules were built by `make test-e2e`; this test is about stopping.
    make = subprocess.Popen(
        ["make", "--no-print-directory", "-o", "build", "run"], cwd=harness.ROOT, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    started: set[int] = set()
    try:
        # Until the banner (Envoy is ready) or the end of make's output: the harness bounds
        # Envoy's start itself (`Envoy._wait_ready`) and exits when it fails, so no deadline of
        # the test's own is needed (one here never fired anyway: readline blocks).
        output = []
        for line in make.stdout:
            output.append(line)
            if line.startswith("Press Ctrl-C to stop."):
                break
        assert output and output[-1].startswith("Press Ctrl-C"), "".join(output)
        started = _descendants(make.pid)
        names = {Path(f"/proc/{pid}/comm").read_text().strip() for pid in started}
        assert "envoy" in names and any(n.startswith("llmgw-mock") for n in names), names
        make.send_signal(signal.SIGTERM)  # make only, as a supervisor does
        make.wait(timeout=30)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(pid) for pid in started):
            time.sleep(0.1)
        left = {pid: Path(f"/proc/{pid}/comm").read_text().strip()
                for pid in started if _alive(pid)}
        assert not left, f"still running after make run got SIGTERM: {left}"
    finally:
        for pid in started | {make.pid}:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)
        make.stdout.close()
