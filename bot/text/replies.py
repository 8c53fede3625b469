"""What the bot says back, the same on every platform: the settings screen, /quota, and the
adapters' own refusals. Platforms add their markup (mentions, bold, dates) around these lines."""

from __future__ import annotations

from collections.abc import Sequence

from bot.domain.community_settings import describe_limits, limit_text, money_text
from bot.domain.limits import UNLIMITED, LimitDefaults, QuotaReport, format_rate, format_wait
from bot.domain.models import CommunitySettings, Limits

SOMETHING_WRONG = "Something went wrong on our side; please try again in a moment."
JOB_UNKNOWN = "That image is no longer known to the bot."
NO_LIMITS = "No limits apply to you here."
AUDIT_EMPTY = "The audit log is empty."
BOT_DEFAULT = "(bot default)"


def _default(value: int | float | None) -> str:
    """A bot default, where ``None`` means no limit."""
    return f"{'unlimited' if value is None else value} {BOT_DEFAULT}"


def effective_limits(limits: Limits, defaults: Limits) -> str:
    """The community's per-user limits as they apply: its own values, else the bot's defaults
    (marked), never "unlimited" while a default limits."""
    if limits.rate is not None:
        rate = format_rate(limits.rate, limits.period or defaults.period or 60.0)
    else:
        rate = f"{format_rate(defaults.rate, defaults.period)} {BOT_DEFAULT}"
    if limits.burst is not None:
        burst = limit_text(limits.burst)
    elif defaults.burst is not None:
        burst = _default(defaults.burst)
    else:
        # Without a burst the bucket holds as many images as the rate allows per period.
        effective_rate = limits.rate if limits.rate is not None else defaults.rate
        burst = _default(None if effective_rate in (None, UNLIMITED) else effective_rate)
    daily = limit_text(limits.daily) if limits.daily is not None else _default(defaults.daily)
    in_flight = (
        limit_text(limits.max_in_flight)
        if limits.max_in_flight is not None
        else _default(defaults.max_in_flight)
    )
    return f"rate {rate}, burst {burst}, daily {daily}, in progress {in_flight}"


def settings_lines(
    settings: CommunitySettings, defaults: LimitDefaults, default_model: str
) -> list[str]:
    """The settings as lines of plain text for an admin (blocked terms counted, not listed)."""
    channels = ", ".join(settings.allowed_channels) or "all"
    overrides = ", ".join(f"{c}: {lvl}" for c, lvl in settings.channel_safety.items()) or "none"
    lines = [
        f"Safety level: {settings.safety_level}",
        f"Channel safety levels: {overrides}",
        f"Allowed channels: {channels}",
        f"Blocked terms: {len(settings.blocked_terms)}",
        f"Banned users: {len(settings.banned_users)}",
        f"Admin roles: {', '.join(settings.admin_roles) or 'none'}; "
        f"admin users: {', '.join(settings.admin_users) or 'none'}",
        f"User limits: {effective_limits(settings.user_limits, defaults.user)}",
    ]
    for role, limits in settings.role_limits.items():
        lines.append(f"Role {role}: {describe_limits(limits, only_set=True)}")
    daily = (
        limit_text(settings.community_daily, " images")
        if settings.community_daily is not None
        else _default(defaults.community_daily)
    )
    budget = (
        money_text(settings.community_budget_usd)
        if settings.community_budget_usd is not None
        else (
            _default(None)
            if defaults.community_budget_usd is None
            else f"{money_text(defaults.community_budget_usd)} {BOT_DEFAULT}"
        )
    )
    model = settings.default_variant or f"{default_model} {BOT_DEFAULT}"
    lines += [
        f"Server daily quota: {daily}",
        f"Server daily budget: {budget}",
        f"Admins skip user limits: {'yes' if settings.admins_exempt else 'no'}",
        f"Default model: {model}",
        f"Default image format: {settings.default_format or f'jpeg {BOT_DEFAULT}'}",
        f"Prompt upsampling by default: {'on' if settings.default_enhance else 'off'}",
        f"Input images: {'on' if settings.allow_input_images else 'off'}",
        f"Cache for seeded requests: {'on' if settings.allow_cache else 'off'}",
        f"Private images: {'on' if settings.allow_private else 'off'}",
    ]
    return lines


def blocked_terms_text(terms: Sequence[str], quote: str = "") -> str:
    if not terms:
        return "The word list is empty (the bot's built-in list still applies)."
    return f"Blocked terms ({len(terms)}): " + ", ".join(f"{quote}{t}{quote}" for t in terms)


def quota_lines(report: QuotaReport) -> list[str]:
    """A user's remaining allowances as short lines of plain text."""
    reset = f"resets at 00:00 UTC (in {format_wait(report.resets_at - report.now)})"
    out: list[str] = []
    if report.exempt:
        out.append("You are an admin here: your own limits do not apply.")
    else:
        if report.rate is None:
            out.append("Rate: unlimited")
        else:
            line = f"Rate: {format_rate(report.rate, report.period)} (bursts of {report.burst})"
            line += f", {report.rate_available} available now"
            if report.rate_next_at is not None and report.rate_available == 0:
                line += f", next in {format_wait(report.rate_next_at - report.now)}"
            out.append(line)
        if report.daily is None:
            out.append(f"Today: {report.used_today} images used (no daily limit)")
        else:
            out.append(f"Today: {report.remaining_today} of {report.daily} images left; {reset}")
        if report.max_in_flight is not None:
            out.append(f"In progress: {report.in_flight} of at most {report.max_in_flight}")
    if report.community_daily is not None:
        out.append(
            f"Server today: {report.community_remaining_today} of {report.community_daily} "
            f"images left"
        )
    if report.budget_usd is not None:
        out.append(
            f"Server budget today: ${report.budget_remaining_usd:.2f} of "
            f"${report.budget_usd:.2f} left; {reset}"
        )
    return out
