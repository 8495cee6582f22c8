"""Running trials: the worker loop (`run_worker`), which any number of processes, SLURM
jobs or Dask tasks run against one study, with its settings in one `WorkerOptions`;
launchers only start workers."""

from __future__ import annotations

from tuningfork.execution.options import WorkerOptions
from tuningfork.execution.worker import load_objective, run_worker

__all__ = ["WorkerOptions", "load_objective", "run_worker"]
