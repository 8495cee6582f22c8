"""Journal storage: every study in one append-only file of JSON lines on a shared file
system (NFS, Lustre, a local disk), for clusters without a database server.

URL: ``journal://PATH``, where PATH is everything after ``journal://``: so
``journal:///scratch/me/study.log`` is the absolute path ``/scratch/me/study.log`` and
``journal://study.log`` is ``study.log`` relative to the current directory (made absolute
when the storage is opened, so child processes on other nodes open the same file; ``~``
is expanded). Beside the journal live ``PATH.lock`` (the lock file) and
``PATH.heartbeats/`` (heartbeats, see below).

File format (version `FORMAT_VERSION`), one JSON object per line:

* line 1, the header: ``{"tuningfork_journal": 2, "generation": g, "next_study": n}``.
  A journal written by a newer tuningfork raises `SchemaVersionError` on open.
* ``{"op": "create", "study": id, "name": ..., "directions": [...], "created": t}`` and
  ``{"op": "delete", "study": id}``: the study registry.
* ``{"study": id, "w": token, "events": [...]}``: one appended batch. A batch's seq is its
  rank among its study's batches in file order (1, 2, 3, ... with no gaps), so log order
  is seq order and no writer needs to know the journal's end before it writes. ``w`` is
  the writer's token (a random per-process prefix and a counter), by which a writer finds
  the seqs of its own lines when it reads them back. Format 1 wrote an explicit
  ``"seq"``; such lines are still read (it equals the rank).

Writing. A writer encodes its batch, takes the lock, terminates a torn last line if there
is one (see below), writes its line(s) at the end of the file with one ``write`` and
releases the lock; then it ``fsync``s and reads the journal up to the end of its lines, so
it learns their seqs and every batch before them. On a coherent file system (see
`JournalStorage`'s ``coherent``) the lock covers only the write: batches are atomic and
never interleave, and writers decode each other's lines in parallel instead of in turn.
On NFS the lock also covers the ``fsync``: an NFS client sends its writes to the server
only when it flushes them, and a writer on another machine, finding the end of the file
from the server, would otherwise write its line over ours.

Durability. ``append`` returns only after its ``fsync``, which (on one file system)
flushes every byte written to the file before it, its own and other writers'. So an
acknowledged batch, and everything before it in the log, survives a machine crash; what
a crash can lose is in-flight batches, whose writers had not returned. Because the fsync
may follow the unlock, the bytes of an in-flight batch can be lost while a later in-flight
batch's survive: the lost bytes then read back as zeros in front of the next line, and
readers take the record after the last NUL byte (JSON text has none). No surviving line
can depend on a lost one: a writer refers to a trial only after the batch that created
it was acknowledged.

Reading. A reader keeps, per study, the seq and file offset of every batch, but the
decoded events only of the batches its last catch-up read (and at least the latest
`CACHED_BATCHES`); a caller asking for older batches (a process loading a long study) gets
them read again from their offsets. So a long study costs a few integers per batch in
memory, not its events, which the garbage collector would otherwise traverse again and
again.

Torn lines. A writer that dies mid-``write`` leaves a partial last line. The next writer,
under the lock, sees that the file does not end in ``"\\n"`` and *terminates* the
fragment with a ``"\\n"`` before its own line. The fragment is then a complete line that
is not valid JSON (a strict prefix of a JSON object never is: its closing brace is the
last character), which every reader skips; `compact` drops it. We terminate rather than
truncate because truncating a shared file under readers on other NFS clients (whose
cached size may still cover the fragment) is riskier than leaving inert bytes, and it
keeps the evidence. The dead writer's batch had not been acknowledged (its ``append``
never returned), and its seq was never visible, so the next batch reuses it. A reader
counts the complete lines it skips (torn ones, or garbage written by something else) and
warns once per read (`StorageWarning`) with their number and the byte offset of the
first; a partial last line, which a writer may still be writing, is not read yet.

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
the default). Each batch is flushed to the server before the lock is released (see
"Writing"), which costs a round trip to the server per batch. Lock-free readers may see
new batches only after the attribute cache expires (``actimeo``, a few seconds), which
costs freshness, not correctness: every decision that settles a race (a claim) is made
by ``append_and_read``, which reads after its own write. Lustre needs the ``flock`` or
``localflock`` mount option for record locks (``flock`` for several nodes). Don't put
the journal on a file system without coherent locking (e.g. most FUSE object-store
mounts).

Heartbeats are frequent and need no ordering, so they stay out of the journal: each
worker writes its own small JSON file ``PATH.heartbeats/<study id>/<worker>.json``
mapping trial number to the time of its last beat, replaced atomically (write a temporary
file, ``os.replace``); `heartbeats` reads the study's files. No lock is needed, as each
file has one writer.

Compaction: `JournalStorage.compact` rewrites the journal under the lock into a new file
(the header with the next generation, then the lines of live studies copied byte for
byte, in order), fsyncs it and ``os.replace``s the journal with it. Deleted studies, torn
lines and holes are dropped; every batch of a live study keeps its rank, hence its seq,
so a reader that notices the rewrite (a new inode or generation) re-reads the file from
the start and its callers' ``after`` positions stay valid.
"""

