"""The word-root library (词根库): load and validate ``word_roots.yaml``, split names into roots.

A name is a sequence of tokens joined by ``_``. :meth:`RootLibrary.split` matches the tokens against the
registered roots and abbreviations, longest compound first (``pm2_5`` is one root), and returns the roots
it found and the tokens it could not place. :func:`render_markdown` produces ``docs/word-roots.md``.

Loading refuses an inconsistent library with ``GovernanceFileError`` naming the file and the field: a
missing field, an unknown category, the same spelling registered twice (as root or abbreviation), a
version history whose latest entry is not the library's version.
"""

from __future__ import annotations

import difflib
import functools
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cloud_ingest.governance.errors import GovernanceFileError

ROOTS_FILE = "word_roots.yaml"
CATEGORIES = ("entity", "attribute", "measure", "unit", "time", "tier", "suffix", "domain")
_REQUIRED = ("root", "zh", "en", "definition", "category")


@dataclass(slots=True, frozen=True)
class WordRoot:
    """One registered root; names may use ``root`` or ``abbreviation``."""

    root: str
    abbreviation: str
    zh: str
    en: str
    definition: str
    categories: tuple[str, ...]
    homonym: bool = False

    @property
    def spellings(self) -> tuple[str, ...]:
        return (self.root, self.abbreviation) if self.abbreviation else (self.root,)

    def has(self, category: str) -> bool:
        return category in self.categories


@dataclass(slots=True, frozen=True)
class Change:
    """One entry of a version history."""

    version: str
    date: str
    changes: tuple[str, ...]


@dataclass(slots=True, frozen=True)
class Waiver:
    """A name allowed to break the table rule for now, with why and what it should become."""

    name: str
    reason: str
    proposed: str


@dataclass(slots=True, frozen=True)
class Split:
    """A name split into roots: ``roots`` found in order, ``unknown`` tokens that match no root."""

    roots: tuple[WordRoot, ...]
    unknown: tuple[str, ...]


@dataclass(frozen=True)  # not slotted: the spelling index below is a cached property
class RootLibrary:
    """The whole library: roots by spelling, naming rules, waivers and version history."""

    file: str
    version: str
    date: str
    owner: str
    roots: tuple[WordRoot, ...]
    history: tuple[Change, ...]
    suffix_optional_tiers: tuple[str, ...]
    waivers: tuple[Waiver, ...]

    @functools.cached_property
    def by_spelling(self) -> dict[str, WordRoot]:
        return {s: r for r in self.roots for s in r.spellings}

    @functools.cached_property
    def _max_parts(self) -> int:
        return max((s.count("_") + 1 for s in self.by_spelling), default=1)

    def lookup(self, token: str) -> WordRoot | None:
        return self.by_spelling.get(token)

    def spellings_of(self, category: str) -> tuple[str, ...]:
        return tuple(sorted(s for s, r in self.by_spelling.items() if r.has(category)))

    def split(self, name: str) -> Split:
        """Split ``name`` on ``_`` and match tokens to roots, longest compound first."""
        tokens = name.split("_")
        found: list[WordRoot] = []
        unknown: list[str] = []
        i = 0
        while i < len(tokens):
            for width in range(min(self._max_parts, len(tokens) - i), 0, -1):
                root = self.by_spelling.get("_".join(tokens[i:i + width]))
                if root is not None:
                    found.append(root)
                    i += width
                    break
            else:
                unknown.append(tokens[i])
                i += 1
        return Split(tuple(found), tuple(unknown))

    def suggest(self, token: str, category: str | None = None) -> str:
        """The nearest registered spelling (difflib), restricted to ``category`` when given; "" if none."""
        pool = self.spellings_of(category) if category else tuple(self.by_spelling)
        hits = difflib.get_close_matches(token, pool, n=1, cutoff=0.5)
        if not hits and category is None:
            hits = difflib.get_close_matches(token, pool, n=1, cutoff=0.3)
        return hits[0] if hits else ""


# --------------------------------------------------------------------------------------------- loading


def _text(raw: dict[str, Any], key: str, where: str, file: str, *, required: bool = True) -> str:
    value = raw.get(key)
    if value is None or (required and str(value).strip() == ""):
        if required:
            raise GovernanceFileError(file, f"{where}.{key}", "missing")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise GovernanceFileError(file, f"{where}.{key}", f"must be text, not {type(value).__name__}")
    return str(value)


def parse_history(raw: Any, file: str, where: str = "changes") -> tuple[Change, ...]:
    """A version history: a list of {version, date, changes: [text, …]}, oldest first."""
    if not isinstance(raw, list) or not raw:
        raise GovernanceFileError(file, where, "must be a non-empty list of {version, date, changes}")
    out = []
    for i, entry in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(entry, dict):
            raise GovernanceFileError(file, at, "must be a mapping with version, date, changes")
        changes = entry.get("changes")
        if not isinstance(changes, list) or not changes or not all(isinstance(c, str) for c in changes):
            raise GovernanceFileError(file, f"{at}.changes", "must be a non-empty list of text")
        out.append(Change(_text(entry, "version", at, file), _text(entry, "date", at, file), tuple(changes)))
    return tuple(out)


