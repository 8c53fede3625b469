-- Named queries of the PostgreSQL store. Parameters are written :name and bound by name
-- (bot/store/postgres/queries.py turns them into $1, $2, ... once at import).

-- name: insert_job
-- Wakes idle workers of every process (LISTEN imagine_work) once the new job is committed.
WITH inserted AS (
    INSERT INTO jobs (
        id, community_id, user_id, platform, dedupe_key, status, request_json, width, height,
        seed, variant, provider, model_id, provider_task_json, submit_started_at, attempts,
        not_before, lease_owner, lease_expires_at, images_json, cost_usd, error_code,
        error_message, outcome_sent, delivery_json, created_at, updated_at, finished_at,
        image_count
    ) VALUES (
        :id, :community_id, :user_id, :platform, :dedupe_key, :status, :request_json, :width,
        :height, :seed, :variant, :provider, :model_id, :provider_task_json, :submit_started_at,
        :attempts, :not_before, :lease_owner, :lease_expires_at, :images_json, :cost_usd,
        :error_code, :error_message, :outcome_sent, :delivery_json, :created_at, :updated_at,
        :finished_at, :image_count
    )
    ON CONFLICT (dedupe_key) DO NOTHING
    RETURNING id
)
SELECT id, pg_notify('imagine_work', current_schema())::text AS notified FROM inserted

-- name: get_job
SELECT * FROM jobs WHERE id = :id

-- name: get_job_by_dedupe
SELECT * FROM jobs WHERE dedupe_key = :dedupe_key

