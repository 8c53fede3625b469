"""Bar charts drawn on the server as SVG (no script): the usage page's images and spend per day."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

from markupsafe import Markup, escape

from bot.jobs.usage import UsageReport

WIDTH = 640
HEIGHT = 180
PAD_LEFT = 56
PAD_BOTTOM = 24
PAD_TOP = 12


def bar_chart(
    bars: Sequence[tuple[str, float]],
    *,
    title: str,
    fmt: Callable[[float], str] = lambda v: f"{v:g}",
    line: float | None = None,
    line_label: str = "",
) -> Markup:
    """Bars labelled below every seventh day; ``line`` draws a dashed level (the budget). Each
    bar has a <title> with its exact value, which browsers show on hover."""
    top = max([value for _, value in bars] + [line or 0.0, 0.0]) or 1.0
    plot_w = WIDTH - PAD_LEFT - 8
    plot_h = HEIGHT - PAD_BOTTOM - PAD_TOP
    step = plot_w / max(len(bars), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" class="chart">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{PAD_LEFT}" y1="{PAD_TOP + plot_h}" x2="{WIDTH - 8}" '
        f'y2="{PAD_TOP + plot_h}" class="axis"/>',
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + 10}" class="tick" text-anchor="end">'
        f"{escape(fmt(top))}</text>",
        f'<text x="{PAD_LEFT - 6}" y="{PAD_TOP + plot_h}" class="tick" text-anchor="end">'
        f"{escape(fmt(0))}</text>",
    ]
    for i, (label, value) in enumerate(bars):
        h = plot_h * value / top
        x = PAD_LEFT + i * step + 1
        y = PAD_TOP + plot_h - h
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(step - 2, 1):.1f}" height="{h:.1f}" '
            f'class="bar"><title>{escape(label)}: {escape(fmt(value))}</title></rect>'
        )
        # Every seventh day and the last, unless the last would overlap the one before.
        if (i % 7 == 0 and len(bars) - 1 - i >= 4) or i == len(bars) - 1:
            parts.append(
                f'<text x="{x + step / 2:.1f}" y="{HEIGHT - 6}" class="tick" '
                f'text-anchor="middle">{escape(label)}</text>'
            )
    if line is not None:
        y = PAD_TOP + plot_h - plot_h * line / top
        parts.append(
            f'<line x1="{PAD_LEFT}" y1="{y:.1f}" x2="{WIDTH - 8}" y2="{y:.1f}" class="limit"/>'
            f'<text x="{WIDTH - 10}" y="{y - 4:.1f}" class="tick" text-anchor="end">'
            f"{escape(line_label)}</text>"
        )
    parts.append("</svg>")
    # Every text above went through escape(); the rest are numbers this function formatted.
    return Markup("".join(parts))  # noqa: S704


def usage_charts(report: UsageReport, days: int = 30) -> dict[str, Any]:
    """What the usage page shows of a report: both charts over ``days`` days from its first
    (days without a job show as zero) and the totals."""
    by_day = {d.day: d for d in report.days}
    shown = [report.first_day + i for i in range(days)]
    labels = [_day_label(day) for day in shown]
    images = [
        (label, float(by_day[d].images) if d in by_day else 0.0)
        for label, d in zip(labels, shown, strict=True)
    ]
    spend = [
        (label, by_day[d].spend_usd if d in by_day else 0.0)
        for label, d in zip(labels, shown, strict=True)
    ]
    budget = report.budget_usd
    return {
        "images_chart": bar_chart(images, title="Images per day", fmt=lambda v: f"{v:g}"),
        "spend_chart": bar_chart(
            spend,
            title="Spend per day (US dollars)",
            fmt=lambda v: f"${v:.2f}",
            line=budget,
            line_label=f"budget ${budget:.2f}" if budget is not None else "",
        ),
        "total_images": sum(d.images for d in report.days),
        "total_spend": sum(d.spend_usd for d in report.days),
    }


def _day_label(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).strftime("%b %d")
