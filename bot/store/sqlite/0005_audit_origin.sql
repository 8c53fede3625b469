-- Where a settings change was made ('' for a chat command, 'dashboard' for the web dashboard).
ALTER TABLE audit_log ADD COLUMN origin TEXT NOT NULL DEFAULT '';
