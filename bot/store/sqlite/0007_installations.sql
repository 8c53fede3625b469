-- Platform installations (Slack OAuth installs in many workspaces), one row per workspace or
-- organisation. ``secret`` is the installation as the adapter sealed it (tokens encrypted); the
-- store never reads inside it. An org-wide install has team_id ''; a workspace install without an
-- enterprise has enterprise_id ''.
CREATE TABLE installations (
    platform TEXT NOT NULL,
    enterprise_id TEXT NOT NULL,
    team_id TEXT NOT NULL,
    secret TEXT NOT NULL,
    installed_at REAL NOT NULL,
    PRIMARY KEY (platform, enterprise_id, team_id)
);

-- The state parameter of OAuth flows in progress: issued on /slack/install, consumed once on the
-- redirect, refused after expires_at.
CREATE TABLE oauth_states (
    state TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
);
