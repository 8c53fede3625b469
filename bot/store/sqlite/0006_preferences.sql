-- Each user's /prefer defaults, per platform (user ids are the platform's own).
CREATE TABLE user_preferences (
    platform TEXT NOT NULL,
    user_id TEXT NOT NULL,
    prefs_json TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (platform, user_id)
);
-- /history: one user's newest jobs across every community.
CREATE INDEX jobs_history ON jobs (platform, user_id, created_at);
