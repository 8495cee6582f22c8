"""The program's process group: started in a session of its own, its output teed into
logs, stopped by SIGTERM then SIGKILL, and never left running after the trial."""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

POLL_S = 0.02  # how often the waiting loop looks at the process, the report file, signals
_READ_LIMIT = 1 << 20  # the longest stdout line parsed as JSON, in bytes

_LIVE: set[int] = set()
_LIVE_LOCK = threading.Lock()


def _kill_leftovers() -> None:  # at interpreter exit: e.g. a worker thread's trial
    with _LIVE_LOCK:
        groups = list(_LIVE)
    for pgid in groups:
        killpg(pgid, signal.SIGKILL)


atexit.register(_kill_leftovers)


def killpg(pgid: int, sig: int) -> None:
    """Send ``sig`` to a process group; nothing if it is gone already."""
    with contextlib.suppress(OSError):
        os.killpg(pgid, sig)


def has_exited(proc: subprocess.Popen[bytes]) -> bool:
    """True once the process has exited, without reaping it: its pid, and so its process
    group id, stays reserved until `Popen.wait`, so killing the group never hits a
    stranger that reused the number."""
    if proc.returncode is not None:
        return True
    waitid = getattr(os, "waitid", None)
    if waitid is None:  # no waitid (not Linux): reap, and accept the tiny reuse risk
        return proc.poll() is not None
    try:
        info = waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:  # already reaped
        return proc.poll() is not None
    return info is not None


class Process:
    """One run of the program: its process group, the threads that tee its output into the
    logs (keeping the last ``keep_lines`` lines of each stream), and the escalation from
    SIGTERM to SIGKILL ``grace_period`` seconds apart.

    ``on_stdout`` gets each stdout line in the pump thread; an exception it raises is kept
    in `error` for the waiting thread to raise.
    """

    def __init__(
        self, grace_period: float, keep_lines: int, on_stdout: Callable[[str], None]
    ) -> None:
        self.grace_period = grace_period
        self.on_stdout = on_stdout
        keep = max(keep_lines, 1)
        self.tails: dict[str, collections.deque[str]] = {
            "stdout": collections.deque(maxlen=keep),
            "stderr": collections.deque(maxlen=keep),
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.threads: list[threading.Thread] = []
        self.term_at: float | None = None  # when to send SIGTERM (monotonic)
        self.kill_at: float | None = None  # when to send SIGKILL
        self.signalled: list[str] = []
        self.error: BaseException | None = None  # raised in a pump thread, for the caller

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc is not None else None

    def start(
        self,
        argv: list[str],
        workdir: Path,
        env: Mapping[str, str],
        logs: tuple[IO[bytes], IO[bytes]],
        label: str,
    ) -> None:
        """Start ``argv`` in a new session; raises OSError when it cannot be started."""
        self.proc = subprocess.Popen(
            argv,
            cwd=workdir,
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            shell=False,
        )
        with _LIVE_LOCK:
            _LIVE.add(self.proc.pid)
        assert self.proc.stdout is not None and self.proc.stderr is not None
        pipes = (("stdout", self.proc.stdout, logs[0]), ("stderr", self.proc.stderr, logs[1]))
        self.threads = [
            threading.Thread(
                target=self._pump,
                args=(pipe, log, name),
                name=f"{label}-{name}",
                daemon=True,
            )
            for name, pipe, log in pipes
        ]
        for thread in self.threads:
            thread.start()

    def exited(self) -> bool:
        assert self.proc is not None
        return has_exited(self.proc)

    def terminate_by(self, when: float) -> None:
        """Send SIGTERM at ``when`` (monotonic) at the latest."""
        self.term_at = when if self.term_at is None else min(self.term_at, when)

    def escalate(self, now: float) -> None:
        """SIGTERM once its time has come, SIGKILL ``grace_period`` after it."""
        if self.term_at is not None and now >= self.term_at and self.kill_at is None:
            self._signal(signal.SIGTERM)
            self.kill_at = now + self.grace_period
        if self.kill_at is not None and now >= self.kill_at and "SIGKILL" not in self.signalled:
            self._signal(signal.SIGKILL)

    def terminate_now(self, wait: float) -> None:
        """SIGTERM, then SIGKILL after at most ``wait`` seconds (Ctrl-C)."""
        proc = self.proc
        if proc is None or has_exited(proc):
            return
        self._signal(signal.SIGTERM)
        end = time.monotonic() + wait
        while time.monotonic() < end and not has_exited(proc):
            time.sleep(POLL_S)
        self._signal(signal.SIGKILL)

    def finish(self) -> None:
        """The program has exited: kill what it left in its group, reap it, drain pipes."""
        proc = self.proc
        assert proc is not None
        killpg(proc.pid, signal.SIGKILL)  # leftovers; the unreaped leader keeps the pgid ours
        proc.wait()
        with _LIVE_LOCK:
            _LIVE.discard(proc.pid)
        for thread in self.threads:
            thread.join(5.0)

    def cleanup(self) -> None:
        """Whatever happened: nothing of the group left running, pipes closed."""
        proc = self.proc
        if proc is None:
            return
        if proc.returncode is None:
            killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):  # unkillable (D state)
                proc.wait(10.0)
        with _LIVE_LOCK:
            _LIVE.discard(proc.pid)
        for thread in self.threads:
            thread.join(1.0)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    def _signal(self, sig: signal.Signals) -> None:
        assert self.proc is not None
        self.signalled.append(sig.name)
        killpg(self.proc.pid, sig)

    def _pump(self, pipe: IO[bytes], log: IO[bytes], name: str) -> None:
        try:
            for raw in iter(lambda: pipe.readline(_READ_LIMIT), b""):
                log.write(raw)
                log.flush()
                line = raw.decode("utf-8", errors="replace").rstrip("\r\n")
                self.tails[name].append(line)
                if name == "stdout" and self.error is None:
                    try:
                        self.on_stdout(line)
                    except Exception as error:  # e.g. the storage: raised by the caller
                        self.error = error
        except (OSError, ValueError):  # the pipe or log was closed under us
            pass
