"""The server-made SVG charts: well-formed XML, one mark per figure, a link per drill-down, escaped labels."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from rcm.web import charts

NS = {"svg": charts.SVG_NS}


def parse(markup: str) -> ET.Element:
    return ET.fromstring(markup)  # noqa: S314 - our own output, parsed to check it


def marks(root: ET.Element, shape: str) -> list[ET.Element]:
    return root.findall(f".//svg:g[@class='marks']//svg:{shape}", NS)


def links(root: ET.Element) -> list[ET.Element]:
    return root.findall(".//svg:a", NS)


def test_grouped_bar_chart_has_a_bar_and_a_link_per_figure() -> None:
    markup = charts.bar_chart(
        chart_id="cash",
        title="Cash flow by month",
        description="Charges, payments and adjustments per month",
        categories=["2026-10", "2026-11", "2026-12"],
        series=[
            charts.Series("Charges", [120_000, 95_000, 30_000], ["/c?m=10", "/c?m=11", "/c?m=12"]),
            charts.Series("Payments", [80_000, None, 10_000], ["/p?m=10", "/p?m=11", "/p?m=12"]),
            charts.Series("Adjustments", [-5_000, -2_500, 0], ["/a?m=10", "/a?m=11", "/a?m=12"]),
        ],
        x_label="Month",
        y_label="Dollars",
    )
    root = parse(markup)
    assert root.get("role") == "group"  # interactive: its links stay visible to assistive technology
    assert root.find("svg:title", NS) is not None
    assert root.find("svg:title", NS).text == "Cash flow by month"  # type: ignore[union-attr]
    assert root.get("aria-labelledby") == "cash-title cash-desc"
    bars = marks(root, "rect")
    assert len(bars) == 8  # nine figures, one missing
    hrefs = [a.get("href") for a in links(root)]
    assert hrefs == ["/c?m=10", "/p?m=10", "/a?m=10", "/c?m=11", "/a?m=11", "/c?m=12", "/p?m=12", "/a?m=12"]
    labels = [a.get("aria-label") for a in links(root)]
    assert labels[0] == "Charges, 2026-10: $1,200.00"
    assert labels[2] == "Adjustments, 2026-10: -$50.00"
    texts = {t.text for t in root.iter(f"{{{charts.SVG_NS}}}text")}
    assert {"Month", "Dollars", "Charges", "Payments", "Adjustments", "2026-11"} <= texts  # axes and legend
    assert "$1,200" in texts  # a value label on the bar
    # A negative adjustment is drawn below the zero line.
    zero = next(
        float(line.get("y1", "0"))
        for line in root.findall(".//svg:g[@class='axis y']/svg:line", NS)
        if line.get("stroke") == charts.INK
    )
    negative = links(root)[2].find("svg:rect", NS)
    assert negative is not None
    assert float(negative.get("y", "0")) == pytest.approx(zero)


def test_stacked_bars_pile_up_and_show_the_total() -> None:
    markup = charts.bar_chart(
        chart_id="aging",
        title="AR aging",
        description="Outstanding AR by age bucket and payer",
        categories=["0-30", "31-60"],
        series=[charts.Series("Aetna", [10_000, 20_000]), charts.Series("Medicare", [30_000, 5_000])],
        x_label="Days",
        y_label="Outstanding",
        stacked=True,
    )
    root = parse(markup)
    assert root.get("role") == "img"  # no links: a picture with a name
    assert links(root) == []
    bars = marks(root, "rect")
    assert len(bars) == 4
    # Within a category the second segment sits on top of the first.
    first, second = bars[0], bars[1]
    assert float(second.get("y", "0")) + float(second.get("height", "0")) == pytest.approx(
        float(first.get("y", "0")), abs=0.05
    )
    totals = [t.text for t in root.findall(".//svg:text[@class='value total']", NS)]
    assert totals == ["$400", "$250"]


def test_labels_are_escaped() -> None:
    hostile = 'Payer <script>alert("x")</script> & Sons'
    markup = charts.bar_chart(
        chart_id="x",
        title=f"By payer: {hostile}",
        description=hostile,
        categories=[hostile],
        series=[charts.Series(hostile, [1_00], ['/claims?payer=a&b="c"'])],
        x_label=hostile,
        y_label="Dollars",
    )
    assert "<script>" not in markup
    root = parse(markup)
    assert root.find("svg:desc", NS).text == hostile  # type: ignore[union-attr]
    link = links(root)[0]
    assert link.get("href") == '/claims?payer=a&b="c"'
    assert link.get("aria-label", "").startswith(hostile)
    assert not root.findall(".//svg:script", NS)


def test_line_chart_breaks_at_missing_values_and_links_points() -> None:
    weeks = ["W45", "W46", "W47", "W48"]
    markup = charts.line_chart(
        chart_id="fc",
        title="Forecast and actual collections",
        description="Expected against collected per week",
        categories=weeks,
        series=[
            charts.Series("Forecast", [50_000, 60_000, 55_000, 70_000], dashed=True),
            charts.Series("Actual", [48_000, None, 61_000, 65_000], [f"/claims?w={w}" for w in weeks]),
        ],
        x_label="Week",
        y_label="Dollars",
    )
    root = parse(markup)
    assert len(marks(root, "circle")) == 7
    assert [a.get("href") for a in links(root)] == ["/claims?w=W45", "/claims?w=W47", "/claims?w=W48"]
    lines = marks(root, "polyline")
    # Forecast: one run of four points; actual: broken into a lone point (no line) and a run of two.
    assert [len(line.get("points", "").split()) for line in lines] == [4, 2]
    assert lines[0].get("stroke-dasharray") == "6 4"


def test_series_must_match_the_categories() -> None:
    with pytest.raises(ValueError, match="has 1 values for 2 categories"):
        charts.line_chart(
            chart_id="bad",
            title="t",
            description="d",
            categories=["a", "b"],
            series=[charts.Series("s", [1])],
            x_label="x",
            y_label="y",
        )


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (0, 1234, [0, 500, 1000, 1500]),
        (-500, 1000, [-500, 0, 500, 1000]),
        (0, 0, [0, 0.25, 0.5, 0.75, 1]),
    ],
)
def test_nice_ticks_cover_the_range(low: float, high: float, expected: list[float]) -> None:
    assert charts.nice_ticks(low, high) == expected


def test_a_money_axis_of_small_figures_steps_by_whole_dollars() -> None:
    assert charts.nice_ticks(0, 0, min_step=100) == [0, 100]
    assert charts.nice_ticks(0, 150, min_step=100) == [0, 100, 200]
    markup = charts.line_chart(
        chart_id="z",
        title="t",
        description="d",
        categories=["a", "b"],
        series=[charts.Series("s", [0, 0])],
        x_label="x",
        y_label="y",
    )
    ticks = [t.text for t in parse(markup).findall(".//svg:g[@class='axis y']/svg:text", NS)]
    assert ticks[:-1] == ["$0", "$1"]  # then the axis title


def test_zero_bars_carry_no_value_label() -> None:
    markup = charts.bar_chart(
        chart_id="z",
        title="t",
        description="d",
        categories=["a", "b"],
        series=[charts.Series("s", [0, 50_000])],
        x_label="x",
        y_label="y",
    )
    values = [t.text for t in parse(markup).findall(".//svg:text[@class='value']", NS)]
    assert values == ["$500"]


def test_formatters() -> None:
    assert charts.money(123_456) == "$1,235"
    assert charts.money_exact(-123_456) == "-$1,234.56"
    assert charts.percent(0.9531) == "95.3%"
    assert charts.number(12.0) == "12"
    assert charts.number(12.25) == "12.2"
