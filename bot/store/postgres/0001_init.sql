-- The PostgreSQL twin of sqlite/0001_init.sql: the same tables and columns, native types.
-- JSON stays in TEXT columns (as in SQLite) so every backend reads and writes the same strings;
-- jsonb would also refuse the \u0000 escape that a text column keeps.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    community_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    platform TEXT NOT NULL,
    dedupe_key TEXT UNIQUE,
    status TEXT NOT NULL,
    request_json TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    seed BIGINT NOT NULL,
    variant TEXT NOT NULL,
    provider TEXT,
    model_id TEXT,
    provider_task_json TEXT,
    submit_started_at DOUBLE PRECISION,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before DOUBLE PRECISION NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires_at DOUBLE PRECISION,
    images_json TEXT NOT NULL DEFAULT '[]',
    cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    error_code TEXT,
    error_message TEXT,
    outcome_sent BOOLEAN NOT NULL DEFAULT FALSE,
    delivery_json TEXT NOT NULL DEFAULT '{}',
    created_at DOUBLE PRECISION NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL,
    finished_at DOUBLE PRECISION
);
-- Claims scan only unfinished jobs: a partial index keeps that scan small however long the history.
CREATE INDEX jobs_pending ON jobs (created_at) WHERE NOT outcome_sent;
CREATE INDEX jobs_user ON jobs (community_id, user_id, created_at);
CREATE INDEX jobs_status ON jobs (status, created_at);

-- Fair dispatch: the claim order of each community ('c:<id>') and user ('u:<community>:<id>').
-- A sequence instead of SQLite's MAX()+1, so concurrent claims never compute the same number.
CREATE SEQUENCE dispatch_order;
CREATE TABLE dispatch (
    key TEXT PRIMARY KEY,
    last_claim BIGINT NOT NULL
);

CREATE TABLE community_settings (
    community_id TEXT PRIMARY KEY,
    settings_json TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
);
