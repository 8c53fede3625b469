"""Image checks and re-encoding before anything is stored or posted."""
