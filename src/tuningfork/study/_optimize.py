"""`Study.optimize`: the ask-run-tell loop in one or more threads, its heartbeat, and
preemption by signals. What belongs to one call (its cap, its preemption flag) lives in a
`Call`, not on the long-lived handle."""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tuningfork._progress import Progress
from tuningfork.exceptions import (
    CommandFailed,
    OptionError,
    SearchExhausted,
    TrialPruned,
    TrialStateError,
    WaitForTrials,
)
from tuningfork.space import Space
from tuningfork.study import _ask, _tell
from tuningfork.trial import FrozenTrial, Trial, TrialState, check_values

if TYPE_CHECKING:
    from tuningfork.study._study import Study

Objective = Callable[[Trial], Any]

WAIT_FIRST_S = 0.05
"""After `WaitForTrials`, the first pause before asking again (seconds); it grows by half
each time up to `WAIT_MAX_S`."""
WAIT_MAX_S = 2.0
Callback = Callable[["Study", FrozenTrial], None]


@dataclass
class Call:
    """The state of one `Study.optimize` call (or of plain ask/tell when none runs)."""

    max_trials: int | None = None  # new trials claim one of max_trials places in the log
    monitored: bool = False  # heartbeats are sent for this handle's trials
    preempt: bool = False  # set by the signal handler: stop at the next report


def optimize(
    study: Study,
    objective: Objective,
    n_trials: int | None,
    timeout: float | None,
    n_jobs: int,
    catch: type[BaseException] | Iterable[type[BaseException]],
    callbacks: Iterable[Callback],
    show_progress_bar: bool | None,
    space: Space | Mapping[str, Any] | None,
    preempt_signals: Iterable[int | str],
    executor: Any,
    max_trials: int | None,
) -> None:
    """See `Study.optimize`."""
    message = study.scheduler.start_message() if show_progress_bar is not False else None
    if message:
        print(message, file=sys.stderr)
    if executor is not None:
        if n_jobs != 1:
            raise OptionError(
                "n_jobs applies to threads in this process; with an executor, set how "
                "many trials run at once on the executor (e.g. DaskExecutor(n_workers=))",
                option="n_jobs",
            )
        executor.run(
            study,
            objective,
            n_trials=n_trials,
            timeout=timeout,
            catch=catch,
            callbacks=callbacks,
            show_progress_bar=show_progress_bar,
            space=space,
        )
        return
    if max_trials is not None and (isinstance(max_trials, bool) or max_trials < 1):
        raise OptionError(
            f"max_trials must be an int >= 1, got {max_trials!r}", option="max_trials"
        )
    warning = study.scheduler.cap_warning(max_trials) if max_trials is not None else None
    if warning:
        warnings.warn(warning, stacklevel=3)
    runner = Runner(study, objective, n_trials, timeout, catch, callbacks, space)
    progress = Progress(study, n_trials, timeout, show_progress_bar)
    runner.progress = progress
    study._preempted_by = None
    call = Call(max_trials=max_trials, monitored=True)
    previous = _install_preemption(study, call, runner, preempt_signals)
    heart = _Heartbeat(study)
    outer, study._call = study._call, call
    try:
        runner.run(_n_workers(n_jobs))
    finally:
        study._call = outer
        heart.stop()
        progress.close()
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)


def _signal_number(item: int | str) -> int:
    if isinstance(item, str):
        name = item.upper() if item.upper().startswith("SIG") else f"SIG{item.upper()}"
        number = getattr(signal, name, None)
        if number is None:
            raise OptionError(
                f"unknown signal {item!r} (e.g. 'SIGTERM', 'SIGUSR1')", option="preempt_signals"
            )
        return int(number)
    return int(item)


def _install_preemption(
    study: Study, call: Call, runner: Runner, signals: Iterable[int | str]
) -> dict[int, Any]:
    """Install the preemption handler for ``signals``; the handlers it replaced."""
    numbers = [_signal_number(item) for item in signals]
    if not numbers or threading.current_thread() is not threading.main_thread():
        return {}  # signal handlers can only be set from the main thread

    def handler(signum: int, frame: Any) -> None:
        # only flags here: the main thread may be inside a storage call
        study._preempted_by = signum
        call.preempt = True
        runner.stop.set()
        for _ in range(3):
            try:
                trials = list(study._active.values())
            except RuntimeError:  # changed size in another thread: look again
                continue
            for trial in trials:
                trial.preempted = True
            break

    previous = {}
    for number in numbers:
        previous[number] = signal.signal(number, handler)
    return previous


