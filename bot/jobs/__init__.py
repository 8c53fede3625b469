"""Use cases (imagine, follow-ups, tracking, admin, quota, usage, behind the ``ImagineService``
facade) and the worker that moves each job from queue to delivery (pool, submit, wait, deliver, one
outcome table)."""
