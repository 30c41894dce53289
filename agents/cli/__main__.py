"""``python -m agents.cli``: the same as the ``regimedesk`` command."""

from agents.cli import main

raise SystemExit(main())
