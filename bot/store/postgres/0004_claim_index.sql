-- The twin of sqlite/0004_claim_index.sql (both stores stay at the same schema version, which
-- migrate-sqlite-to-postgres requires): each user's unfinished jobs, oldest first.
CREATE INDEX jobs_claim ON jobs (community_id, user_id, created_at) WHERE NOT outcome_sent;
