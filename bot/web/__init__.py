"""The moderators' dashboard: sign-in with Discord or Slack, community settings, the audit log,
usage charts and the bot-owner page, served by the bot's own HTTP server under ``/dashboard``."""
