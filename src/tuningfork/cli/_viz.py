"""The commands that look at a study: ``plot`` (to a file), ``importance`` and the live
``dashboard``."""

from __future__ import annotations

import argparse
from typing import Any

from tuningfork.cli._common import (
    EXIT_OK,
    AddCommand,
    _open,
    _print_json,
    _study_and_storage,
    _study_file,
)
from tuningfork.exceptions import OptionError
from tuningfork.study import load_study


def add_commands(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], command: AddCommand
) -> None:
    """``plot``, ``importance`` and ``dashboard``."""
    text = "draw a plot of a study to a file (PNG/SVG/PDF: matplotlib; HTML/JSON: plotly)"
    plot = command("plot", _cmd_plot, text)
    plot.add_argument(
        "kind", metavar="KIND",
        help="history, parallel, slice, contour, edf, intermediate, importance, timeline, "
        "rungs, pareto, population or schedule (the last two: a PBT/PB2 study)",
    )  # fmt: skip
    plot.add_argument("--out", metavar="FILE", required=True, help="its suffix picks the format")
    plot.add_argument("--params", nargs="+", metavar="NAME", help="only these parameters")
    plot.add_argument(
        "--by", choices=("trial", "time"), help="history: x axis by trial number or by time"
    )
    plot.add_argument(
        "--trial", type=int, metavar="N",
        help="schedule: the hyperparameter schedule behind trial N's model (default: per member)",
    )  # fmt: skip
    plot.add_argument("--width", type=int, metavar="PX", help="pixels (default 800)")
    plot.add_argument("--height", type=int, metavar="PX", help="pixels (default 600)")
    text = "hyperparameter importance of a study's complete trials"
    importance = command("importance", _cmd_importance, text)
    importance.add_argument(
        "--evaluator", choices=("ped-anova", "fanova"), default=None,
        help="PED-ANOVA (the default: no model) or fANOVA (random forest; needs scikit-learn)",
    )  # fmt: skip
    importance.add_argument("--params", nargs="+", metavar="NAME", help="only these parameters")
    importance.add_argument(
        "--objective", type=int, default=0, metavar="I",
        help="which objective of a multi-objective study (default 0)",
    )  # fmt: skip
    text = "serve the live web dashboard (read-only) for a storage"
    dashboard = commands.add_parser("dashboard", help=text, description=text)
    dashboard.set_defaults(handler=_cmd_dashboard)
    dashboard.add_argument(
        "file", metavar="STUDY.yaml", nargs="?",
        help="serve the storage of this study file (instead of --storage)",
    )  # fmt: skip
    dashboard.add_argument(
        "--storage", metavar="URL",
        help="storage URL (default: $TUNINGFORK_STORAGE, else sqlite:///tuningfork.db)",
    )  # fmt: skip
    dashboard.add_argument("--port", type=int, default=8080, metavar="P", help="default 8080")
    dashboard.add_argument(
        "--host", default="127.0.0.1", metavar="H",
        help="address to bind (default 127.0.0.1; anything else exposes the dashboard, which "
        "has no authentication, to the network)",
    )  # fmt: skip


def _cmd_plot(args: argparse.Namespace) -> int:
    from tuningfork import viz

    study = load_study(*_study_and_storage(args))
    options: dict[str, Any] = {}
    if args.params:
        options["params"] = args.params
    for name in ("by", "trial", "width", "height"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    path = viz.save(study, args.kind, args.out, **options)
    if args.json:
        _print_json({"study": study.name, "kind": args.kind, "file": str(path)})
    else:
        print(f"wrote {path}")
    return EXIT_OK


def _cmd_importance(args: argparse.Namespace) -> int:
    from tuningfork import importance

    study = load_study(*_study_and_storage(args))
    evaluator: importance.ImportanceEvaluator | None = None
    if args.evaluator == "fanova":
        evaluator = importance.FanovaEvaluator(seed=0)
    elif args.evaluator == "ped-anova":
        evaluator = importance.PedAnovaEvaluator()
    target = None
    if len(study.directions) > 1:
        index = args.objective
        if not 0 <= index < len(study.directions):
            raise OptionError(
                f"--objective must be in 0..{len(study.directions) - 1}, got {index}",
                option="objective",
                owner="tuningfork importance",
            )
        target = lambda trial: trial.values[index]  # noqa: E731
    result = importance.get_param_importances(
        study, evaluator=evaluator, params=args.params, target=target
    )
    if args.json:
        _print_json({"study": study.name, "importances": result})
    else:
        print(importance.format_importances(result))
    return EXIT_OK


def _cmd_dashboard(args: argparse.Namespace) -> int:
    from tuningfork.dashboard import serve

    url = args.storage if args.file is None else _study_file(args.file, args.storage).storage_url()
    serve(_open(args, url).url, host=args.host, port=args.port)
    return EXIT_OK
