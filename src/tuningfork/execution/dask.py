"""Run a study's trials as Dask futures, on any Dask cluster.

::

    from dask.distributed import Client, LocalCluster
    from tuningfork.execution.dask import DaskExecutor

    client = Client(LocalCluster(n_workers=4, threads_per_worker=1))
    study = tuningfork.create_study("mnist", storage="sqlite:///hpo.db")
    study.optimize(objective, n_trials=100, executor=DaskExecutor(client))

On a SLURM cluster, use ``dask_jobqueue.SLURMCluster`` (each SLURM job is a Dask worker)
and a storage every node can reach: PostgreSQL, or a ``journal://`` file on the shared
file system (SQLite is for one machine).

Design: one Dask task per trial run, no scheduler of our own. The caller submits at most
``n_workers`` tasks at a time and a new one each time one finishes, until ``n_trials``
tasks have finished, ``timeout`` has passed or the sampler is exhausted. Each task is one
run of the ordinary worker loop: it (re)opens the study from the storage URL and name with
the caller's sampler and scheduler, and runs ``study.optimize(objective, n_trials=1)``, so
ask / heartbeats / tell / stale-trial reaping / retries are exactly those of a
``tuningfork worker``; the trials coordinate only through the storage (a paused ASHA trial
is resumed by whichever task asks next, on any Dask worker). A Dask worker thread keeps its
`Study` handle between the tasks of one ``optimize`` call, so it reads only new events.

Semantics, as `Study.optimize`:

* ``n_trials`` counts trial runs (resuming a paused trial is one). If a Dask worker dies
  mid-trial, Dask reruns its task on another worker (a new trial run), and the trial that
  was running stops sending heartbeats: the next ask after ``study.grace_period`` fails it
  as ``stale`` (and queues a retry if the study has ``max_retries``).
* ``timeout``: no trial starts after it (checked by the caller and by each task).
* ``catch``: those exceptions fail their trial (a warning on the Dask worker) and the study
  goes on; any other exception fails its trial, the remaining futures are cancelled and
  the exception is raised in the caller. Trials still running in cancelled tasks finish
  and are recorded as usual (Dask cannot stop a running thread).
* ``callbacks`` and the progress bar run in the calling process, as futures complete.
* Ctrl-C cancels the futures and marks the trials they were running FAIL ("interrupted").
* Each trial records the address of the Dask worker that ran it (last), system attr
  ``dask_worker``, and ``dask_run`` (an id of the ``optimize`` call).

The objective, sampler and scheduler are shipped to the workers with cloudpickle; their
locks are re-created and their per-study caches (weak dictionaries keyed by the caller's
`StudyView`) arrive empty, to be rebuilt from the storage there.
"""

from __future__ import annotations

import collections
import io
import pickle
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuningfork import _check as check
from tuningfork.exceptions import OptionError, SerializationError, TrialStateError, require
from tuningfork.execution.options import WorkerOptions

if TYPE_CHECKING:
    from tuningfork.study import Callback, Objective, Study
    from tuningfork.trial import FrozenTrial

__all__ = ["DaskExecutor"]

_EXTRA = "dask"
_WEAK_CACHES = (weakref.WeakKeyDictionary, weakref.WeakValueDictionary, weakref.WeakSet)
_LOCK_TYPES: dict[type, Callable[[], Any]] = {
    type(threading.Lock()): threading.Lock,
    type(threading.RLock()): threading.RLock,
}


def _distributed() -> Any:
    return require("distributed", _EXTRA)


