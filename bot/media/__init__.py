"""Image checks and re-encoding (Pillow): what an image passes before it is stored or posted."""
