"""Server-drawn SVG bar charts."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from bot.web.charts import bar_chart

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
