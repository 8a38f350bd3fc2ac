"""Pictures of the lineage graph: SVG and PNG through Graphviz ``dot`` when installed, else a built-in SVG.

The built-in layout is a small layered (Sugiyama-style) drawing, enough for a graph of a few dozen tables:
layers by longest path from the sources (so data flows left to right), order within a layer by a few
barycentre sweeps to reduce crossings, boxes sized to their text, cubic Bézier edges with arrowheads and
the transform's name as a tooltip. PNG needs ``dot`` (a raster needs a font renderer we do not ship).
"""

from __future__ import annotations

import html
import shutil
import subprocess
from dataclasses import dataclass

from cloud_ingest.governance.errors import GovernanceError
from cloud_ingest.governance.lineage import TIER_COLOUR, TIER_ORDER, LineageGraph, to_dot

DOT_TIMEOUT_S = 30.0  # a graph of this size lays out in well under a second; a hung dot must not hang a CLI
FONT_PX = 12
ASCII_W = 7.0  # average advance of a latin character at FONT_PX (sans-serif); CJK characters are ~FONT_PX
BOX_PAD = 10.0
BOX_H = 40.0
LAYER_GAP = 90.0
ROW_GAP = 16.0
SWEEPS = 6  # barycentre passes (down and up); more rarely helps on a graph this size


def dot_binary() -> str | None:
    """Path of Graphviz ``dot``, or None."""
    return shutil.which("dot")


def run_dot(dot_text: str, fmt: str, binary: str | None = None) -> bytes:
    """Lay out ``dot_text`` with Graphviz into ``fmt`` (svg, png). Raises ``GovernanceError`` if it fails."""
    exe = binary or dot_binary()
    if exe is None:
        raise GovernanceError(f"{fmt} output needs Graphviz 'dot' (apt-get install graphviz)")
    try:
        proc = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode(), capture_output=True,
                              timeout=DOT_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GovernanceError(f"running {exe}: {exc}") from exc
    if proc.returncode != 0:
        raise GovernanceError(f"{exe} -T{fmt} failed: {proc.stderr.decode(errors='replace')[:500]}")
    return proc.stdout


def _text_w(text: str) -> float:
    return sum(FONT_PX if ord(ch) > 0x2E80 else ASCII_W for ch in text)


@dataclass(slots=True)
class _Box:
    name: str
    layer: int
    x: float = 0.0
    y: float = 0.0
    w: float = 0.0
    pos: float = 0.0


def _layers(g: LineageGraph) -> dict[str, int]:
    """Longest-path layer of every node (sources at 0)."""
    layer: dict[str, int] = {}

    def depth(n: str, stack: frozenset[str]) -> int:
        if n in layer:
            return layer[n]
        if n in stack:
            raise GovernanceError(f"lineage graph has a cycle through {n}")
        parents = [e.source for e in g.parents(n)]
        layer[n] = 0 if not parents else 1 + max(depth(p, stack | {n}) for p in parents)
        return layer[n]

    for n in g.nodes:
        depth(n, frozenset())
    return layer