def _n_workers(n_jobs: int) -> int:
    import os

    if n_jobs == -1:
        return os.cpu_count() or 1
    if n_jobs < 1:
        raise OptionError(f"n_jobs must be >= 1 or -1 (one per CPU), got {n_jobs}", option="n_jobs")
    return n_jobs


class _Heartbeat:
    """Sends heartbeats for the trials a `Study` handle is running, from a daemon thread."""

    def __init__(self, study: Study) -> None:
        self._study = study
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="tuningfork-heartbeat", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        study = self._study
        while not self._stop.wait(study.heartbeat_interval):
            numbers = list(study._active)
            try:
                study._log.heartbeat(numbers)
            except Exception as error:  # a missed beat is not fatal; the next one may pass
                warnings.warn(f"heartbeat failed: {error}", stacklevel=1)

    def stop(self) -> None:
        self._stop.set()


class Runner:
    """The ask-run-tell loop of `Study.optimize`, in one or more threads."""

    def __init__(
        self,
        study: Study,
        objective: Objective,
        n_trials: int | None,
        timeout: float | None,
        catch: type[BaseException] | Iterable[type[BaseException]],
        callbacks: Iterable[Callback],
        space: Space | Mapping[str, Any] | None,
    ) -> None:
        if n_trials is not None and n_trials < 0:
            raise OptionError(f"n_trials must be >= 0, got {n_trials}", option="n_trials")
        if timeout is not None and not (timeout > 0 and math.isfinite(timeout)):
            raise OptionError(
                f"timeout must be a positive number of seconds, got {timeout}", option="timeout"
            )
        self.study = study
        self.objective = objective
        self.n_trials = n_trials
        self.deadline = time.monotonic() + timeout if timeout is not None else None
        self.catch = (catch,) if isinstance(catch, type) else tuple(catch)
        self.callbacks = list(callbacks)
        self.space = space if space is None or isinstance(space, Space) else Space.from_dict(space)
        self.started = 0
        self.lock = threading.Lock()
        self.asking = threading.Lock()  # held from ask() until the trial is in study._active
        self.stop = threading.Event()
        self.progress: Progress | None = None
        self.error: BaseException | None = None

    def run(self, n_workers: int) -> None:
        if n_workers == 1:
            try:
                self.loop()
            except KeyboardInterrupt:  # e.g. while telling: no trial is left RUNNING
                self._fail_active("interrupted (KeyboardInterrupt)")
                raise
            return
        threads = [
            threading.Thread(target=self._thread_loop, name=f"tuningfork-{i}", daemon=True)
            for i in range(n_workers)
        ]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(0.1)
        except KeyboardInterrupt:
            self.stop.set()
            with self.asking:  # no thread is between ask() and registering its trial
                self._fail_active("interrupted (KeyboardInterrupt)")
            raise
        if self.error is not None:
            raise self.error

    def _thread_loop(self) -> None:
        try:
            self.loop()
        except BaseException as error:  # re-raised in the calling thread
            self.error = error
            self.stop.set()

    def _take_slot(self) -> bool:
        with self.lock:
            if self.stop.is_set():
                return False
            if self.n_trials is not None and self.started >= self.n_trials:
                return False
            if self.deadline is not None and time.monotonic() >= self.deadline:
                return False
            self.started += 1
            return True

    def loop(self) -> None:
        trial: Trial | None = None
        while True:
            if trial is None:
                trial = self._ask()
                if trial is None:
                    return
            if self.study._call.preempt:  # the signal came while asking: run nothing
                trial.preempted = True
                trial.pause("preempted")
                self._tell(trial, state=TrialState.PRUNED, reason="preempted")
                return
            outcome = self.run_one(trial)
            frozen, trial = self._finish(trial, outcome)
            if frozen is None:
                continue
            if self.progress is not None:
                self.progress.update(frozen, self.study.reader.best_trial)
            for callback in self.callbacks:
                callback(self.study, frozen)

    def _ask(self) -> Trial | None:
        """A new trial for this loop, or None when there is no slot or nothing to ask."""
        if not self._take_slot():
            return None
        pause = WAIT_FIRST_S
        while True:
            try:
                with self.asking:
                    if self.stop.is_set():  # interrupted while waiting: start nothing
                        return None
                    return self.study.ask(self.space)
            except WaitForTrials:
                # e.g. PBT's generation waits for running members: ask again shortly
                if self.deadline is not None and time.monotonic() >= self.deadline:
                    return None
                if self.stop.wait(pause):
                    return None
                pause = min(pause * 1.5, WAIT_MAX_S)
            except SearchExhausted:
                # only this thread is done: at a cap (max_trials) another thread, asking
                # after its running trial, may still get a promotion (`assign_at_cap`)
                return None

    def _finish(
        self, trial: Trial, outcome: dict[str, Any]
    ) -> tuple[FrozenTrial | None, Trial | None]:
        """Tell ``outcome``; when this loop goes on, ask the next trial in the same batch
        (`tell_and_ask`). Returns the told trial and the next one, if any.

        Only where asking is cheap: a scheduler that assigns trials (SHA, ASHA, Hyperband,
        BOHB, DEHB) may fit a model in its ``assign``, which would leave the result unwritten
        for that long, so with one the tell goes first as usual."""
        if self.study.scheduler.assigns or not self._take_slot():
            return self._tell(trial, **outcome), None
        try:
            with self.asking:
                if self.stop.is_set():
                    return self._tell(trial, **outcome), None
                frozen, following = tell_and_ask(self.study, trial, self.space, **outcome)
        except TrialStateError:  # already failed by an interrupt or a stale-trial reaper
            return None, self._ask()
        if following is None:
            self.stop.set()  # the sampler has nothing left
        return frozen, following

    def run_one(self, trial: Trial) -> dict[str, Any]:
        """Run the objective on ``trial``; the keyword arguments of its tell."""
        study = self.study
        try:
            raw = self.objective(trial)
        except TrialPruned as error:
            return {"state": TrialState.PRUNED, "reason": str(error) or "pruned"}
        except KeyboardInterrupt:
            self._tell(trial, state=TrialState.FAIL, reason="interrupted (KeyboardInterrupt)")
            raise
        except self.catch as error:
            reason = _describe_error(error)
            warnings.warn(f"trial {trial.number} failed: {reason}", stacklevel=2)
            return {"state": TrialState.FAIL, "reason": reason}
        except BaseException as error:
            self._tell(trial, state=TrialState.FAIL, reason=_describe_error(error))
            raise
        try:
            values = check_values(raw, len(study.directions))
        except ValueError as error:
            warnings.warn(f"trial {trial.number} failed: {error}", stacklevel=2)
            return {"state": TrialState.FAIL, "reason": str(error)}
        return {"values": values}

    def _tell(self, trial: Trial, **kwargs: Any) -> FrozenTrial | None:
        try:
            return self.study.tell(trial, **kwargs)
        except TrialStateError:
            return None  # already failed by an interrupt or a stale-trial reaper

    def _fail_active(self, reason: str) -> None:
        for trial in list(self.study._active.values()):
            self._tell(trial, state=TrialState.FAIL, reason=reason)


