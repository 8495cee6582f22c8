"""``python -m tuningfork.cli``: the same as the ``tuningfork`` command."""

from __future__ import annotations

from tuningfork.cli import main

raise SystemExit(main())
