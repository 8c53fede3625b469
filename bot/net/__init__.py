"""The network edge: the SSRF guard for user-supplied URLs and the bot's own HTTP server."""
