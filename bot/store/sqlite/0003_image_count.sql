-- Usage reads (every admission) sum image counts and costs from index entries alone: the count
-- gets a column of its own instead of being parsed out of request_json for every job.
ALTER TABLE jobs ADD COLUMN image_count INTEGER NOT NULL DEFAULT 1;
UPDATE jobs SET image_count = COALESCE(json_extract(request_json, '$.count'), 1);

-- A community's usage today: images and spend. Replaces its prefix jobs_community_day.
DROP INDEX jobs_community_day;
CREATE INDEX jobs_community_usage
    ON jobs (community_id, created_at, status, image_count, cost_usd, submit_started_at);

-- A user's images today. Replaces its prefix jobs_user.
DROP INDEX jobs_user;
CREATE INDEX jobs_user_usage
    ON jobs (community_id, user_id, created_at, status, image_count, submit_started_at);

-- A user's unfinished jobs, however old: only unfinished jobs are in this index.
CREATE INDEX jobs_user_unfinished ON jobs (community_id, user_id, status)
    WHERE status IN ('queued', 'submitted', 'fetched');
