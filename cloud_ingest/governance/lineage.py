"""Table-level lineage (数据溯源/去向) derived from the warehouse transform DAG.

The graph is read from the transforms' own declarations (``cloud_ingest.warehouse.transforms.ALL``:
``inputs`` → ``outputs``, labelled with the transform's name), never from a second list. Two external
sources close it: ODS tables are written by the ingest API from gateway batches, DIM tables by the
registry load (registry file and metric dictionary). META tables (job bookkeeping) are left out.

Renderings: :func:`render_text` (an indented tree up, down or both from one table), :func:`to_dot`
(Graphviz DOT, always available); SVG and PNG are in :mod:`cloud_ingest.governance.lineage_svg`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from cloud_ingest.governance.errors import GovernanceError
from cloud_ingest.warehouse.schema import Schema, load_schema
from cloud_ingest.warehouse.transforms import ALL
from cloud_ingest.warehouse.transforms.base import Transform

Direction = Literal["up", "down", "both"]
TIER_ORDER = ("source", "ods", "dim", "dwd", "dws", "ads")
TIER_ZH = {"source": "数据来源", "ods": "数据引入层", "dim": "公共维度层", "dwd": "明细事实层",
           "dws": "汇总数据层", "ads": "数据应用层"}
GATEWAYS = "source:gateways"
REGISTRY = "source:registry"
_SOURCES = {
    GATEWAYS: ("边缘网关上传批次", "edge gateways: POST /v1/batches → ODS landing", "ingest API"),
    REGISTRY: ("登记文件与指标字典", "campus-cloud registry load (registry YAML, device_profiles/metrics.yaml)",
               "registry load"),
}


@dataclass(slots=True, frozen=True)
class Node:
    """A table, or an external source (name starting ``source:``)."""

    name: str
    tier: str
    zh: str
    definition: str = ""


@dataclass(slots=True, frozen=True)
class Edge:
    """Data flows from ``source`` to ``target`` through ``via`` (a transform name, or the source's process)."""

    source: str
    target: str
    via: str


@dataclass(slots=True, frozen=True)
class LineageGraph:
    """Nodes by name and edges; query with :meth:`upstream`, :meth:`downstream`, :meth:`subgraph`."""

    nodes: dict[str, Node]
    edges: tuple[Edge, ...]

    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            tables = ", ".join(n for n in self.nodes if not n.startswith("source:"))
            raise GovernanceError(f"no table {name!r} in the lineage graph; tables: {tables}") from None

    def parents(self, name: str) -> list[Edge]:
        return [e for e in self.edges if e.target == name]

    def children(self, name: str) -> list[Edge]:
        return [e for e in self.edges if e.source == name]

    def _walk(self, name: str, step: str) -> set[str]:
        self.node(name)
        seen: set[str] = set()
        todo = [name]
        while todo:
            here = todo.pop()
            for e in (self.parents(here) if step == "up" else self.children(here)):
                nxt = e.source if step == "up" else e.target
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        seen.discard(name)
        return seen

    def upstream(self, name: str) -> set[str]:
        """Every node ``name`` is derived from (transitively), external sources included."""
        return self._walk(name, "up")

    def downstream(self, name: str) -> set[str]:
        """Every table derived from ``name`` (transitively)."""
        return self._walk(name, "down")

    def subgraph(self, name: str, direction: Direction = "both") -> LineageGraph:
        """The part of the graph up and/or down from ``name`` (edges among those nodes only)."""
        keep = {name}
        if direction in ("up", "both"):
            keep |= self.upstream(name)
        if direction in ("down", "both"):
            keep |= self.downstream(name)
        up = self.upstream(name) | {name}
        down = self.downstream(name) | {name}

        def wanted(e: Edge) -> bool:
            if e.source not in keep or e.target not in keep:
                return False
            if direction == "up":
                return e.target in up
            if direction == "down":
                return e.source in down
            return (e.source in up and e.target in up) or (e.source in down and e.target in down)

        return LineageGraph({n: v for n, v in self.nodes.items() if n in keep},
                            tuple(e for e in self.edges if wanted(e)))


def build_lineage(transforms: Sequence[Transform] = ALL, schema: Schema | None = None) -> LineageGraph:
    """The lineage graph of ``transforms`` over the tables of ``schema`` (META tables excluded)."""
    schema = schema or load_schema()
    nodes: dict[str, Node] = {}
    for t in schema.tables:
        if t.tier in TIER_ORDER:
            nodes[t.name] = Node(t.name, t.tier, t.zh, t.definition)
    for key, (zh, definition, _) in _SOURCES.items():
        nodes[key] = Node(key, "source", zh, definition)
    edges: list[Edge] = []
    for tr in transforms:
        for out in tr.outputs:
            for inp in tr.inputs:
                if inp in nodes and out in nodes and inp != out:
                    edges.append(Edge(inp, out, tr.name))
    for n in list(nodes.values()):
        if n.tier == "ods":
            edges.append(Edge(GATEWAYS, n.name, _SOURCES[GATEWAYS][2]))
        elif n.tier == "dim":
            edges.append(Edge(REGISTRY, n.name, _SOURCES[REGISTRY][2]))
    used = {e.source for e in edges} | {e.target for e in edges}
    nodes = {k: v for k, v in nodes.items() if not k.startswith("source:") or k in used}
    return LineageGraph(nodes, tuple(dict.fromkeys(edges)))


# ------------------------------------------------------------------------------------------- renderings


def _label(n: Node) -> str:
    tier = n.tier.upper() if n.tier != "source" else "来源"
    return f"{n.name}  {n.zh} [{tier}]"


def _tree(g: LineageGraph, name: str, step: str) -> list[str]:
    arrow = "←" if step == "up" else "→"
    lines: list[str] = []
    expanded: set[str] = set()

    def visit(node: str, prefix: str) -> None:
        edges = g.parents(node) if step == "up" else g.children(node)
        groups: dict[str, list[str]] = {}
        for e in edges:
            groups.setdefault(e.source if step == "up" else e.target, []).append(e.via)
        items = sorted(groups.items(), key=lambda kv: (TIER_ORDER.index(g.nodes[kv[0]].tier), kv[0]))
        for i, (other, vias) in enumerate(items):
            last = i == len(items) - 1
            seen = other in expanded and (g.parents(other) if step == "up" else g.children(other))
            more = "  (see above)" if seen else ""
            lines.append(f"{prefix}{'└── ' if last else '├── '}{arrow} {', '.join(sorted(set(vias)))}: "
                         f"{_label(g.nodes[other])}{more}")
            if not seen:
                expanded.add(other)
                visit(other, prefix + ("    " if last else "│   "))

    visit(name, "")
    return lines


def render_text(g: LineageGraph, name: str, direction: Direction = "up") -> str:
    """An indented tree: upstream (where the data comes from), downstream (where it goes), or both."""
    head = _label(g.node(name))
    out = [head]
    if direction in ("up", "both"):
        up = _tree(g, name, "up")
        out += (["upstream (溯源):"] if direction == "both" else []) + (up or ["(no upstream)"])
    if direction in ("down", "both"):
        down = _tree(g, name, "down")
        out += (["downstream (去向):"] if direction == "both" else []) + (down or ["(no downstream)"])
    return "\n".join(out) + "\n"


TIER_COLOUR = {"source": "#eeeeee", "ods": "#fde2c8", "dim": "#e4dcf5", "dwd": "#d6e9f8",
               "dws": "#d9f2dc", "ads": "#fff3bf"}


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def to_dot(g: LineageGraph, focus: str | None = None) -> str:
    """Graphviz DOT text: left to right, one cluster per tier, edges labelled with their transform."""
    lines = ["digraph lineage {", "  rankdir=LR;",
             "  graph [fontname=\"sans-serif\", nodesep=0.25, ranksep=0.9];",
             "  node [shape=box, style=\"rounded,filled\", fontname=\"sans-serif\", fontsize=10];",
             "  edge [fontname=\"sans-serif\", fontsize=8, color=\"#777777\", fontcolor=\"#555555\"];"]
    for tier in TIER_ORDER:
        members = sorted(n for n, v in g.nodes.items() if v.tier == tier)
        if not members:
            continue
        lines.append(f"  subgraph cluster_{tier} {{")
        lines.append(f"    label={_q(f'{tier.upper()} {TIER_ZH[tier]}')}; style=dashed; color=\"#bbbbbb\";")
        for n in members:
            v = g.nodes[n]
            extra = ", penwidth=2.5, color=\"#c0392b\"" if n == focus else ""
            label = _q(n)[:-1] + "\\n" + _q(v.zh)[1:]  # DOT's \n: a centred line break
            lines.append(f"    {_q(n)} [label={label}, fillcolor=\"{TIER_COLOUR[tier]}\", "
                         f"tooltip={_q(v.definition or v.zh)}{extra}];")
        lines.append("  }")
    for e in g.edges:
        lines.append(f"  {_q(e.source)} -> {_q(e.target)} [label={_q(e.via)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def tables_of(g: LineageGraph, names: Iterable[str]) -> list[str]:
    """``names`` that are tables (not external sources), in tier order."""
    tables = [n for n in names if not n.startswith("source:")]
    return sorted(tables, key=lambda n: (TIER_ORDER.index(g.nodes[n].tier), n))
