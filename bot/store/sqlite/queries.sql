-- name: insert_job
INSERT INTO jobs (
    id, community_id, user_id, platform, dedupe_key, status, request_json, width, height, seed,
    variant, provider, model_id, provider_task_json, submit_started_at, attempts, not_before,
    lease_owner, lease_expires_at, images_json, cost_usd, error_code, error_message, outcome_sent,
    delivery_json, created_at, updated_at, finished_at, image_count
) VALUES (
    :id, :community_id, :user_id, :platform, :dedupe_key, :status, :request_json, :width, :height,
    :seed, :variant, :provider, :model_id, :provider_task_json, :submit_started_at, :attempts,
    :not_before, :lease_owner, :lease_expires_at, :images_json, :cost_usd, :error_code,
    :error_message, :outcome_sent, :delivery_json, :created_at, :updated_at, :finished_at,
    :image_count
)
ON CONFLICT (dedupe_key) DO NOTHING

-- name: get_job
SELECT * FROM jobs WHERE id = :id

-- name: get_job_by_dedupe
SELECT * FROM jobs WHERE dedupe_key = :dedupe_key

-- name: claim_communities
-- Fair dispatch, first level: every community with unfinished jobs, the one served longest ago
-- (never: 0) first. Found by skipping from one community to the next in jobs_claim (named, so
-- the planner never sorts all pending jobs instead), so the cost grows with the number of
-- communities, not of jobs.
WITH RECURSIVE pending (community_id) AS (
    SELECT MIN(community_id) FROM jobs INDEXED BY jobs_claim WHERE outcome_sent = 0
    UNION ALL
    SELECT (
        SELECT MIN(community_id) FROM jobs INDEXED BY jobs_claim
        WHERE outcome_sent = 0 AND community_id > pending.community_id
    ) FROM pending WHERE pending.community_id IS NOT NULL
)
SELECT pending.community_id, COALESCE(dc.last_claim, 0) AS community_order
FROM pending
LEFT JOIN dispatch AS dc ON dc.key = 'c:' || pending.community_id
WHERE pending.community_id IS NOT NULL
ORDER BY community_order

-- name: claim_in_community
-- Fair dispatch, second level: within one community, the oldest claimable job of each user with
-- unfinished jobs (one seek per user in jobs_claim), in the order their users are served: the
-- user served longest ago (never: 0) first and, between users never served, the oldest job.
WITH RECURSIVE users (user_id) AS (
    SELECT MIN(user_id) FROM jobs INDEXED BY jobs_claim
    WHERE outcome_sent = 0 AND community_id = :community_id
    UNION ALL
    SELECT (
        SELECT MIN(user_id) FROM jobs INDEXED BY jobs_claim
        WHERE outcome_sent = 0 AND community_id = :community_id AND user_id > users.user_id
    ) FROM users WHERE users.user_id IS NOT NULL
), heads (job_id) AS (
    SELECT (
        SELECT j.id FROM jobs AS j INDEXED BY jobs_claim
        WHERE j.outcome_sent = 0 AND j.community_id = :community_id AND j.user_id = users.user_id
          AND j.platform IN (SELECT value FROM json_each(:platforms))
          AND j.not_before <= :now
          AND (j.lease_expires_at IS NULL OR j.lease_expires_at < :now)
        ORDER BY j.created_at
        LIMIT 1
    ) FROM users WHERE users.user_id IS NOT NULL
)
SELECT j.id, j.community_id, j.user_id, COALESCE(du.last_claim, 0) AS user_order, j.created_at
FROM heads
JOIN jobs AS j ON j.id = heads.job_id
LEFT JOIN dispatch AS du ON du.key = 'u:' || j.community_id || ':' || j.user_id
ORDER BY user_order, j.created_at
LIMIT :limit

-- name: lease_jobs
-- The jobs of one claim (a JSON array of ids), leased and returned.
UPDATE jobs SET lease_owner = :worker_id, lease_expires_at = :expires_at, updated_at = :now
WHERE id IN (SELECT value FROM json_each(:ids))
RETURNING *

-- name: mark_dispatched
-- Moves communities and users to the back of the dispatch order: :keys is a JSON array of
-- [key, rank] pairs, the key served last with the highest rank. INSERT ... SELECT from the table
-- it writes computes every row before it writes one, so MAX is the order before this claim.
INSERT INTO dispatch (key, last_claim)
SELECT json_extract(value, '$[0]'),
    (SELECT COALESCE(MAX(last_claim), 0) FROM dispatch) + json_extract(value, '$[1]')
FROM json_each(:keys) WHERE true
ON CONFLICT (key) DO UPDATE SET last_claim = excluded.last_claim

-- name: renew_lease
UPDATE jobs SET lease_expires_at = :expires_at
WHERE id = :id AND lease_owner = :worker_id AND outcome_sent = 0

-- name: release_job
UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL, not_before = :not_before
WHERE id = :id AND lease_owner = :worker_id

