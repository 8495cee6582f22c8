"""Journal storage: every study in one append-only file of JSON lines on a shared file
system (NFS, Lustre, a local disk), for clusters without a database server.

URL: ``journal://PATH``, where PATH is everything after ``journal://``: so
``journal:///scratch/me/study.log`` is the absolute path ``/scratch/me/study.log`` and
``journal://study.log`` is ``study.log`` relative to the current directory (made absolute
when the storage is opened, so child processes on other nodes open the same file; ``~``
is expanded). Beside the journal live ``PATH.lock`` (the lock file) and
``PATH.heartbeats/`` (heartbeats, see below).

File format (version `FORMAT_VERSION`), one JSON object per line:

* line 1, the header: ``{"tuningfork_journal": 1, "generation": g, "next_study": n}``.
  A journal written by a newer tuningfork raises `SchemaVersionError` on open.
* ``{"op": "create", "study": id, "name": ..., "directions": [...], "created": t}`` and
  ``{"op": "delete", "study": id}``: the study registry.
* ``{"study": id, "seq": n, "events": [...]}``: one appended batch. Sequence numbers are
  per study, 1, 2, 3, ... with no gaps, and are assigned by the writer while it holds the
  lock, after it has read the journal to its end; so log order is seq order.

Writing. A writer takes the lock, reads the bytes appended since its last read (its
in-memory index is then complete), checks names and assigns the next seq, writes the
line(s) with one ``write``, ``fsync``s, and releases the lock. The lock is held only for
that one batch, so a batch is atomic and batches never interleave.

Reading. Each process keeps an index of the journal (studies, and per study its batches)
and the byte offset up to which it has read, so reading new events costs only the new
bytes. Readers take no lock: they reopen the file (so NFS close-to-open consistency shows
them fresh data), read from their offset to the end and consume complete lines only; a
trailing line without its ``"\\n"`` (a writer mid-append, or one that crashed) is left for
later. A complete line that does not parse (see torn lines) makes the reader re-read the
rest under the lock, where every complete line is final, and then skip it.

Torn lines. A writer that dies mid-``write`` leaves a partial last line. The next writer,
under the lock, sees that the file does not end in ``"\\n"`` and *terminates* the
fragment with a ``"\\n"`` before its own line. The fragment is then a complete line that
is not valid JSON (a strict prefix of a JSON object never is: its closing brace is the
last character), which every reader skips; `compact` drops it. We terminate rather than
truncate because truncating a shared file under readers on other NFS clients (whose
cached size may still cover the fragment) is riskier than leaving inert bytes, and it
keeps the evidence. The dead writer's batch had not been acknowledged (its ``append``
never returned), and its seq was never visible, so the next batch reuses it.

Locking: POSIX record locks (``fcntl.lockf``) on a separate ``PATH.lock`` file, not
``O_EXCL`` lock files. A lock file created with ``O_CREAT|O_EXCL`` survives the crash of
its holder, so every waiter would need a timeout and a rule for breaking a stale lock
(which is racy, and wrong when the holder is merely slow); a record lock is released by
the kernel/lock manager when its holder dies, and waiters block instead of polling.
``flock`` is not used because on NFS it is either emulated with ``lockf`` (Linux >= 2.6.12)
or purely local to the client. A separate lock file, rather than the journal itself,
because POSIX locks belong to a process and are dropped when the process closes *any*
descriptor of the file: readers in other threads open and close the journal all the
time, and `compact` replaces the journal's inode. Each process opens the lock file once
and keeps it open; threads of a process are serialised with a `threading` lock, as POSIX
locks do not exclude threads of the same process.

NFS caveats: record locks need a working lock manager: NFSv4 (locks are part of the
protocol), or NFSv3 with ``lockd``/``rpc.statd`` running on client and server; mounts
with ``nolock`` or ``local_lock=posix``/``local_lock=all`` make locks local to one node,
and then writers on different nodes corrupt each other's batches (use ``local_lock=none``,
the default). Lock-free readers may see new batches only after the attribute cache
expires (``actimeo``, a few seconds), which costs freshness, not correctness: every
decision that settles a race (a claim) is made by ``append_and_read``, which reads under
the lock. Lustre needs the ``flock`` or ``localflock`` mount option for record locks
(``flock`` for several nodes). Don't put the journal on a file system without coherent
locking (e.g. most FUSE object-store mounts).

Heartbeats are frequent and need no ordering, so they stay out of the journal: each
worker writes its own small JSON file ``PATH.heartbeats/<study id>/<worker>.json``
mapping trial number to the time of its last beat, replaced atomically (write a temporary
file, ``os.replace``); `heartbeats` reads the study's files. No lock is needed, as each
file has one writer.

Compaction: `JournalStorage.compact` rewrites the journal under the lock into a new file
(the header with the next generation, then each live study's create record and its
batches), fsyncs it and ``os.replace``s the journal with it. Deleted studies and torn
lines are dropped; every batch of a live study is kept with its seq, so a reader that
notices the rewrite (a new inode or generation) re-reads the file from the start and its
callers' ``after`` positions stay valid.
"""

