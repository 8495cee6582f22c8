"""The journal-file storage: the storage contract, many writer processes, torn lines,
format versions and compaction."""

from __future__ import annotations

import fcntl
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path

import pytest

import tuningfork as tf
from tuningfork.exceptions import SchemaVersionError, StorageError, StorageWarning
from tuningfork.storage import get_storage
from tuningfork.storage.journal import (
    COHERENT_FILESYSTEMS,
    JournalStorage,
    filesystem_type,
    journal_path,
)
from tuningfork.testing import StorageContract
from tuningfork.testing.storages import run_in_processes
from tuningfork.trial import TrialState


class TestJournalStorage(StorageContract):
    processes = True

    def make_storage(self, tmp_path: Path) -> tf.Storage:
        return JournalStorage(tmp_path / "contract.log")


class TestJournalStorageNotCoherent(StorageContract):
    """The NFS way of writing: every batch flushed before the lock is released."""

    processes = True

    def make_storage(self, tmp_path: Path) -> tf.Storage:
        return JournalStorage(tmp_path / "contract.log", coherent=False)


# -- URLs -----------------------------------------------------------------------------------


def test_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert journal_path("journal:///abs/x.log") == "/abs/x.log"
    monkeypatch.chdir(tmp_path)
    assert journal_path("journal://rel/x.log") == str(tmp_path / "rel" / "x.log")
    store = get_storage("journal://study.log")
    assert isinstance(store, JournalStorage)
    assert store.url == f"journal://{tmp_path / 'study.log'}"
    assert get_storage(store.url) is store
    assert store.artifact_root() == tmp_path / "tuningfork_artifacts"
    with pytest.raises(StorageError, match="does not exist"):
        get_storage(f"journal://{tmp_path}/missing/x.log")
    with pytest.raises(StorageError, match="journal file"):
        get_storage("journal://")


def test_create_study_with_a_url(tmp_path: Path) -> None:
    url = f"journal://{tmp_path}/x.log"
    study = tf.create_study("s", storage=url)
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=5)
    assert len(tf.load_study("s", storage=url).trials) == 5


# -- file systems ---------------------------------------------------------------------------

_MOUNTINFO = """\
22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/vda rw
30 22 0:26 / /scratch rw,relatime shared:5 - nfs4 server:/export rw,vers=4.2
31 30 0:27 / /scratch/fast rw shared:6 - lustre 10.0.0.1@tcp:/fs rw,flock
32 22 0:28 / /my\\040data rw - fuse.sshfs host:/x rw
33 22 0:29 / /scratch2 rw - tmpfs tmpfs rw
34 22 0:30 / /scratch2 rw - nfs server:/over rw
"""


@pytest.mark.parametrize(
    ("path", "kind", "coherent"),
    [
        ("/home/me/study.log", "ext4", True),
        ("/scratch/me/study.log", "nfs4", False),
        ("/scratch", "nfs4", False),
        ("/scratch/fast/study.log", "lustre", True),
        ("/scratch/faster/study.log", "nfs4", False),  # not under /scratch/fast
        ("/my data/study.log", "fuse.sshfs", False),  # \040 is a space
        ("/scratch2/x", "nfs", False),  # mounted over the tmpfs: the last one counts
    ],
)
def test_filesystem_type_from_the_mount_table(path: str, kind: str, coherent: bool) -> None:
    assert filesystem_type(path, _MOUNTINFO) == kind
    assert (kind in COHERENT_FILESYSTEMS) is coherent