-- name: save_job_step
UPDATE jobs SET
    status = :status, provider = :provider, model_id = :model_id,
    provider_task_json = :provider_task_json, submit_started_at = :submit_started_at,
    attempts = :attempts, not_before = :not_before, lease_owner = :lease_owner,
    lease_expires_at = :lease_expires_at, images_json = :images_json, cost_usd = :cost_usd,
    error_code = :error_code, error_message = :error_message, outcome_sent = :outcome_sent,
    delivery_json = json_patch(delivery_json, :delivery_json), updated_at = :updated_at,
    finished_at = :finished_at, width = :width, height = :height, seed = :seed
WHERE id = :id AND lease_owner = :worker_id AND status = :expected

-- name: merge_job_delivery
UPDATE jobs SET delivery_json = json_patch(delivery_json, :patch) WHERE id = :id

-- name: cancel_job
UPDATE jobs SET status = 'cancelled', outcome_sent = 1, updated_at = :now, finished_at = :now,
    error_code = 'cancelled', error_message = 'Cancelled by request.'
WHERE id = :id AND status IN ('queued', 'submitted', 'fetched')

-- name: queue_position
SELECT COUNT(*) FROM jobs
WHERE status = 'queued' AND outcome_sent = 0 AND created_at < :created_at

-- name: job_counts
SELECT
    SUM(CASE WHEN status = 'queued' AND lease_owner IS NULL THEN 1 ELSE 0 END),
    SUM(CASE WHEN lease_owner IS NOT NULL THEN 1 ELSE 0 END)
FROM jobs WHERE outcome_sent = 0

-- name: get_settings
SELECT settings_json FROM community_settings WHERE community_id = :community_id

-- name: save_settings
INSERT INTO community_settings (community_id, settings_json, updated_at)
VALUES (:community_id, :settings_json, :now)
ON CONFLICT (community_id) DO UPDATE
SET settings_json = excluded.settings_json, updated_at = excluded.updated_at

-- name: lease_owners
SELECT DISTINCT lease_owner FROM jobs WHERE lease_owner IS NOT NULL AND outcome_sent = 0

-- name: release_leases_of
UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL
WHERE lease_owner = :worker_id AND outcome_sent = 0

-- name: count_pending
SELECT COUNT(*) FROM jobs
WHERE outcome_sent = 0 AND platform IN (SELECT value FROM json_each(:platforms))

-- name: get_rate_tat
SELECT tat FROM rate_limits WHERE key = :key

-- name: set_rate_tat
INSERT INTO rate_limits (key, tat) VALUES (:key, :tat)
ON CONFLICT (key) DO UPDATE SET tat = excluded.tat

-- name: user_usage
-- Charged images since the start of the day (jobs stamped later after a clock jump count too)
-- and unfinished jobs, however old. See bot/limits.py for which statuses are charged.
-- Each part reads one index (jobs_user_usage, jobs_user_unfinished) and no table rows.
SELECT
    (SELECT COALESCE(SUM(image_count), 0) FROM jobs
     WHERE community_id = :community_id AND user_id = :user_id AND created_at >= :day_start
       AND (status IN ('queued', 'submitted', 'fetched', 'delivered')
            OR (status = 'cancelled' AND submit_started_at IS NOT NULL))),
    (SELECT COUNT(*) FROM jobs
     WHERE community_id = :community_id AND user_id = :user_id
       AND status IN ('queued', 'submitted', 'fetched'))

-- name: community_usage
-- Reads the index jobs_community_usage only.
SELECT
    COALESCE(SUM(image_count), 0),
    COALESCE(SUM(cost_usd), 0)
FROM jobs
WHERE community_id = :community_id AND created_at >= :day_start
  AND (status IN ('queued', 'submitted', 'fetched', 'delivered')
       OR (status = 'cancelled' AND submit_started_at IS NOT NULL))

-- name: add_cache_key
INSERT INTO job_cache (job_id, community_id, cache_key, created_at)
VALUES (:job_id, :community_id, :cache_key, :created_at)
ON CONFLICT (job_id) DO NOTHING

-- name: find_cached_job
SELECT j.* FROM job_cache AS c JOIN jobs AS j ON j.id = c.job_id
WHERE c.community_id = :community_id AND c.cache_key = :cache_key
  AND j.status = 'delivered' AND j.images_json != '[]'
ORDER BY c.created_at DESC
LIMIT 1

-- name: add_audit
INSERT INTO audit_log (community_id, at, actor_id, kind, action, detail, channel_id, origin)
VALUES (:community_id, :at, :actor_id, :kind, :action, :detail, :channel_id, :origin)

-- name: list_audit
SELECT id, community_id, at, actor_id, kind, action, detail, channel_id, origin FROM audit_log
WHERE community_id = :community_id
ORDER BY id DESC
LIMIT :limit

