"""An objective that runs an external command (any language) once per trial, and the
report protocol by which that program talks to the study while it runs.

    objective = CommandObjective(
        [sys.executable, "train.py", "--lr", "{lr}", "--epochs", "{budget}",
         "--momentum", "{momentum}", "--out", "{checkpoint_dir}"],
        result=ResultSpec(source="stdout", metrics=("val_loss",)),
        timeout=3600,
    )
    study.optimize(objective, n_trials=50, space=space, catch=(CommandFailed,))

The program is started without a shell (``subprocess.Popen(argv, shell=False)``) in a
process group of its own, with its stdout and stderr teed into
``<artifact_dir>/logs/trial_<n>/stdout.log`` and ``stderr.log`` (never inside the trial's
checkpoint directory, which PBT snapshots and replaces).

Report protocol
---------------
Environment: every run gets ``TUNINGFORK_TRIAL_ID``, ``TUNINGFORK_STUDY``,
``TUNINGFORK_CHECKPOINT_DIR``, ``TUNINGFORK_BUDGET`` (empty when the scheduler sets none),
``TUNINGFORK_LAST_STEP`` (the last step reported before, on a resumed trial: continue from
``last_step + 1``; else empty), ``TUNINGFORK_RESUMED`` (``1``/``0``), ``TUNINGFORK_SEED``,
``TUNINGFORK_PARAMS`` (a JSON object of the parameters), ``TUNINGFORK_REPORT_FILE`` and
``TUNINGFORK_CONTROL_FILE``.

Intermediate values: the program prints a line that is the JSON object
``{"tuningfork": {"step": 3, "val_loss": 0.2}}`` on stdout, or appends such lines (or just
the inner object) to ``$TUNINGFORK_REPORT_FILE``. Each report becomes
``trial.report(value, step)`` with ``value`` the ``report_metric`` key (default: the first
result metric), then ``trial.should_stop()``. The answer is written atomically to
``$TUNINGFORK_CONTROL_FILE`` as ``{"action": "continue" | "stop" | "pause", "step": N}``
(``{"action": "continue"}`` before the first report). A report without an integer step or
without the metric is ignored with a warning (once per objective). A step reported twice in
one run is answered again but recorded once.

On "stop" or "pause" the program should save a checkpoint and exit with code 0 within
``grace_period`` seconds; otherwise its process group gets SIGTERM, and SIGKILL another
``grace_period`` later. Either way the trial ends as PRUNED (stop) or PAUSED (pause, to be
resumed later with ``TUNINGFORK_RESUMED=1``). `tuningfork.client` implements the program's
side in one standard-library file. See ``docs/protocol.md``.

Result: after the program exits with code 0 (and was not stopped), the metrics are read
from (`ResultSpec.source`) ``"stdout"``: the last stdout line that is a JSON object with
every metric key (report lines excluded; a single-metric study whose program printed only
reports falls back to the metric of its last report); ``"file"``: a JSON or YAML mapping
that the program wrote at ``ResultSpec.path``; ``"regex"``: the last match of
``ResultSpec.pattern`` in this run's stdout.

Failures (non-zero exit, death by a signal, per-trial timeout, no metric) raise
`CommandFailed`; ``study.optimize(objective, catch=(CommandFailed,))`` fails only that
trial, with the reason and the tail of the program's stderr, and goes on.

POSIX only (process groups and signals).

Modules: `_objective` (`CommandObjective`, one run composed), `_process` (the process group,
its logs, SIGTERM then SIGKILL), `_protocol` (reports and answers), `_result` (`ResultSpec`
and reading the metrics), `_templates` (argument templates).
"""

from __future__ import annotations

from tuningfork.command._objective import CommandObjective
from tuningfork.command._result import ResultSpec
from tuningfork.command._templates import BUILTIN_PLACEHOLDERS
from tuningfork.exceptions import CommandFailed

__all__ = ["BUILTIN_PLACEHOLDERS", "CommandFailed", "CommandObjective", "ResultSpec"]