def test_the_file_system_decides_where_the_fsync_goes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Coherent (here: the test's local disk): fsync after the unlock. Not coherent (NFS):
    fsync before it, whatever ``fsync`` says, so that the next writer on another machine
    finds our line on the server."""
    calls: list[str] = []
    real_lockf, real_fsync = fcntl.lockf, os.fsync

    def lockf(fd: int, command: int, *args: int) -> None:
        calls.append("unlock" if command == fcntl.LOCK_UN else "lock")
        real_lockf(fd, command, *args)

    def fsync(fd: int) -> None:
        calls.append("fsync")
        real_fsync(fd)

    assert JournalStorage(tmp_path / "local.log").coherent  # ext4, xfs, tmpfs, ...
    for coherent, fsync_option, expected in [
        (True, True, ["lock", "unlock", "fsync"]),
        (True, False, ["lock", "unlock"]),
        (False, True, ["lock", "fsync", "unlock"]),
        (False, False, ["lock", "fsync", "unlock"]),
    ]:
        store = JournalStorage(
            tmp_path / f"{coherent}-{fsync_option}.log", fsync=fsync_option, coherent=coherent
        )
        study = store.create_study("s", ("minimize",)).study_id
        monkeypatch.setattr(fcntl, "lockf", lockf)
        monkeypatch.setattr(os, "fsync", fsync)
        calls.clear()
        store.append(study, [{"op": "test"}])
        monkeypatch.undo()
        assert calls == expected, (coherent, fsync_option)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            "tuningfork.storage.journal.filesystem_type", lambda path, mountinfo=None: "nfs4"
        )
        assert not JournalStorage(tmp_path / "nfs.log").coherent


# -- many processes -------------------------------------------------------------------------


def _append_worker(path: str, index: int, n: int, coherent: bool = True) -> list[int]:
    store = JournalStorage(path, coherent=coherent)
    study = store.get_study("s").study_id
    return [
        store.append(study, [{"op": "test", "w": index, "i": i, "k": k} for k in range(3)])
        for i in range(n)
    ]


@pytest.mark.slow
@pytest.mark.parametrize("coherent", [True, False], ids=["coherent", "nfs-like"])
def test_concurrent_writer_processes(tmp_path: Path, coherent: bool) -> None:
    path = str(tmp_path / "j.log")
    store = JournalStorage(path)
    study = store.create_study("s", ("minimize",)).study_id
    n, per = 8, 100
    seqs = run_in_processes(_append_worker, [(path, w, per, coherent) for w in range(n)])
    batches = JournalStorage(path).read(study, 0)
    assert [seq for seq, _ in batches] == list(range(1, n * per + 1))
    assert sorted(s for chunk in seqs for s in chunk) == list(range(1, n * per + 1))
    seen = [(events[0]["w"], events[0]["i"]) for _, events in batches]
    assert sorted(seen) == [(w, i) for w in range(n) for i in range(per)]
    for _, events in batches:
        assert [e["k"] for e in events] == [0, 1, 2]
        assert len({(e["w"], e["i"]) for e in events}) == 1
    for w in range(n):  # each writer's batches in its own order
        assert [i for ww, i in seen if ww == w] == list(range(per))
    assert store.read(study, 0) == batches  # the first handle catches up too


def _study_worker(url: str, index: int, n_total: int) -> list[int]:
    """One of 8 processes: runs its share of three studies (spawning costs ~1 s each,
    so one set of processes serves the three checks)."""
    opt = tf.load_study("opt", storage=url, sampler=tf.RandomSampler(seed=index))
    opt.optimize(
        lambda t: t.suggest_float("x", 0.0, 1.0) + t.suggest_int("i", 0, 5),
        n_trials=n_total // 8,
    )
    grid = tf.load_study("grid", storage=url, sampler=tf.GridSampler(_GRID))
    grid.optimize(
        lambda t: (
            t.suggest_categorical("a", _GRID["a"]) * 10 + t.suggest_categorical("b", _GRID["b"])
        ),
        n_trials=40,
    )
    queue = tf.load_study("queue", storage=url, sampler=tf.RandomSampler(seed=index))
    numbers = []
    for _ in range(5):  # 8 x 5 = the 40 queued configurations, each taken exactly once
        trial = queue.ask()
        x = trial.suggest_int("x", 0, 1000)
        queue.tell(trial, float(x))
        numbers.append(trial.number)
    return numbers


_GRID = {"a": [0, 1, 2, 3, 4], "b": [0, 1, 2, 3]}


@pytest.mark.slow
def test_8_processes_optimize_grid_and_queue(tmp_path: Path) -> None:
    url = f"journal://{tmp_path}/studies.log"
    opt = tf.create_study("opt", storage=url, sampler=tf.RandomSampler(seed=0))
    grid = tf.create_study("grid", storage=url, sampler=tf.GridSampler(_GRID))
    queue = tf.create_study("queue", storage=url, sampler=tf.RandomSampler(seed=0))
    for x in range(40):
        queue.enqueue_trial({"x": x})
    n = 160
    numbers = run_in_processes(_study_worker, [(url, index, n) for index in range(8)])
    # optimize: exactly n trials, unique numbers, every value recorded
    trials = opt.trials
    assert len(trials) == n
    assert [t.number for t in trials] == list(range(n))
    assert all(t.state is TrialState.COMPLETE and t.value is not None for t in trials)
    assert all(t.value == t.params["x"] + t.params["i"] for t in trials)
    # grid: every point exactly once
    complete = [t for t in grid.trials if t.state is TrialState.COMPLETE]
    assert sorted(t.value for t in complete) == [a * 10 + b for a in range(5) for b in range(4)]
    # queue: every enqueued configuration exactly once, and nothing else
    assert sorted(n for chunk in numbers for n in chunk) == list(range(40))
    assert len(queue.trials) == 40
    assert sorted(t.value for t in queue.trials) == [float(x) for x in range(40)]


# -- torn lines, versions, compaction -------------------------------------------------------


@pytest.mark.filterwarnings("ignore::tuningfork.exceptions.StorageWarning")  # tested below
def test_a_torn_last_line_is_skipped_and_repaired(tmp_path: Path) -> None:
    path = tmp_path / "torn.log"
    store = JournalStorage(path)
    study = store.create_study("s", ("minimize",)).study_id
    store.append(study, [{"op": "test", "i": 0}])
    whole = json.dumps({"study": study, "seq": 2, "events": [{"op": "test", "i": "lost"}]})
    with open(path, "ab") as f:  # a writer that crashed halfway through its line
        f.write(whole[: len(whole) // 2].encode())
    reader = JournalStorage(path)
    assert [events[0]["i"] for _, events in reader.read(study, 0)] == [0]
    assert store.read(study, 0) == reader.read(study, 0)
    # the next writer terminates the torn line and appends after it
    assert reader.append(study, [{"op": "test", "i": 1}]) == 2
    assert path.read_bytes().count(b"\n") == 5  # header, create, batch, torn, batch
    for handle in (store, reader, JournalStorage(path)):
        assert [(s, e[0]["i"]) for s, e in handle.read(study, 0)] == [(1, 0), (2, 1)]
    assert store.append(study, [{"op": "test", "i": 2}]) == 3
    store.compact()
    assert b"lost" not in path.read_bytes()
    assert [e[0]["i"] for _, e in JournalStorage(path).read(study, 0)] == [0, 1, 2]


@pytest.mark.filterwarnings("ignore::tuningfork.exceptions.StorageWarning")  # tested below
def test_a_garbage_line_in_the_middle_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "garbage.log"
    store = JournalStorage(path)
    study = store.create_study("s", ("minimize",)).study_id
    store.append(study, [{"op": "test", "i": 0}])
    with open(path, "ab") as f:  # e.g. a torn write with a hole, on NFS
        f.write(b'\x00\x00\x00{"study": 1, "se\n')
    store.append(study, [{"op": "test", "i": 1}])
    fresh = JournalStorage(path)
    assert [(s, e[0]["i"]) for s, e in fresh.read(study, 0)] == [(1, 0), (2, 1)]


def _warnings_of(action: Callable[[], object]) -> tuple[object, list[str]]:
    """What ``action`` returns, and the messages of the StorageWarnings it gave."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = action()
    return result, [str(w.message) for w in caught if issubclass(w.category, StorageWarning)]


def _skipped(path: Path, n: int, offset: int) -> str:
    return (
        f"{path}: skipped {n} line(s) that are not valid journal records, the first at byte "
        f"offset {offset} (a writer that crashed mid-line, or bytes written by something "
        f"else); `tuningfork compact journal://{path}` drops them"
    )


def test_garbage_lines_are_counted_and_warned_once_per_read(tmp_path: Path) -> None:
    path = tmp_path / "garbage.log"
    store = JournalStorage(path)
    study = store.create_study("s", ("minimize",)).study_id
    store.append(study, [{"op": "test", "i": 0}])
    middle = path.stat().st_size
    with open(path, "ab") as f:  # two garbage lines in the middle
        f.write(b"garbage\n" + b'{"study": 1, "eve\n')
    _, messages = _warnings_of(lambda: store.append(study, [{"op": "test", "i": 1}]))
    assert messages == [_skipped(path, 2, middle)]  # the writer reads them back too
    end = path.stat().st_size
    with open(path, "ab") as f:  # and one at the end
        f.write(b"more garbage\n")
    reader, messages = _warnings_of(lambda: JournalStorage(path, create=False))
    assert messages == [_skipped(path, 3, middle)]  # one warning for the whole read
    assert isinstance(reader, JournalStorage)
    assert [(s, e[0]["i"]) for s, e in reader.read(study, 0)] == [(1, 0), (2, 1)]
    assert _warnings_of(lambda: reader.read(study, 0))[1] == []  # nothing new: no warning
    with open(path, "ab") as f:
        f.write(b"\x00\x00 not json either\n")
    assert _warnings_of(lambda: reader.read(study, 0))[1] == [_skipped(path, 1, end + 13)]
    reader.compact()
    assert _warnings_of(lambda: JournalStorage(path).read(study, 0))[1] == []


def test_a_partial_last_line_is_not_counted_until_it_is_torn(tmp_path: Path) -> None:
    path = tmp_path / "partial.log"
    store = JournalStorage(path)
    study = store.create_study("s", ("minimize",)).study_id
    torn = path.stat().st_size
    with open(path, "ab") as f:  # a writer mid-line: it may still finish it
        f.write(b'{"study": 1, "events": [')
    assert _warnings_of(lambda: JournalStorage(path).read(study, 0))[1] == []
    # the next writer terminates the line: now it is a torn line, skipped and counted
    _, messages = _warnings_of(lambda: store.append(study, [{"op": "test"}]))
    assert messages == [_skipped(path, 1, torn)]


def test_format_version(tmp_path: Path) -> None:
    path = tmp_path / "new.log"
    path.write_text(json.dumps({"tuningfork_journal": 99, "generation": 0}) + "\n")
    with pytest.raises(SchemaVersionError, match="format version 99"):
        JournalStorage(path)
    other = tmp_path / "other.txt"
    other.write_text("hello\n")
    with pytest.raises(StorageError, match="not a tuningfork journal"):
        JournalStorage(other)


def test_compaction_keeps_studies_and_open_readers(tmp_path: Path) -> None:
    path = tmp_path / "c.log"
    writer = JournalStorage(path)
    reader = JournalStorage(path)
    keep = writer.create_study("keep", ("maximize",))
    gone = writer.create_study("gone", ("minimize",))
    for i in range(5):
        writer.append(keep.study_id, [{"op": "test", "i": i}])
        writer.append(gone.study_id, [{"op": "test", "i": i}])
    seen = reader.read(keep.study_id, 0)
    assert len(seen) == 5
    writer.heartbeat(gone.study_id, [0], "w", 1.0)
    writer.delete_study("gone")
    size = path.stat().st_size
    writer.compact()
    assert path.stat().st_size < size
    assert b'"gone"' not in path.read_bytes()
    for i in range(5, 8):
        writer.append(keep.study_id, [{"op": "test", "i": i}])
    # the reader notices the new file; its old `after` still works
    later = reader.read(keep.study_id, seen[-1][0])
    assert [e[0]["i"] for _, e in later] == [5, 6, 7]
    assert [e[0]["i"] for _, e in reader.read(keep.study_id, 0)] == list(range(8))
    assert [s for s, _ in reader.read(keep.study_id, 0)] == list(range(1, 9))
    assert [info.name for info in reader.list_studies()] == ["keep"]
    assert reader.get_study("keep") == keep
    # study ids are never reused, even after the deleted study left the file
    again = reader.create_study("gone", ("minimize",))
    assert again.study_id > gone.study_id
    assert writer.heartbeats(again.study_id) == {}
    assert writer.read(again.study_id, 0) == []


def test_compaction_of_a_real_study(tmp_path: Path) -> None:
    url = f"journal://{tmp_path}/real.log"
    study = tf.create_study("real", storage=url, sampler=tf.RandomSampler(seed=0))
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=20)
    before = [t.to_json() for t in study.trials]
    get_storage(url).compact()  # type: ignore[attr-defined]
    fresh = JournalStorage(f"{tmp_path}/real.log")
    loaded = tf.load_study("real", storage=fresh)
    assert [t.to_json() for t in loaded.trials] == before
    study.optimize(lambda t: t.suggest_float("x", 0.0, 1.0), n_trials=5)
    assert [t.number for t in loaded.trials] == list(range(25))


