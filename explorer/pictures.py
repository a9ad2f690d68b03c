"""View models -> the SVG pictures of the pages (the glue between `explorer.data` and `explorer.svg`)."""

from __future__ import annotations

from explorer.data import short_address
from explorer.models import History, OrganizationView, PairView, RoundView
from explorer.svg import Edge, Node, Series, line_chart, pair_heatmap, pairing_graph


def _nodes(organizations: list[OrganizationView], addresses: set[str] | None = None) -> list[Node]:
    nodes = [Node(org.address, org.name or short_address(org.address)) for org in organizations]
    if addresses is None:
        return nodes
    known = {node.key for node in nodes}
    extra = [Node(address, short_address(address)) for address in sorted(addresses - known)]
    return [node for node in nodes if node.key in addresses] + extra


def _edge(pair: PairView) -> Edge:
    if pair.gain is not None:
        state, label = "reported", f"{pair.gain:+.4g}"
    elif pair.bundle is not None:
        state, label = "delivered", "no report"
    else:
        state, label = "assigned", "no bundle"
    if pair.slashes:
        state, label = "slashed", f"{label} · slashed"
    title = f"{pair.teacher_name} → {pair.student_name}: {label}"
    return Edge(pair.teacher, pair.student, label, state, title)


def round_graph(round_view: RoundView, organizations: list[OrganizationView]) -> str:
    involved = {pair.teacher for pair in round_view.pairs} | {pair.student for pair in round_view.pairs}
    return pairing_graph(
        _nodes(organizations, involved),
        [_edge(pair) for pair in round_view.pairs],
        title=f"Round {round_view.round_id}: teacher → student pairs",
        prefix=f"r{round_view.round_id}",
    )


def heatmap(history: History, organizations: list[OrganizationView]) -> str:
    involved = {count.teacher for count in history.pair_counts} | {c.student for c in history.pair_counts}
    nodes = _nodes(organizations, involved | {org.address for org in organizations})
    counts = {(count.teacher, count.student): count.rounds for count in history.pair_counts}
    return pair_heatmap(nodes, counts, title="How often each directed pair was chosen")


def reputation_chart(history: History) -> str:
    series = [
        Series(org.address, org.name, [(p.round_id, p.value) for p in org.reputation])
        for org in history.organizations
        if org.reputation
    ]
    return line_chart(series, title="Reputation after each round", y_label="reputation")


def gain_chart(history: History) -> str:
    series = [
        Series(org.address, org.name, [(p.round_id, p.value) for p in org.gain_received])
        for org in history.organizations
        if org.gain_received
    ]
    return line_chart(series, title="Pass@1 gain reported by each student", y_label="gain")
