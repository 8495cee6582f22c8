"""The layers stay honest: no module outside the study and storage packages uses a
private name of a study, its reader, its view or a trial handle (DESIGN.md, principle 7).
A plug-in author gets exactly what the built-ins get."""

from __future__ import annotations

import re
from pathlib import Path

import tuningfork as tf
from tuningfork.storage.view import StudyView, TrialRecord
from tuningfork.study import StudyReader
from tuningfork.study._log import StudyLog

SRC = Path(tf.__file__).parent
ALLOWED = ("study", "storage")  # the packages that own these objects
# a class comparing itself with another instance of itself, whose private name happens
# to match one of the study's
SAME_CLASS = {"space/_space.py: other._params"}


def _private_names() -> set[str]:
    """Private attributes and methods of a live study, its reader, view, log and trial."""
    study = tf.create_study(storage="memory")
    trial = study.ask()
    names: set[str] = set()
    for obj in (study, trial):
        names |= {n for n in vars(obj) if n.startswith("_") and not n.startswith("__")}
    for cls in (tf.Study, tf.Trial, StudyReader, StudyView, TrialRecord, StudyLog):
        names |= {n for n in dir(cls) if n.startswith("_") and not n.startswith("__")}
    names |= {n for n in StudyReader.__slots__ if n.startswith("_") and not n.startswith("__")}
    return names


def _offences(names: set[str]) -> list[str]:
    pattern = re.compile(r"\b(?!self\b|cls\b)([A-Za-z_]\w*)\.(" + "|".join(sorted(names)) + r")\b")
    found = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC)
        if relative.parts[0] in ALLOWED:
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if code.lstrip().startswith(("from ", "import ")):
                continue  # a module of the study package, not an object's private name
            for match in pattern.finditer(code):
                if f"{relative}: {match.group(0)}" not in SAME_CLASS:
                    found.append(f"{relative}:{number}: {match.group(0)}")
    return found


def test_no_module_outside_study_and_storage_uses_their_private_names():
    names = _private_names()
    assert {"_log", "_view", "_call", "_channel", "_active"} <= names  # the check has teeth
    assert _offences(names) == []


def test_the_check_finds_an_offence(tmp_path, monkeypatch):
    """The grep is not vacuous: a module reaching into a study is reported."""
    fake = tmp_path / "tuningfork"
    (fake / "samplers").mkdir(parents=True)
    (fake / "samplers" / "bad.py").write_text("def f(study):\n    return study._log.view\n")
    (fake / "study").mkdir()
    (fake / "study" / "ok.py").write_text("def f(study):\n    return study._log.view\n")
    monkeypatch.setattr(__import__(__name__), "SRC", fake)
    assert _offences({"_log"}) == ["samplers/bad.py:2: study._log"]