from __future__ import annotations

import bisect
import fcntl
import json
import os
import shutil
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

from tuningfork.exceptions import (
    DuplicatedStudyError,
    SchemaVersionError,
    StorageError,
    StudyNotFound,
)
from tuningfork.storage.base import Batch, Event, Storage, StudyInfo
from tuningfork.storage.memory import _not_found

FORMAT_VERSION = 1
SCHEME = "journal://"
_HEADER_KEY = "tuningfork_journal"
_READ_CHUNK = 1 << 20


def journal_path(url: str) -> str:
    """The absolute file path named by a ``journal://PATH`` URL (see the module docs)."""
    if not url.startswith(SCHEME):
        raise StorageError(f"{url!r} is not a journal URL; use journal:///absolute/path.log")
    path = url[len(SCHEME) :]
    if not path or "?" in path:
        raise StorageError(
            f"{url!r}: give the journal file after journal://, e.g. "
            "journal:///scratch/study.log (absolute) or journal://study.log (relative)"
        )
    return os.path.abspath(os.path.expanduser(path))


# Per process and journal: the lock file descriptor (kept open: closing any descriptor of
# the lock file would drop the process's lock) and a threading lock for its threads.
_locks: dict[tuple[int, str], tuple[threading.Lock, int]] = {}
_locks_guard = threading.Lock()


def _process_lock(lock_path: str) -> tuple[threading.Lock, int]:
    key = (os.getpid(), lock_path)
    with _locks_guard:
        entry = _locks.get(key)
        if entry is None:
            try:
                fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o666)
            except OSError as error:
                raise StorageError(f"cannot open the lock file {lock_path}: {error}") from error
            entry = _locks[key] = (threading.Lock(), fd)
        return entry


class _StudyLog:
    __slots__ = ("info", "seqs", "batches")

    def __init__(self, info: StudyInfo) -> None:
        self.info = info
        self.seqs: list[int] = []
        self.batches: list[Batch] = []


