"""Study names: one check (`check_study_name`), applied by every backend's create_study, so
every path that creates a study (create_study, copy_study, the command line) rejects the
same names and leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

import tuningfork as tf
from tuningfork.exceptions import StudyNameError
from tuningfork.storage import MAX_STUDY_NAME_BYTES, InMemoryStorage, check_study_name, copy_study
from tuningfork.storage.journal import JournalStorage

BAD_NAMES = {
    "": "is empty",
    "   ": "is empty",
    "a/b": "may not contain '/'",
    "a\\b": "may not contain '/'",
    ".": "nor be '.' or '..'",
    "..": "nor be '.' or '..'",
    "a\x00b": "control character '\\x00'",
    "a\nb": "control character '\\n'",
    "tab\there": "control character '\\t'",
    "x" * (MAX_STUDY_NAME_BYTES + 1): "243 bytes in UTF-8",
    "é" * 122: "244 bytes in UTF-8",  # 122 characters, but 2 bytes each
}
GOOD_NAMES = ["a", "a.b", "..a", "name with spaces", "x" * MAX_STUDY_NAME_BYTES, "é" * 121]


@pytest.mark.parametrize("name", list(BAD_NAMES))
def test_bad_names_are_rejected_with_the_rule_they_break(name: str) -> None:
    with pytest.raises(StudyNameError, match=BAD_NAMES[name].replace("\\", "\\\\")) as caught:
        check_study_name(name)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, tf.TuningforkError)


def test_the_length_limit_explains_the_artefact_folder() -> None:
    with pytest.raises(StudyNameError, match="255-byte limit on a file name"):
        check_study_name("x" * 300)
    with pytest.raises(StudyNameError, match="must be a string"):
        check_study_name(3)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_good_names_pass(name: str) -> None:
    check_study_name(name)


def _backends(tmp_path: Path) -> dict[str, tf.Storage]:
    return {
        "memory": InMemoryStorage(),
        "sqlite": tf.SQLStorage(f"sqlite:///{tmp_path / 'names.db'}"),
        "journal": JournalStorage(tmp_path / "names.log"),
    }


@pytest.mark.parametrize("backend", ["memory", "sqlite", "journal"])
def test_every_backend_rejects_a_bad_name_and_keeps_nothing(tmp_path: Path, backend: str) -> None:
    storage = _backends(tmp_path)[backend]
    journal = tmp_path / "names.log"
    before = journal.read_bytes() if backend == "journal" else b""
    for name in BAD_NAMES:
        with pytest.raises(StudyNameError):
            storage.create_study(name, ("minimize",))
    assert storage.list_studies() == []
    if backend == "journal":
        assert journal.read_bytes() == before
    for name in GOOD_NAMES:
        storage.create_study(name, ("minimize",))
    assert [info.name for info in storage.list_studies()] == GOOD_NAMES


@pytest.mark.parametrize("scheme", ["sqlite:///", "journal://"])
def test_create_study_with_a_bad_name_creates_no_storage(tmp_path: Path, scheme: str) -> None:
    path = tmp_path / "never"
    with pytest.raises(StudyNameError, match="control character"):
        tf.create_study("two\nlines", storage=f"{scheme}{path}")
    assert list(tmp_path.iterdir()) == []


def test_the_longest_name_makes_a_working_study(tmp_path: Path) -> None:
    name = "é" * (MAX_STUDY_NAME_BYTES // 2)
    study = tf.create_study(name, storage=f"sqlite:///{tmp_path / 'long.db'}")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert tf.load_study(name, storage=f"sqlite:///{tmp_path / 'long.db'}").name == name


@pytest.mark.parametrize("new_name", ["..", "a/b", "x" * 300, "a\x00"])
def test_copy_to_a_bad_name_is_refused_before_the_target_is_created(
    tmp_path: Path, new_name: str
) -> None:
    source = f"sqlite:///{tmp_path / 'a.db'}"
    tf.create_study("s", storage=source).optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    target = tmp_path / "b.log"
    with pytest.raises(StudyNameError):
        copy_study("s", source, f"journal://{target}", new_name=new_name)
    assert not target.exists()
    memory = InMemoryStorage()
    with pytest.raises(StudyNameError):
        copy_study("s", source, memory, new_name=new_name)
    assert memory.list_studies() == []
