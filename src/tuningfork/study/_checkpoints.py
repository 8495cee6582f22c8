"""Committed checkpoints: a read-only snapshot of a trial's checkpoint directory taken at
the report that ends its run (so it holds what the trial saved *before* reporting), with
a content hash; and the verified copy of such a snapshot into another trial's directory
(PBT's exploit). The study does both; schedulers only name commits in their answers."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from tuningfork.exceptions import CheckpointError

_CHUNK = 1 << 20


class CheckpointStore(Protocol):
    """Where committed checkpoints live. `FileCheckpointStore` (the default) keeps them as
    files under the study's artefact folder; an object store (S3, GCS) implements the same
    three methods. Both run on the worker of the trial concerned, outside the study's lock.
    """

    def commit(self, source: Path, trial: int, step: int) -> dict[str, Any] | None:
        """Snapshot the files of ``source`` (trial ``trial``'s checkpoint directory, as it
        stands at its report at ``step``); return the commit record (JSON: at least
        ``sha256``, the content hash of `directory_hash`, and where the snapshot is), or
        None when there is nothing to commit (an empty directory)."""
        ...

    def restore(self, commit: Mapping[str, Any], target: Path) -> None:
        """Replace the contents of ``target`` by the snapshot of ``commit``; raise
        `CheckpointError` if the copy's `directory_hash` is not ``commit["sha256"]``."""
        ...

    def discard(self, commit: Mapping[str, Any]) -> None:
        """Delete the snapshot of ``commit`` (no longer needed, or never recorded); a
        snapshot already gone is not an error. A store that keeps everything does nothing."""
        ...


class FileCheckpointStore:
    """Committed checkpoints as plain files: ``<root>/trial_<n>/step_<s>-<id>/``.

    ``root``: a folder every worker sees (the study's artefact folder, by default
    ``<artifact_dir>/committed``). A snapshot is written to a temporary folder and renamed
    into place, so a reader never sees half of one; it is never changed afterwards.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def commit(self, source: Path, trial: int, step: int) -> dict[str, Any] | None:
        files = _files(source)
        if not files:
            return None
        name = f"step_{step}-{uuid.uuid4().hex[:8]}"
        final = self.root / f"trial_{trial}" / name
        scratch = final.with_name(f".{name}.tmp")
        scratch.mkdir(parents=True)
        digest = hashlib.sha256()
        size = 0
        for relative in files:
            target = scratch / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            size += _copy_hashing(source / relative, target, relative, digest)
        os.replace(scratch, final)
        return {
            "path": str(final.relative_to(self.root)),
            "sha256": digest.hexdigest(),
            "bytes": size,
            "files": len(files),
        }

    def discard(self, commit: Mapping[str, Any]) -> None:
        """Delete a snapshot (see `CheckpointStore.discard`)."""
        shutil.rmtree(self.root / str(commit["path"]), ignore_errors=True)

    def restore(self, commit: Mapping[str, Any], target: Path) -> None:
        source = self.root / str(commit["path"])
        if not source.is_dir():
            raise CheckpointError(
                f"the checkpoint committed by trial {commit.get('trial')} at step "
                f"{commit.get('step')} is missing ({source}); was the study's artefact "
                "folder moved or cleaned?"
            )
        clear(target)
        for relative in _files(source):
            destination = target / relative
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / relative, destination)
        check_hash(commit, directory_hash(target), target)  # what the trial will load


def directory_hash(path: Path) -> str:
    """The SHA-256 of a directory's files: relative paths (sorted) and contents."""
    digest = hashlib.sha256()
    for relative in _files(path):
        _feed(digest, relative)
        with open(path / relative, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def check_hash(commit: Mapping[str, Any], found: str, target: Path) -> None:
    """Raise `CheckpointError` unless ``found`` is the commit's recorded hash."""
    if found != commit["sha256"]:
        raise CheckpointError(
            f"the copy of trial {commit.get('trial')}'s checkpoint at step "
            f"{commit.get('step')} into {target} has hash {found[:12]}..., not the "
            f"{str(commit['sha256'])[:12]}... recorded when it was committed: the snapshot "
            "was changed or damaged after its commit"
        )


def clear(target: Path) -> None:
    """Empty ``target`` (created if missing): no file of the trial's own checkpoint may
    stay beside the copied one."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in target.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()


def _files(path: Path) -> list[str]:
    """The regular files under ``path``, as sorted POSIX relative paths."""
    if not path.is_dir():
        return []
    found = []
    for directory, _, names in os.walk(path):
        for name in names:
            full = Path(directory) / name
            if full.is_file():
                found.append(full.relative_to(path).as_posix())
    return sorted(found)


def _feed(digest: Any, relative: str) -> None:
    encoded = relative.encode()
    digest.update(len(encoded).to_bytes(8, "big"))
    digest.update(encoded)


def _copy_hashing(source: Path, target: Path, relative: str, digest: Any) -> int:
    """Copy one file and feed it to ``digest`` in the same pass; its size in bytes."""
    _feed(digest, relative)
    size = 0
    with open(source, "rb") as reader, open(target, "wb") as writer:
        while chunk := reader.read(_CHUNK):
            digest.update(chunk)
            writer.write(chunk)
            size += len(chunk)
    return size
