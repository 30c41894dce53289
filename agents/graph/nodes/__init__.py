"""One module per agent node. Each exposes ``make(ctx) -> node function``.

A node reads the state through :class:`agents.graph.schema.RunState` and returns a
:class:`agents.graph.schema.NodeUpdate`: its agent's typed output plus narratives and errors
for the reducers; the wiring turns it into JSON, adds ``agents_ran`` and journals it.
"""

__all__: list[str] = []
