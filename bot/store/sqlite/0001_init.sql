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
    seed INTEGER NOT NULL,
    variant TEXT NOT NULL,
    provider TEXT,
    model_id TEXT,
    provider_task_json TEXT,
    submit_started_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    not_before REAL NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_expires_at REAL,
    images_json TEXT NOT NULL DEFAULT '[]',
    cost_usd REAL NOT NULL DEFAULT 0,
    error_code TEXT,
    error_message TEXT,
    outcome_sent INTEGER NOT NULL DEFAULT 0,
    delivery_json TEXT NOT NULL DEFAULT '{}',
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    finished_at REAL
);
CREATE INDEX jobs_pending ON jobs (outcome_sent, created_at);
CREATE INDEX jobs_user ON jobs (community_id, user_id, created_at);
CREATE INDEX jobs_status ON jobs (status, created_at);

-- Fair dispatch: the claim order of each community ('c:<id>') and user ('u:<community>:<id>').
CREATE TABLE dispatch (
    key TEXT PRIMARY KEY,
    last_claim INTEGER NOT NULL
);

CREATE TABLE community_settings (
    community_id TEXT PRIMARY KEY,
    settings_json TEXT NOT NULL,
    updated_at REAL NOT NULL
);
