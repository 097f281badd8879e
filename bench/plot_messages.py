"""Draw the messages benchmark's two plots for docs/BENCHMARKS.md.

Reads the JSON results file that bench/messages.sh writes and draws, as SVG in OUTDIR:

  messages-throughput.svg  acknowledged throughput against offered rate (log-log), one line per
                           series, with the y = x "offered" line and, when the results have it,
                           the raw Postgres insert rate as a horizontal reference.
  messages-latency.svg     ack latency p50 (solid), p99 (dashed) and p99.9 (dotted) against
                           acknowledged throughput (log-log), one colour per series, with a
                           20 ms reference line.

Series with no points and latencies that are null are skipped; with nothing at all to draw the
files are still written, with a note in place of the data. The SVGs are reproducible: the same
input gives byte-identical files.

Usage: python bench/plot_messages.py RESULTS.json OUTDIR
Exit status: 0 on success, 2 for a bad command line or a missing or invalid results file,
1 when the plots cannot be written. Needs bench/requirements-plot.txt.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter  # noqa: E402

USAGE = "usage: plot_messages.py RESULTS.json OUTDIR"
THROUGHPUT_FILE = "messages-throughput.svg"
LATENCY_FILE = "messages-latency.svg"

FIGURE_SIZE = (9.0, 5.6)  # inches
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
# (key in the "ack" object, how the legend names it, line style)
PERCENTILES = (("p50", "p50", "-"), ("p99", "p99", "--"), ("p999", "p99.9", ":"))
LATENCY_KEYS = ("p50", "p90", "p99", "p999", "max")
LATENCY_BOUND_MS = 20.0
MIN_SPAN = 10.0  # the smallest ratio of an axis's upper to lower limit
RAW_INSERT_LABEL = "raw Postgres insert, bare table (rows/s)"
SHAPED_INSERT_LABEL = "raw insert of the same rows into a copy of messages (rows/s)"
REFERENCE_COLOUR = "grey"

RC_PARAMS = {
    "svg.hashsalt": "chat-bench",  # stable element ids
    "svg.fonttype": "none",  # text stays text: small files, no embedded glyph paths
    "font.size": 10,
}


class InputError(Exception):
    """The results file is missing or not in the expected shape."""


@dataclass(frozen=True)
class Point:
    offered: float | None
    throughput: float | None
    ack: dict[str, float | None]


@dataclass(frozen=True)
class Series:
    name: str
    label: str
    colour: str
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Results:
    title: str | None
    series: tuple[Series, ...]
    raw_insert_per_second: float | None
    shaped_insert_per_second: float | None = None


# --- reading -------------------------------------------------------------------------------------


def load_results(path: Path) -> Results:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"{path}: cannot read: {error}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise InputError(f"{path}: not valid JSON: {error}") from None
    try:
        return parse_results(document)
    except InputError as error:
        raise InputError(f"{path}: {error}") from None


def parse_results(document: object) -> Results:
    top = expect_object(document, "the top level")
    title = top.get("title")
    if title is not None and not isinstance(title, str):
        raise InputError('"title" must be a string')
    series_list = expect_list(top.get("series", []), '"series"')
    series = tuple(
        parse_series(item, index, COLOURS[index % len(COLOURS)])
        for index, item in enumerate(series_list)
    )
    references = expect_object(top.get("references", {}), '"references"')
    raw_insert = number_or_none(references.get("rawInsertRowsPerSecond"), "references.rawInsertRowsPerSecond")
    shaped_insert = number_or_none(references.get("shapedInsertRowsPerSecond"), "references.shapedInsertRowsPerSecond")
    return Results(title=title or None, series=series, raw_insert_per_second=raw_insert,
                   shaped_insert_per_second=shaped_insert)


def parse_series(item: object, index: int, colour: str) -> Series:
    where = f"series[{index}]"
    fields = expect_object(item, where)
    name = fields.get("name")
    if not isinstance(name, str) or not name:
        raise InputError(f'{where}."name" must be a non-empty string')
    label = fields.get("label", name)
    if not isinstance(label, str):
        raise InputError(f'{where}."label" must be a string')
    points = expect_list(fields.get("points", []), f'{where}."points"')
    parsed = tuple(parse_point(point, f"{where}.points[{i}]") for i, point in enumerate(points))
    return Series(name=name, label=label or name, colour=colour, points=parsed)


def parse_point(item: object, where: str) -> Point:
    fields = expect_object(item, where)
    ack = expect_object(fields.get("ack") or {}, f'{where}."ack"')
    return Point(
        offered=number_or_none(fields.get("offered"), f"{where}.offered"),
        throughput=number_or_none(fields.get("throughput"), f"{where}.throughput"),
        ack={key: number_or_none(ack.get(key), f"{where}.ack.{key}") for key in LATENCY_KEYS},
    )


def expect_object(value: object, where: str) -> dict:
    if not isinstance(value, dict):
        raise InputError(f"{where} must be a JSON object")
    return value


def expect_list(value: object, where: str) -> list:
    if not isinstance(value, list):
        raise InputError(f"{where} must be a JSON array")
    return value


def number_or_none(value: object, where: str) -> float | None:
    """A JSON number as a float; None for null, absent or non-finite (NaN, Infinity)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where} must be a number or null (got {value!r})")
    number = float(value)
    return number if math.isfinite(number) else None


