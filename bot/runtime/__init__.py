"""Start-up: configuration, the composition root and the command line; the only layer that reads the environment."""
