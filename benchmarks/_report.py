"""What the benchmark scripts share: the machine's description, the command line, package
versions, and writing one script's section of RESULTS.md."""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shlex
import sys
from pathlib import Path


def cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo ("unknown" elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def machine_lines() -> dict[str, str]:
    """Platform, CPU and Python: the first lines of every section."""
    return {
        "platform": platform.platform(),
        "CPU": f"{cpu_model()}, os.cpu_count() = {os.cpu_count()}",
        "Python": platform.python_version(),
    }


def package_version(package: str) -> str:
    """The installed version of ``package``, or "not installed"."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def command() -> str:
    """The command line that ran this script, as it could be pasted in a shell."""
    exe = os.path.relpath(sys.executable)
    exe = exe if not exe.startswith("..") else sys.executable
    return shlex.join([exe, *sys.argv])


def write_section(path: Path, body: str, begin: str, end: str, follows: str | None = None) -> None:
    """Replace a section of ``path`` (marked by ``begin``/``end``), or add it: right after
    the line ``follows`` when there is one, else at the end."""
    section = f"{begin}\n{body.rstrip()}\n{end}\n"
    text = path.read_text() if path.exists() else ""
    if begin in text and end in text:
        before, rest = text.split(begin, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        text = before + section + ("\n" + after if after else "")
    elif follows is not None and follows in text:
        before, after = text.split(follows, 1)
        after = after.lstrip("\n")
        text = before + follows + "\n\n" + section + ("\n" + after if after else "")
    elif text.strip():
        text = text.rstrip() + "\n\n" + section
    else:
        text = "# Benchmark results\n\nWritten by the scripts in `benchmarks/`.\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
