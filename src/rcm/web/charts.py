"""Charts drawn on the server as SVG: pure functions from figures to markup, no JavaScript.

Each chart is an ``<svg>`` with a ``<title>`` and a ``<desc>`` that name what it shows, labelled axes, a
value label on every mark that has room for one, a legend, and every bar or point wrapped in a link
(``<a href>``) to the claims behind it, so a keyboard user tabs from mark to mark and Enter drills down. A
chart whose marks are links is a ``role="group"`` (``role="img"`` would hide the links from assistive
technology); a chart without links is a ``role="img"``. Each link carries an ``aria-label`` that reads the
series, the category and the value.

Colours are the Okabe-Ito colour-blind-safe set, darkened where needed so each holds at least 3:1 against
white (WCAG 1.4.11, graphical objects); adjacent marks are also separated by a white outline, and the legend
and the labels name each series, so colour is never the only carrier. Everything a caller passes in is
escaped: a payer's name may contain ``<`` or ``&``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

SVG_NS = "http://www.w3.org/2000/svg"

# Okabe-Ito, darkened: contrast ratio against white >= 3:1 for every colour (blue 5.2, vermilion 4.6,
# green 4.6, purple 7.8, grey 10.4, magenta 4.9, sky 4.0, brown 7.3).
PALETTE = ("#0072B2", "#B84A00", "#007A5E", "#5B3A8E", "#4D4D4D", "#A8336B", "#1F6F99", "#7A4A00")
INK = "#1A1A1A"  # text and axes: 17:1 on white
GRID = "#8C8C8C"  # grid lines: decorative, yet 3.4:1

Formatter = Callable[[float], str]


def money(cents: float) -> str:
    """Whole dollars with a thousands separator, for axis ticks and value labels: ``$12,345``."""
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) / 100:,.0f}"


def money_exact(cents: float) -> str:
    """Dollars and cents, for what a screen reader reads and the tooltip shows: ``$12,345.67``."""
    sign = "-" if cents < 0 else ""
    return f"{sign}${abs(cents) / 100:,.2f}"


def number(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def percent(value: float) -> str:
    """A ratio (0.953) as a percentage (``95.3%``)."""
    return f"{value * 100:.1f}%"


@dataclass(frozen=True)
class Series:
    """One series of a chart: a value per category (None: no figure there) and, for each, where its link
    goes (None: no link)."""

    name: str
    values: Sequence[float | None]
    hrefs: Sequence[str | None] = field(default_factory=tuple)
    dashed: bool = False  # line charts: a forecast or a target, drawn dashed

    def href(self, index: int) -> str | None:
        return self.hrefs[index] if index < len(self.hrefs) else None


@dataclass(frozen=True)
class Frame:
    """The chart's box: its size and the margins the axes and the legend take."""

    width: int = 640
    height: int = 300
    left: int = 72
    right: int = 16
    top: int = 40
    bottom: int = 64

    @property
    def plot_width(self) -> float:
        return self.width - self.left - self.right

    @property
    def plot_height(self) -> float:
        return self.height - self.top - self.bottom


def nice_ticks(low: float, high: float, count: int = 5, *, min_step: float = 0) -> list[float]:
    """Round tick values covering ``low``..``high`` (both included), about ``count`` of them, with 0 among
    them whenever the range spans it; no closer than ``min_step`` (a money axis: whole dollars, 100 cents,
    so an axis of small figures never reads "$0, $0, $1")."""
    if high < low:
        low, high = high, low
    if high == low:
        high = low + 1
    raw = max((high - low) / max(count - 1, 1), min_step)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    stop = math.ceil(high / step) * step
    ticks: list[float] = []
    value = start
    while value <= stop + step / 2:
        ticks.append(round(value, 10))
        value += step
    return ticks


class _Svg:
    """Accumulates markup; every text and attribute value goes through ``escape``."""

    def __init__(self) -> None:
        self.parts: list[str] = []

    def add(self, tag: str, text: str | None = None, **attrs: str | float | None) -> None:
        if text is None:
            self.parts.append(f"<{tag}{_attrs(attrs)}/>")
        else:
            self.parts.append(f"<{tag}{_attrs(attrs)}>{escape(text)}</{tag}>")

    def open(self, tag: str, **attrs: str | float | None) -> None:
        self.parts.append(f"<{tag}{_attrs(attrs)}>")

    def close(self, tag: str) -> None:
        self.parts.append(f"</{tag}>")

    def text(self) -> str:
        return "".join(self.parts)


