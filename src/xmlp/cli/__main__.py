"""``python -m xmlp.cli``: the ``xmlp`` command."""

from .commands import main

raise SystemExit(main())