class JournalStorage(Storage):
    """Studies in an append-only JSON-lines file, shared by processes on many machines.

    ``fsync=False`` skips the fsync after each batch (faster, for local scratch studies;
    a machine crash may then lose the last batches, but never corrupts the journal).
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: bool = True) -> None:
        raw = os.fspath(path)
        self.path = journal_path(raw) if raw.startswith(SCHEME) else os.path.abspath(raw)
        self.url = f"{SCHEME}{self.path}"
        self.lock_path = self.path + ".lock"
        self.heartbeat_dir = Path(self.path + ".heartbeats")
        self._fsync = fsync
        self._mutex = threading.RLock()  # guards the index below
        self._reset_index()
        directory = os.path.dirname(self.path)
        if not os.path.isdir(directory):
            raise StorageError(f"cannot open {self.url}: the directory {directory} does not exist")
        with self._locked():
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                if os.fstat(fd).st_size == 0:
                    header = {_HEADER_KEY: FORMAT_VERSION, "generation": 0, "next_study": 1}
                    os.write(fd, _line(header))
                    os.fsync(fd)
                    _fsync_dir(directory)
            finally:
                os.close(fd)
            self._catch_up(locked=True)

    # -- the index ------------------------------------------------------------------------

    def _reset_index(self) -> None:
        self._ino: int | None = None
        self._generation: int | None = None
        self._offset = 0
        self._next_study = 1
        self._studies: dict[str, _StudyLog] = {}
        self._by_id: dict[int, _StudyLog] = {}

    def _locked(self) -> Any:
        return _FileLock(*_process_lock(self.lock_path))

    def _catch_up(self, *, locked: bool = False) -> int:
        """Read what was appended since the last read into the index; return the size of
        the file read up to. With ``locked`` (the caller holds the file lock), a torn or
        unparsable complete line is final and skipped; without, it makes us re-read
        under the lock."""
        with self._mutex:
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                raise StorageError(f"the journal {self.path} has disappeared") from None
            try:
                stat = os.fstat(fd)
                header, header_end = self._read_header(fd)
                if (
                    stat.st_ino != self._ino
                    or header.get("generation") != self._generation
                    or stat.st_size < self._offset
                ):  # first read, or the file was compacted: read it again from the start
                    self._reset_index()
                    self._ino = stat.st_ino
                    self._generation = header.get("generation")
                    self._next_study = int(header.get("next_study", 1))
                    self._offset = header_end
                bad = self._consume(fd, stat.st_size, locked)
            finally:
                os.close(fd)
            if bad and not locked:
                with self._locked():
                    self._catch_up(locked=True)
            return stat.st_size

    def _read_header(self, fd: int) -> tuple[dict[str, Any], int]:
        head = os.pread(fd, 4096, 0)
        end = head.find(b"\n")
        try:
            header = json.loads(head[:end]) if end >= 0 else None
        except ValueError:
            header = None
        if not isinstance(header, dict) or _HEADER_KEY not in header:
            raise StorageError(
                f"{self.path} is not a tuningfork journal (its first line is not a journal "
                "header); give another file name"
            )
        version = header[_HEADER_KEY]
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise SchemaVersionError(
                f"{self.path} is a tuningfork journal in format version {version}, but this "
                f"tuningfork reads versions up to {FORMAT_VERSION}; open it with a newer "
                "tuningfork, or copy the study to another storage with it"
            )
        return header, end + 1

    def _consume(self, fd: int, size: int, locked: bool) -> bool:
        """Apply the complete lines between the offset and ``size``; True if a line did
        not parse while not ``locked`` (the offset then stays before it)."""
        while self._offset < size:
            data = os.pread(fd, min(size - self._offset, _READ_CHUNK), self._offset)
            if not data:
                return False
            end = data.rfind(b"\n")
            if end < 0:
                if len(data) < _READ_CHUNK:
                    return False  # a partial last line: a writer is mid-append, or crashed
                data = data + _read_line_rest(fd, self._offset + len(data), size)
                end = data.rfind(b"\n")
                if end < 0:
                    return False
            start = 0
            while start <= end:
                stop = data.index(b"\n", start)
                try:
                    record = json.loads(data[start:stop])
                    if not isinstance(record, dict):
                        raise ValueError("not an object")
                except ValueError:
                    if not locked:
                        return True
                    record = None  # a torn line, terminated by a later writer: skip it
                if record is not None:
                    self._apply(record)
                self._offset += stop + 1 - start
                start = stop + 1
        return False

    def _apply(self, record: dict[str, Any]) -> None:
        if "events" in record:
            log = self._by_id.get(record["study"])
            if log is not None:
                log.seqs.append(record["seq"])
                log.batches.append((record["seq"], record["events"]))
            return
        op = record.get("op")
        if op == "create":
            info = StudyInfo(
                int(record["study"]),
                record["name"],
                tuple(record["directions"]),
                float(record["created"]),
            )
            log = _StudyLog(info)
            self._studies[info.name] = log
            self._by_id[info.study_id] = log
            self._next_study = max(self._next_study, info.study_id + 1)
        elif op == "delete":
            log = self._by_id.pop(record["study"], None)
            if log is not None:
                self._studies.pop(log.info.name, None)
        # unknown records come from newer minor versions: skip them

    # -- writing --------------------------------------------------------------------------

    def _write(self, lines: list[bytes]) -> None:
        """Append ``lines`` (the caller holds the file lock and has caught up) with one
        write, terminating a torn last line first; advance past them in the index."""
        fd = os.open(self.path, os.O_WRONLY)
        try:
            size = os.fstat(fd).st_size
            data = b"".join(lines)
            if size > self._offset:  # a torn last line left by a crashed writer
                data = b"\n" + data
                self._offset = size + 1
            view = memoryview(data)
            position = size
            while view:
                written = os.pwrite(fd, view, position)
                position += written
                view = view[written:]
            if self._fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        for line in lines:
            self._apply(json.loads(line))
            self._offset += len(line)

    # -- studies --------------------------------------------------------------------------

    def create_study(self, name: str, directions: tuple[str, ...]) -> StudyInfo:
        with self._mutex, self._locked():
            self._catch_up(locked=True)
            if name in self._studies:
                raise DuplicatedStudyError(
                    f"a study named {name!r} already exists in {self.url}; pass "
                    "load_if_exists=True to continue it, or choose another name"
                )
            record = {
                "op": "create",
                "study": self._next_study,
                "name": name,
                "directions": list(directions),
                "created": time.time(),
            }
            self._write([_line(record)])
            return self._studies[name].info

    def get_study(self, name: str) -> StudyInfo:
        with self._mutex:
            self._catch_up()
            log = self._studies.get(name)
            if log is None:
                raise StudyNotFound(
                    _not_found(name, list(self._studies)) + f" (storage: {self.url})"
                )
            return log.info

    def list_studies(self) -> list[StudyInfo]:
        with self._mutex:
            self._catch_up()
            return sorted((log.info for log in self._studies.values()), key=lambda i: i.study_id)

    def delete_study(self, name: str) -> None:
        with self._mutex, self._locked():
            self._catch_up(locked=True)
            log = self._studies.get(name)
            if log is None:
                raise StudyNotFound(
                    _not_found(name, list(self._studies)) + f" (storage: {self.url})"
                )
            self._write([_line({"op": "delete", "study": log.info.study_id})])
        shutil.rmtree(self.heartbeat_dir / str(log.info.study_id), ignore_errors=True)

    # -- the log --------------------------------------------------------------------------

    def _batch_lines(self, study_id: int, batches: list[list[Event]]) -> tuple[list[bytes], int]:
        log = self._by_id.get(study_id)
        if log is None:
            raise StudyNotFound(f"study id {study_id} is not in {self.url} (was it deleted?)")
        first = (log.seqs[-1] if log.seqs else 0) + 1
        lines = [
            _line({"study": study_id, "seq": first + i, "events": events})
            for i, events in enumerate(batches)
        ]
        return lines, first

    def append(self, study_id: int, events: list[Event]) -> int:
        return self.append_batches(study_id, [events])[0]

    def append_batches(self, study_id: int, batches: list[list[Event]]) -> list[int]:
        """Append several batches, each its own batch with its own seq, under one lock and
        one fsync (what `tuningfork.storage.copy.copy_study` uses)."""
        if not batches:
            return []
        with self._mutex, self._locked():
            self._catch_up(locked=True)
            lines, first = self._batch_lines(study_id, batches)
            self._write(lines)
            return list(range(first, first + len(batches)))

    def append_and_read(
        self, study_id: int, events: list[Event], after: int
    ) -> tuple[int, list[Batch]]:
        with self._mutex, self._locked():
            self._catch_up(locked=True)
            lines, seq = self._batch_lines(study_id, [events])
            self._write(lines)
            return seq, self._after(study_id, after)

    def read(self, study_id: int, after: int) -> list[Batch]:
        with self._mutex:
            self._catch_up()
            return self._after(study_id, after)

    def _after(self, study_id: int, after: int) -> list[Batch]:
        log = self._by_id.get(study_id)
        if log is None:
            return []
        return log.batches[bisect.bisect_right(log.seqs, after) :]

    # -- heartbeats -----------------------------------------------------------------------

    def heartbeat(self, study_id: int, numbers: list[int], worker: str, now: float) -> None:
        if not numbers:
            return
        directory = self.heartbeat_dir / str(study_id)
        path = directory / (urllib.parse.quote(worker, safe="")[:200] + ".json")
        with self._mutex:
            beats = _read_beats(path)
            for number in numbers:
                beats[str(number)] = now
            directory.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}")
            temporary.write_text(json.dumps(beats))
            os.replace(temporary, path)

    def heartbeats(self, study_id: int) -> dict[int, float]:
        result: dict[int, float] = {}
        directory = self.heartbeat_dir / str(study_id)
        try:
            paths = [p for p in directory.iterdir() if p.suffix == ".json" and p.name[0] != "."]
        except FileNotFoundError:
            return result
        for path in paths:
            for number, beat in _read_beats(path).items():
                key = int(number)
                result[key] = max(result.get(key, beat), beat)
        return result

    # -- maintenance ----------------------------------------------------------------------

    def compact(self) -> None:
        """Rewrite the journal without deleted studies and torn lines, atomically.

        Every batch of every live study is kept with its seq. Other processes notice the
        new file and re-read it from the start (the cost of one full read each).
        """
        with self._mutex, self._locked():
            self._catch_up(locked=True)
            generation = int(self._generation or 0) + 1
            header = {
                _HEADER_KEY: FORMAT_VERSION,
                "generation": generation,
                "next_study": self._next_study,
            }
            temporary = f"{self.path}.compact-{os.getpid()}"
            try:
                with open(temporary, "wb") as out:
                    out.write(_line(header))
                    for log in sorted(self._by_id.values(), key=lambda log: log.info.study_id):
                        info = log.info
                        create = {
                            "op": "create",
                            "study": info.study_id,
                            "name": info.name,
                            "directions": list(info.directions),
                            "created": info.created,
                        }
                        out.write(_line(create))
                        for seq, events in log.batches:
                            out.write(_line({"study": info.study_id, "seq": seq, "events": events}))
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, self.path)
            finally:
                if os.path.exists(temporary):
                    os.unlink(temporary)
            _fsync_dir(os.path.dirname(self.path))
            self._catch_up(locked=True)

    def artifact_root(self) -> Path:
        return Path(self.path).parent / "tuningfork_artifacts"

    def __repr__(self) -> str:
        return f"JournalStorage({self.path!r})"


class _FileLock:
    """The process's threading lock, then an exclusive ``lockf`` on the lock file (POSIX
    locks do not exclude threads of one process). Not reentrant."""

    def __init__(self, mutex: threading.Lock, fd: int) -> None:
        self._mutex = mutex
        self._fd = fd

    def __enter__(self) -> _FileLock:
        self._mutex.acquire()
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_EX)
        except BaseException:
            self._mutex.release()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()


def _line(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, separators=(",", ":"), allow_nan=True) + "\n").encode()


def _read_line_rest(fd: int, position: int, size: int) -> bytes:
    chunks = []
    while position < size:
        chunk = os.pread(fd, min(size - position, _READ_CHUNK), position)
        if not chunk:
            break
        chunks.append(chunk)
        position += len(chunk)
        if b"\n" in chunk:
            break
    return b"".join(chunks)


def _read_beats(path: Path) -> dict[str, float]:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _fsync_dir(directory: str) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