-- name: search_audit
-- One page of a community's log, newest first, older than :before_id (0: from the newest);
-- '' for :actor_id or :kind matches every actor or kind.
SELECT id, community_id, at, actor_id, kind, action, detail, channel_id, origin FROM audit_log
WHERE community_id = :community_id
  AND (:before_id = 0 OR id < :before_id)
  AND (:actor_id = '' OR actor_id = :actor_id)
  AND (:kind = '' OR kind = :kind)
ORDER BY id DESC
LIMIT :limit

-- name: find_leader_job
-- The unfinished job an identical request may share (one that itself follows no other).
SELECT j.id FROM job_cache AS c JOIN jobs AS j ON j.id = c.job_id
WHERE c.community_id = :community_id AND c.cache_key = :cache_key
  AND j.status IN ('queued', 'submitted', 'fetched')
  AND (j.provider IS NULL OR j.provider != 'cache')
ORDER BY c.created_at
LIMIT 1

-- name: get_preferences
SELECT prefs_json FROM user_preferences WHERE platform = :platform AND user_id = :user_id

-- name: save_preferences
INSERT INTO user_preferences (platform, user_id, prefs_json, updated_at)
VALUES (:platform, :user_id, :prefs_json, :now)
ON CONFLICT (platform, user_id) DO UPDATE
SET prefs_json = excluded.prefs_json, updated_at = excluded.updated_at

-- name: delete_preferences
DELETE FROM user_preferences WHERE platform = :platform AND user_id = :user_id

-- name: list_user_jobs
SELECT * FROM jobs WHERE platform = :platform AND user_id = :user_id
ORDER BY created_at DESC
LIMIT :limit

-- name: usage_by_day
-- Charged images and spend per UTC day (day number since 1970) since :since.
SELECT CAST(created_at / 86400 AS INTEGER) AS day, COALESCE(SUM(image_count), 0) AS images,
       COALESCE(SUM(cost_usd), 0) AS spend
FROM jobs
WHERE community_id = :community_id AND created_at >= :since
  AND (status IN ('queued', 'submitted', 'fetched', 'delivered')
       OR (status = 'cancelled' AND submit_started_at IS NOT NULL))
GROUP BY 1 ORDER BY 1

-- name: top_users
SELECT user_id, COALESCE(SUM(image_count), 0) AS images, COALESCE(SUM(cost_usd), 0) AS spend
FROM jobs
WHERE community_id = :community_id AND created_at >= :since
  AND (status IN ('queued', 'submitted', 'fetched', 'delivered')
       OR (status = 'cancelled' AND submit_started_at IS NOT NULL))
GROUP BY user_id ORDER BY 2 DESC, 1 LIMIT :limit

-- name: refusals_by_reason
SELECT action, COUNT(*) AS refusals FROM audit_log
WHERE community_id = :community_id AND kind = 'refusal' AND at >= :since
GROUP BY action ORDER BY 2 DESC, 1

-- name: community_job_counts
SELECT
    COALESCE(SUM(CASE WHEN status = 'queued' AND lease_owner IS NULL THEN 1 ELSE 0 END), 0)
        AS queued,
    COALESCE(SUM(CASE WHEN lease_owner IS NOT NULL THEN 1 ELSE 0 END), 0) AS running
FROM jobs WHERE community_id = :community_id AND status IN ('queued', 'submitted', 'fetched')

-- name: spend_by_provider
SELECT COALESCE(provider, '') AS provider, COALESCE(SUM(image_count), 0) AS images,
       COALESCE(SUM(cost_usd), 0) AS spend
FROM jobs
WHERE created_at >= :since AND provider IS NOT NULL
GROUP BY 1 ORDER BY 3 DESC, 1

-- name: last_provider_errors
-- Each provider's newest failed job since :since (SQLite takes the other columns from the row
-- that holds the MAX).
SELECT provider, error_code, error_message, MAX(updated_at) AS at FROM jobs
WHERE provider IS NOT NULL AND provider != 'cache' AND error_code IS NOT NULL
  AND updated_at >= :since
GROUP BY provider

-- name: save_installation
-- A reinstall (new scopes, a new token) replaces the workspace's row.
INSERT INTO installations (platform, enterprise_id, team_id, secret, installed_at)
VALUES (:platform, :enterprise_id, :team_id, :secret, :installed_at)
ON CONFLICT (platform, enterprise_id, team_id) DO UPDATE
SET secret = excluded.secret, installed_at = excluded.installed_at

-- name: find_installation
SELECT platform, enterprise_id, team_id, secret, installed_at FROM installations
WHERE platform = :platform AND enterprise_id = :enterprise_id AND team_id = :team_id

-- name: delete_installation
DELETE FROM installations
WHERE platform = :platform AND enterprise_id = :enterprise_id AND team_id = :team_id

-- name: purge_oauth_states
DELETE FROM oauth_states WHERE expires_at <= :now

-- name: issue_oauth_state
INSERT INTO oauth_states (state, expires_at) VALUES (:state, :expires_at)

-- name: consume_oauth_state
-- Once only: the row goes whether or not it is still fresh.
DELETE FROM oauth_states WHERE state = :state RETURNING expires_at
