"""The graphs of `sous graph`: trigger edges, step DAGs, layering and SVG, on sample specs."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from sous.graph import Edge, Graph, layers, mesh_graph, recipe_graph, to_svg, trigger_mode
from sous.graph_cmd import dag_lines, edge_lines, mesh_tree
from tests.cli.render import render

SVG = "{http://www.w3.org/2000/svg}"


def recipe(domain: str, name: str, *triggers: dict) -> dict:
    return {"domain": domain, "name": name, "spec": {"triggers": list(triggers)}}


MESH = [
    recipe("sales", "daily"),
    recipe("payments", "settle"),
    recipe(
        "finance",
        "revenue",
        {
            "all": [
                {"domain": "sales", "recipe": "daily"},
                {"domain": "payments", "recipe": "settle"},
            ]
        },
    ),
    recipe("marketing", "dashboard", {"on": {"domain": "finance", "recipe": "revenue"}}),
    recipe("audit", "sweep", {"at_least": {"n": 2, "of": [{"domain": "sales"}]}}),
]


def test_trigger_edges_carry_the_mode_and_any_recipe_is_a_star():
    g = mesh_graph(MESH)
    assert set(g.edges) == {
        Edge("sales/daily", "finance/revenue", "all"),
        Edge("payments/settle", "finance/revenue", "all"),
        Edge("finance/revenue", "marketing/dashboard", "on"),
        Edge("sales/*", "audit/sweep", "at_least 2"),
    }
    assert trigger_mode({"any": [{"domain": "x"}]}) == ("any", [{"domain": "x"}])
    assert "sales/daily → finance/revenue  (all)" in edge_lines(g)


def test_longest_path_layering_puts_a_node_below_its_deepest_predecessor():
    g = Graph(
        nodes=dict.fromkeys("abcd", ""),
        edges=[Edge("a", "b"), Edge("b", "c"), Edge("a", "c"), Edge("d", "c")],
    )
    assert layers(g) == [["a", "d"], ["b"], ["c"]]


def test_a_cycle_does_not_hang_the_layout():
    g = Graph(nodes=dict.fromkeys("ab", ""), edges=[Edge("a", "b"), Edge("b", "a")])
    assert sorted(n for layer in layers(g) for n in layer) == ["a", "b"]
    ET.fromstring(to_svg(g))


def test_recipe_dag_marks_nested_recipes():
    spec = {
        "steps": {
            "ingest": {"needs": []},
            "child": {"needs": ["ingest"], "recipe": "finance/revenue"},
            "done": {"needs": ["ingest", "child"]},
        }
    }
    g = recipe_graph(spec)
    assert layers(g) == [["ingest"], ["child"], ["done"]]
    assert dag_lines(g) == [
        "layer 0",
        "  ingest",
        "layer 1",
        "  child ← ingest  [nested recipe finance/revenue]",
        "layer 2",
        "  done ← child, ingest",
    ]
    root = ET.fromstring(to_svg(g, "recipe x/y"))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert {"ingest", "child", "done", "recipe finance/revenue", "recipe x/y"} <= set(texts)


def test_svg_has_a_box_per_node_an_arrow_per_edge_and_arrows_point_down():
    g = mesh_graph(MESH)
    root = ET.fromstring(to_svg(g, "mesh <&>"))
    assert root.tag == f"{SVG}svg"
    boxes = {
        g_.find(f"{SVG}text").text: g_.find(f"{SVG}rect")
        for g_ in root.iter(f"{SVG}g")
        if g_.get("class") == "node"
    }
    assert set(boxes) == set(g.nodes)
    lines = [x for x in root.iter(f"{SVG}line") if x.get("class") == "edge"]
    assert len(lines) == len(g.edges)
    assert all(float(x.get("y2")) > float(x.get("y1")) for x in lines)
    width, height = float(root.get("width")), float(root.get("height"))
    for rect in boxes.values():
        x, y = float(rect.get("x")), float(rect.get("y"))
        assert x >= 0
        assert x + float(rect.get("width")) <= width
        assert y >= 0
        assert y + float(rect.get("height")) <= height
    xs = [(float(r.get("x")), float(r.get("x")) + float(r.get("width"))) for r in boxes.values()]
    ys = [float(r.get("y")) for r in boxes.values()]
    for i in range(len(xs)):
        for j in range(i + 1, len(xs)):
            if ys[i] == ys[j]:
                assert xs[i][1] <= xs[j][0] or xs[j][1] <= xs[i][0], "boxes of a layer overlap"


def test_mesh_tree_lists_domains_recipes_and_what_they_trigger():
    out = render(mesh_tree(mesh_graph(MESH), ["finance", "platform", "sales"]))
    assert "platform" in out
    assert "sales/daily" in out
    assert "→ finance/revenue (all)" in out
    assert "marketing" not in out.split("finance/revenue")[0]
