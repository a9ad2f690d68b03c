"""The SVG pictures: well-formed, escaped, and carrying the addresses they draw (pure unit tests)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from explorer.svg import Edge, Node, Series, line_chart, pair_heatmap, pairing_graph

SVG = "{http://www.w3.org/2000/svg}"
A, B, C = "0x" + "a" * 40, "0x" + "b" * 40, "0x" + "c" * 40
EVIL = '<script>alert("x")</script>&'


def test_pairing_graph_draws_one_arrow_per_pair_and_escapes_names() -> None:
    nodes = [Node(A, EVIL), Node(B, "bitforge"), Node(C, "codewell")]
    edges = [
        Edge(A, B, "+0.125", "reported", f"{EVIL} -> bitforge"),
        Edge(B, A, "no report", "delivered", "t"),
    ]
    svg = pairing_graph(nodes, edges, title="round 1")
    root = ET.fromstring(svg)  # well-formed XML
    groups = [g for g in root.iter(f"{SVG}g") if "edge" in g.get("class", "")]
    assert [(g.get("data-teacher"), g.get("data-student")) for g in groups] == [(A, B), (B, A)]
    assert all(g.find(f"{SVG}path") is not None for g in groups)
    assert "<script>" not in svg
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "node-label"]
    assert labels[1:] == ["bitforge", "codewell"]
    assert labels[0] is not None
    assert labels[0].startswith("<script>")  # the text, shown as text


def test_pair_heatmap_counts_directed_pairs() -> None:
    svg = pair_heatmap([Node(A, "a"), Node(B, "b")], {(A, B): 3, (B, A): 1}, title="pairs")
    cells = {
        (g.get("data-teacher"), g.get("data-student")): g.get("data-count")
        for g in ET.fromstring(svg).iter(f"{SVG}g")
        if g.get("class") == "cell"
    }
    assert cells == {(A, B): "3", (B, A): "1"}


def test_line_chart_handles_data_and_no_data() -> None:
    svg = line_chart(
        [Series(A, "a", [(0, 0.5), (1, 0.6), (2, 0.55)]), Series(B, EVIL, [(1, -0.1)])],
        title="reputation",
        y_label="reputation",
    )
    root = ET.fromstring(svg)
    assert len(list(root.iter(f"{SVG}polyline"))) == 1  # one series has a single point
    assert len(list(root.iter(f"{SVG}circle"))) == 4
    assert "<script>" not in svg
    empty = ET.fromstring(line_chart([], title="gains", y_label="gain"))
    assert any(t.text == "no data yet" for t in empty.iter(f"{SVG}text"))
