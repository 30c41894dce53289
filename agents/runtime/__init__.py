"""Runtimes: the processes that drive the graph.

Layer two of four inside ``agents`` (front doors -> **runtimes** -> graph -> services):

``agents.runtime.runner``
    one durable graph run: start, resume, approve, reject (:class:`~agents.runtime.runner.Runner`);
``agents.runtime.live``
    the bar-driven live loop, one durable run per closed bar;
``agents.runtime.scheduler``
    the cron jobs of ``[[schedule.jobs]]``: graph runs, PDF reports and scans;
``agents.runtime.compute``
    per-symbol work in this process or on a Dask cluster (local or remote);
``agents.runtime.scan``
    a whole universe scan on that engine, and what changed since the last one;
``agents.runtime.scan_text``
    the short text of a scan, for scheduled scan jobs and the bot's /scan.

Front doors (the command line, the bot) import these; the graph and the services never do.
The package ``__init__`` imports nothing, so importing one runtime does not load the others.
"""

__all__ = ["compute", "live", "runner", "scan", "scan_text", "scheduler"]
