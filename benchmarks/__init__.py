"""The benchmark harness (``make bench``): the whole pipeline against fakes on 127.0.0.1, side by
side with a baseline doing what the seed did. Never part of ``make test``."""
