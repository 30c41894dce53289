-- The journal's tables as RegimeDesk created them at JOURNAL_SCHEMA_VERSION = 1 (integrations/_journal.py
-- at commit b2ef3bf, before the working state moved out). Test fixture: do not edit.
CREATE TABLE IF NOT EXISTS schema_version (
    version     INTEGER PRIMARY KEY,
    applied_at  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_id       TEXT PRIMARY KEY,
    thread_id    TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    finished_at  TEXT,
    status       TEXT NOT NULL,
    symbols      TEXT NOT NULL,
    params       TEXT NOT NULL,
    summary      TEXT,
    error        TEXT
);
CREATE TABLE IF NOT EXISTS agent_outputs (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id   TEXT NOT NULL REFERENCES runs(run_id),
    ts       TEXT NOT NULL,
    agent    TEXT NOT NULL,
    symbol   TEXT,
    output   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS llm_exchanges (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id            TEXT REFERENCES runs(run_id),
    ts                TEXT NOT NULL,
    agent             TEXT NOT NULL,
    symbol            TEXT,
    backend           TEXT NOT NULL,
    model             TEXT,
    prompt            TEXT NOT NULL,
    prompt_sha256     TEXT NOT NULL,
    response          TEXT,
    accepted          INTEGER NOT NULL,
    rejected_numbers  TEXT NOT NULL,
    latency_s         REAL NOT NULL,
    error             TEXT
);
CREATE TABLE IF NOT EXISTS decisions (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id    TEXT NOT NULL REFERENCES runs(run_id),
    ts        TEXT NOT NULL,
    symbol    TEXT NOT NULL,
    decision  TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS verdicts (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id           TEXT NOT NULL REFERENCES runs(run_id),
    ts               TEXT NOT NULL,
    symbol           TEXT NOT NULL,
    client_order_id  TEXT,
    verdict          TEXT NOT NULL,
    reasons          TEXT NOT NULL,
    order_json       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id           TEXT NOT NULL REFERENCES runs(run_id),
    ts               TEXT NOT NULL,
    client_order_id  TEXT NOT NULL,
    symbol           TEXT NOT NULL,
    side             TEXT NOT NULL,
    qty              REAL NOT NULL,
    status           TEXT NOT NULL,
    broker           TEXT NOT NULL,
    payload          TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS fills (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id           TEXT NOT NULL REFERENCES runs(run_id),
    ts               TEXT NOT NULL,
    client_order_id  TEXT NOT NULL,
    qty              REAL NOT NULL,
    price            REAL NOT NULL,
    fill_ts          TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS job_runs (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id         TEXT,
    ts             TEXT NOT NULL,
    job            TEXT NOT NULL,
    scheduled_for  TEXT,
    started_at     TEXT NOT NULL,
    finished_at    TEXT NOT NULL,
    status         TEXT NOT NULL,
    detail         TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS job_runs_job ON job_runs(job, id);
CREATE TABLE IF NOT EXISTS live_sessions (
    session       TEXT PRIMARY KEY,
    spec          TEXT NOT NULL,
    started_at    TEXT NOT NULL,
    pid           INTEGER,
    status        TEXT NOT NULL,
    heartbeat_at  TEXT,
    feed_state    TEXT NOT NULL DEFAULT 'ok',
    note          TEXT
);
CREATE TABLE IF NOT EXISTS live_bars (
    session      TEXT NOT NULL,
    bar_time     TEXT NOT NULL,
    thread_id    TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    status       TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    closes_at    TEXT NOT NULL,
    finished_at  TEXT,
    seconds      REAL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    error        TEXT,
    PRIMARY KEY (session, bar_time)
);
CREATE TABLE IF NOT EXISTS live_events (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    session  TEXT NOT NULL,
    ts       TEXT NOT NULL,
    kind     TEXT NOT NULL,
    message  TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS agent_outputs_run ON agent_outputs(run_id, id);
CREATE INDEX IF NOT EXISTS llm_exchanges_run ON llm_exchanges(run_id, id);
CREATE INDEX IF NOT EXISTS decisions_run ON decisions(run_id, id);
CREATE INDEX IF NOT EXISTS verdicts_run ON verdicts(run_id, id);
CREATE INDEX IF NOT EXISTS orders_run ON orders(run_id, id);
CREATE INDEX IF NOT EXISTS orders_client_id ON orders(client_order_id);
CREATE INDEX IF NOT EXISTS fills_run ON fills(run_id, id);
CREATE INDEX IF NOT EXISTS runs_started ON runs(started_at);