def _attrs(attrs: dict[str, str | float | None]) -> str:
    out = []
    for key, value in attrs.items():
        if value is None:
            continue
        name = key.rstrip("_").replace("_", "-")
        shown = f"{value:.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
        out.append(f' {name}="{escape(shown, quote=True)}"')
    return "".join(out)


def _open_chart(
    svg: _Svg, *, chart_id: str, title: str, description: str, frame: Frame, linked: bool
) -> None:
    svg.open(
        "svg",
        xmlns=SVG_NS,
        class_="rcm-chart",
        id=chart_id,
        viewBox=f"0 0 {frame.width} {frame.height}",
        width=frame.width,
        height=frame.height,
        role="group" if linked else "img",
        aria_labelledby=f"{chart_id}-title {chart_id}-desc",
        font_family="system-ui, sans-serif",
        font_size=12,
    )
    svg.add("title", title, id=f"{chart_id}-title")
    svg.add("desc", description, id=f"{chart_id}-desc")
    svg.add("rect", x=0, y=0, width=frame.width, height=frame.height, fill="#FFFFFF")


def _legend(svg: _Svg, series: Sequence[Series], frame: Frame, *, lines: bool) -> None:
    if len(series) < 2:
        return
    svg.open("g", class_="legend", aria_hidden="true")
    x = float(frame.left)
    for index, one in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        if lines:
            svg.add(
                "line",
                x1=x,
                y1=14.0,
                x2=x + 18,
                y2=14.0,
                stroke=colour,
                stroke_width=3,
                stroke_dasharray="6 4" if one.dashed else None,
            )
        else:
            svg.add("rect", x=x, y=7.0, width=14, height=14, fill=colour)
        svg.add("text", one.name, x=x + 22, y=18.0, fill=INK)
        x += 30 + 7.5 * len(one.name)
    svg.close("g")


def _y_axis(
    svg: _Svg,
    ticks: Sequence[float],
    scale: Callable[[float], float],
    frame: Frame,
    *,
    fmt: Formatter,
    label: str,
) -> None:
    svg.open("g", class_="axis y", aria_hidden="true")
    for tick in ticks:
        y = scale(tick)
        svg.add(
            "line",
            x1=float(frame.left),
            y1=y,
            x2=float(frame.width - frame.right),
            y2=y,
            stroke=INK if tick == 0 else GRID,
            stroke_width=1,
            stroke_dasharray=None if tick == 0 else "2 3",
        )
        svg.add("text", fmt(tick), x=float(frame.left - 6), y=y + 4, text_anchor="end", fill=INK)
    middle = frame.top + frame.plot_height / 2
    svg.add(
        "text",
        label,
        x=14.0,
        y=middle,
        transform=f"rotate(-90 14 {middle:.1f})",
        text_anchor="middle",
        fill=INK,
        font_weight="bold",
    )
    svg.close("g")


def _x_label(svg: _Svg, frame: Frame, label: str) -> None:
    svg.add(
        "text",
        label,
        x=frame.left + frame.plot_width / 2,
        y=float(frame.height - 8),
        text_anchor="middle",
        fill=INK,
        font_weight="bold",
        aria_hidden="true",
    )


def _category_labels(svg: _Svg, categories: Sequence[str], centres: Sequence[float], frame: Frame) -> None:
    # Long category lists (days of a month) label every n-th category so the labels never overlap.
    room = frame.plot_width / max(len(categories), 1)
    every = max(1, math.ceil(7 * max((len(c) for c in categories), default=1) / max(room, 1)))
    svg.open("g", class_="axis x", aria_hidden="true")
    for index, (category, centre) in enumerate(zip(categories, centres, strict=True)):
        if index % every:
            continue
        svg.add(
            "text",
            category,
            x=centre,
            y=float(frame.height - frame.bottom + 16),
            text_anchor="middle",
            fill=INK,
        )
    svg.close("g")


