-- Claims look at unfinished jobs only: communities, then users within one community, then each
-- user's oldest job, each by a seek in this index instead of sorting every pending job.
CREATE INDEX jobs_claim ON jobs (community_id, user_id, created_at) WHERE outcome_sent = 0;
