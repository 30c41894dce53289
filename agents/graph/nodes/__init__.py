"""One module per agent node. Each exposes ``make(ctx) -> node function``.

A node returns only its own state key (plus ``narratives``/``errors`` through their
reducers); ``agents.graph`` adds ``agents_ran`` and journals the output.
"""

__all__: list[str] = []
