"""Policy defaults from the environment, with errors naming the variable."""

from __future__ import annotations

import pytest

from bot.domain.errors import ConfigError
from bot.domain.promptfilter import PromptFilter
from bot.runtime.config import load_settings


def test_defaults_follow_the_documented_values() -> None:
    defaults = load_settings({}, env_file=None).policy_defaults()
    user = defaults.limits.user
    assert (user.rate, user.period, user.burst, user.daily, user.max_in_flight) == (
        5,
        60.0,
        None,
        100,
        5,
    )
    assert defaults.limits.community_budget_usd is None and defaults.safety_level == "standard"


def test_variables_are_read() -> None:
    settings = load_settings(
        {
            "IMAGINE_USER_RATE": "20/hour",
            "IMAGINE_USER_BURST": "4",
            "IMAGINE_USER_DAILY": "off",
            "IMAGINE_COMMUNITY_BUDGET_USD": "2.5",
            "IMAGINE_BLOCKED_TERMS": "dragon, red  panda,",
            "IMAGINE_SAFETY_LEVEL": "1",
        },
        env_file=None,
    )
    defaults = settings.policy_defaults()
    assert (defaults.limits.user.rate, defaults.limits.user.period) == (20, 3600.0)
    assert defaults.limits.user.burst == 4 and defaults.limits.user.daily is None
    assert defaults.limits.community_budget_usd == 2.5
    assert defaults.blocked_terms == ("dragon", "red panda")
    assert defaults.safety_level == "1"
    assert PromptFilter(defaults.blocked_terms).blocks("a RED PANDA")


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("IMAGINE_USER_RATE", "lots"),
        ("IMAGINE_USER_BURST", "0"),
        ("IMAGINE_USER_DAILY", "-3"),
        ("IMAGINE_COMMUNITY_BUDGET_USD", "cheap"),
        ("IMAGINE_SAFETY_LEVEL", "spicy"),
    ],
)
def test_wrong_values_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_settings({variable: value}, env_file=None)
    assert error.value.variable == variable
