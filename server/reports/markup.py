"""The report's markup primitives (pure). Every piece of text from a user or the evidence is
escaped exactly once, by ``cell`` and ``text``; only ``Html`` fragments built by the report's
modules are inserted raw."""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from server.reports.times import SERVER_CLOCK, ReportTimes


class Html(str):
    """A fragment of markup built by the report's modules: inserted without escaping."""


def text(value: object) -> Html:
    return value if isinstance(value, Html) else Html(html.escape(str(value), quote=True))


def cell(value: object) -> Html:
    return text("—" if value is None or value == "" else value)


def hash_line(value: str) -> Html:
    """A whole hash on a line of its own, monospace (so pdftotext never splits it)."""
    return Html(f'<span class="hash">{text(value)}</span>')


def kv(rows: Iterable[tuple[str, object]]) -> Html:
    body = "".join(f"<tr><th>{text(k)}</th><td>{cell(v)}</td></tr>" for k, v in rows)
    return Html(f'<table class="kv">{body}</table>')


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> Html:
    head = "".join(f"<th>{text(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(c)}</td>" for c in row) + "</tr>" for row in rows)
    if not body:
        body = f'<tr><td colspan="{len(headers)}">无记录</td></tr>'
    return Html(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def stamp(times: ReportTimes, value: str | None, source: str = SERVER_CLOCK) -> Html:
    """A time for an evidence table (whose header names the zone): the local time, and under it
    the chained UTC with its source."""
    if not value:
        return cell(None)
    return Html(
        f'<span class="local">{text(times.bare(value))}</span>'
        f'<span class="utc">{text(times.utc(value, source))}</span>'
    )


def when(times: ReportTimes, value: str | None, source: str = SERVER_CLOCK) -> Html:
    """A time for a key/value row: ``… 北京时间``, and under it the chained UTC with its source."""
    if not value:
        return cell(None)
    return Html(
        f'<span class="local">{text(times.local(value))}</span>'
        f'<span class="utc">{text(times.utc(value, source))}</span>'
    )


def section(title: str, *parts: Html) -> Html:
    return Html(f"<h2>{text(title)}</h2>" + "".join(parts))