class DaskExecutor:
    """Runs `Study.optimize` trials as futures on a Dask cluster (see the module docstring).

    Args:
        client: a ``distributed.Client`` connected to the cluster (``LocalCluster``,
            ``dask_jobqueue.SLURMCluster``, ...).
        n_workers: trials in flight at once; None: the number of Dask worker threads,
            counted again each time a trial finishes (so an adaptive cluster that grows
            gets more).
    """

    def __init__(self, client: Any, *, n_workers: int | None = None) -> None:
        distributed = _distributed()
        if not isinstance(client, distributed.Client):
            raise OptionError(
                f"client must be a distributed.Client, not {type(client).__name__}",
                option="client",
                owner="DaskExecutor",
            )
        if n_workers is not None:
            n_workers = check.integer(n_workers, "n_workers", "DaskExecutor", hint=" or None")
        self.client = client
        self.n_workers = n_workers

    def __repr__(self) -> str:
        return f"DaskExecutor(client={self.client!r}, n_workers={self.n_workers!r})"

    def slots(self) -> int:
        """How many trials may be in flight now."""
        if self.n_workers is not None:
            return self.n_workers
        return max(1, sum(self.client.nthreads().values()))

    def run(
        self,
        study: Study,
        objective: Objective,
        *,
        n_trials: int | None = None,
        timeout: float | None = None,
        catch: type[BaseException] | Iterable[type[BaseException]] = (),
        callbacks: Iterable[Callback] = (),
        show_progress_bar: bool | None = None,
        space: Any = None,
    ) -> None:
        """Run the trials of ``study.optimize(..., executor=self)``; call that instead."""
        from tuningfork._progress import Progress
        from tuningfork.study import Runner

        distributed = _distributed()
        check_shared_storage(study.storage)
        runner = Runner(study, objective, n_trials, timeout, catch, callbacks, space)  # checks
        token = uuid.uuid4().hex
        options = WorkerOptions(
            catch=runner.catch,
            space=runner.space,
            artifact_root=str(study.artifact_dir.parent),
            max_retries=study.max_retries,
            retry_failed_exceptions=study.retry_failed_exceptions,
            heartbeat_interval=study.heartbeat_interval,
            grace_period=study.grace_period,
            preempt_signals=(),  # the Dask worker process handles its own signals
        )
        spec = _Spec(
            name=study.name,
            url=study.storage.url,
            objective=objective,
            sampler=study.sampler,
            scheduler=study.scheduler,
            options=options,
        )
        payload = _dumps(spec)
        deadline = time.time() + timeout if timeout is not None else None
        progress = Progress(study, n_trials, timeout, show_progress_bar)
        pending: set[Any] = set()
        completed = submitted = 0
        stop = False
        queue = distributed.as_completed()

        def fill() -> None:
            nonlocal submitted
            room = self.slots() - len(pending)
            while room > 0 and not stop:
                if n_trials is not None and submitted >= n_trials:
                    return
                if deadline is not None and time.time() >= deadline:
                    return
                future = self.client.submit(
                    _run_task,
                    token,
                    payload,
                    deadline,
                    key=f"tuningfork-{token[:12]}-{submitted}",
                    pure=False,
                )
                pending.add(future)
                queue.add(future)
                submitted += 1
                room -= 1

        try:
            fill()
            for future in queue:
                pending.discard(future)
                outcome: _Outcome = future.result()  # re-raises the objective's error
                future.release()
                if not outcome.ran:
                    stop = True  # the sampler is exhausted, or the deadline passed
                    continue
                completed += 1
                if outcome.frozen is not None:
                    progress.update(outcome.frozen)
                    for callback in runner.callbacks:
                        callback(study, outcome.frozen)
                fill()
        except KeyboardInterrupt:
            self.client.cancel(list(pending), force=True)
            _fail_running(study, token, "interrupted (KeyboardInterrupt)")
            raise
        except BaseException:
            self.client.cancel(list(pending), force=True)
            raise
        finally:
            progress.close()


def check_shared_storage(storage: Any) -> None:
    """Raise `OptionError` unless ``storage`` can be reached from other processes."""
    url = getattr(storage, "url", None)
    if not isinstance(url, str) or url in ("memory", ":memory:") or _is_memory_sqlite(url):
        raise OptionError(
            f"Dask workers cannot share the in-process storage {url or storage!r}: use a "
            "storage every worker can open, e.g. a SQLite file ('sqlite:///hpo.db', one "
            "machine), PostgreSQL ('postgresql://user@host/db') or a journal file on a "
            "shared file system ('journal:///shared/hpo.log')",
            option="storage",
            owner="DaskExecutor",
        )


