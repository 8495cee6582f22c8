"""What is recorded to reproduce a study and its trials: versions, git state, seeds, workers.

Everything returned here is plain JSON-serialisable data, so storages can keep it as is.
"""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.metadata
import json
import operator
import os
import platform
import socket
import subprocess
from typing import Any

__all__ = [
    "derive_seed",
    "environment_record",
    "seed_record",
    "worker_id",
    "worker_record",
]

# Distribution names looked up with importlib.metadata; they are never imported.
_KEY_PACKAGES = (
    "numpy",
    "scipy",
    "sqlalchemy",
    "pyyaml",
    "torch",
    "scikit-learn",
    "pandas",
    "lightning",
    "jax",
    "tensorflow",
    "optuna",
    "xgboost",
    "lightgbm",
)

_SLURM_VARIABLES = (
    "SLURM_JOB_ID",
    "SLURM_ARRAY_JOB_ID",
    "SLURM_ARRAY_TASK_ID",
    "SLURM_JOB_NODELIST",
    "SLURM_PROCID",
    "SLURM_RESTART_COUNT",
    "SLURM_CLUSTER_NAME",
    "SLURM_JOB_PARTITION",
)

_GIT_TIMEOUT_S = 5.0

# Domain separation, so these seeds never coincide with another blake2b use of the same text.
_SEED_PERSON = b"tuningfork.seed"


def _distribution_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _installed_packages() -> dict[str, str]:
    packages: dict[str, str] = {}
    for name in _KEY_PACKAGES:
        version = _distribution_version(name)
        if version is not None:
            packages[name] = version
    return packages


def _git(args: list[str], cwd: str) -> str | None:
    """Run ``git`` with ``args`` in ``cwd``; its stripped stdout, or None on any failure."""
    try:
        completed = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        # git missing, cwd gone, or git hung (e.g. on a stalled network file system).
        return None
    if completed.returncode != 0:
        return None
    return completed.stdout.strip()


def _git_record(cwd: str) -> dict[str, Any] | None:
    root = _git(["rev-parse", "--show-toplevel"], cwd)
    if not root:
        return None
    # Fails in a repository without commits; the record then says commit None.
    commit = _git(["rev-parse", "--verify", "-q", "HEAD"], cwd) or None
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd)
    # Detached HEAD makes symbolic-ref fail: branch None.
    branch = _git(["symbolic-ref", "--short", "-q", "HEAD"], cwd) or None
    return {"commit": commit, "dirty": bool(status), "branch": branch, "root": root}


@functools.cache  # lru_cache without a bound: one entry per directory asked about
def _cached_environment_record(cwd: str) -> dict[str, Any]:
    return {
        "tuningfork": _distribution_version("tuningfork") or "unknown",
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "packages": _installed_packages(),
        "git": _git_record(cwd),
    }


def environment_record(*, cwd: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Versions, platform and git state of the code run from ``cwd`` (default: the current one).

    Computed once per process and directory; each call returns a fresh copy that the caller
    may modify. ``environment_record.cache_clear()`` forgets the cached records.
    """
    key = os.path.abspath(os.fspath(cwd) if cwd is not None else os.getcwd())
    return copy.deepcopy(_cached_environment_record(key))


environment_record.cache_clear = _cached_environment_record.cache_clear  # type: ignore[attr-defined]


def _slurm_record() -> dict[str, str] | None:
    if os.environ.get("SLURM_JOB_ID") is None:
        return None
    return {
        name.removeprefix("SLURM_").lower(): os.environ[name]
        for name in _SLURM_VARIABLES
        if name in os.environ
    }


def worker_record() -> dict[str, Any]:
    """Facts about this process: host, pid, SLURM job ids (strings, as SLURM sets them), GPUs."""
    return {
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "slurm": _slurm_record(),
        "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES"),
    }


_worker_id: tuple[int, str] | None = None


def worker_id() -> str:
    """A short id of this process, ``"hostname:pid"``; a forked child gets its own."""
    global _worker_id
    pid = os.getpid()
    if _worker_id is None or _worker_id[0] != pid:
        _worker_id = (pid, f"{socket.gethostname()}:{pid}")
    return _worker_id[1]


def _seed_key(value: object) -> int | str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        raise TypeError(f"seed keys must be int or str, got the bool {value!r}")
    try:
        # Accepts numpy integers too, so trial numbers read from arrays give the same seed.
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(
            f"seed keys must be int or str, got {value!r} of type {type(value).__name__}"
        ) from None


def derive_seed(seed: int, *keys: int | str) -> int:
    """A seed in ``[0, 2**32)`` derived from ``seed`` and ``keys``, equal in every process.

    The canonical text is the JSON list ``[seed, *keys]``, which tells ``1`` from ``"1"``,
    hashed with BLAKE2b; Python's ``hash()`` is salted per process and is never used.
    """
    parts = [_seed_key(seed), *(_seed_key(key) for key in keys)]
    text = json.dumps(parts, ensure_ascii=True, separators=(",", ":"))
    digest = hashlib.blake2b(text.encode("ascii"), digest_size=4, person=_SEED_PERSON).digest()
    return int.from_bytes(digest, "big")


def seed_record(seed: int | None, trial_number: int | None = None) -> dict[str, int | None]:
    """The study's seed and the trial's seed derived from it (None where either is unknown)."""
    trial_seed = None
    if seed is not None and trial_number is not None:
        trial_seed = derive_seed(seed, trial_number)
    return {"study_seed": seed, "trial_seed": trial_seed}
