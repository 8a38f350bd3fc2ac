"""The catalog as one self-contained HTML page: index by tier, a section per table, a client-side search box.

No external assets (works from a file share or an air-gapped office); every value goes through
``html.escape``. The search (vanilla JS) matches table and column names, Chinese names, definitions and
levels, hides non-matching rows and sections, and shows how many columns match.
"""

from __future__ import annotations

import html
from string import Template

from cloud_ingest.governance.catalog import Catalog, TableEntry
from cloud_ingest.governance.lineage import TIER_ORDER

_PAGE = Template("""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>数据资源目录 Data catalog — campus warehouse</title>
<style>
body { font-family: system-ui, "Noto Sans CJK SC", "PingFang SC", "Microsoft YaHei", sans-serif; margin: 0;
       color: #222; }
header { background: #1f4e79; color: #fff; padding: 12px 20px; position: sticky; top: 0; z-index: 2; }
header h1 { margin: 0 0 6px 0; font-size: 20px; }
header .meta { font-size: 12px; opacity: .85; }
#search { width: min(560px, 90%); padding: 6px 10px; font-size: 15px; border-radius: 4px; border: 0;
          margin-top: 8px; }
#count { font-size: 12px; margin-left: 10px; }
.layout { display: flex; }
nav { width: 270px; flex: none; padding: 10px 14px; font-size: 13px; border-right: 1px solid #ddd;
      height: calc(100vh - 110px); overflow-y: auto; position: sticky; top: 110px; }
nav h3 { font-size: 13px; margin: 12px 0 4px; color: #555; }
nav a { display: block; color: #1f4e79; text-decoration: none; padding: 1px 0; }
main { flex: 1; padding: 10px 24px; min-width: 0; }
section { margin-bottom: 28px; }
section h2 { font-size: 17px; margin: 18px 0 4px; }
section h2 small { font-weight: normal; color: #555; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; font-size: 13px; margin: 6px 0; }
dt { color: #666; }
table { border-collapse: collapse; width: 100%; font-size: 13px; }
th, td { border: 1px solid #ddd; padding: 3px 6px; text-align: left; vertical-align: top; }
th { background: #f3f6f9; }
code { font-size: 12px; }
.lv { display: inline-block; padding: 0 5px; border-radius: 3px; font-size: 11px; color: #fff; }
.L1 { background: #2e7d32; } .L2 { background: #1565c0; } .L3 { background: #ef6c00; } .L4 { background: #b71c1c; }
.key { color: #b8860b; }
.hidden { display: none; }
.gaps li { font-size: 13px; }
</style>
</head>
<body>
<header>
<h1>数据资源目录 · Data catalog（一数一标准）</h1>
<div class="meta">$meta</div>
<input id="search" type="search" placeholder="搜索表名、字段、中文名、口径… / search tables, columns, definitions"
       aria-label="search the catalog" autofocus><span id="count"></span>
</header>
<div class="layout">
<nav>$nav</nav>
<main>
$sections
$gaps
</main>
</div>
<script>
(function () {
  var box = document.getElementById("search");
  var count = document.getElementById("count");
  var sections = Array.prototype.slice.call(document.querySelectorAll("section[data-table]"));
  function apply() {
    var terms = box.value.toLowerCase().split(/\\s+/).filter(function (t) { return t; });
    var shown = 0;
    sections.forEach(function (sec) {
      var head = sec.getAttribute("data-search");
      var headHit = terms.every(function (t) { return head.indexOf(t) >= 0; });
      var any = false;
      sec.querySelectorAll("tr[data-search]").forEach(function (row) {
        var text = head + " " + row.getAttribute("data-search");
        var hit = terms.every(function (t) { return text.indexOf(t) >= 0; });
        row.classList.toggle("hidden", !hit && !headHit);
        if (hit) { any = true; shown += 1; }
      });
      sec.classList.toggle("hidden", !(any || headHit));
      var link = document.querySelector('nav a[href="#' + sec.id + '"]');
      if (link) { link.classList.toggle("hidden", !(any || headHit)); }
    });
    count.textContent = terms.length ? shown + " matching columns" : "";
  }
  box.addEventListener("input", apply);
  if (location.hash.indexOf("#q=") === 0) { box.value = decodeURIComponent(location.hash.slice(3)); apply(); }
})();
</script>
</body>
</html>
""")