def _is_memory_sqlite(url: str) -> bool:
    if not url.startswith("sqlite"):
        return False
    rest = url.split("://", 1)[1] if "://" in url else ""
    path, _, query = rest.lstrip("/").partition("?")
    return path in ("", ":memory:") or "mode=memory" in query or path.startswith("file::memory:")


@dataclass
class _Spec:
    """What a task needs to open the study and run one trial."""

    name: str
    url: str
    objective: Callable[..., Any]
    sampler: Any
    scheduler: Any
    options: WorkerOptions  # what the caller's study handle was opened with


@dataclass
class _Outcome:
    ran: bool  # False: no trial started (sampler exhausted or past the deadline)
    frozen: FrozenTrial | None  # None when the trial was finished elsewhere (reaped)


def _dumps(spec: _Spec) -> bytes:
    cloudpickle: Any = require("cloudpickle", _EXTRA)  # Any: a base class below

    class _Pickler(cloudpickle.Pickler):
        def reducer_override(self, obj: Any) -> Any:
            make = _LOCK_TYPES.get(type(obj))
            if make is not None:  # samplers and schedulers hold locks: new ones there
                return make, ()
            if isinstance(obj, _WEAK_CACHES):  # per-StudyView caches: empty there
                return type(obj), ()
            return super().reducer_override(obj)

    buffer = io.BytesIO()
    try:
        _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(spec)
    except Exception as error:
        raise SerializationError(
            "cannot send the objective, sampler or scheduler to the Dask workers "
            f"(cloudpickle failed): {type(error).__name__}: {error}"
        ) from error
    return buffer.getvalue()


# -- on the Dask worker ---------------------------------------------------------------------

_HANDLES: collections.OrderedDict[tuple[str, int], tuple[Study, _Spec]] = collections.OrderedDict()
_HANDLES_LOCK = threading.Lock()
_MAX_HANDLES = 64


def _handle(token: str, payload: bytes) -> tuple[Study, _Spec]:
    """This thread's `Study` handle for the optimize call ``token`` (opened once)."""
    key = (token, threading.get_ident())
    with _HANDLES_LOCK:
        cached = _HANDLES.get(key)
        if cached is not None:
            _HANDLES.move_to_end(key)
            return cached
    spec: _Spec = pickle.loads(payload)
    study = spec.options.open_study(
        spec.name, spec.url, sampler=spec.sampler, scheduler=spec.scheduler
    )
    with _HANDLES_LOCK:
        _HANDLES[key] = (study, spec)
        while len(_HANDLES) > _MAX_HANDLES:
            _HANDLES.popitem(last=False)
    return study, spec


def _run_task(token: str, payload: bytes, deadline: float | None) -> _Outcome:
    """One trial run: ``study.optimize(objective, n_trials=1)`` on this Dask worker."""
    import distributed

    address = distributed.get_worker().address
    timeout = None
    if deadline is not None:
        timeout = deadline - time.time()
        if timeout <= 0:
            return _Outcome(ran=False, frozen=None)
    study, spec = _handle(token, payload)
    ran: list[int] = []
    told: list[FrozenTrial] = []

    def tagged(trial: Any) -> Any:
        ran.append(trial.number)
        trial.set_system_attrs({"dask_worker": address, "dask_run": token})
        return spec.objective(trial)

    study.optimize(
        tagged,
        n_trials=1,
        timeout=timeout,
        catch=spec.options.catch,
        callbacks=[lambda _study, frozen: told.append(frozen)],
        show_progress_bar=False,
        space=spec.options.space,
        preempt_signals=spec.options.preempt_signals,
    )
    return _Outcome(ran=bool(ran), frozen=told[0] if told else None)


# -- in the caller --------------------------------------------------------------------------


def _fail_running(study: Study, token: str, reason: str) -> None:
    """Fail the RUNNING trials that the tasks of optimize call ``token`` were running."""
    for trial in study.get_trials(states=("RUNNING",)):
        if trial.system_attrs.get("dask_run") != token:
            continue
        try:
            study.tell(trial.number, state="FAIL", reason=reason)
        except TrialStateError:
            pass  # finished meanwhile
        except Exception as error:  # e.g. the storage is unreachable: the reaper will do it
            warnings.warn(f"could not fail trial {trial.number}: {error}", stacklevel=2)
