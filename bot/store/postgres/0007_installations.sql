-- The twin of sqlite/0007_installations.sql: platform installations (``secret`` sealed by the
-- adapter, never read by the store) and the state parameter of OAuth flows in progress.
CREATE TABLE installations (
    platform TEXT NOT NULL,
    enterprise_id TEXT NOT NULL,
    team_id TEXT NOT NULL,
    secret TEXT NOT NULL,
    installed_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (platform, enterprise_id, team_id)
);

CREATE TABLE oauth_states (
    state TEXT PRIMARY KEY,
    expires_at DOUBLE PRECISION NOT NULL
);