def positive_pairs(pairs: list[tuple[float | None, float | None]]) -> tuple[list[float], list[float]]:
    """The (x, y) pairs a log-log plot can show: both present and above zero."""
    kept = [(x, y) for x, y in pairs if x is not None and y is not None and x > 0 and y > 0]
    return [x for x, _ in kept], [y for _, y in kept]


def by_offered(series: Series) -> list[Point]:
    # Points stay in the order of their offered rate, so a saturating system's latency curve
    # can turn back on itself (throughput stalls or drops while latency climbs), as it should.
    return sorted(series.points, key=lambda point: point.offered if point.offered is not None else math.inf)


# --- drawing -------------------------------------------------------------------------------------


def format_number(value: float, _position: object = None) -> str:
    if value >= 1:
        return f"{value:,.0f}"
    return f"{value:g}"


def use_log_axes(axes: Axes) -> None:
    """Log scale on both axes, ticks at 1, 2 and 5 of each decade, written as plain numbers."""
    axes.set_xscale("log")
    axes.set_yscale("log")
    for axis in (axes.xaxis, axes.yaxis):
        axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        axis.set_major_formatter(FuncFormatter(format_number))
        axis.set_minor_formatter(NullFormatter())
    axes.grid(True, which="major", color="#dddddd", linewidth=0.6)
    axes.set_axisbelow(True)


def widen_to_a_decade(axes: Axes) -> None:
    """Make each log axis span at least a factor of ten around its data, so a run of one point or
    of close values still gets a few labelled ticks instead of one, or none."""
    for get_limits, set_limits in ((axes.get_xlim, axes.set_xlim), (axes.get_ylim, axes.set_ylim)):
        low, high = get_limits()
        if high / low < MIN_SPAN:
            centre = math.sqrt(low * high)
            set_limits(centre / math.sqrt(MIN_SPAN), centre * math.sqrt(MIN_SPAN))


def new_figure(title: str | None) -> tuple[Figure, Axes]:
    figure, axes = plt.subplots(figsize=FIGURE_SIZE, layout="constrained")
    if title:
        axes.set_title(title)
    return figure, axes


def note_no_data(axes: Axes, what: str) -> None:
    axes.text(0.5, 0.5, f"no {what} to plot", transform=axes.transAxes,
              ha="center", va="center", color=REFERENCE_COLOUR, fontsize=12)
    axes.set_xticks([])
    axes.set_yticks([])


def label_horizontal_line(axes: Axes, y: float, text: str) -> None:
    """Write text just above a horizontal line, at the left edge of the plot."""
    axes.annotate(text, xy=(0.0, y), xycoords=("axes fraction", "data"), xytext=(4, 2),
                  textcoords="offset points", ha="left", va="bottom",
                  color=REFERENCE_COLOUR, fontsize=9)