def test_a_hole_before_a_line_loses_only_the_hole(tmp_path: Path) -> None:
    """A machine crash can lose an unacknowledged batch's bytes while a later in-flight
    batch's survive: the lost bytes read back as zeros in front of the next line."""
    path = tmp_path / "hole.log"
    store = JournalStorage(path)
    study = store.create_study("s", ("minimize",)).study_id
    store.append(study, [{"op": "test", "i": 0}])
    kept = json.dumps({"study": study, "events": [{"op": "test", "i": "kept"}]})
    with open(path, "ab") as f:
        f.write(b"\x00" * 40 + kept.encode() + b"\n")
    fresh = JournalStorage(path)
    assert [(s, e[0]["i"]) for s, e in fresh.read(study, 0)] == [(1, 0), (2, "kept")]
    fresh.compact()
    assert b"\x00" not in path.read_bytes()
    assert [(s, e[0]["i"]) for s, e in JournalStorage(path).read(study, 0)] == [
        (1, 0),
        (2, "kept"),
    ]


# -- older batches are read again from the file -------------------------------------------


@pytest.mark.filterwarnings("ignore::tuningfork.exceptions.StorageWarning")  # tested below
def test_only_the_latest_batches_stay_decoded_in_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches older than the cache are read again from their offsets, across other
    studies' lines, a torn line, a hole and a compaction that moves every line."""
    monkeypatch.setattr("tuningfork.storage.journal.CACHED_BATCHES", 3)
    path = tmp_path / "cache.log"
    store = JournalStorage(path)
    study = store.create_study("s", ("minimize",)).study_id
    other = store.create_study("other", ("minimize",)).study_id
    expected = []
    for i in range(20):
        store.append(study, [{"op": "test", "i": i}])
        store.append(other, [{"op": "test", "i": -i}])
        expected.append(i)
        if i == 7:  # a torn line (terminated by the next writer) and a hole
            with open(path, "ab") as f:
                f.write(b'{"study": 1, "events": [{"op"')
        if i == 12:
            line = json.dumps({"study": study, "events": [{"op": "test", "i": "after a hole"}]})
            with open(path, "ab") as f:
                f.write(b"\x00" * 30 + line.encode() + b"\n")
            expected.append("after a hole")
    store.read(study, 0)
    log = store._by_id[study]
    assert len(log.batches) < 6 and log.cached_from > 0  # the rest is not kept decoded

    def values(batches: list) -> list:
        return [events[0]["i"] for _, events in batches]

    assert values(store.read(study, 0)) == expected
    assert [seq for seq, _ in store.read(study, 0)] == list(range(1, len(expected) + 1))
    assert values(store.read(study, 5)) == expected[5:]
    assert values(store.read(study, 0)) == values(JournalStorage(path).read(study, 0))
    assert values(store.read(other, 0)) == [-i for i in range(20)]
    reader = JournalStorage(path)
    reader.read(study, 0)
    store.delete_study("other")
    store.compact()  # every offset moves; the reader's index is of the old file
    assert values(reader.read(study, 2)) == expected[2:]
    assert values(reader.read(study, 0)) == expected
    # a compaction between a reader's catching up and its reading again: it notices
    store.compact()
    assert values(reader._after(study, 0)) == expected


