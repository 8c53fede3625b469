"""Rate limits, daily quotas, in-flight caps and spend budgets: the arithmetic of one decision.

The store makes each decision atomically (``Store.admit_job``): inside one transaction it reads a
``Usage``, calls :func:`decide`, and stores the job and the new rate state only when admitted. The
arithmetic lives here, once, so every backend decides the same way.

What is limited:
- per user: a GCRA rate (``rate`` images per ``period`` seconds, up to ``burst`` at once), a daily
  quota of images (UTC days), and a cap on unfinished jobs (``max_in_flight``);
- per community: a daily quota of images and a daily spend budget in US dollars, each job priced
  from the catalog (images x price per image of the variant on the first configured provider that
  offers it).
Limits come from the environment (``IMAGINE_USER_RATE`` ...), overridden by the community's own
settings, overridden by role overrides (a user with several roles gets the most generous value of
each). Admins skip the per-user limits when the community says so (the default); the community
quota and budget apply to everyone.

Refunds (the rule users see): usage is derived from the job rows themselves, by status, so a refund
is nothing but a status change and cannot drift from it:
- a job that ends ``moderated``, ``failed`` or ``expired`` gives its daily images and its cost back;
- a job ``cancelled`` before it was sent to a provider gives them back; one cancelled after that
  still counts (the provider may have charged);
- a retried job is one row however many times it is tried, so it is charged once;
- the rate (GCRA) is not refunded: it paces requests, it does not count money.

Time: the clock is injected. A day is a UTC day. A jump of the wall clock either way is bounded:
the rate state is clamped to at most one full bucket ahead of "now" (a jump back never locks a user
out for longer than the bucket takes to refill), and jobs stamped in the "future" after a jump back
still count for today (a jump back never hands out a fresh quota).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from bot.domain.models import CommunitySettings, Limits

DAY = 86_400.0
# Stored in settings (and accepted from the environment as "off") for "no limit at all".
UNLIMITED = -1

PERIODS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "d": DAY,
    "day": DAY,
}
_RATE_RE = re.compile(r"^\s*(\d+)\s*(?:/|per)\s*(\d*)\s*([a-z]+?)s?\s*$", re.I)
_OFF = {"off", "none", "unlimited", "no"}

# Statuses whose jobs count against quotas and budgets (see "Refunds" above).
CHARGED_STATUSES = ("queued", "submitted", "fetched", "delivered")
IN_FLIGHT_STATUSES = ("queued", "submitted", "fetched")


def parse_rate(text: str) -> tuple[int, float] | None:
    """``"5/minute"``, ``"10 per hour"``, ``"3/30s"`` -> (count, period seconds); "off" -> None.

    Raises ValueError with what is allowed.
    """
    if text.strip().lower() in _OFF:
        return None
    match = _RATE_RE.match(text)
    unit = match.group(3).lower() if match else ""
    if not match or unit not in PERIODS:
        raise ValueError(f"{text!r} is not a rate like 5/minute, 20/hour or 3/30s (or off)")
    count = int(match.group(1))
    period = PERIODS[unit] * (int(match.group(2)) if match.group(2) else 1)
    if count < 1 or period <= 0:
        raise ValueError(f"{text!r}: the count and the period must be at least 1")
    return count, period


def format_rate(rate: int | None, period: float | None) -> str:
    if rate is None or rate == UNLIMITED or not period:
        return "unlimited"
    for name, seconds in (("day", DAY), ("hour", 3600.0), ("minute", 60.0), ("second", 1.0)):
        if period == seconds:
            return f"{rate}/{name}"
        if period % seconds == 0 and period > seconds:
            return f"{rate}/{int(period // seconds)}{name[0]}"
    return f"{rate}/{period:g}s"


@dataclass(frozen=True)
class LimitDefaults:
    """The bot-wide defaults (from the environment). ``None`` means unlimited."""

    user: Limits = field(
        default_factory=lambda: Limits(rate=5, period=60.0, daily=100, max_in_flight=5)
    )
    community_daily: int | None = None
    community_budget_usd: float | None = None


@dataclass(frozen=True)
class LimitPlan:
    """The limits that apply to one request, resolved; ``None`` means unlimited."""

    community_id: str
    user_id: str
    rate: int | None
    period: float | None
    burst: int | None
    daily: int | None
    max_in_flight: int | None
    community_daily: int | None
    community_budget_usd: float | None
    exempt: bool = False

    @property
    def rate_key(self) -> str:
        return f"u:{self.community_id}:{self.user_id}"

    @property
    def emission_interval(self) -> float | None:
        if not self.rate or not self.period:
            return None
        return self.period / self.rate

    @property
    def bucket(self) -> int:
        """How many images may be taken at once."""
        return max(1, self.burst or self.rate or 1)


@dataclass(frozen=True)
class Usage:
    """What a user and their community have used today, read inside the deciding transaction."""

    rate_tat: float | None = None
    user_images_today: int = 0
    user_in_flight: int = 0
    community_images_today: int = 0
    community_spent_usd: float = 0.0


@dataclass(frozen=True)
class Decision:
    admitted: bool
    # Which limit refused: user_rate, user_daily, user_in_flight, community_daily, community_budget.
    limit: str | None = None
    # When trying again can succeed (None: when something else changes, e.g. a job finishes).
    retry_at: float | None = None
    # The rate state to store (when admitted, or when a refusal clamped a state left far ahead
    # by a clock jump); None: leave it as it is.
    new_tat: float | None = None


def day_start(now: float) -> float:
    return math.floor(now / DAY) * DAY


def _limit(value: int | float | None) -> int | float | None:
    if value is None or value == UNLIMITED:
        return None
    return value


def resolve_plan(
    settings: CommunitySettings,
    defaults: LimitDefaults,
    *,
    user_id: str,
    roles: tuple[str, ...] = (),
    is_admin: bool = False,
) -> LimitPlan:
    """The effective limits of one user: role overrides over community settings over defaults."""
    user = settings.user_limits.over(defaults.user)
    overrides = [settings.role_limits[r] for r in roles if r in settings.role_limits]
    if overrides:
        user = _most_generous(overrides).over(user)
    exempt = is_admin and settings.admins_exempt
    community_daily = (
        settings.community_daily
        if settings.community_daily is not None
        else defaults.community_daily
    )
    budget = (
        settings.community_budget_usd
        if settings.community_budget_usd is not None
        else defaults.community_budget_usd
    )
    rate = _limit(user.rate)
    return LimitPlan(
        community_id=settings.community_id,
        user_id=user_id,
        rate=None if exempt or rate is None else int(rate),
        period=None if exempt or rate is None else user.period or 60.0,
        burst=None if exempt else _int_or_none(_limit(user.burst)),
        daily=None if exempt else _int_or_none(_limit(user.daily)),
        max_in_flight=None if exempt else _int_or_none(_limit(user.max_in_flight)),
        community_daily=_int_or_none(_limit(community_daily)),
        community_budget_usd=_float_or_none(_limit(budget)),
        exempt=exempt,
    )


def _int_or_none(value: int | float | None) -> int | None:
    return None if value is None else int(value)


def _float_or_none(value: int | float | None) -> float | None:
    return None if value is None else float(value)


def _most_generous(overrides: list[Limits]) -> Limits:
    def best(values: list[int | None]) -> int | None:
        present = [v for v in values if v is not None]
        if not present:
            return None
        return UNLIMITED if UNLIMITED in present else max(present)

    rated = [o for o in overrides if o.rate is not None]
    rate: int | None = None
    period: float | None = None
    if any(o.rate == UNLIMITED for o in rated):
        rate = UNLIMITED
    elif rated:
        top = max(rated, key=lambda o: o.rate / (o.period or 60.0) if o.rate else 0.0)
        rate, period = top.rate, top.period
    return Limits(
        rate=rate,
        period=period,
        burst=best([o.burst for o in overrides]),
        daily=best([o.daily for o in overrides]),
        max_in_flight=best([o.max_in_flight for o in overrides]),
    )


def decide(plan: LimitPlan, usage: Usage, *, now: float, images: int, cost_usd: float) -> Decision:
    """Admit or refuse one request of ``images`` images costing ``cost_usd``.

    Order: in-flight cap, the user's rate, the user's daily quota, the community's daily quota,
    the community's budget; the first that refuses names itself.
    """
    if plan.max_in_flight is not None and usage.user_in_flight >= plan.max_in_flight:
        return Decision(False, "user_in_flight")
    new_tat: float | None = None
    interval = plan.emission_interval
    if interval is not None:
        tau = plan.bucket * interval
        stored = usage.rate_tat if usage.rate_tat is not None else now
        # A wall clock that jumped back leaves a state far ahead: hold it to one full bucket,
        # and store that, so the wait is one interval and not the size of the jump.
        tat = min(stored, now + tau)
        candidate = max(tat, now) + min(images, plan.bucket) * interval
        if candidate - now > tau + 1e-9:
            clamped = tat if tat < stored else None
            return Decision(False, "user_rate", retry_at=candidate - tau, new_tat=clamped)
        new_tat = candidate
    tomorrow = day_start(now) + DAY
    if plan.daily is not None and usage.user_images_today + images > plan.daily:
        return Decision(False, "user_daily", retry_at=tomorrow)
    if (
        plan.community_daily is not None
        and usage.community_images_today + images > plan.community_daily
    ):
        return Decision(False, "community_daily", retry_at=tomorrow)
    if (
        plan.community_budget_usd is not None
        and usage.community_spent_usd + cost_usd > plan.community_budget_usd + 1e-9
    ):
        return Decision(False, "community_budget", retry_at=tomorrow)
    return Decision(True, new_tat=new_tat)


def format_wait(seconds: float) -> str:
    seconds = max(1, math.ceil(seconds))
    if seconds < 90:
        return f"{seconds} s"
    minutes = math.ceil(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def refusal_message(decision: Decision, plan: LimitPlan, now: float) -> str:
    """What the user reads: which limit, and when to try again."""
    wait = format_wait(decision.retry_at - now) if decision.retry_at is not None else ""
    if decision.limit == "user_rate":
        return f"You can imagine again in {wait}."
    if decision.limit == "user_daily":
        return (
            f"You have used your {plan.daily} images for today; "
            f"your quota resets at 00:00 UTC (in {wait})."
        )
    if decision.limit == "user_in_flight":
        count = plan.max_in_flight or 0
        jobs = "image" if count == 1 else "images"
        return f"You already have {count} {jobs} in progress; try again when one is done."
    if decision.limit == "community_daily":
        return f"This server's daily image quota is used up; it resets at 00:00 UTC (in {wait})."
    if decision.limit == "community_budget":
        return f"This server's daily budget is spent; it resets at 00:00 UTC (in {wait})."
    return "A limit was reached; please try again later."


@dataclass(frozen=True)
class QuotaReport:
    """A user's remaining allowances, for ``/quota`` (``bot.text.replies.quota_lines`` says them).
    ``None`` in a limit means unlimited."""

    community_id: str
    user_id: str
    exempt: bool
    rate: int | None
    period: float | None
    burst: int
    # Images that could be started right now under the rate, and when the next one frees up.
    rate_available: int | None
    rate_next_at: float | None
    daily: int | None
    used_today: int
    in_flight: int
    max_in_flight: int | None
    community_daily: int | None
    community_used_today: int
    budget_usd: float | None
    spent_usd: float
    resets_at: float
    now: float

    @property
    def remaining_today(self) -> int | None:
        return None if self.daily is None else max(0, self.daily - self.used_today)

    @property
    def community_remaining_today(self) -> int | None:
        if self.community_daily is None:
            return None
        return max(0, self.community_daily - self.community_used_today)

    @property
    def budget_remaining_usd(self) -> float | None:
        if self.budget_usd is None:
            return None
        return max(0.0, self.budget_usd - self.spent_usd)


def quota_report(plan: LimitPlan, usage: Usage, now: float) -> QuotaReport:
    available: int | None = None
    next_at: float | None = None
    interval = plan.emission_interval
    if interval is not None:
        tau = plan.bucket * interval
        tat = max(now, min(usage.rate_tat if usage.rate_tat is not None else now, now + tau))
        available = max(0, min(plan.bucket, math.floor((tau - (tat - now)) / interval + 1e-9)))
        if tat > now:
            # The next image frees up when the backlog has drained by one interval.
            next_at = tat - tau + interval if available == 0 else None
    return QuotaReport(
        community_id=plan.community_id,
        user_id=plan.user_id,
        exempt=plan.exempt,
        rate=plan.rate,
        period=plan.period,
        burst=plan.bucket,
        rate_available=available,
        rate_next_at=next_at,
        daily=plan.daily,
        used_today=usage.user_images_today,
        in_flight=usage.user_in_flight,
        max_in_flight=plan.max_in_flight,
        community_daily=plan.community_daily,
        community_used_today=usage.community_images_today,
        budget_usd=plan.community_budget_usd,
        spent_usd=usage.community_spent_usd,
        resets_at=day_start(now) + DAY,
        now=now,
    )
