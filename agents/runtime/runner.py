"""Start, resume, approve and reject durable runs of the agent graph.

Runs are checkpointed in SQLite (LangGraph's ``SqliteSaver``) under one thread id per run,
so an interrupted or crashed run continues from its last completed step, and the approval
interrupt can be answered from another process (CLI or Telegram).
"""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.types import Command

from agents.config import Secrets, Settings
from agents.graph import RunState, agent_plan, build_graph
from agents.services.context import AppContext, RunRequest
from analytics import RegimeDeskError
from integrations import UnknownRunError

__all__ = ["RunOutcome", "Runner", "UnknownThreadError"]

Progress = Callable[[str], None]


class UnknownThreadError(RegimeDeskError):
    """No checkpointed run has this thread id."""


@dataclass(frozen=True)
class RunOutcome:
    """Where a run stands after ``start``/``resume``.

    ``status`` is ``'completed'`` or ``'interrupted'`` (waiting for approval); ``pending``
    holds what the approval step shows a person. ``state`` is the graph's state as JSON;
    :attr:`run_state` reads it typed.
    """

    run_id: str
    thread_id: str
    status: str
    state: dict[str, Any]
    pending: dict[str, Any] | None = None

    @property
    def run_state(self) -> RunState:
        """The typed view of :attr:`state` (:class:`agents.graph.RunState`)."""
        return RunState(self.state)


def _torn_start(snap: Any) -> bool:
    """No run on the thread, or only a start that a crash cut short before any agent ran.

    A kill between LangGraph's writes leaves either the input checkpoint without the input
    (no request in the state) or the input checkpoint with the input but no step taken
    (nothing next). Either way no agent ran, so the run is started again on the same thread.
    """
    if not snap.values or "request" not in snap.values:
        return True
    meta = snap.metadata or {}
    return meta.get("source") == "input" and not snap.next