def put_legend_below(figure: Figure, columns: int) -> None:
    """The legend goes under the plot, so it never covers a line and leaves the plot its width.

    Entries fill the columns top to bottom, so with one column per series the latency plot's
    p50, p99 and p99.9 of a series stand together.
    """
    figure.legend(loc="outside lower center", ncols=max(columns, 1), frameon=False, fontsize=9)


def draw_throughput(results: Results) -> Figure:
    figure, axes = new_figure(results.title)
    axes.set_xlabel("offered rate (messages/s)")
    axes.set_ylabel("acknowledged throughput (messages/s)")
    offered_seen: list[float] = []
    for series in results.series:
        points = by_offered(series)
        xs, ys = positive_pairs([(point.offered, point.throughput) for point in points])
        if not xs:
            continue
        offered_seen.extend(xs)
        axes.plot(xs, ys, marker="o", markersize=4, linewidth=1.5, color=series.colour, label=series.label)
    if not offered_seen:
        note_no_data(axes, "throughput")
        return figure
    use_log_axes(axes)
    low, high = min(offered_seen), max(offered_seen)
    axes.plot([low, high], [low, high], linestyle="--", linewidth=1.0, color=REFERENCE_COLOUR,
              label="offered (y = x)", zorder=1)
    for rate, label in ((results.raw_insert_per_second, RAW_INSERT_LABEL),
                        (results.shaped_insert_per_second, SHAPED_INSERT_LABEL)):
        if rate is not None and rate > 0:
            axes.axhline(rate, linestyle=":", linewidth=1.2, color=REFERENCE_COLOUR, zorder=1)
            label_horizontal_line(axes, rate, f"{label}: {format_number(rate)}")
    widen_to_a_decade(axes)
    put_legend_below(figure, columns=2)
    return figure


def draw_latency(results: Results) -> Figure:
    figure, axes = new_figure(results.title)
    axes.set_xlabel("acknowledged throughput (messages/s)")
    axes.set_ylabel("ack latency (ms)")
    series_drawn = 0
    for series in results.series:
        points = by_offered(series)
        drew_series = False
        for key, name, style in PERCENTILES:
            xs, ys = positive_pairs([(point.throughput, point.ack[key]) for point in points])
            if not xs:
                continue
            drew_series = True
            axes.plot(xs, ys, linestyle=style, marker="o", markersize=3, linewidth=1.4,
                      color=series.colour, label=f"{series.name} {name}")
        series_drawn += drew_series
    if not series_drawn:
        note_no_data(axes, "ack latency")
        return figure
    use_log_axes(axes)
    axes.axhline(LATENCY_BOUND_MS, linewidth=0.6, color=REFERENCE_COLOUR, zorder=1)
    label_horizontal_line(axes, LATENCY_BOUND_MS, f"{LATENCY_BOUND_MS:g} ms")
    widen_to_a_decade(axes)
    put_legend_below(figure, columns=series_drawn)
    return figure


def save(figure: Figure, path: Path) -> None:
    figure.savefig(path, format="svg", metadata={"Date": None})
    plt.close(figure)


# --- command line --------------------------------------------------------------------------------


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(USAGE, file=sys.stderr)
        return 2
    results_path, out_dir = Path(argv[1]), Path(argv[2])
    try:
        results = load_results(results_path)
    except InputError as error:
        print(f"plot_messages: {error}", file=sys.stderr)
        return 2
    matplotlib.rcParams.update(RC_PARAMS)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        save(draw_throughput(results), out_dir / THROUGHPUT_FILE)
        save(draw_latency(results), out_dir / LATENCY_FILE)
    except OSError as error:
        print(f"plot_messages: cannot write the plots to {out_dir}: {error}", file=sys.stderr)
        return 1
    print(f"plot_messages: wrote {out_dir / THROUGHPUT_FILE} and {out_dir / LATENCY_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
