"""Server-rendered SVG pictures (no JavaScript): pairing graphs, a pair heat map, line charts.

Each function returns a complete `<svg>` element as a string; every text that comes from the chain
(names are chosen by organizations) is escaped. Elements carry `data-*` attributes with the real
addresses, so tests and scripts can read the picture as well as people can.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777")
NODE_RADIUS = 22.0


@dataclass(frozen=True)
class Node:
    key: str  # the address
    label: str


@dataclass(frozen=True)
class Edge:
    teacher: str
    student: str
    label: str  # e.g. the reported gain
    state: str  # css class: "reported", "delivered", "assigned", "slashed"
    title: str


def _attr(value: object) -> str:
    return escape(str(value), quote=True)


def _f(value: float) -> str:
    return f"{value:.1f}"


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def pairing_graph(nodes: Sequence[Node], edges: Sequence[Edge], *, title: str, prefix: str = "pg") -> str:
    """Organizations on a circle, a curved arrow teacher -> student per pair, labelled with its gain."""
    size, margin = 460.0, 90.0
    centre = size / 2
    radius = centre - margin
    positions: dict[str, tuple[float, float]] = {}
    for index, node in enumerate(nodes):
        if len(nodes) == 1:
            positions[node.key] = (centre, centre)
            continue
        angle = -math.pi / 2 + 2 * math.pi * index / len(nodes)
        positions[node.key] = (centre + radius * math.cos(angle), centre + radius * math.sin(angle))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="pairing-graph" viewBox="0 0 {_f(size)} {_f(size)}"'
        f' width="{_f(size)}" height="{_f(size)}" role="img" aria-label="{_attr(title)}">',
        f"<title>{escape(title)}</title>",
        "<defs>",
    ]
    for state, colour in (
        ("reported", "#16a34a"),
        ("delivered", "#2563eb"),
        ("assigned", "#6b7280"),
        ("slashed", "#dc2626"),
    ):
        parts.append(
            f'<marker id="{prefix}-arrow-{state}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7"'
            f' markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="{colour}"/>'
            "</marker>"
        )
    parts.append("</defs>")
    if not nodes:
        parts.append(
            f'<text x="{_f(centre)}" y="{_f(centre)}" text-anchor="middle" class="empty">no pairs</text>'
        )
    for edge in edges:
        if edge.teacher not in positions or edge.student not in positions:
            continue
        parts.append(_edge(edge, positions[edge.teacher], positions[edge.student], prefix))
    for node in nodes:
        x, y = positions[node.key]
        dx, dy = x - centre, y - centre
        norm = math.hypot(dx, dy) or 1.0
        lx, ly = x + dx / norm * (NODE_RADIUS + 16), y + dy / norm * (NODE_RADIUS + 16) + 4
        anchor = "middle" if abs(dx) < 1 else ("start" if dx > 0 else "end")
        if len(nodes) == 1:
            lx, ly, anchor = x, y + NODE_RADIUS + 18, "middle"
        parts.append(
            f'<g class="node" data-address="{_attr(node.key)}">'
            f"<title>{escape(node.label)} ({escape(node.key)})</title>"
            f'<circle cx="{_f(x)}" cy="{_f(y)}" r="{_f(NODE_RADIUS)}"/>'
            f'<text x="{_f(x)}" y="{_f(y + 4)}" text-anchor="middle" class="node-initial">'
            f"{escape(node.label[:2])}</text>"
            f'<text x="{_f(lx)}" y="{_f(ly)}" text-anchor="{anchor}" class="node-label">'
            f"{escape(_truncate(node.label, 18))}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)


def _edge(edge: Edge, start: tuple[float, float], end: tuple[float, float], prefix: str) -> str:
    (x1, y1), (x2, y2) = start, end
    length = math.hypot(x2 - x1, y2 - y1) or 1.0
    ux, uy = (x2 - x1) / length, (y2 - y1) / length
    # bend to the left of the direction of travel, so a -> b and b -> a do not overlap
    bend = min(40.0, length * 0.18)
    cx, cy = (x1 + x2) / 2 - uy * bend, (y1 + y2) / 2 + ux * bend
    sx, sy = _towards((x1, y1), (cx, cy), NODE_RADIUS + 2)
    ex, ey = _towards((x2, y2), (cx, cy), NODE_RADIUS + 4)
    mx, my = 0.25 * sx + 0.5 * cx + 0.25 * ex, 0.25 * sy + 0.5 * cy + 0.25 * ey
    return (
        f'<g class="edge {_attr(edge.state)}" data-teacher="{_attr(edge.teacher)}"'
        f' data-student="{_attr(edge.student)}"><title>{escape(edge.title)}</title>'
        f'<path class="arrow" d="M{_f(sx)},{_f(sy)} Q{_f(cx)},{_f(cy)} {_f(ex)},{_f(ey)}"'
        f' marker-end="url(#{prefix}-arrow-{_attr(edge.state)})"/>'
        f'<text class="edge-label" x="{_f(mx)}" y="{_f(my - 4)}" text-anchor="middle">'
        f"{escape(edge.label)}</text>"
        "</g>"
    )


def _towards(point: tuple[float, float], target: tuple[float, float], distance: float) -> tuple[float, float]:
    (x, y), (tx, ty) = point, target
    length = math.hypot(tx - x, ty - y) or 1.0
    return x + (tx - x) / length * distance, y + (ty - y) / length * distance


def pair_heatmap(nodes: Sequence[Node], counts: Mapping[tuple[str, str], int], *, title: str) -> str:
    """How often each directed pair (row: teacher, column: student) was chosen, over all rounds."""
    cell, left, top = 38.0, 130.0, 110.0
    n = len(nodes)
    width, height = left + cell * max(n, 1) + 20, top + cell * max(n, 1) + 20
    peak = max(counts.values(), default=0)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="pair-heatmap" viewBox="0 0 {_f(width)} {_f(height)}"'
        f' width="{_f(width)}" height="{_f(height)}" role="img" aria-label="{_attr(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{_f(left)}" y="14" class="axis-title">student →</text>',
        f'<text x="8" y="{_f(top - 8)}" class="axis-title">teacher ↓</text>',
    ]
    if n == 0:
        parts.append(f'<text x="{_f(left)}" y="{_f(top + 20)}" class="empty">no rounds yet</text>')
    for column, node in enumerate(nodes):
        x = left + column * cell + cell / 2
        parts.append(
            f'<text class="col-label" transform="translate({_f(x + 4)},{_f(top - 6)}) rotate(-45)">'
            f"{escape(_truncate(node.label, 14))}</text>"
        )
    for row, teacher in enumerate(nodes):
        y = top + row * cell
        parts.append(
            f'<text class="row-label" x="{_f(left - 6)}" y="{_f(y + cell / 2 + 4)}" text-anchor="end">'
            f"{escape(_truncate(teacher.label, 16))}</text>"
        )
        for column, student in enumerate(nodes):
            x = left + column * cell
            count = counts.get((teacher.key, student.key), 0)
            if teacher.key == student.key:
                parts.append(
                    f'<rect class="cell self" x="{_f(x)}" y="{_f(y)}"'
                    f' width="{_f(cell - 2)}" height="{_f(cell - 2)}"/>'
                )
                continue
            opacity = 0.08 + 0.92 * count / peak if peak and count else 0.0
            text_style = ' style="fill:#fff"' if opacity > 0.55 else ""  # readable on dark cells
            parts.append(
                f'<g class="cell" data-teacher="{_attr(teacher.key)}" data-student="{_attr(student.key)}"'
                f' data-count="{count}"><title>{escape(teacher.label)} → {escape(student.label)}: {count}'
                f' round(s)</title><rect x="{_f(x)}" y="{_f(y)}"'
                f' width="{_f(cell - 2)}" height="{_f(cell - 2)}"'
                f' fill="#2563eb" fill-opacity="{opacity:.3f}" stroke="#d1d5db"/>'
                f'<text x="{_f(x + cell / 2 - 1)}" y="{_f(y + cell / 2 + 4)}" text-anchor="middle"'
                f"{text_style}>"
                f"{count or ''}</text></g>"
            )
    parts.append("</svg>")
    return "".join(parts)


def _nice_step(span: float, target_ticks: int = 4) -> float:
    """A round tick step (1, 2 or 5 times a power of ten) giving about `target_ticks` intervals."""
    if span <= 0 or not math.isfinite(span):
        return 1.0
    raw = span / target_ticks
    magnitude = math.pow(10.0, math.floor(math.log10(raw)))
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return factor * magnitude
    return 10 * magnitude


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    points: Sequence[tuple[float, float]]


def line_chart(series: Sequence[Series], *, title: str, y_label: str, x_label: str = "round") -> str:
    """One polyline per series (x: round, y: value) with axes, ticks and a legend."""
    width, height = 620.0, 280.0
    left, right, top, bottom = 56.0, 150.0, 28.0, 40.0
    plot_w, plot_h = width - left - right, height - top - bottom
    xs = [x for item in series for x, _ in item.points]
    ys = [y for item in series for _, y in item.points]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="line-chart" viewBox="0 0 {_f(width)} {_f(height)}"'
        f' width="{_f(width)}" height="{_f(height)}" role="img" aria-label="{_attr(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{_f(left)}" y="16" class="chart-title">{escape(title)}</text>',
    ]
    if not xs:
        parts.append(
            f'<text x="{_f(left + plot_w / 2)}" y="{_f(top + plot_h / 2)}"'
            ' text-anchor="middle" class="empty">'
            "no data yet</text></svg>"
        )
        return "".join(parts)
    x_min, x_max = min(xs), max(xs)
    if x_min == x_max:
        x_min, x_max = x_min - 1, x_max + 1
    step = _nice_step(max(*ys, 0.0) - min(*ys, 0.0))
    y_min = math.floor(min(*ys, 0.0) / step) * step
    y_max = math.ceil(max(*ys, 0.0) / step) * step
    if y_max - y_min < step / 2:
        y_max = y_min + step

    def sx(x: float) -> float:
        return left + (x - x_min) / (x_max - x_min) * plot_w

    def sy(y: float) -> float:
        return top + plot_h - (y - y_min) / (y_max - y_min) * plot_h

    parts.append(
        f'<rect class="plot" x="{_f(left)}" y="{_f(top)}" width="{_f(plot_w)}" height="{_f(plot_h)}"/>'
    )
    ticks = round((y_max - y_min) / step)
    for index in range(ticks + 1):
        value = y_min + step * index
        parts.append(
            f'<line class="grid" x1="{_f(left)}" x2="{_f(left + plot_w)}"'
            f' y1="{_f(sy(value))}" y2="{_f(sy(value))}"/>'
            f'<text class="tick" x="{_f(left - 6)}" y="{_f(sy(value) + 4)}" text-anchor="end">'
            f"{value:.4g}</text>"
        )
    integer_ticks = sorted({int(x) for x in xs})
    stride = max(1, math.ceil(len(integer_ticks) / 10))
    for tick in integer_ticks[::stride]:
        parts.append(
            f'<text class="tick" x="{_f(sx(tick))}" y="{_f(top + plot_h + 16)}"'
            f' text-anchor="middle">{tick}</text>'
        )
    parts.append(
        f'<text class="axis-title" x="{_f(left + plot_w / 2)}" y="{_f(height - 6)}" text-anchor="middle">'
        f"{escape(x_label)}</text>"
        f'<text class="axis-title" transform="translate(14,{_f(top + plot_h / 2)}) rotate(-90)"'
        f' text-anchor="middle">{escape(y_label)}</text>'
    )
    for index, item in enumerate(series):
        colour = PALETTE[index % len(PALETTE)]
        points = sorted(item.points)
        parts.append(f'<g class="series" data-key="{_attr(item.key)}">')
        if len(points) > 1:
            path = " ".join(f"{_f(sx(x))},{_f(sy(y))}" for x, y in points)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y in points:
            parts.append(
                f'<circle cx="{_f(sx(x))}" cy="{_f(sy(y))}" r="3.5" fill="{colour}">'
                f"<title>{escape(item.label)}: round {x:g}, {y:.4g}</title></circle>"
            )
        legend_y = top + 14 + index * 18
        parts.append(
            f'<rect x="{_f(left + plot_w + 14)}" y="{_f(legend_y - 9)}" width="10" height="10"'
            f' fill="{colour}"/>'
            f'<text class="legend" x="{_f(left + plot_w + 30)}" y="{_f(legend_y)}">'
            f"{escape(_truncate(item.label, 16))}</text></g>"
        )
    parts.append("</svg>")
    return "".join(parts)