from __future__ import annotations

import bisect
import fcntl
import itertools
import json
import os
import re
import shutil
import threading
import time
import urllib.parse
import uuid
import warnings
from pathlib import Path
from typing import Any

from tuningfork.exceptions import (
    DuplicatedStudyError,
    SchemaVersionError,
    StorageError,
    StorageNotFound,
    StorageWarning,
    StudyNotFound,
)
from tuningfork.storage.base import Batch, Event, Storage, StudyInfo, check_study_name
from tuningfork.storage.memory import _not_found

FORMAT_VERSION = 2
SCHEME = "journal://"
_HEADER_KEY = "tuningfork_journal"
_READ_CHUNK = 1 << 20
# Decoded batches kept in memory per study from one read to the next: the latest ones.
CACHED_BATCHES = 32


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


# File systems on which a write is visible to every writer as soon as it is made: local
# ones (one page cache), and Lustre and GPFS (coherent across clients through their lock
# managers). NFS, SMB, BeeGFS, FUSE mounts and anything unknown are not assumed to be.
COHERENT_FILESYSTEMS = frozenset(
    {
        "ext2",
        "ext3",
        "ext4",
        "xfs",
        "btrfs",
        "f2fs",
        "jfs",
        "bcachefs",
        "zfs",
        "tmpfs",
        "ramfs",
        "overlay",
        "lustre",
        "gpfs",
    }
)


def filesystem_type(path: str, mountinfo: str | None = None) -> str | None:
    """The type of the file system holding ``path`` (e.g. ``"ext4"``, ``"nfs4"``), from
    the Linux mount table (``/proc/self/mountinfo``, or the text ``mountinfo``); None
    where there is no mount table (not Linux)."""
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return None
    target = os.path.realpath(path)
    best, kind = -1, None
    for line in mountinfo.splitlines():
        fields = line.split(" ")
        if len(fields) < 7 or "-" not in fields[6:]:
            continue
        point = _unescape_mount(fields[4])
        inside = target == point or target.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= best:  # of mounts on one point, the last is on top
            best, kind = len(point), fields[fields.index("-", 6) + 1]
    return kind


