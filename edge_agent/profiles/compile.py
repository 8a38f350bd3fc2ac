"""Turn a shape-valid :class:`ProfileModel` into a runtime :class:`Profile`, checking every cross-reference.

Each problem raises :class:`ProfileError` with the file, the dotted field path (``metrics[2].unit``) and
the problem (``unknown unit 'degC2'``), plus the YAML line when known.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from edge_agent.errors import ProfileError
from edge_agent.model import Priority, ProfileRef
from edge_agent.profiles import schema as s
from edge_agent.profiles.paths import PathError, Steps, format_path, parse_path
from edge_agent.profiles.registry import MetricRegistry
from edge_agent.profiles.spec import (
    LEVELS,
    PRIORITIES,
    AttributeSpec,
    Condition,
    Embedded,
    EventSpec,
    FieldSpec,
    Layout,
    MetricSpec,
    Profile,
    Reduction,
    TopicSpec,
    norm_value,
)
from edge_agent.profiles.topics import TopicPatternError, compile_pattern

Loc = tuple[str | int, ...]
LineOf = Callable[[Loc], int | None]

_FIELD_CODES: dict[str, tuple[str, int]] = {
    "u8": ("B", 1),
    "s8": ("b", 1),
    "u16le": ("<H", 2),
    "s16le": ("<h", 2),
    "u16be": (">H", 2),
    "s16be": (">h", 2),
    "u24le": ("u24le", 3),
    "u24be": ("u24be", 3),
    "u32le": ("<I", 4),
    "s32le": ("<i", 4),
    "u32be": (">I", 4),
    "s32be": (">i", 4),
    "f32le": ("<f", 4),
    "f32be": (">f", 4),
}


# Timestamp defaults of formats that define where the time is: line protocol's trailing integer is in
# nanoseconds unless the writer says otherwise; SenML times are seconds, below 2**28 relative to now.
FORMAT_TIMESTAMPS = {
    "influx": s.TimestampModel(path="time", unit="ns"),
    "senml": s.TimestampModel(path="t", unit="s", relative_below=2**28),
}


def loc_text(loc: Loc) -> str:
    """``("metrics", 2, "unit")`` -> ``metrics[2].unit``."""
    out = ""
    for step in loc:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out


class _Ctx:
    """Error construction for one file."""

    def __init__(self, file: str, line_of: LineOf | None) -> None:
        self.file = file
        self.line_of = line_of

    def error(self, loc: Loc, problem: str) -> ProfileError:
        line = self.line_of(loc) if self.line_of else None
        return ProfileError(self.file, loc_text(loc), f"{problem} (line {line})" if line else problem)

    def path(self, text: str, loc: Loc) -> Steps:
        try:
            return parse_path(text)
        except PathError as exc:
            raise self.error(loc, f"bad path: {exc}") from None

    def paths(self, value: str | list[str], loc: Loc) -> tuple[Steps, ...]:
        if isinstance(value, str):
            return (self.path(value, loc),)
        return tuple(self.path(v, (*loc, i)) for i, v in enumerate(value))


def split_factor(factor: float) -> tuple[float, float]:
    """``(mul, div)`` with ``mul / div == factor``, using an integer divisor when 1/factor is one."""
    if 0 < abs(factor) < 1:
        inv = 1 / factor
        if abs(inv - round(inv)) < 1e-9 * abs(inv):
            return 1.0, float(round(inv))
    return factor, 1.0


def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile(fnmatch.translate(pattern), re.DOTALL)


def compile_layout(model: s.LayoutModel, ctx: _Ctx, loc: Loc, default_id: str) -> Layout:
    """Compile a binary layout (inline in a profile, or a file under ``layouts/``)."""

    def field(f: s.LayoutField | s.LayoutChannel, floc: Loc, offset: int) -> FieldSpec:
        name = f.name
        fmt = f.format
        if name is None or fmt is None:
            raise ctx.error(floc, "a channel needs 'name' and 'format', or 'fields', or 'skip'")
        if fmt == "hex":
            length = getattr(f, "length", None)
            if length is None:
                raise ctx.error((*floc, "length"), "'hex' fields need a length in bytes")
            return FieldSpec(name, "hex", length, 1.0, offset)
        code, size = _FIELD_CODES[fmt]
        mul, div = split_factor(f.scale)
        return FieldSpec(name, code, size, mul, offset, div)

    channels: dict[tuple[int, int], tuple[FieldSpec, ...] | int] = {}
    fields: list[FieldSpec] = []
    if model.kind == "channel_type":
        if not model.channels:
            raise ctx.error((*loc, "channels"), "a channel_type layout needs at least one channel")
        for i, ch in enumerate(model.channels):
            cloc = (*loc, "channels", i)
            key = (ch.channel, ch.type)
            if key in channels:
                raise ctx.error(cloc, f"channel 0x{ch.channel:02x} type 0x{ch.type:02x} is declared twice")
            if ch.skip is not None:
                channels[key] = ch.skip
            elif ch.fields:
                specs, off = [], 0
                for j, f in enumerate(ch.fields):
                    spec = field(f, (*cloc, "fields", j), off)
                    specs.append(spec)
                    off += spec.size
                channels[key] = tuple(specs)
            else:
                channels[key] = (field(ch, cloc, 0),)
    else:
        if not model.fields:
            raise ctx.error((*loc, "fields"), "a struct layout needs at least one field")
        off = 0
        for j, f in enumerate(model.fields):
            spec = field(f, (*loc, "fields", j), f.offset if f.offset is not None else off)
            fields.append(spec)
            off = spec.offset + spec.size
    return Layout(model.id or default_id, model.kind, channels, tuple(fields), model.on_unknown)


def _reduction(base: s.ReductionModel, over: s.MetricReductionModel | None, ctx: _Ctx, loc: Loc) -> Reduction:
    def pick(name: str) -> Any:
        value = getattr(over, name, None) if over is not None else None
        return getattr(base, name) if value is None else value

    deadband = pick("deadband")
    bands = tuple(tuple(b) for b in pick("bands_hz"))
    for i, (lo, hi) in enumerate(bands):
        if not 0 <= lo < hi:
            raise ctx.error((*loc, "bands_hz", i), "a band is [low_hz, high_hz] with 0 <= low < high")
    return Reduction(
        mode=pick("mode"),
        window_s=pick("window_s"),
        aggregates=tuple(pick("aggregates")),
        deadband_abs=deadband.abs if deadband else None,
        deadband_rel=deadband.rel if deadband else None,
        max_silence_s=deadband.max_silence_s if deadband else None,
        counter=tuple(pick("counter")),
        features=tuple(pick("features")),
        bands_hz=bands,
        priority=PRIORITIES[pick("priority")],
    )


def _where(where: Mapping[str, Any], ctx: _Ctx, loc: Loc) -> tuple[tuple[Steps, frozenset[Any]], ...]:
    out = []
    for key, value in where.items():
        values = value if isinstance(value, list) else [value]
        out.append((ctx.path(key, (*loc, key)), frozenset(norm_value(v) for v in values)))
    return tuple(out)


def compile_profile(
    m: s.ProfileModel,
    *,
    file: str,
    registry: MetricRegistry,
    layouts: Mapping[str, Layout],
    line_of: LineOf | None = None,
) -> Profile:
    """Check cross-references and build the runtime profile. Raises :class:`ProfileError`."""
    ctx = _Ctx(file, line_of)
    src = m.source

    # -- topics and exclusions
    topics: list[TopicSpec] = []
    single = not isinstance(src.topic, list)
    entries: list[str | s.TopicEntry] = [src.topic] if not isinstance(src.topic, list) else list(src.topic)
    for i, entry in enumerate(entries):
        tloc: Loc = ("source", "topic") if single else ("source", "topic", i)
        text = entry if isinstance(entry, str) else entry.pattern
        records = (
            None
            if isinstance(entry, str) or entry.records is None
            else ctx.path(entry.records, (*tloc, "records"))
        )
        try:
            topics.append(TopicSpec(compile_pattern(text), records))
        except TopicPatternError as exc:
            raise ctx.error(tloc if isinstance(entry, str) else (*tloc, "pattern"), str(exc)) from None
    excludes = []
    for i, text in enumerate(src.exclude):
        try:
            excludes.append(compile_pattern(text))
        except TopicPatternError as exc:
            raise ctx.error(("source", "exclude", i), str(exc)) from None

    # -- format options
    fmt = src.format
    if src.csv is not None and fmt != "csv":
        raise ctx.error(("source", "csv"), f"csv options need format 'csv', not {fmt!r}")
    if src.layout is not None and fmt != "binary":
        raise ctx.error(
            ("source", "layout"), f"a layout needs format 'binary' (use 'embedded' for a field in {fmt})"
        )
    if src.embedded is not None and fmt not in ("json", "msgpack"):
        raise ctx.error(("source", "embedded"), "embedded binary fields need format 'json' or 'msgpack'")
    csv = None
    if fmt == "csv":
        if src.csv is None or (not src.csv.columns and not src.csv.header):
            raise ctx.error(("source", "csv"), "format 'csv' needs csv.columns or csv.header: true")
        csv = (src.csv.delimiter, tuple(src.csv.columns), src.csv.header)

    def resolve_layout(ref: str | s.LayoutModel, lloc: Loc) -> Layout:
        if isinstance(ref, str):
            if ref not in layouts:
                hint = difflib.get_close_matches(ref, list(layouts), 1)
                raise ctx.error(
                    lloc, f"unknown layout {ref!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                )
            return layouts[ref]
        return compile_layout(ref, ctx, lloc, f"{m.id}.layout")

    layout = None
    if fmt == "binary":
        if src.layout is None:
            raise ctx.error(("source", "layout"), "format 'binary' needs a layout")
        layout = resolve_layout(src.layout, ("source", "layout"))
    embedded = None
    if src.embedded is not None:
        e = src.embedded
        eloc: Loc = ("source", "embedded")
        embedded = Embedded(
            ctx.path(e.path, (*eloc, "path")),
            e.path,
            e.encoding,
            resolve_layout(e.layout, (*eloc, "layout")),
            ctx.path(e.into, (*eloc, "into")),
            ctx.path(e.unless, (*eloc, "unless")) if e.unless else None,
        )
        if not embedded.into:
            raise ctx.error((*eloc, "into"), "'into' must name a field, not the whole document")

    # -- device id sources
    sources: list[tuple[str, Any]] = []
    for i, text in enumerate(src.device_id):
        kind, _, arg = text.partition(":")
        if kind == "topic" and arg:
            sources.append(("topic", arg))
        elif kind == "path":
            sources.append(("path", ctx.path(arg, ("source", "device_id", i))))
        else:
            raise ctx.error(
                ("source", "device_id", i),
                f"expected 'topic:<placeholder>' or 'path:<field path>', got {text!r}",
            )
    if not any(k == "path" for k, _ in sources):
        names = {a for k, a in sources if k == "topic"}
        for t in topics:
            if not names & set(t.pattern.placeholders):
                raise ctx.error(
                    ("source", "device_id"),
                    f"topic pattern {t.pattern.text!r} has no placeholder among {sorted(names)} "
                    "and no payload path is given",
                )

    # -- match
    conds: list[Condition] = []
    ident: set[Any] = set()
    for key in src.match.keys:
        conds.append(Condition("key", ctx.path(key, ("source", "match", "keys")), key))
        ident.add(("key", key))
    for key, value in src.match.equals.items():
        values = frozenset(norm_value(v) for v in (value if isinstance(value, list) else [value]))
        conds.append(Condition("eq", ctx.path(key, ("source", "match", "equals", key)), key, values))
        ident.add(("eq", key, values))
    for key, pattern in src.match.glob.items():
        conds.append(
            Condition("glob", ctx.path(key, ("source", "match", "glob", key)), key, regex=_glob(pattern))
        )
        ident.add(("glob", key, pattern))
    match_device = tuple(_glob(p) for p in src.match.device)
    if match_device:
        ident.add(("device", tuple(sorted(src.match.device))))

    # -- timestamp (formats with a standard time field default to it)
    ts = src.timestamp
    if "timestamp" not in src.model_fields_set and fmt in FORMAT_TIMESTAMPS:
        ts = FORMAT_TIMESTAMPS[fmt]
    ts_paths: tuple[Steps, ...] = ()
    if ts.unit != "receive":
        if ts.path is None:
            raise ctx.error(
                ("source", "timestamp", "path"), f"required with unit {ts.unit!r} (or use unit 'receive')"
            )
        ts_paths = ctx.paths(ts.path, ("source", "timestamp", "path"))
    zone = None
    if ts.timezone is not None:
        try:
            zone = ZoneInfo(ts.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ctx.error(
                ("source", "timestamp", "timezone"), f"unknown time zone {ts.timezone!r}"
            ) from None
    records = ctx.path(src.records, ("source", "records")) if src.records else None

    # -- metrics
    gov = m.governance
    reduction = _reduction(m.reduction, None, ctx, ("reduction",))
    metrics: list[MetricSpec] = []
    seen: dict[tuple[Any, ...], int] = {}
    for i, mm in enumerate(m.metrics):
        loc: Loc = ("metrics", i)
        mdef = registry.metric(mm.name)
        if mdef is None:
            hint = difflib.get_close_matches(mm.name, list(registry.metrics), 1)
            raise ctx.error(
                (*loc, "name"),
                f"unknown canonical metric {mm.name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else ""),
            )
        src_unit = mm.unit if mm.unit is not None else mdef.unit
        code = registry.resolve_unit(src_unit)
        if code is None:
            raise ctx.error((*loc, "unit"), f"unknown unit {src_unit!r}")
        conv = registry.conversion(code, mdef.unit)
        if conv is None:
            raise ctx.error(
                (*loc, "unit"), f"{src_unit!r} cannot be converted to {mdef.unit!r}, the unit of {mm.name}"
            )
        mtype = mm.type or mdef.type
        if mtype == "waveform" and mm.sample_rate_hz is None and mm.sample_rate_path is None:
            raise ctx.error((*loc, "sample_rate_hz"), "a waveform needs sample_rate_hz or sample_rate_path")
        rng = mm.range if mm.range is not None else mdef.range
        if rng is not None and not rng[0] < rng[1]:
            raise ctx.error((*loc, "range"), "range must be [low, high] with low < high")
        where = _where(mm.where, ctx, (*loc, "where"))
        ident_key = (mm.name, tuple(sorted((format_path(p), tuple(sorted(v))) for p, v in where)))
        if ident_key in seen:
            raise ctx.error(
                (*loc, "name"),
                f"metric {mm.name!r} is declared twice (also metrics[{seen[ident_key]}]); "
                "list alternative paths in one 'path' instead",
            )
        seen[ident_key] = i
        red = _reduction(m.reduction, mm.reduction, ctx, (*loc, "reduction"))
        priority = max(red.priority, Priority.EVENT) if mtype == "event" else red.priority
        enum = dict(mm.map) if mm.map is not None else None
        paths = ctx.paths(mm.path, (*loc, "path"))
        a, a_div = split_factor(conv[0])
        scale, scale_div = split_factor(mm.scale)
        metrics.append(
            MetricSpec(
                name=mm.name,
                paths=paths,
                path_text=mm.path if isinstance(mm.path, str) else " | ".join(mm.path),
                path_texts=tuple(format_path(p) for p in paths),
                unit=mdef.unit,
                source_unit=code,
                a=a,
                b=conv[1],
                scale=scale,
                offset=mm.offset,
                a_div=a_div,
                scale_div=scale_div,
                type=mtype,
                lo=rng[0] if rng else None,
                hi=rng[1] if rng else None,
                quarantine_out_of_range=mm.on_out_of_range == "quarantine",
                precision=mm.precision,
                interval_s=mm.interval_s,
                enum=enum,
                enum_folded={k.casefold(): v for k, v in enum.items()} if enum else None,
                where=where,
                unit_paths=ctx.paths(mm.unit_path, (*loc, "unit_path")) if mm.unit_path else (),
                sample_rate_hz=mm.sample_rate_hz,
                sample_rate_path=ctx.path(mm.sample_rate_path, (*loc, "sample_rate_path"))
                if mm.sample_rate_path
                else None,
                reduction=red,
                priority=priority,
                classification=mm.classification or gov.fields.get(mm.name) or gov.classification,
            )
        )

    # -- events
    events: list[EventSpec] = []
    kinds: set[str] = set()
    for i, em in enumerate(m.events):
        loc = ("events", i)
        if em.kind in kinds:
            raise ctx.error((*loc, "kind"), f"event kind {em.kind!r} is declared twice")
        kinds.add(em.kind)
        attrs: list[AttributeSpec] = []
        attr_names: set[str] = set()
        for j, am in enumerate(em.attributes):
            aloc: Loc = (*loc, "attributes", j)
            if am.name in attr_names:
                raise ctx.error((*aloc, "name"), f"attribute {am.name!r} is declared twice")
            attr_names.add(am.name)
            level = am.classification or gov.fields.get(f"{em.kind}.{am.name}")
            if am.protect != "none":
                level = level or "sensitive"
                if LEVELS[level] < LEVELS["sensitive"]:
                    raise ctx.error(
                        (*aloc, "classification"),
                        f"personal data (protect: {am.protect}) must be 'sensitive' or 'restricted', "
                        f"not {level!r}",
                    )
            attrs.append(
                AttributeSpec(
                    am.name,
                    ctx.paths(am.path, (*aloc, "path")),
                    am.protect,
                    am.keep,
                    level or gov.classification,
                )
            )
        trig = em.trigger
        equals = None
        if trig.equals is not None:
            trig_values = trig.equals if isinstance(trig.equals, list) else [trig.equals]
            equals = frozenset(norm_value(v) for v in trig_values)
        events.append(
            EventSpec(
                em.kind,
                ctx.path(trig.path, (*loc, "trigger", "path")),
                trig.path,
                equals,
                frozenset(norm_value(v) for v in trig.not_equals),
                tuple(attrs),
                PRIORITIES[em.priority],
            )
        )

    known = {mm.name for mm in m.metrics} | {f"{e.kind}.{a.name}" for e in events for a in e.attributes}
    for key in gov.fields:
        if key not in known:
            raise ctx.error(
                ("governance", "fields", key),
                f"{key!r} is neither a metric of this profile nor an 'event.attribute'",
            )
    if not metrics and not events:
        raise ctx.error(("metrics",), "a profile needs at least one metric or event")
    if m.generic and src.match.device:
        raise ctx.error(("source", "match", "device"), "a generic profile must not be limited to device ids")

    field_classes = {ms.name: ms.classification for ms in metrics}
    field_classes.update({f"{e.kind}.{a.name}": a.classification for e in events for a in e.attributes})
    parse_key = (fmt, csv, layout.id if layout else None)
    return Profile(
        id=m.id,
        version=m.version,
        ref=ProfileRef(m.id, m.version),
        file=file,
        vendor=m.vendor,
        model=m.model,
        description=m.description,
        ecosystem=m.ecosystem,
        domain=m.domain,
        generic=m.generic,
        topics=tuple(topics),
        excludes=tuple(excludes),
        format=fmt,
        parse_key=parse_key,
        csv=csv,
        layout=layout,
        records=records,
        device_sources=tuple(sources),
        match=tuple(conds),
        match_device=match_device,
        specificity=frozenset(ident),
        ts_paths=ts_paths,
        ts_unit=ts.unit,
        ts_zone=zone,
        ts_relative_below=ts.relative_below,
        max_payload_bytes=src.max_payload_bytes,
        embedded=embedded,
        metrics=tuple(metrics),
        events=tuple(events),
        reduction=reduction,
        retention_days=gov.retention_days,
        classification=gov.classification,
        field_classification=field_classes,
        references=tuple(m.references),
        personal=any(a.protect != "none" for e in events for a in e.attributes),
    )