def layout(g: LineageGraph) -> tuple[dict[str, _Box], float, float]:
    """Positions of every node's box, and the drawing's width and height."""
    layer = _layers(g)
    boxes = {n: _Box(n, layer[n]) for n in g.nodes}
    n_layers = max(layer.values(), default=0) + 1
    rows: list[list[str]] = [[] for _ in range(n_layers)]
    for n in sorted(g.nodes, key=lambda n: (TIER_ORDER.index(g.nodes[n].tier), n)):
        rows[layer[n]].append(n)
    for r in rows:
        for i, n in enumerate(r):
            boxes[n].pos = float(i)
    for sweep in range(SWEEPS):
        order = range(1, n_layers) if sweep % 2 == 0 else range(n_layers - 2, -1, -1)
        for li in order:
            def bary(n: str, down: bool = sweep % 2 == 0) -> float:
                nb = [e.source for e in g.parents(n)] if down else [e.target for e in g.children(n)]
                return sum(boxes[m].pos for m in nb) / len(nb) if nb else boxes[n].pos

            rows[li].sort(key=lambda n: (bary(n), boxes[n].pos))
            for i, n in enumerate(rows[li]):
                boxes[n].pos = float(i)
    for n, b in boxes.items():
        b.w = max(_text_w(n), _text_w(g.nodes[n].zh)) + 2 * BOX_PAD
    x = 20.0
    height = 0.0
    for r in rows:
        col_w = max((boxes[n].w for n in r), default=0.0)
        total = len(r) * BOX_H + max(len(r) - 1, 0) * ROW_GAP
        height = max(height, total)
        for i, n in enumerate(r):
            boxes[n].x = x + (col_w - boxes[n].w) / 2
            boxes[n].y = i * (BOX_H + ROW_GAP)
        x += col_w + LAYER_GAP
    for r in rows:  # centre each layer vertically
        total = len(r) * BOX_H + max(len(r) - 1, 0) * ROW_GAP
        for n in r:
            boxes[n].y += 40.0 + (height - total) / 2
    return boxes, x - LAYER_GAP + 20.0, height + 60.0


def builtin_svg(g: LineageGraph, focus: str | None = None, title: str = "") -> str:
    """A self-contained SVG drawing of ``g`` without Graphviz."""
    boxes, width, height = layout(g)
    esc = html.escape
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="{FONT_PX}">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
           'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#777"/></marker></defs>',
           f'<rect width="100%" height="100%" fill="white"/><text x="20" y="22" font-size="14" '
           f'font-weight="bold">{esc(title or "lineage")}</text>']
    for e in g.edges:
        a, b = boxes[e.source], boxes[e.target]
        x1, y1 = a.x + a.w, a.y + BOX_H / 2
        x2, y2 = b.x, b.y + BOX_H / 2
        dx = max((x2 - x1) / 2, 30.0)
        out.append(f'<path d="M{x1:.1f},{y1:.1f} C{x1 + dx:.1f},{y1:.1f} {x2 - dx:.1f},{y2:.1f} {x2:.1f},{y2:.1f}" '
                   f'fill="none" stroke="#999" stroke-width="1.2" marker-end="url(#arrow)">'
                   f'<title>{esc(e.source)} → {esc(e.target)} ({esc(e.via)})</title></path>')
    for n, bx in boxes.items():
        v = g.nodes[n]
        stroke = ' stroke="#c0392b" stroke-width="2.5"' if n == focus else ' stroke="#888" stroke-width="1"'
        out.append(f'<g><title>{esc(v.definition or v.zh)}</title>'
                   f'<rect x="{bx.x:.1f}" y="{bx.y:.1f}" width="{bx.w:.1f}" height="{BOX_H:.0f}" rx="6" '
                   f'fill="{TIER_COLOUR.get(v.tier, "#fff")}"{stroke}/>'
                   f'<text x="{bx.x + bx.w / 2:.1f}" y="{bx.y + 16:.1f}" text-anchor="middle">{esc(n)}</text>'
                   f'<text x="{bx.x + bx.w / 2:.1f}" y="{bx.y + 32:.1f}" text-anchor="middle" '
                   f'fill="#444">{esc(v.zh)}</text></g>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def render_svg(g: LineageGraph, focus: str | None = None, *, engine: str = "auto", title: str = "") -> str:
    """SVG text: Graphviz when ``engine`` is ``dot`` (or ``auto`` and it is installed), else built-in."""
    if engine == "dot" or (engine == "auto" and dot_binary() is not None):
        return run_dot(to_dot(g, focus), "svg").decode("utf-8")
    return builtin_svg(g, focus, title)


def render_png(g: LineageGraph, focus: str | None = None) -> bytes:
    """PNG bytes through Graphviz. Raises ``GovernanceError`` when ``dot`` is not installed."""
    return run_dot(to_dot(g, focus), "png")
