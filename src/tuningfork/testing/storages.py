"""The storage contract: the behaviour every storage backend must show.

Studies can be created, found, listed and deleted; each study's log keeps batches in
order, atomically, apart from every other study's; heartbeats are recorded per trial; and
backends shared between processes survive many concurrent workers. Also holds
`run_in_processes`, the helper the multi-process tests use.
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar

import pytest

from tuningfork.exceptions import DuplicatedStudyError, StudyNotFound
from tuningfork.storage.base import Batch, Storage, StudyInfo

__all__ = ["StorageContract", "run_in_processes"]


# -- processes ------------------------------------------------------------------------------


def run_in_processes(
    target: Callable[..., Any], args: Sequence[tuple[Any, ...]], *, timeout: float = 120.0
) -> list[Any]:
    """Run ``target(*args[i])`` in ``len(args)`` fresh (spawned) processes at once.

    ``target`` and its arguments must be picklable: a module-level function and plain
    data. The processes start their work together (after a barrier, once imports are
    done). Returns the results in order; raises AssertionError with the children's
    tracebacks if any failed, or if they did not finish within ``timeout`` seconds.
    """
    context = multiprocessing.get_context("spawn")
    results: Any = context.Queue()
    barrier = context.Barrier(len(args))
    processes = [
        context.Process(
            target=_child, args=(target, tuple(item), index, barrier, results), daemon=True
        )
        for index, item in enumerate(args)
    ]
    for process in processes:
        process.start()
    outcomes: dict[int, tuple[str | None, Any]] = {}
    try:
        for _ in processes:
            index, error, value = results.get(timeout=timeout)
            outcomes[index] = (error, value)
    except queue_module.Empty:
        pass
    finally:
        for process in processes:
            process.join(timeout=10)
            if process.is_alive():
                process.terminate()
                process.join()
    failures = [f"process {i}:\n{error}" for i, (error, _) in sorted(outcomes.items()) if error]
    missing = [i for i in range(len(processes)) if i not in outcomes]
    if missing:
        codes = {i: processes[i].exitcode for i in missing}
        failures.append(f"processes {missing} gave no result in {timeout} s (exit codes {codes})")
    if failures:
        raise AssertionError("\n".join(failures))
    return [outcomes[i][1] for i in range(len(processes))]


def _child(
    target: Callable[..., Any],
    args: tuple[Any, ...],
    index: int,
    barrier: Any,
    results: Any,
) -> None:
    try:
        barrier.wait(timeout=60)
        value = target(*args)
    except BaseException:  # reported to the parent, which fails the test
        results.put((index, traceback.format_exc(), None))
        return
    results.put((index, None, value))


def _ask_tell_worker(url: str, name: str, index: int, n_trials: int) -> list[int]:
    """One process of the multi-process test: ``n_trials`` define-by-run ask/tell rounds."""
    from tuningfork.samplers.random import RandomSampler
    from tuningfork.study import load_study

    study = load_study(name, storage=url, sampler=RandomSampler(seed=index))
    numbers = []
    for i in range(n_trials):
        trial = study.ask()
        trial.suggest_float("x", 0.0, 1.0)
        study.tell(trial, float(index * 100_000 + i))
        numbers.append(trial.number)
    return numbers


# -- the contract ---------------------------------------------------------------------------


def _batch(label: str, size: int = 1) -> list[dict[str, Any]]:
    return [{"op": "test", "label": label, "i": i} for i in range(size)]


def _labels(batches: list[Batch]) -> list[str]:
    return [events[0]["label"] for _, events in batches]


class StorageContract:
    """Contract tests for a `Storage`. Subclass it and implement `make_storage`.

    Set ``processes = True`` when the storage can be shared between processes through
    its ``url`` (opened with `tuningfork.storage.get_storage`); the multi-process test
    then runs 4 processes of 250 ask/tell rounds each on one study.
    """

    processes: ClassVar[bool] = False
    n_processes: ClassVar[int] = 4
    trials_per_process: ClassVar[int] = 250

    def make_storage(self, tmp_path: Path) -> Storage:
        """A new, empty storage (``tmp_path`` is a fresh directory for files)."""
        raise NotImplementedError(f"{type(self).__name__} must implement make_storage()")

    @pytest.fixture
    def storage(self, tmp_path: Path) -> Any:
        store = self.make_storage(tmp_path)
        yield store
        store.close()

    # -- the registry ---------------------------------------------------------------------

    def test_create_get_list_delete(self, storage: Storage) -> None:
        assert storage.list_studies() == []
        first = storage.create_study("first", ("minimize",))
        second = storage.create_study("second", ("minimize", "maximize"))
        assert isinstance(first, StudyInfo) and first.study_id != second.study_id
        assert storage.get_study("first") == first
        assert storage.get_study("second").directions == ("minimize", "maximize")
        assert [info.name for info in storage.list_studies()] == ["first", "second"]
        storage.delete_study("first")
        assert [info.name for info in storage.list_studies()] == ["second"]
        with pytest.raises(StudyNotFound, match="first"):
            storage.get_study("first")

    def test_duplicate_name_is_an_error(self, storage: Storage) -> None:
        storage.create_study("same", ("minimize",))
        with pytest.raises(DuplicatedStudyError, match="same"):
            storage.create_study("same", ("maximize",))
        assert len(storage.list_studies()) == 1

    def test_missing_study_is_an_error(self, storage: Storage) -> None:
        storage.create_study("present", ("minimize",))
        with pytest.raises(StudyNotFound, match="absent"):
            storage.get_study("absent")
        with pytest.raises(StudyNotFound, match="absent"):
            storage.delete_study("absent")

    # -- the log --------------------------------------------------------------------------

    def test_append_then_read_in_order(self, storage: Storage) -> None:
        study = storage.create_study("log", ("minimize",)).study_id
        assert storage.read(study, 0) == []
        seqs = [storage.append(study, _batch(f"b{i}", size=i + 1)) for i in range(5)]
        assert seqs == sorted(seqs) and len(set(seqs)) == 5 and seqs[0] > 0
        batches = storage.read(study, 0)
        assert [seq for seq, _ in batches] == seqs
        assert _labels(batches) == [f"b{i}" for i in range(5)]
        assert [len(events) for _, events in batches] == [1, 2, 3, 4, 5]
        assert [event["i"] for event in batches[4][1]] == [0, 1, 2, 3, 4]

    def test_read_after_returns_only_later_batches(self, storage: Storage) -> None:
        study = storage.create_study("after", ("minimize",)).study_id
        seqs = [storage.append(study, _batch(f"b{i}")) for i in range(4)]
        assert _labels(storage.read(study, seqs[1])) == ["b2", "b3"]
        assert _labels(storage.read(study, seqs[2])) == ["b3"]
        assert storage.read(study, seqs[-1]) == []
        assert _labels(storage.read(study, seqs[0] - 1)) == ["b0", "b1", "b2", "b3"]
        # another study's appends in between neither show up nor disturb `after`
        other = storage.create_study("other", ("minimize",)).study_id
        storage.append(other, _batch("other"))
        late = storage.append(study, _batch("late"))
        assert late > seqs[-1]
        assert _labels(storage.read(study, seqs[-1])) == ["late"]
        assert _labels(storage.read(study, seqs[3])) == ["late"]

    def test_events_round_trip_as_json_data(self, storage: Storage) -> None:
        study = storage.create_study("json", ("minimize",)).study_id
        event = {
            "op": "test",
            "text": 'ünïcödé ✓ "quoted" \n',
            "float": 0.1,
            "tiny": -1.5e-300,
            "big": 2**53,
            "none": None,
            "flags": [True, False],
            "nested": {"list": [1, "a", None, 2.5], "map": {"k": {}}},
        }
        storage.append(study, [event])
        [(_, events)] = storage.read(study, 0)
        assert events == [event]
        assert type(events[0]["big"]) is int and type(events[0]["float"]) is float

    def test_a_read_never_sees_a_partial_batch(self, storage: Storage) -> None:
        study = storage.create_study("atomic", ("minimize",)).study_id
        size, per_writer, writers = 25, 40, 2
        done = threading.Event()
        seen: list[Batch] = []
        errors: list[BaseException] = []

        def write(writer: int) -> None:
            try:
                for b in range(per_writer):
                    storage.append(study, _batch(f"{writer}:{b}", size))
            except BaseException as error:  # reported below
                errors.append(error)

        def read() -> None:
            last = 0
            try:
                while True:
                    finished = done.is_set()
                    batches = storage.read(study, last)
                    for seq, events in batches:
                        assert seq > last
                        seen.append((seq, events))
                        last = seq
                    if finished:
                        return
                    if not batches:
                        time.sleep(0.0005)  # let the writers run
            except BaseException as error:  # reported below
                errors.append(error)

        reader = threading.Thread(target=read)
        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        reader.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        done.set()
        reader.join()
        assert not errors, errors
        assert len(seen) == writers * per_writer
        for _, events in seen:
            assert [event["i"] for event in events] == list(range(size))
            assert len({event["label"] for event in events}) == 1
        assert sorted(_labels(seen)) == sorted(
            f"{w}:{b}" for w in range(writers) for b in range(per_writer)
        )

    def test_studies_are_isolated(self, storage: Storage) -> None:
        a = storage.create_study("a", ("minimize",)).study_id
        b = storage.create_study("b", ("minimize",)).study_id
        for i in range(3):
            storage.append(a, _batch(f"a{i}"))
            storage.append(b, _batch(f"b{i}"))
        assert _labels(storage.read(a, 0)) == ["a0", "a1", "a2"]
        assert _labels(storage.read(b, 0)) == ["b0", "b1", "b2"]
        storage.heartbeat(a, [0], "worker-a", 10.0)
        storage.delete_study("a")
        assert _labels(storage.read(b, 0)) == ["b0", "b1", "b2"]
        assert storage.heartbeats(b) == {}
        again = storage.create_study("a", ("minimize",)).study_id
        assert storage.read(again, 0) == []
        assert storage.heartbeats(again) == {}

    # -- heartbeats -----------------------------------------------------------------------

    def test_heartbeats(self, storage: Storage) -> None:
        study = storage.create_study("beats", ("minimize",)).study_id
        other = storage.create_study("quiet", ("minimize",)).study_id
        assert storage.heartbeats(study) == {}
        storage.heartbeat(study, [0, 1], "worker-1", 100.0)
        assert storage.heartbeats(study) == {0: 100.0, 1: 100.0}
        storage.heartbeat(study, [1], "worker-1", 105.5)
        storage.heartbeat(study, [], "worker-1", 200.0)
        assert storage.heartbeats(study) == {0: 100.0, 1: 105.5}
        assert storage.heartbeats(other) == {}

    # -- concurrency ----------------------------------------------------------------------

    def test_threads_append_concurrently(self, storage: Storage) -> None:
        study = storage.create_study("threads", ("minimize",)).study_id
        seqs: list[int] = []
        lock = threading.Lock()

        def work(t: int) -> None:
            for i in range(50):
                seq = storage.append(study, _batch(f"{t}:{i}"))
                with lock:
                    seqs.append(seq)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        batches = storage.read(study, 0)
        assert len(set(seqs)) == 200
        assert [seq for seq, _ in batches] == sorted(seqs)
        for t in range(4):  # each thread's batches stay in the order it appended them
            mine = [label for label in _labels(batches) if label.startswith(f"{t}:")]
            assert mine == [f"{t}:{i}" for i in range(50)]

    def test_processes_share_a_study(self, storage: Storage) -> None:
        if not self.processes:
            pytest.skip("this storage is not shared between processes")
        from tuningfork.study import create_study
        from tuningfork.trial import TrialState

        study = create_study("shared", storage=storage)
        n, per = self.n_processes, self.trials_per_process
        args = [(storage.url, "shared", index, per) for index in range(n)]
        numbers = run_in_processes(_ask_tell_worker, args)
        trials = study.trials
        assert len(trials) == n * per
        assert [t.number for t in trials] == list(range(n * per))
        assert sorted(number for chunk in numbers for number in chunk) == list(range(n * per))
        assert all(t.state is TrialState.COMPLETE for t in trials)
        told = {float(index * 100_000 + i) for index in range(n) for i in range(per)}
        assert {t.value for t in trials} == told
