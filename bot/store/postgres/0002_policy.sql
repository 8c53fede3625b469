-- Limits, audit log and the seeded-request cache (issue 6): the twin of sqlite/0002_policy.sql.

-- GCRA state: the theoretical arrival time of each rate-limited key ('u:<community>:<user>').
CREATE TABLE rate_limits (
    key TEXT PRIMARY KEY,
    tat DOUBLE PRECISION NOT NULL
);

-- Daily quota and budget are summed from jobs by community and day.
CREATE INDEX jobs_community_day ON jobs (community_id, created_at);

CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    community_id TEXT NOT NULL,
    at DOUBLE PRECISION NOT NULL,
    actor_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT '',
    channel_id TEXT
);
CREATE INDEX audit_log_community ON audit_log (community_id, id);

CREATE TABLE job_cache (
    job_id TEXT PRIMARY KEY,
    community_id TEXT NOT NULL,
    cache_key TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX job_cache_key ON job_cache (community_id, cache_key, created_at);