def _e(x: object) -> str:
    return html.escape("" if x is None else str(x))


def _search_text(*parts: object) -> str:
    return html.escape(" ".join(str(p) for p in parts if p).lower(), quote=True)


def _section(t: TableEntry) -> str:
    rows = []
    for c in t.columns:
        key = ' <span class="key" title="key column">🔑</span>' if c.is_key else ""
        rows.append(
            f'<tr data-search="{_search_text(c.name, c.zh, c.definition, c.unit, c.classification_level, c.type)}">'
            f"<td><code>{_e(c.name)}</code>{key}</td><td>{_e(c.zh)}</td><td>{_e(c.type)}"
            f"<br><small>{_e(c.type_duckdb)} / {_e(c.type_postgres)}</small></td><td>{_e(c.definition)}</td>"
            f"<td>{_e(c.unit)}</td><td>{_e(c.value_range)}</td>"
            f'<td><span class="lv {_e(c.classification_level)}" title="{_e(c.level_zh)}">'
            f"{_e(c.classification_level)}</span></td></tr>")
    meta = [("中文名 Chinese name", t.zh), ("口径 Definition", t.definition),
            ("层 Tier", f"{t.tier} {t.tier_zh}"), ("数据域 Data domain", f"{t.domain} {t.domain_zh}"),
            ("主题域 Subject domain", f"{t.subject_domain} {t.subject_domain_zh}"),
            ("来源 Source", t.source), ("上游 Upstream", ", ".join(t.upstream) or "—"),
            ("下游 Downstream", ", ".join(t.downstream) or "—"), ("更新频率 Update", t.update_frequency),
            ("负责人 Owner", t.owner + (" (schema owner)" if t.owner_inherited else "")),
            ("分级 Level", f"{t.classification_level} (highest of its columns)"),
            ("键 Keys", ", ".join(t.primary_key or t.unique_key) or "—")]
    dl = "".join(f"<dt>{_e(k)}</dt><dd>{_e(v)}</dd>" for k, v in meta)
    head = _search_text(t.name, t.zh, t.definition, t.tier, t.domain, t.subject_domain)
    return (f'<section id="{_e(t.name)}" data-table="{_e(t.name)}" data-search="{head}">'
            f"<h2><code>{_e(t.name)}</code> <small>{_e(t.zh)}</small> "
            f'<span class="lv {_e(t.classification_level)}">{_e(t.classification_level)}</span></h2>'
            f"<dl>{dl}</dl><table><thead><tr><th>字段 Column</th><th>中文名</th><th>类型 Type</th>"
            f"<th>口径 Definition</th><th>单位 Unit</th><th>取值范围 Range</th><th>分级 Level</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table></section>")


def render_html(cat: Catalog) -> str:
    """The catalog page (UTF-8 text)."""
    nav = []
    for tier in (*TIER_ORDER[1:], "meta"):
        members = [t for t in cat.tables if t.tier == tier]
        if members:
            nav.append(f"<h3>{_e(tier.upper())} {_e(members[0].tier_zh)}</h3>")
            nav += [f'<a href="#{_e(t.name)}" title="{_e(t.zh)}">{_e(t.name)}</a>' for t in members]
    gaps = ""
    if cat.gaps:
        items = "".join(f"<li><code>{_e(g.column or g.table)}</code> {_e(g.field)}: {_e(g.note)}</li>"
                        for g in cat.gaps)
        gaps = (f'<section id="gaps"><h2>待补充 Gaps <small>({len(cat.gaps)}: what the schema data does not say '
                f'yet)</small></h2><ul class="gaps">{items}</ul></section>')
    meta = (f"schema v{cat.schema_version} · 数据字典 {cat.dictionary_version} · 词根库 v{cat.word_roots_version} · "
            f"{len(cat.tables)} tables, {cat.column_count} columns · owner {cat.owner}")
    return _PAGE.substitute(meta=_e(meta), nav="\n".join(nav),
                            sections="\n".join(_section(t) for t in cat.tables), gaps=gaps)
