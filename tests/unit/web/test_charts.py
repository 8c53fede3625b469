"""Server-drawn SVG bar charts."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from bot.jobs.usage import UsageReport
from bot.store.base import DayUsage, JobCounts
from bot.web.charts import bar_chart, usage_charts

SVG = "{http://www.w3.org/2000/svg}"


def test_bars_scale_to_the_largest_value_and_titles_are_escaped() -> None:
    svg = bar_chart([("<a>", 2.0), ("b", 4.0)], title="Images & more")
    root = ET.fromstring(str(svg))
    bars = root.findall(f"{SVG}rect")
    heights = [float(bar.attrib["height"]) for bar in bars]
    assert heights[1] == 2 * heights[0]
    assert bars[0].find(f"{SVG}title").text == "<a>: 2"  # type: ignore[union-attr]
    assert root.attrib["aria-label"] == "Images & more"
    assert "<a>" not in str(svg)


def test_the_budget_line_is_drawn_and_counts_in_the_scale() -> None:
    svg = bar_chart([("d", 1.0)], title="Spend", line=4.0, line_label="budget $4.00")
    root = ET.fromstring(str(svg))
    assert [el.attrib.get("class") for el in root.findall(f"{SVG}line")] == ["axis", "limit"]
    bar = root.find(f"{SVG}rect")
    assert bar is not None and float(bar.attrib["height"]) < 50  # a quarter of the plot
    assert "budget $4.00" in str(svg)


def test_no_data_draws_an_empty_chart() -> None:
    root = ET.fromstring(str(bar_chart([("d", 0.0)] * 30, title="None")))
    assert len(root.findall(f"{SVG}rect")) == 30


def test_the_usage_charts_cover_thirty_days_with_empty_days_at_zero() -> None:
    first = 20_000  # 2024-10-04
    report = UsageReport(
        first_day=first,
        days=[DayUsage(first + 2, 3, 0.12), DayUsage(first + 29, 1, 0.04)],
        refusals={},
        top_users=[],
        queue=JobCounts(0, 0),
        budget_usd=1.5,
    )
    shown = usage_charts(report)
    assert (shown["total_images"], round(shown["total_spend"], 2)) == (4, 0.16)
    images = ET.fromstring(str(shown["images_chart"]))
    titles = [bar.find(f"{SVG}title").text for bar in images.findall(f"{SVG}rect")]  # type: ignore[union-attr]
    assert len(titles) == 30
    assert titles[0] == "Oct 04: 0" and titles[2] == "Oct 06: 3" and titles[29] == "Nov 02: 1"
    assert "budget $1.50" in str(shown["spend_chart"])