def _linked(svg: _Svg, href: str | None, label: str, draw: Callable[[], None]) -> None:
    """Draw a mark inside a link to ``href`` (its accessible name ``label``), or bare when there is none."""
    if href is None:
        svg.open("g", class_="mark", role="img", aria_label=label)
        svg.add("title", label)
        draw()
        svg.close("g")
        return
    svg.open("a", href=href, class_="mark", aria_label=label)
    svg.add("title", label)
    draw()
    svg.close("a")


@dataclass(frozen=True)
class _Bar:
    """One bar as drawn: its box, colour and value."""

    x: float
    y: float
    width: float
    height: float
    colour: str
    value: float


def _draw_bar(svg: _Svg, bar: _Bar, *, stacked: bool, fmt: Formatter) -> None:
    svg.add(
        "rect",
        x=bar.x,
        y=bar.y,
        width=bar.width,
        height=bar.height,
        fill=bar.colour,
        stroke="#FFFFFF",
        stroke_width=1,
        class_="bar",
    )
    text = fmt(bar.value)
    if not bar.value or bar.width < _text_width(text):
        return  # nothing to read, or no room: the link's name and the tooltip still carry the figure
    # A value label where it fits: inside a stacked segment tall enough for it, above a grouped bar (below
    # it when negative).
    centre = bar.x + bar.width / 2
    if stacked:
        if bar.height >= 14:
            svg.add("text", text, x=centre, y=bar.y + bar.height / 2 + 4, **_VALUE, fill="#FFFFFF")
        return
    y = (bar.y - 4) if bar.value >= 0 else (bar.y + bar.height + 12)
    svg.add("text", text, x=centre, y=y, **_VALUE, fill=INK)


_VALUE: dict[str, str] = {"text_anchor": "middle", "class_": "value"}


def _text_width(text: str) -> float:
    return 5.9 * len(text)  # 12px system-ui: about 5.9px per digit or sign


def _check(categories: Sequence[str], series: Sequence[Series]) -> None:
    for one in series:
        if len(one.values) != len(categories):
            raise ValueError(
                f"series {one.name!r} has {len(one.values)} values for {len(categories)} categories"
            )


def _value_scale(frame: Frame, ticks: Sequence[float]) -> Callable[[float], float]:
    bottom_value, top_value = ticks[0], ticks[-1]

    def scale(value: float) -> float:
        return frame.top + frame.plot_height * (top_value - value) / (top_value - bottom_value)

    return scale


def _min_step(fmt: Formatter) -> float:
    return 100 if fmt is money else 0  # money is in cents; its axis counts whole dollars


def _bar_ticks(
    categories: Sequence[str], series: Sequence[Series], *, stacked: bool, min_step: float
) -> list[float]:
    if stacked:
        highs = [sum(max(one.values[i] or 0, 0) for one in series) for i in range(len(categories))]
        lows = [sum(min(one.values[i] or 0, 0) for one in series) for i in range(len(categories))]
    else:
        highs = lows = [v for one in series for v in one.values if v is not None]
    return nice_ticks(min([0.0, *lows]), max([0.0, *highs]), min_step=min_step)


def bar_chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    categories: Sequence[str],
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    stacked: bool = False,
    fmt: Formatter = money,
    exact: Formatter = money_exact,
    frame: Frame | None = None,
) -> str:
    """Bars per category, one per series side by side (grouped) or piled up (stacked; negative values pile
    downwards from zero). Returns the ``<svg>`` markup."""
    frame = frame or Frame()
    _check(categories, series)
    linked = any(href for one in series for href in one.hrefs)
    svg = _Svg()
    _open_chart(svg, chart_id=chart_id, title=title, description=description, frame=frame, linked=linked)
    _legend(svg, series, frame, lines=False)
    ticks = _bar_ticks(categories, series, stacked=stacked, min_step=_min_step(fmt))
    scale = _value_scale(frame, ticks)
    _y_axis(svg, ticks, scale, frame, fmt=fmt, label=y_label)
    band = frame.plot_width / max(len(categories), 1)
    centres = [frame.left + band * (i + 0.5) for i in range(len(categories))]
    group_width = band * 0.8
    bar_width = group_width if stacked else group_width / max(len(series), 1)

    svg.open("g", class_="marks")
    for index, category in enumerate(categories):
        piled = {True: 0.0, False: 0.0}  # how high the positive and how low the negative pile has reached
        for s_index, one in enumerate(series):
            value = one.values[index]
            if value is None:
                continue
            left = centres[index] - group_width / 2
            if stacked:
                base = piled[value >= 0]
                piled[value >= 0] = base + value
            else:
                base, left = 0.0, left + s_index * bar_width
            y_top, y_bottom = sorted((scale(base), scale(base + value)))
            bar = _Bar(
                x=left,
                y=y_top,
                width=bar_width,
                height=max(y_bottom - y_top, 1.0 if value else 0.0),
                colour=PALETTE[s_index % len(PALETTE)],
                value=value,
            )
            _linked(
                svg,
                one.href(index),
                f"{one.name}, {category}: {exact(value)}",
                lambda bar=bar: _draw_bar(svg, bar, stacked=stacked, fmt=fmt),  # type: ignore[misc]
            )
        total = fmt(piled[True] + piled[False])
        if stacked and len(series) > 1 and group_width >= _text_width(total):
            svg.add(
                "text",
                total,
                x=centres[index],
                y=scale(piled[True]) - 4,
                text_anchor="middle",
                fill=INK,
                class_="value total",
                aria_hidden="true",
            )
    svg.close("g")
    _category_labels(svg, categories, centres, frame)
    _x_label(svg, frame, x_label)
    svg.close("svg")
    return svg.text()