class Runner:
    """Runs the graph with durable checkpoints and the journal.

    Parameters
    ----------
    settings, secrets
        Configuration.
    journal : integrations.Journal, optional
        Where runs, agent outputs and LLM exchanges are appended (default: the journal in
        ``settings.home``).
    checkpoint_path : Path, optional
        SQLite file for checkpoints (default ``home/checkpoints.sqlite``).
    mapper : callable, optional
        Where the per-symbol analysis runs (:func:`agents.runtime.compute.symbol_mapper`);
        None: in this process.
    """

    def __init__(
        self,
        settings: Settings,
        secrets: Secrets,
        journal: Any = None,
        checkpoint_path: Path | None = None,
        mapper: Any = None,
    ) -> None:
        from integrations import Journal

        home = settings.home_dir
        home.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.secrets = secrets
        self.journal = journal if journal is not None else Journal(settings.paths.journal)
        path = checkpoint_path or settings.paths.checkpoints
        self._conn = sqlite3.connect(str(path), check_same_thread=False)
        # The saver turns on WAL; NORMAL (as for the journal) syncs at WAL checkpoints, not on
        # every step's commit: a commit survives a killed process, only not a power cut.
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self.checkpointer = SqliteSaver(self._conn)
        self.ctx = AppContext(settings, secrets, self.journal, mapper=mapper)
        self._graphs: dict[bool, Any] = {}

    def _graph(self, approve: bool):
        """The compiled graph (with or without the approval step), built once per runner."""
        graph = self._graphs.get(approve)
        if graph is None:
            graph = self._graphs[approve] = build_graph(self.ctx, approve=approve, checkpointer=self.checkpointer)
        return graph

    def close(self) -> None:
        self.ctx.close()
        self._conn.close()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _stream(self, graph, payload, config, progress: Progress | None) -> None:
        for chunk in graph.stream(payload, config, stream_mode="updates"):
            for node in chunk:
                if progress is not None and not node.startswith("__"):
                    progress(node)

    def _outcome(self, graph, config, run_id: str, thread_id: str) -> RunOutcome:
        snap = graph.get_state(config)
        state = dict(snap.values)
        pending = None
        for task in snap.tasks:
            if task.interrupts:
                pending = task.interrupts[0].value
                break
        status = "interrupted" if snap.next else "completed"
        if status == "completed":
            self.journal.finish_run(run_id, "completed", summary={"agents_ran": state.get("agents_ran", [])})
        else:
            self.journal.finish_run(run_id, "interrupted", summary={"waiting_at": list(snap.next)})
        return RunOutcome(run_id, thread_id, status, state, pending)

    def start(self, request: RunRequest, progress: Progress | None = None, *, run_id: str | None = None,
              thread_id: str | None = None) -> RunOutcome:
        """Run the graph for ``request`` until it ends or waits for approval.

        ``run_id`` and ``thread_id`` default to fresh ones. A live session passes its own,
        derived from the bar, so that a restart continues the same run; a run id already in
        the journal (a crash before the first checkpoint) is reused, a thread that already
        has a checkpointed run is refused (use :meth:`resume`); a thread whose only checkpoint
        is a start torn by a crash (the input checkpoint without the input) is started again.
        """
        run_id = run_id or uuid.uuid4().hex[:12]
        thread_id = thread_id or f"run-{run_id}"
        graph = self._graph(request.approve)
        config = {"configurable": {"thread_id": thread_id}}
        if not _torn_start(graph.get_state(config)):
            raise RegimeDeskError(f"thread {thread_id} already has a checkpointed run; resume it instead")
        try:
            self.journal.get_run(run_id)
        except UnknownRunError:
            self.journal.start_run(run_id, thread_id, list(request.symbols), request.to_dict())
        initial = {
            "run_id": run_id,
            "thread_id": thread_id,
            "request": request.to_dict(),
            "agents_present": list(agent_plan(request.approve)),
        }
        try:
            self._stream(graph, initial, config, progress)
        except BaseException as exc:
            self.journal.finish_run(run_id, "failed", error=f"{type(exc).__name__}: {exc}")
            raise
        return self._outcome(graph, config, run_id, thread_id)

    def _load(self, thread_id: str):
        """The graph and run id of a checkpointed thread."""
        probe = self._graph(True)
        config = {"configurable": {"thread_id": thread_id}}
        values = probe.get_state(config).values
        if not values or "request" not in values:
            raise UnknownThreadError(f"no checkpointed run with thread id {thread_id!r}")
        run = RunState(values)
        graph = self._graph(run.request.approve)
        return graph, config, run.run_id

    def status(self, thread_id: str) -> RunOutcome:
        """Where a checkpointed run stands, without running anything."""
        graph, config, run_id = self._load(thread_id)
        snap = graph.get_state(config)
        pending = next((t.interrupts[0].value for t in snap.tasks if t.interrupts), None)
        return RunOutcome(run_id, thread_id, "interrupted" if snap.next else "completed", dict(snap.values), pending)

    def checkpoint_state(self, thread_id: str) -> str | None:
        """``None`` (no checkpoint), ``'finished'``, ``'waiting'`` (for approval) or ``'running'``
        (interrupted by a crash: :meth:`resume` continues it)."""
        probe = self._graph(True)
        snap = probe.get_state({"configurable": {"thread_id": thread_id}})
        if _torn_start(snap):
            return None
        if not snap.next:
            return "finished"
        return "waiting" if any(t.interrupts for t in snap.tasks) else "running"

    def outcome(self, thread_id: str) -> RunOutcome:
        """Where a checkpointed run stands, as :meth:`start` would have returned it."""
        graph, config, run_id = self._load(thread_id)
        return self._outcome(graph, config, run_id, thread_id)

    def resume(
        self,
        thread_id: str,
        answer: dict[str, Any] | None = None,
        progress: Progress | None = None,
    ) -> RunOutcome:
        """Continue a run: after a crash (``answer=None``) or with an approval answer.

        Raises
        ------
        UnknownThreadError
            No such thread.
        RegimeDeskError
            The run already finished, or an approval answer was given to a run that is not
            waiting for one (a second press of a button).
        """
        graph, config, run_id = self._load(thread_id)
        snap = graph.get_state(config)
        if not snap.next:
            raise RegimeDeskError(f"run {thread_id} has already finished; nothing to resume")
        waiting = any(t.interrupts for t in snap.tasks)
        if answer is not None and not waiting:
            raise RegimeDeskError(f"run {thread_id} is not waiting for approval")
        if answer is None and waiting:
            raise RegimeDeskError(
                f"run {thread_id} is waiting for approval: use 'regimedesk approve {thread_id}' "
                f"or 'regimedesk reject {thread_id}'"
            )
        payload = Command(resume=answer) if answer is not None else None
        try:
            self._stream(graph, payload, config, progress)
        except BaseException as exc:
            self.journal.finish_run(run_id, "failed", error=f"{type(exc).__name__}: {exc}")
            raise
        return self._outcome(graph, config, run_id, thread_id)
