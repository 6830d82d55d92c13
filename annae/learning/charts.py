"""Small server-side SVG charts for the analytics page (no JavaScript, no fonts to install)."""

from __future__ import annotations

from html import escape

COLORS = {"contained": "#2f855a", "handed_off": "#c05621", "other": "#a0aec0", "bar": "#3182ce"}


def daily_bars(daily: list[dict], *, width: int = 720, height: int = 220) -> str:
    """Stacked bars per day: contained, handed off, and the rest of the conversations."""
    if not daily:
        return _empty(width, height)
    top = max(d["conversations"] for d in daily) or 1
    pad_l, pad_b, pad_t = 36, 28, 10
    plot_w, plot_h = width - pad_l - 8, height - pad_b - pad_t
    step = plot_w / len(daily)
    bar = max(step * 0.7, 1)
    parts = [_open(width, height, "Conversations per day: contained, handed off, other")]
    for frac in (0, 0.5, 1):
        y = pad_t + plot_h * (1 - frac)
        parts.append(
            f'<line x1="{pad_l}" x2="{width - 8}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e2e8f0"/>'
            f'<text x="{pad_l - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10">'
            f"{round(top * frac)}</text>"
        )
    for i, d in enumerate(daily):
        x = pad_l + i * step + (step - bar) / 2
        y = pad_t + plot_h
        counts = {**d, "other": d["conversations"] - d["contained"] - d["handed_off"]}
        for name in ("contained", "handed_off", "other"):
            value = counts[name]
            h = plot_h * value / top
            y -= h
            if value:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                    f'fill="{COLORS[name]}"><title>{escape(d["day"])}: {value} {name}</title></rect>'
                )
        if len(daily) <= 14 or i % max(len(daily) // 7, 1) == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - 10}" text-anchor="middle" '
                f'font-size="10">{escape(d["day"][5:])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def hbars(
    rows: list[tuple[str, float]],
    *,
    width: int = 360,
    row_h: int = 22,
    i18n_keys: list[str | None] | None = None,
) -> str:
    """Horizontal bars with labels (hand-off reasons, top entries). ``i18n_keys`` marks each
    label with the interface string it shows (``data-i18n``), so the page's language toggle
    re-labels the chart too."""
    if not rows:
        return _empty(width, 60)
    top = max(v for _, v in rows) or 1
    height = row_h * len(rows) + 6
    label_w = 130
    parts = [_open(width, height, "bar chart")]
    for i, (label, value) in enumerate(rows):
        y = 3 + i * row_h
        w = (width - label_w - 40) * value / top
        key = i18n_keys[i] if i18n_keys else None
        mark = f' data-i18n="{escape(key)}"' if key else ""
        parts.append(
            f'<text x="{label_w - 6}" y="{y + 15}" text-anchor="end" font-size="11"{mark}>'
            f"{escape(str(label)[:22])}</text>"
            f'<rect x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row_h - 8}" '
            f'fill="{COLORS["bar"]}"/>'
            f'<text x="{label_w + w + 4:.1f}" y="{y + 15}" font-size="11">{value:g}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _open(width: int, height: int, title: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {width} {height}" '
        f'width="100%" aria-label="{escape(title)}" font-family="sans-serif">'
        f"<title>{escape(title)}</title>"
    )


def _empty(width: int, height: int) -> str:
    return (
        _open(width, height, "no data")
        + f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-size="12" '
        'fill="#718096">no data in this period</text></svg>'
    )