def _describe_error(error: BaseException) -> str:
    if isinstance(error, CommandFailed):  # its message already says what went wrong
        return f"{type(error).__name__}: {error}"
    lines = traceback.format_exception(type(error), error, error.__traceback__)
    tail = "".join(lines[-6:]).strip()
    return f"{type(error).__name__}: {error}\n{tail}"


def tell_and_ask(
    study: Study, trial: Trial, space: Space | None, **tell: Any
) -> tuple[FrozenTrial, Trial | None]:
    """`Study.tell` and the next `Study.ask` in one atomic batch: the finish events ride
    with the first append of the ask (a new trial's creation, a claim, a resume), so a
    worker that runs one trial after another pays one durable write per trial, not two.
    The ask decides as if another worker had asked just before this tell; log order
    settles claims as usual. Returns the told trial and the next one (None when the
    sampler is exhausted)."""
    log = study._log
    following: Trial | None = None
    frozen: FrozenTrial | None = None
    with log.lock:
        number, final, events = _tell.tell_events(
            study,
            trial,
            tell.get("value"),
            tell.get("values"),
            tell.get("state"),
            tell.get("reason"),
        )
        if final is TrialState.FAIL and study.max_retries > 0:
            log.append(events, sync=True)  # its retry is queued before the next ask
            frozen = _tell.tell_done(study, trial, number, final)
        else:
            log.carry = events
        try:
            if _ask.may_claim(study):
                log.sync()
            else:
                log.sync_unless_fresh()
            study._reap_if_due()
            following = _ask.take_trial(study, space)
            study._active[following.number] = following
            following._space = space
        except SearchExhausted:
            following = None
        finally:
            if log.carry:  # nothing was appended: the finish goes alone
                carry, log.carry = log.carry, []
                log.append(carry, sync=True)
        if frozen is None:
            frozen = _tell.tell_done(study, trial, number, final)
    if following is not None and not study._restore_checkpoint(following):
        try:
            return frozen, study.ask(space)
        except SearchExhausted:
            return frozen, None
    if following is not None and space is not None and not following.resumed:
        study._fill_or_fail(following, space)
    return frozen, following
