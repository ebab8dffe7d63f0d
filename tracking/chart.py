"""People's opens and clicks over time as an SVG drawn on the server (no script, no library):
bars per hour for the first two days after the first event, per day after that."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup, escape

from tracking.schemas import ActivityHour

WIDTH, HEIGHT, PAD = 720, 200, 28
#: Hours shown one by one; a longer activity is drawn per day.
HOURLY_SPAN = 48


@dataclass(frozen=True, slots=True)
class Bucket:
    start: datetime
    opens: int
    clicks: int


def buckets(activity: list[ActivityHour]) -> tuple[list[Bucket], bool]:
    """Consecutive buckets from the first event to the last (empty ones included); whether
    they are days."""
    if not activity:
        return [], False
    first, last = activity[0].hour, activity[-1].hour
    daily = last - first >= timedelta(hours=HOURLY_SPAN)
    step = timedelta(days=1) if daily else timedelta(hours=1)
    if daily:
        first = first.replace(hour=0)
    counts: dict[datetime, list[int]] = {}
    for point in activity:
        key = point.hour.replace(hour=0) if daily else point.hour
        pair = counts.setdefault(key, [0, 0])
        pair[0] += point.opens
        pair[1] += point.clicks
    out, moment = [], first
    while moment <= last:
        opens, clicks = counts.get(moment, [0, 0])
        out.append(Bucket(moment, opens, clicks))
        moment += step
    return out, daily


def activity_svg(
    activity: list[ActivityHour], title: str, opens_label: str, clicks_label: str
) -> Markup:
    """The chart; each bar has a tooltip with its time and figures."""
    shown, daily = buckets(activity)
    if not shown:
        return Markup("")
    top = max(max(b.opens, b.clicks) for b in shown) or 1
    slot = (WIDTH - 2 * PAD) / len(shown)
    bar = max(1.0, slot * 0.4)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img"'
        f' class="report-chart" data-testid="activity-chart"><title>{escape(title)}</title>',
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}"'
        ' stroke="#8c959f" stroke-width="1"/>',
        f'<text x="{PAD}" y="{PAD - 10}" font-size="11" fill="#57606a">{top}</text>',
    ]
    scale = (HEIGHT - 2 * PAD) / top
    for n, b in enumerate(shown):
        x = PAD + n * slot
        when = b.start.strftime("%Y-%m-%d" if daily else "%Y-%m-%d %H:00")
        tip = escape(f"{when} UTC: {opens_label} {b.opens}, {clicks_label} {b.clicks}")
        for offset, value, colour, kind in (
            (0.0, b.opens, "#0969da", "opens"),
            (bar, b.clicks, "#bf8700", "clicks"),
        ):
            height = value * scale
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{HEIGHT - PAD - height:.1f}" width="{bar:.1f}"'
                f' height="{height:.1f}" fill="{colour}" data-{kind}="{value}">'
                f"<title>{tip}</title></rect>"
            )
    for n in (0, len(shown) - 1):
        anchor = "start" if n == 0 else "end"
        x = PAD + n * slot + (0 if n == 0 else slot)
        label = shown[n].start.strftime("%d.%m." if daily else "%d.%m. %H:00")
        parts.append(
            f'<text x="{x:.1f}" y="{HEIGHT - 8}" font-size="11" fill="#57606a"'
            f' text-anchor="{anchor}">{label}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - numbers and escaped text only
