"""``make smoke`` only: real generations, one per provider whose key is in the environment.

The keys are read here, at collection, because the suite's autouse fixture clears provider
variables for every test. Without ``IMAGINE_SMOKE=1`` (set by ``make smoke``) every smoke test is
skipped, so ``make test`` never spends money.
"""

from __future__ import annotations

import os

import pytest

KEYS = {
    name: {var: os.environ[var] for var in variables if os.environ.get(var)}
    for name, variables in {
        "bfl": ("BFL_API_KEY", "BFL_API_BASE"),
        "fal": ("FAL_KEY", "FAL_QUEUE_BASE"),
        "together": ("TOGETHER_API_KEY", "TOGETHER_API_BASE"),
    }.items()
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("IMAGINE_SMOKE") == "1":
        return
    skip = pytest.mark.skip(reason="real generations run only with `make smoke`")
    for item in items:
        if "smoke" in item.keywords:
            item.add_marker(skip)