def _unescape_mount(text: str) -> str:
    """A mount point as the kernel writes it: space, tab, newline and backslash as octal
    escapes (``\\040``)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


class _StudyLog:
    """A study's batches: the seq and file offset of every one, and the events of the
    latest ones (from ``seqs[cached_from]`` on: those read by the last catch-up, trimmed to
    `CACHED_BATCHES` at the next one; older ones are read again from the file when asked
    for). So a long study's events do not stay in memory, where the garbage collector would
    go over them again and again, and a batch is garbage before it grows old."""

    __slots__ = ("info", "seqs", "offsets", "batches", "cached_from")

    def __init__(self, info: StudyInfo) -> None:
        self.info = info
        self.seqs: list[int] = []
        self.offsets: list[int] = []
        self.batches: list[Batch] = []
        self.cached_from = 0

    def add(self, seq: int, offset: int, events: list[Event]) -> None:
        self.seqs.append(seq)
        self.offsets.append(offset)
        self.batches.append((seq, events))

    def trim(self) -> None:
        extra = len(self.batches) - CACHED_BATCHES
        if extra > 0:
            del self.batches[:extra]
            self.cached_from += extra


class JournalStorage(Storage):
    """Studies in an append-only JSON-lines file, shared by processes on many machines.

    ``fsync=False`` skips the fsync after each batch (faster, for local scratch studies;
    a machine crash may then lose the last batches, but never corrupts the journal).

    ``coherent`` says whether a write is visible to the other writers as soon as it is
    made, on every machine that shares the file: true of local file systems and of Lustre
    and GPFS, false of NFS (a client sends its writes to the server only when it flushes
    them). None (the default) looks the file system up in the mount table and assumes
    false for any it does not know. On a file system that is not coherent every batch is
    flushed with ``fsync`` before the lock is released, whatever ``fsync`` says, since a
    writer on another machine would otherwise write over it (see "Durability").

    ``create=False`` opens only an existing journal, creating nothing (neither the journal
    nor its lock file); a missing or empty file, or one that is not a journal, raises
    `StorageNotFound`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fsync: bool = True,
        coherent: bool | None = None,
        create: bool = True,
    ) -> None:
        raw = os.fspath(path)
        self.path = journal_path(raw) if raw.startswith(SCHEME) else os.path.abspath(raw)
        self.url = f"{SCHEME}{self.path}"
        self.lock_path = self.path + ".lock"
        self.heartbeat_dir = Path(self.path + ".heartbeats")
        self._fsync = fsync
        self._mutex = threading.RLock()  # guards the index below
        self._token_pid: int | None = None
        self._token_base = ""
        self._counter = itertools.count()
        self._pending: set[str] = set()  # tokens of this process's lines not yet read back
        self._written: dict[str, int] = {}  # pending tokens read back -> their seqs
        self._reset_index()
        directory = os.path.dirname(self.path)
        if not create and (not os.path.isfile(self.path) or os.path.getsize(self.path) == 0):
            what = "an empty file" if os.path.isfile(self.path) else "no such file"
            raise StorageNotFound(
                f"no tuningfork storage at {self.path} ({what}); check the storage URL, or "
                "create a study there first"
            )
        if not os.path.isdir(directory):
            raise StorageError(f"cannot open {self.url}: the directory {directory} does not exist")
        if coherent is None:
            coherent = filesystem_type(directory) in COHERENT_FILESYSTEMS
        self.coherent = coherent
        if not create:
            self._catch_up()  # reads the header: raises if the file is not a journal
            return
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
        self._header_line = b""
        self._generation: int | None = None
        self._offset = 0
        self._next_study = 1
        self._studies: dict[str, _StudyLog] = {}
        self._by_id: dict[int, _StudyLog] = {}
        self._grown: set[_StudyLog] = set()  # logs given batches by the last catch-up

    def _locked(self) -> Any:
        return _FileLock(*_process_lock(self.lock_path))

    def _catch_up(self, *, locked: bool = False) -> int:
        """Read what was appended since the last read into the index; return the size of
        the file read up to. With ``locked`` (the caller holds the file lock), a torn or
        unparsable complete line is final and skipped; without, it makes us re-read
        under the lock."""
        with self._mutex:
            for log in self._grown:  # what the last catch-up decoded has been read
                log.trim()
            self._grown.clear()
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except FileNotFoundError:
                raise StorageError(f"the journal {self.path} has disappeared") from None
            try:
                stat = os.fstat(fd)
                if not self._same_file(fd, stat):
                    # first read, or the file was compacted: read it again from the start
                    header, header_end = self._read_header(fd)
                    self._reset_index()
                    self._ino = stat.st_ino
                    self._header_line = os.pread(fd, header_end, 0)
                    self._generation = header.get("generation")
                    self._next_study = int(header.get("next_study", 1))
                    self._offset = header_end
                skipped: list[int] = []
                bad = self._consume(fd, stat.st_size, locked, skipped)
            finally:
                os.close(fd)
            if skipped:
                self._warn_skipped(skipped)
            if bad and not locked:
                with self._locked():
                    self._catch_up(locked=True)
            return stat.st_size

    def _same_file(self, fd: int, stat: os.stat_result) -> bool:
        """Whether ``fd`` is the journal read so far: same inode, not shorter, and the same
        header line (its generation changes at each compaction), compared as bytes."""
        if stat.st_ino != self._ino or stat.st_size < self._offset:
            return False
        return os.pread(fd, len(self._header_line), 0) == self._header_line

    def _read_header(self, fd: int) -> tuple[dict[str, Any], int]:
        head = os.pread(fd, 4096, 0)
        end = head.find(b"\n")
        try:
            header = json.loads(head[:end]) if end >= 0 else None
        except ValueError:
            header = None
        if not isinstance(header, dict) or _HEADER_KEY not in header:
            raise StorageNotFound(
                f"no tuningfork storage at {self.path}: the file is not a tuningfork journal "
                "(its first line is not a journal header); give another file name"
            )
        version = header[_HEADER_KEY]
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise SchemaVersionError(
                f"{self.path} is a tuningfork journal in format version {version}, but this "
                f"tuningfork reads versions up to {FORMAT_VERSION}; open it with a newer "
                "tuningfork, or copy the study to another storage with it"
            )
        return header, end + 1

    def _consume(self, fd: int, size: int, locked: bool, skipped: list[int]) -> bool:
        """Apply the complete lines between the offset and ``size``; True if a line did
        not parse while not ``locked`` (the offset then stays before it). When ``locked``,
        such a line is skipped and its offset added to ``skipped``."""
        while self._offset < size:
            data = os.pread(fd, min(size - self._offset, _READ_CHUNK), self._offset)
            if not data:
                return False
            end = data.rfind(b"\n")
            if end < 0:
                if len(data) < _READ_CHUNK:
                    return False  # a partial last line: a writer is mid-append, or crashed
                data += _read_range(fd, self._offset + len(data), size, to_newline=True)
                end = data.rfind(b"\n")
                if end < 0:
                    return False
            if self._apply_all(data[: end + 1], self._offset):
                self._offset += end + 1
                continue
            start = 0  # a line does not parse: one at a time, to find it
            while start <= end:
                stop = data.index(b"\n", start)
                try:
                    record = _parse_line(data[start:stop])
                except ValueError:
                    if not locked:
                        return True
                    record = None  # a torn line, terminated by a later writer: skip it
                    skipped.append(self._offset)
                if record is not None:
                    self._apply(record, self._offset)
                self._offset += stop + 1 - start
                start = stop + 1
        return False

    def _warn_skipped(self, offsets: list[int]) -> None:
        """One warning for the lines one read skipped: how many, and where the first is."""
        warnings.warn(
            f"{self.path}: skipped {len(offsets)} line(s) that are not valid journal records, "
            f"the first at byte offset {offsets[0]} (a writer that crashed mid-line, or "
            f"bytes written by something else); `tuningfork compact {self.url}` drops them",
            StorageWarning,
            stacklevel=4,
        )

    def _apply_all(self, lines: bytes, start: int) -> bool:
        """Decode complete lines, the first at file offset ``start``, as one JSON array
        (one call instead of one per line) and apply them; False, with nothing applied, if
        one of them is not a valid record."""
        pieces = lines.split(b"\n")[:-1]
        try:
            records = json.loads(b"[" + b",".join(pieces) + b"]")
        except ValueError:
            return False
        if not all(isinstance(record, dict) for record in records):
            return False
        starts = itertools.accumulate((len(piece) + 1 for piece in pieces), initial=start)
        for record, offset in zip(records, starts):
            self._apply(record, offset)
        return True

    def _apply(self, record: dict[str, Any], offset: int) -> None:
        if "events" in record:
            log = self._by_id.get(record["study"])
            if log is not None:
                seq = record.get("seq") or (log.seqs[-1] if log.seqs else 0) + 1
                log.add(seq, offset, record["events"])
                self._grown.add(log)
                token = record.get("w")
                if token in self._pending:
                    self._written[token] = seq
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

    def _write(self, data: bytes) -> tuple[int, int]:
        """Append ``data`` (whole lines) with one write under the file lock (the caller
        must not hold it), then fsync after releasing it; return the journal's inode and
        the position after the data. The index is not touched: callers catch up
        afterwards. See "Durability" in the module docs for why the fsync may follow the
        unlock."""
        if not self.coherent:
            with self._locked():
                _fd, inode, end = self._write_locked(data, flush=True)
            return inode, end
        with self._locked():
            fd, inode, end = self._write_locked(data, sync=False)
        try:
            if self._fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        return inode, end

    def _write_locked(
        self, data: bytes, *, sync: bool = True, flush: bool = False
    ) -> tuple[int, int, int]:
        """`_write`'s part under the file lock (the caller holds it): terminate a torn last
        line left by a crashed writer with a newline, then write ``data`` at the end.
        Returns the open descriptor (closed here when ``sync``, after an fsync, which
        ``flush`` forces whatever the ``fsync`` option says), the inode and the end
        position."""
        fd = os.open(self.path, os.O_RDWR)
        try:
            stat = os.fstat(fd)
            position = stat.st_size
            if position and os.pread(fd, 1, position - 1) != b"\n":  # a torn last line
                data = b"\n" + data
            view = memoryview(data)
            while view:
                written = os.pwrite(fd, view, position)
                position += written
                view = view[written:]
            if sync or flush:
                if self._fsync or flush:
                    os.fsync(fd)
                os.close(fd)
        except BaseException:
            os.close(fd)
            raise
        return fd, stat.st_ino, position

    def _token_prefix(self) -> str:
        """A prefix for the tokens that let this process find its own batches when it reads
        the journal back; new after a fork, so parent and child never share one."""
        pid = os.getpid()
        if self._token_pid != pid:
            with self._mutex:
                if self._token_pid != pid:
                    self._token_base = f"{uuid.uuid4().hex[:12]}."
                    self._token_pid = pid
        return self._token_base

    # -- studies --------------------------------------------------------------------------

    def create_study(self, name: str, directions: tuple[str, ...]) -> StudyInfo:
        check_study_name(name)
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
            self._write_locked(_line(record))
            self._catch_up(locked=True)
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
            self._write_locked(_line({"op": "delete", "study": log.info.study_id}))
            self._catch_up(locked=True)
        shutil.rmtree(self.heartbeat_dir / str(log.info.study_id), ignore_errors=True)

    # -- the log --------------------------------------------------------------------------

    def append(self, study_id: int, events: list[Event]) -> int:
        return self.append_batches(study_id, [events])[0]

    def append_batches(self, study_id: int, batches: list[list[Event]]) -> list[int]:
        """Append several batches, each its own batch with its own seq, with one write and
        one fsync (what `tuningfork.storage.copy.copy_study` uses).

        Encoding happens before the file lock is taken and reading back after it is
        released (see "Writing" in the module docs). A batch line carries no
        seq; readers number a study's batches in file order. Each line carries a token
        (``"w"``) by which this process finds the seqs of its own lines when it reads
        them back."""
        if not batches:
            return []
        prefix = self._token_prefix()
        tokens = [f"{prefix}{next(self._counter)}" for _ in batches]
        data = b"".join(
            _line({"study": study_id, "w": token, "events": events})
            for token, events in zip(tokens, batches)
        )
        with self._mutex:
            self._pending.update(tokens)
        try:
            inode, end = self._write(data)
            with self._mutex:
                self._catch_up()
                # until our lines are read: the file may look shorter for a moment (an NFS
                # attribute cache), or have been compacted, with our lines, since the write
                while self._offset < end and self._ino == inode:
                    time.sleep(0.001)
                    self._catch_up()
        finally:
            with self._mutex:
                self._pending.difference_update(tokens)
                seqs = [self._written.pop(token, None) for token in tokens]
        if None in seqs:
            raise StudyNotFound(f"study id {study_id} is not in {self.url} (was it deleted?)")
        return seqs  # type: ignore[return-value]

    def append_and_read(
        self, study_id: int, events: list[Event], after: int
    ) -> tuple[int, list[Batch]]:
        """Append one batch and return its seq with every batch after ``after``. All
        batches before it in the file are complete once it is written, so the batches
        returned settle any race by log order."""
        seq = self.append_batches(study_id, [events])[0]
        with self._mutex:
            return seq, self._after(study_id, after)

    def read(self, study_id: int, after: int) -> list[Batch]:
        with self._mutex:
            self._catch_up()
            return self._after(study_id, after)

    def _after(self, study_id: int, after: int) -> list[Batch]:
        log = self._by_id.get(study_id)
        if log is None:
            return []
        first = bisect.bisect_right(log.seqs, after)
        if first >= log.cached_from:
            return log.batches[first - log.cached_from :]
        older = self._reread(log, first, log.cached_from)
        if older is None:  # compacted since: the index was read again from the new file
            return self._after(study_id, after)
        return older + log.batches

    def _reread(self, log: _StudyLog, first: int, stop: int) -> list[Batch] | None:
        """The batches ``first`` to ``stop`` (indexes) of ``log``, read again from the
        journal at their recorded offsets; None if the journal is no longer the file
        indexed (compacted), after bringing the index up to date with the new one."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            if not self._same_file(fd, os.fstat(fd)):
                os.close(fd)
                fd = -1
                self._catch_up()
                return None
            base = log.offsets[first]
            end = log.offsets[stop] if stop < len(log.offsets) else self._offset
            data = _read_range(fd, base, end)
        finally:
            if fd >= 0:
                os.close(fd)
        batches = []
        for seq, offset in zip(log.seqs[first:stop], log.offsets[first:stop]):
            start = offset - base
            record = _parse_line(data[start : data.index(b"\n", start)])
            batches.append((seq, record["events"]))
        return batches

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

        The lines of live studies are copied byte for byte, in order, so every batch keeps
        its seq (its rank among its study's batches) and its writer's token. Other
        processes notice the new file and re-read it from the start (the cost of one full
        read each).
        """
        with self._mutex, self._locked():
            self._catch_up(locked=True)
            header = {
                _HEADER_KEY: FORMAT_VERSION,
                "generation": int(self._generation or 0) + 1,
                "next_study": self._next_study,
            }
            temporary = f"{self.path}.compact-{os.getpid()}"
            try:
                with open(temporary, "wb") as out, open(self.path, "rb") as journal:
                    out.write(_line(header))
                    journal.readline()  # the old header
                    for line in journal:
                        kept = self._live_line(line)
                        if kept is not None:
                            out.write(kept)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(temporary, self.path)
            finally:
                if os.path.exists(temporary):
                    os.unlink(temporary)
            _fsync_dir(os.path.dirname(self.path))
            self._catch_up(locked=True)

    def _live_line(self, line: bytes) -> bytes | None:
        """What `compact` keeps of ``line``: a complete, valid record of a live study
        (without a leading hole, see `_parse_line`), or None."""
        if not line.endswith(b"\n"):
            return None
        try:
            record = _parse_line(line)
        except ValueError:
            return None
        if "events" not in record and record.get("op") != "create":
            return None
        if record.get("study") not in self._by_id:
            return None
        return line[line.rfind(b"\0") + 1 :]

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


def _parse_line(line: bytes) -> dict[str, Any]:
    """One journal record. A line that holds NUL bytes starts with a hole (bytes of an
    earlier, unacknowledged batch lost in a machine crash read back as zeros; JSON text
    never holds a NUL): the record is what follows the last NUL."""
    try:
        record = json.loads(line)
    except ValueError:
        hole = line.rfind(b"\0")
        if hole < 0:
            raise
        record = json.loads(line[hole + 1 :])
    if not isinstance(record, dict):
        raise ValueError("not an object")
    return record


def _read_range(fd: int, start: int, end: int, *, to_newline: bool = False) -> bytes:
    """The bytes from ``start`` to ``end`` (fewer if the file is shorter), read in chunks;
    with ``to_newline``, stop after the first chunk holding a newline."""
    chunks = []
    while start < end:
        chunk = os.pread(fd, min(end - start, _READ_CHUNK), start)
        if not chunk:
            break
        chunks.append(chunk)
        start += len(chunk)
        if to_newline and b"\n" in chunk:
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
