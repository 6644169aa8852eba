"""Server-side SVG bar charts for the staff area: no script, no image files, nothing fetched."""
import math

from markupsafe import Markup, escape

WIDTH, HEIGHT = 720, 260
LEFT, RIGHT, TOP, BOTTOM = 84, 12, 16, 34


def nice_ceiling(value):
    """The smallest 1, 2 or 5 × 10^n at or above `value` (at least 1), so gridlines land on round sums."""
    if value <= 0:
        return 1
    power = 10 ** math.floor(math.log10(value))
    return next(step * power for step in (1, 2, 5, 10) if step * power >= value)


def bar_chart(points, *, title, fmt, chart_id, label_every=1, label_last=False):
    """An SVG bar chart of `points` [(label, value, note)], values formatted for people by `fmt`.

    Every `label_every`-th bar is labelled, counting from the first, or from the last if `label_last`."""
    skip = (len(points) - 1) % label_every if label_last else 0
    top = nice_ceiling(max((value for _, value, _ in points), default=0))
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    band = plot_w / max(1, len(points))
    parts = [f'<svg class="chart" id="{chart_id}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             f'aria-labelledby="{chart_id}-title" preserveAspectRatio="xMidYMid meet">',
             f'<title id="{chart_id}-title">{escape(title)}</title>']
    for fraction in (0, 0.5, 1):
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y:.1f}" y2="{y:.1f}"/>'
                     f'<text class="axis" x="{LEFT - 8}" y="{y + 5:.1f}" text-anchor="end">'
                     f'{escape(fmt(round(top * fraction)))}</text>')
    for i, (label, value, note) in enumerate(points):
        h = plot_h * value / top
        x = LEFT + i * band + band * 0.15
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{TOP + plot_h - h:.1f}" width="{band * 0.7:.1f}" '
                     f'height="{h:.1f}" data-value="{value}"><title>{escape(label)}: {escape(fmt(value))}'
                     f'{escape(note)}</title></rect>')
        if (i - skip) % label_every == 0:
            parts.append(f'<text class="axis" x="{x + band * 0.35:.1f}" y="{HEIGHT - 12}" '
                         f'text-anchor="middle">{escape(label)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every label and title above went through escape()
