"""Use cases: the service the adapters call and the worker that moves each job from queue to delivery."""