def line_chart(
    *,
    chart_id: str,
    title: str,
    description: str,
    categories: Sequence[str],
    series: Sequence[Series],
    x_label: str,
    y_label: str,
    fmt: Formatter = money,
    exact: Formatter = money_exact,
    frame: Frame | None = None,
    zero_based: bool = True,
) -> str:
    """A line per series across the categories (weeks, months), a point on every value; a missing value
    breaks the line. Points are links when the series has hrefs. Returns the ``<svg>`` markup."""
    frame = frame or Frame()
    _check(categories, series)
    linked = any(href for one in series for href in one.hrefs)
    svg = _Svg()
    _open_chart(svg, chart_id=chart_id, title=title, description=description, frame=frame, linked=linked)
    _legend(svg, series, frame, lines=True)
    flat = [v for one in series for v in one.values if v is not None]
    low = min(flat, default=0.0)
    high = max(flat, default=1.0)
    if zero_based:
        low, high = min(low, 0.0), max(high, 0.0)
    ticks = nice_ticks(low, high, min_step=_min_step(fmt))
    scale = _value_scale(frame, ticks)
    _y_axis(svg, ticks, scale, frame, fmt=fmt, label=y_label)
    step = frame.plot_width / max(len(categories), 1)
    xs = [frame.left + step * (i + 0.5) for i in range(len(categories))]
    label_values = len(categories) <= 12

    svg.open("g", class_="marks")
    for s_index, one in enumerate(series):
        colour = PALETTE[s_index % len(PALETTE)]
        runs: list[list[tuple[float, float]]] = [[]]
        for index, value in enumerate(one.values):
            if value is None:
                runs.append([])
            else:
                runs[-1].append((xs[index], scale(value)))
        for run in runs:
            if len(run) > 1:
                svg.add(
                    "polyline",
                    points=" ".join(f"{x:.1f},{y:.1f}" for x, y in run),
                    fill="none",
                    stroke=colour,
                    stroke_width=2.5,
                    stroke_dasharray="6 4" if one.dashed else None,
                    aria_hidden="true",
                )
        for index, value in enumerate(one.values):
            if value is None:
                continue
            x, y = xs[index], scale(value)
            label = f"{one.name}, {categories[index]}: {exact(value)}"

            def draw(x: float = x, y: float = y, c: str = colour, v: float = value, s: int = s_index) -> None:
                svg.add("circle", cx=x, cy=y, r=5, fill=c, stroke="#FFFFFF", stroke_width=1.5, class_="point")
                if label_values:
                    # Alternate series above and below their points so two lines' labels do not collide.
                    svg.add(
                        "text",
                        fmt(v),
                        x=x,
                        y=(y - 9) if s % 2 == 0 else (y + 18),
                        text_anchor="middle",
                        fill=INK,
                        class_="value",
                    )

            _linked(svg, one.href(index), label, draw)
    svg.close("g")
    _category_labels(svg, categories, xs, frame)
    _x_label(svg, frame, x_label)
    svg.close("svg")
    return svg.text()