def _root(raw: Any, i: int, file: str) -> WordRoot:
    where = f"roots[{i}]"
    if not isinstance(raw, dict):
        raise GovernanceFileError(file, where, "must be a mapping")
    for key in _REQUIRED:
        if key not in raw:
            raise GovernanceFileError(file, f"{where}.{key}", "missing")
    root = _text(raw, "root", where, file)
    where = f"roots[{i}] ({root})"
    cats = raw["category"] if isinstance(raw["category"], list) else [raw["category"]]
    for c in cats:
        if c not in CATEGORIES:
            raise GovernanceFileError(file, f"{where}.category",
                                      f"{c!r} is not one of {', '.join(CATEGORIES)}")
    abbr = _text(raw, "abbreviation", where, file, required=False)
    for spelling in (root, abbr):
        if spelling and (spelling != spelling.lower() or " " in spelling or spelling.startswith("_")):
            raise GovernanceFileError(file, where, f"{spelling!r} must be lower case without spaces")
    if abbr and "_" in abbr:
        raise GovernanceFileError(file, f"{where}.abbreviation", "an abbreviation cannot contain '_'")
    return WordRoot(root, "" if abbr == root else abbr, _text(raw, "zh", where, file),
                    _text(raw, "en", where, file), _text(raw, "definition", where, file), tuple(cats),
                    bool(raw.get("homonym", False)))


def parse_library(raw: Any, file: str) -> RootLibrary:
    """Validate a parsed ``word_roots.yaml`` document."""
    if not isinstance(raw, dict) or not isinstance(raw.get("roots"), list):
        raise GovernanceFileError(file, "roots", "missing or not a list")
    roots = tuple(_root(r, i, file) for i, r in enumerate(raw["roots"]))
    seen: dict[str, str] = {}
    for r in roots:
        for s in r.spellings:
            if s in seen:
                raise GovernanceFileError(file, f"roots ({r.root})",
                                          f"{s!r} is already registered by root {seen[s]!r}")
            seen[s] = r.root
    version = str(raw.get("version") or "")
    if not version:
        raise GovernanceFileError(file, "version", "missing")
    history = parse_history(raw.get("changes"), file)
    if history[-1].version != version:
        raise GovernanceFileError(file, "changes", f"the latest entry is version {history[-1].version}, "
                                                   f"the library is version {version}")
    naming = raw.get("naming") or {}
    if not isinstance(naming, dict):
        raise GovernanceFileError(file, "naming", "must be a mapping")
    optional = naming.get("suffix_optional_tiers") or []
    tiers = {s for r in roots if r.has("tier") for s in r.spellings}
    for t in optional:
        if t not in tiers:
            raise GovernanceFileError(file, "naming.suffix_optional_tiers", f"{t!r} is not a registered tier")
    waivers = []
    for i, w in enumerate(naming.get("waivers") or []):
        if not isinstance(w, dict):
            raise GovernanceFileError(file, f"naming.waivers[{i}]", "must be a mapping")
        at = f"naming.waivers[{i}]"
        waivers.append(Waiver(_text(w, "name", at, file), _text(w, "reason", at, file),
                              _text(w, "proposed", at, file, required=False)))
    return RootLibrary(file, version, str(raw.get("date", "")), str(raw.get("owner", "")), roots, history,
                       tuple(optional), tuple(waivers))


def load_roots(path: str | Path | None = None) -> RootLibrary:
    """Load the packaged library, or ``path``. Raises ``GovernanceFileError`` naming file and field."""
    if path is None:
        file = f"cloud_ingest/governance/{ROOTS_FILE}"
        text = resources.files("cloud_ingest.governance").joinpath(ROOTS_FILE).read_text(encoding="utf-8")
    else:
        file = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise GovernanceFileError(file, "", f"cannot read: {exc.strerror}") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise GovernanceFileError(file, "", f"not valid YAML: {exc}") from exc
    return parse_library(raw, file)


# ------------------------------------------------------------------------------------------------ docs


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(lib: RootLibrary) -> str:
    """``docs/word-roots.md``: the library as tables per category, then the version history."""
    lines = [
        "# Word-root library (词根库)",
        "",
        f"Generated from `{ROOTS_FILE}` (version {lib.version}, {lib.date}; owner {lib.owner}) by "
        "`campus-cloud naming docs`. Do not edit by hand: edit the YAML and regenerate.",
        "",
        "Names are roots (or their abbreviations) joined by `_`. Tables are "
        "`<tier>_<domain>_<subject>_<suffix>`; tiers without a required suffix: "
        f"{', '.join(lib.suffix_optional_tiers) or 'none'}. `campus-cloud naming check` verifies every "
        "warehouse table and column name and every canonical metric and event name.",
        "",
    ]
    for cat in CATEGORIES:
        members = sorted((r for r in lib.roots if r.categories[0] == cat), key=lambda r: r.root)
        if not members:
            continue
        lines += [f"## {cat}", "", "| root | abbreviation | 中文 | English | definition | also |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for r in members:
            mark = " ⚠ homonym" if r.homonym else ""
            abbr = f"`{r.abbreviation}`" if r.abbreviation else ""
            lines.append(f"| `{r.root}` | {abbr} | {_cell(r.zh)} | {_cell(r.en)} | "
                         f"{_cell(r.definition)}{mark} | {', '.join(r.categories[1:])} |")
        lines.append("")
    if lib.waivers:
        lines += ["## Waivers", "", "| name | reason | proposed |", "| --- | --- | --- |"]
        lines += [f"| `{w.name}` | {_cell(w.reason)} | `{w.proposed}` |" for w in lib.waivers]
        lines.append("")
    lines += ["## Version history", ""]
    for ch in reversed(lib.history):
        lines.append(f"- **{ch.version}** ({ch.date})")
        lines += [f"  - {_cell(c)}" for c in ch.changes]
    return "\n".join(lines) + "\n"