def test_a_reader_far_behind_gets_what_it_caught_up_on_without_reading_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker back from a long trial reads the many batches appended meanwhile once;
    they are dropped from memory at its next catch-up."""
    monkeypatch.setattr("tuningfork.storage.journal.CACHED_BATCHES", 4)
    path = tmp_path / "lag.log"
    writer, reader = JournalStorage(path), JournalStorage(path)
    study = writer.create_study("s", ("minimize",)).study_id
    assert reader.read(study, 0) == []
    for i in range(50):
        writer.append(study, [{"op": "test", "i": i}])
    rereads = []
    real = reader._reread
    monkeypatch.setattr(reader, "_reread", lambda *a: rereads.append(a) or real(*a))
    assert [e[0]["i"] for _, e in reader.read(study, 0)] == list(range(50))
    assert rereads == []
    writer.append(study, [{"op": "test", "i": 50}])
    assert [e[0]["i"] for _, e in reader.read(study, 50)] == [50]
    assert len(reader._by_id[study].batches) <= 5 and rereads == []


def test_lines_longer_than_a_read_chunk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A line longer than one read is read whole, when catching up and when read again."""
    monkeypatch.setattr("tuningfork.storage.journal._READ_CHUNK", 64)
    monkeypatch.setattr("tuningfork.storage.journal.CACHED_BATCHES", 1)
    path = tmp_path / "long.log"
    store = JournalStorage(path)
    study = store.create_study("s", ("minimize",)).study_id
    texts = ["x" * 500, "short", "y" * 300]
    for text in texts:
        store.append(study, [{"op": "test", "text": text}])
    fresh = JournalStorage(path)
    assert [e[0]["text"] for _, e in fresh.read(study, 0)] == texts
    assert [e[0]["text"] for _, e in fresh.read(study, 0)] == texts  # read again from offsets