-- name: claim_next_job
-- One statement: pick the job whose community, then user, was served longest ago (the SQLite
-- store's fairness), lock it so concurrent claimers skip to the next one, lease it, and move its
-- community and user to the back of the dispatch order.
WITH candidate AS (
    SELECT j.id, j.community_id, j.user_id FROM jobs AS j
    LEFT JOIN dispatch AS dc ON dc.key = 'c:' || j.community_id
    LEFT JOIN dispatch AS du ON du.key = 'u:' || j.community_id || ':' || j.user_id
    WHERE NOT j.outcome_sent
      AND j.platform = ANY(:platforms::text[])
      AND j.not_before <= :now
      AND (j.lease_expires_at IS NULL OR j.lease_expires_at < :now)
    ORDER BY COALESCE(dc.last_claim, 0), COALESCE(du.last_claim, 0), j.created_at
    LIMIT 1
    FOR UPDATE OF j SKIP LOCKED
), leased AS (
    UPDATE jobs SET lease_owner = :worker_id, lease_expires_at = :expires_at, updated_at = :now
    FROM candidate WHERE jobs.id = candidate.id
    RETURNING jobs.*
), dispatched AS (
    -- Community row before user row in every claim: concurrent claims lock them in one order.
    INSERT INTO dispatch (key, last_claim)
    SELECT k.key, nextval('dispatch_order') FROM candidate,
        LATERAL (VALUES
            (1, 'c:' || candidate.community_id),
            (2, 'u:' || candidate.community_id || ':' || candidate.user_id)
        ) AS k (n, key)
    ORDER BY k.n
    ON CONFLICT (key) DO UPDATE SET last_claim = excluded.last_claim
)
SELECT * FROM leased

-- name: renew_leases
UPDATE jobs SET lease_expires_at = :expires_at
WHERE id = ANY(:ids::text[]) AND lease_owner = :worker_id AND NOT outcome_sent
RETURNING id

-- name: release_job
WITH released AS (
    UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL, not_before = :not_before
    WHERE id = :id AND lease_owner = :worker_id
    RETURNING id
)
SELECT id, pg_notify('imagine_work', current_schema())::text AS notified FROM released

-- name: save_job_step
UPDATE jobs SET
    status = :status, provider = :provider, model_id = :model_id,
    provider_task_json = :provider_task_json, submit_started_at = :submit_started_at,
    attempts = :attempts, not_before = :not_before, lease_owner = :lease_owner,
    lease_expires_at = :lease_expires_at, images_json = :images_json, cost_usd = :cost_usd,
    error_code = :error_code, error_message = :error_message, outcome_sent = :outcome_sent,
    delivery_json = jsonb_strip_nulls(jobs.delivery_json::jsonb || :delivery_json::jsonb)::text,
    updated_at = :updated_at, finished_at = :finished_at,
    width = :width, height = :height, seed = :seed
WHERE id = :id AND lease_owner = :worker_id AND status = :expected

-- name: merge_job_delivery
UPDATE jobs SET delivery_json = jsonb_strip_nulls(delivery_json::jsonb || :patch::jsonb)::text
WHERE id = :id

-- name: cancel_job
UPDATE jobs SET status = 'cancelled', outcome_sent = TRUE, updated_at = :now, finished_at = :now,
    error_code = 'cancelled', error_message = 'Cancelled by request.'
WHERE id = :id AND status IN ('queued', 'submitted', 'fetched')

-- name: queue_position
SELECT COUNT(*) FROM jobs
WHERE status = 'queued' AND NOT outcome_sent AND created_at < :created_at

-- name: job_counts
SELECT
    COUNT(*) FILTER (WHERE status = 'queued' AND lease_owner IS NULL) AS queued,
    COUNT(*) FILTER (WHERE lease_owner IS NOT NULL) AS running
FROM jobs WHERE NOT outcome_sent

-- name: get_settings
SELECT settings_json FROM community_settings WHERE community_id = :community_id

-- name: save_settings
INSERT INTO community_settings (community_id, settings_json, updated_at)
VALUES (:community_id, :settings_json, :now)
ON CONFLICT (community_id) DO UPDATE
SET settings_json = excluded.settings_json, updated_at = excluded.updated_at

-- name: lease_owners
SELECT DISTINCT lease_owner FROM jobs WHERE lease_owner IS NOT NULL AND NOT outcome_sent

-- name: release_leases_of
WITH released AS (
    UPDATE jobs SET lease_owner = NULL, lease_expires_at = NULL
    WHERE lease_owner = :worker_id AND NOT outcome_sent
    RETURNING id
)
SELECT COUNT(*) AS released,
    CASE WHEN COUNT(*) > 0 THEN pg_notify('imagine_work', current_schema())::text END AS notified
FROM released

-- name: count_pending
SELECT COUNT(*) FROM jobs WHERE NOT outcome_sent AND platform = ANY(:platforms::text[])

-- name: lock_key
-- Serializes limit decisions (per community) and settings changes across every process.
SELECT pg_advisory_xact_lock(7777, hashtext(:key))

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
    (SELECT COALESCE(SUM(image_count), 0)::bigint FROM jobs
     WHERE community_id = :community_id AND user_id = :user_id AND created_at >= :day_start
       AND (status IN ('queued', 'submitted', 'fetched', 'delivered')
            OR (status = 'cancelled' AND submit_started_at IS NOT NULL))),
    (SELECT COUNT(*)::bigint FROM jobs
     WHERE community_id = :community_id AND user_id = :user_id
       AND status IN ('queued', 'submitted', 'fetched'))

-- name: community_usage
-- Reads the index jobs_community_usage only.
SELECT
    COALESCE(SUM(image_count), 0)::bigint,
    COALESCE(SUM(cost_usd), 0)::double precision
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
SELECT CAST(floor(created_at / 86400) AS BIGINT) AS day, COALESCE(SUM(image_count), 0) AS images,
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
-- Each provider's newest failed job since :since.
SELECT DISTINCT ON (provider) provider, error_code, error_message, updated_at AS at FROM jobs
WHERE provider IS NOT NULL AND provider != 'cache' AND error_code IS NOT NULL
  AND updated_at >= :since
ORDER BY provider, updated_at DESC
