"""The pure decoder: one MQTT message + the profile set -> readings, events, waveforms or a quarantine.

``decode`` never raises. Every failure becomes a :class:`Quarantine` with a :class:`Reason` code and a
detail naming the field and the problem; an unexpected exception becomes ``decoder_bug`` with the
exception text, and its traceback is logged. Steps, in order:

1. reject an invalid topic (``bad_topic``), an empty payload (``empty_payload``), an oversized one
   (``payload_too_large``);
2. topic candidates (``no_profile`` if none), parse the payload once per distinct format among them
   (``malformed`` if no candidate can parse it), device map, payload match, specificity
   (``no_profile`` / ``ambiguous_profile``);
3. with the chosen profile: embedded binary fields, records, then per record the device id
   (``missing_field``), the timestamp (``bad_timestamp``; missing -> receive time; skewed -> receive
   time + CLOCK_SKEW), metric values (``wrong_type``, ``out_of_range``), events (personal attributes
   protected), waveforms; nothing found -> ``no_readings``.

Profiles that declare personal attributes get a redacted copy of the message in the result, so the raw
identifier never travels further (not even into the quarantine table).
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

import orjson

from edge_agent.decode.formats import (
    decode_layout,
    malformed,
    parse_csv,
    parse_json,
    parse_msgpack,
    parse_raw,
)
from edge_agent.decode.influx import parse_influx
from edge_agent.decode.senml import parse_senml
from edge_agent.decode.timestamps import to_epoch_ms
from edge_agent.decode.values import canonical_value, sample_rate, samples_of, show
from edge_agent.errors import DecodeError
from edge_agent.model import DecodeResult, Event, Message, Quality, Quarantine, Reading, Reason, Waveform
from edge_agent.privacy import Pseudonymizer
from edge_agent.profiles.matcher import Candidate, ProfileSet
from edge_agent.profiles.paths import MISSING, format_path, get, put
from edge_agent.profiles.spec import Profile, norm_value
from edge_agent.profiles.topics import topic_problem

_LOGGER = logging.getLogger(__name__)

MAX_DEVICE_ID = 256  # characters; longer ids are refused (they end up as dictionary keys everywhere)
MAX_ATTR_TEXT = 1024  # characters of a non-scalar event attribute kept (as JSON text)
_GENERIC = int(Quality.GENERIC)
_RECEIVE = int(Quality.RECEIVE_TIME)
_SKEW = int(Quality.CLOCK_SKEW)
_OOR = int(Quality.OUT_OF_RANGE)
_Z = norm_value(None)


def decode(
    message: Message,
    profiles: ProfileSet,
    *,
    now_ms: int,
    max_skew_ms: int = 300_000,
    pseudonymizer: Pseudonymizer | None = None,
) -> DecodeResult:
    """Decode one message. Never raises (see the module docstring for the reason codes).

    ``now_ms`` is the gateway clock used for the skew check; the receive time is ``message.received_ms``.
    Without a ``pseudonymizer``, attributes the profile protects with ``hash`` are dropped.
    """
    try:
        return _Decoder(message, profiles, now_ms, max_skew_ms, pseudonymizer).run()
    except Exception as exc:  # the decoder never raises: an unexpected error is a bug, quarantined
        _LOGGER.exception("decoder bug on topic %s: %s", *_describe(message))
        return DecodeResult(
            message=_redact_unknown(message, profiles),
            profile=None,
            device=None,
            quarantine=Quarantine(Reason.DECODER_BUG, f"{type(exc).__name__}: {exc}"[:500]),
        )


def _describe(message: Message) -> tuple[str, str]:
    """Topic and a truncated payload for the bug log; must not fail even on a broken message."""
    try:
        topic = str(message.topic)[:200]
    except Exception:
        topic = "<unprintable>"
    try:
        payload = repr(bytes(message.payload[:256]))
    except Exception:
        payload = "<unprintable payload>"
    return topic, payload


def _redact_unknown(message: Message, profiles: ProfileSet) -> Message:
    try:
        if any(c.profile.personal for c in profiles.match_topic(message.topic).candidates):
            return _with_payload(message, b"[redacted: decoder failed on a topic with personal data]")
    except Exception:
        return _with_payload(message, b"[redacted]")
    return message


def _with_payload(message: Message, payload: bytes) -> Message:
    return Message(message.topic, payload, message.received_ms, message.mid, message.qos, message.retain)


class _Decoder:
    __slots__ = (
        "cand",
        "device",
        "doc",
        "max_skew",
        "msg",
        "now",
        "personal_topic",
        "profile",
        "profiles",
        "pseudo",
        "received",
    )

    def __init__(
        self, msg: Message, profiles: ProfileSet, now_ms: int, max_skew_ms: int, pseudo: Pseudonymizer | None
    ) -> None:
        self.msg = msg
        self.profiles = profiles
        self.now = now_ms
        self.max_skew = max_skew_ms
        self.pseudo = pseudo
        self.received = msg.received_ms
        self.profile: Profile | None = None
        self.cand: Candidate | None = None
        self.personal_topic = False  # some candidate profile of the topic declares personal data
        self.device: str | None = None
        self.doc: Any = MISSING

    # -- result helpers

    def quarantine(self, reason: str, detail: str, *, personal: bool = False) -> DecodeResult:
        """A quarantine result; ``personal``: some candidate profile declares personal data."""
        p = self.profile
        msg = self.msg
        if p is not None and p.personal:
            msg = self.redacted()
        elif personal or self.personal_topic:
            msg = _with_payload(
                msg, f"[redacted: {len(msg.payload)} bytes on a topic with personal data]".encode()
            )
        return DecodeResult(
            message=msg,
            profile=p.ref if p else None,
            device=self.device,
            quarantine=Quarantine(reason, detail),
        )

    def redacted(self) -> Message:
        """The message with the profile's personal attributes protected (or the payload withheld)."""
        p = self.profile
        assert p is not None
        doc = self.doc
        if p.format not in ("json", "msgpack") or doc is MISSING:
            return _with_payload(
                self.msg,
                f"[redacted: {len(self.msg.payload)} bytes; profile {p.ref} declares personal data]".encode(),
            )
        records = self.records(self.cand, doc) if self.cand is not None else [doc]
        for rec in records:
            for e in p.events:
                for a in e.attributes:
                    if a.protect == "none":
                        continue
                    for steps in a.paths:
                        v = get(rec, steps)
                        if v is not MISSING and v is not None:
                            put(rec, steps, self.protect(a.protect, v, a.keep))
        return _with_payload(self.msg, orjson.dumps(doc, default=repr))

    def protect(self, method: str, value: Any, keep: int) -> Any:
        if method == "hash":
            return self.pseudo.pseudonym(value) if self.pseudo is not None else None
        if method == "truncate":
            return str(value)[:keep]
        return None

    # -- the pipeline

    def run(self) -> DecodeResult:
        msg = self.msg
        topic = msg.topic
        if not isinstance(topic, str):
            return self.quarantine(Reason.BAD_TOPIC, f"topic is a {type(topic).__name__}, not a string")
        problem = topic_problem(topic)
        if problem is not None:
            return self.quarantine(Reason.BAD_TOPIC, problem)
        payload = msg.payload
        if not isinstance(payload, bytes):
            payload = payload.encode() if isinstance(payload, str) else bytes(payload)
            self.msg = msg = _with_payload(msg, payload)
        if not payload:
            return self.quarantine(Reason.EMPTY_PAYLOAD, "empty payload (a retained message was cleared)")
        size = len(payload)
        if size > self.profiles.max_payload_bytes:
            return self.quarantine(
                Reason.PAYLOAD_TOO_LARGE,
                f"{size} bytes, more than any profile accepts ({self.profiles.max_payload_bytes})",
            )
        chosen = self.choose(topic, payload, size)
        if isinstance(chosen, DecodeResult):
            return chosen
        cand, doc = chosen
        self.cand = cand
        self.profile = cand.profile
        self.doc = doc
        try:
            return self.decode_with(cand, doc)
        except DecodeError as exc:
            return self.quarantine(exc.reason, exc.detail)

    def choose(self, topic: str, payload: bytes, size: int) -> tuple[Candidate, Any] | DecodeResult:
        ps = self.profiles
        tm = ps.match_topic(topic)
        if not tm.candidates:
            ps.stats.count_no_profile(topic)
            if tm.excluded:
                prof, pattern = min(tm.excluded, key=lambda e: not e[0].generic)  # name the generic one
                ref = f"{prof.ref}" + (f" and {len(tm.excluded) - 1} more" if len(tm.excluded) > 1 else "")
                return self.quarantine(
                    Reason.NO_PROFILE, f"topic {topic[:200]!r} is excluded by {ref} ({pattern!r})"
                )
            return self.quarantine(Reason.NO_PROFILE, f"no profile's topic pattern matches {topic[:200]!r}")
        self.personal_topic = any(c.profile.personal for c in tm.candidates)
        sized = [i for i, c in enumerate(tm.candidates) if size <= c.profile.max_payload_bytes]
        if not sized:
            p = tm.candidates[0].profile
            self.profile = p if len(tm.candidates) == 1 else None
            return self.quarantine(
                Reason.PAYLOAD_TOO_LARGE,
                f"{size} bytes, more than source.max_payload_bytes ({p.max_payload_bytes}) of {p.ref}",
            )
        parsed: dict[tuple[Any, ...], Any] = {}
        first_error: tuple[Profile, DecodeError] | None = None
        ok: list[int] = []
        for i in sized:
            p = tm.candidates[i].profile
            key = p.parse_key
            if key not in parsed:
                try:
                    parsed[key] = self.parse(payload, p)
                except DecodeError as exc:
                    parsed[key] = exc
            if isinstance(parsed[key], DecodeError):
                if first_error is None or (first_error[0].generic and not p.generic):
                    first_error = (p, parsed[key])
                continue
            ok.append(i)
        if not ok:
            assert first_error is not None
            p, err = first_error
            self.profile = p if len(sized) == 1 else None
            return self.quarantine(err.reason, f"{p.format}: {err.detail}")

        if ps.device_map:
            for i in ok:
                c = tm.candidates[i]
                doc = parsed[c.profile.parse_key]
                dev = self.peek_device(c, doc)
                pid = ps.device_map.get(dev) if dev is not None else None
                if pid is None:
                    continue
                for j in ok:
                    if tm.candidates[j].profile.id == pid:
                        return tm.candidates[j], parsed[tm.candidates[j].profile.parse_key]
                self.device = dev
                mapped = ps.get(pid)
                self.profile = mapped
                if any(tm.candidates[j].profile.id == pid for j in sized):
                    return self.quarantine(
                        Reason.MALFORMED,
                        f"device {dev!r} is mapped to {pid}, which cannot "
                        f"parse this payload as {mapped.format if mapped else '?'}",
                    )
                return self.quarantine(
                    Reason.BAD_TOPIC,
                    f"device {dev!r} is mapped to {pid}, whose topic patterns do not match {topic[:200]!r}",
                )

        matched = tuple(
            i for i in ok if self.matches(tm.candidates[i], parsed[tm.candidates[i].profile.parse_key])
        )
        if not matched:
            ps.stats.count_no_profile(topic)
            names = ", ".join(str(tm.candidates[i].profile.ref) for i in ok)
            return self.quarantine(
                Reason.NO_PROFILE, f"topic matches {names}, but the payload fails their match conditions"
            )
        choice = ps.resolve(tm, matched)
        if isinstance(choice, tuple):
            ps.stats.count_ambiguous(topic)
            names = ", ".join(str(c.profile.ref) for c in choice)
            return self.quarantine(
                Reason.AMBIGUOUS_PROFILE,
                f"{names} match equally well; map the device explicitly or make one match stricter",
            )
        return choice, parsed[choice.profile.parse_key]

    def parse(self, payload: bytes, p: Profile) -> Any:
        fmt = p.format
        if fmt == "json":
            return parse_json(payload)
        if fmt == "senml":
            return parse_senml(payload)
        if fmt == "influx":
            return parse_influx(payload)
        if fmt == "msgpack":
            return parse_msgpack(payload)
        if fmt == "raw":
            return parse_raw(payload)
        if fmt == "csv":
            assert p.csv is not None
            return parse_csv(payload, *p.csv)
        if fmt == "binary":
            assert p.layout is not None
            return decode_layout(payload, p.layout)
        raise malformed(f"unsupported format {fmt!r}")

    @staticmethod
    def match_root(doc: Any) -> Any:
        if isinstance(doc, list):
            return doc[0] if doc else MISSING
        return doc

    def matches(self, c: Candidate, doc: Any) -> bool:
        p = c.profile
        root = self.match_root(doc)
        for cond in p.match:
            v = get(root, cond.path)
            if cond.kind == "key":
                if v is MISSING or v is None:
                    return False
            elif cond.kind == "eq":
                if norm_value(None if v is MISSING else v) not in cond.values:
                    return False
            elif not (isinstance(v, str) and cond.regex is not None and cond.regex.match(v)):
                return False
        if p.match_device:
            dev = self.peek_device(c, doc)
            if dev is None or not any(rx.match(dev) for rx in p.match_device):
                return False
        return True

    def peek_device(self, c: Candidate, doc: Any) -> str | None:
        try:
            return self.device_of(c, self.match_root(doc), doc)
        except DecodeError:
            return None

    def device_of(self, c: Candidate, rec: Any, doc: Any) -> str:
        tried = []
        for kind, arg in c.profile.device_sources:
            if kind == "topic":
                v: Any = c.captures.get(arg)
                tried.append(f"topic {{{arg}}}")
            else:
                v = get(rec, arg)
                if (v is MISSING or v is None) and rec is not doc:
                    v = get(doc, arg)
                tried.append(f"'{format_path(arg)}'")
            if v is MISSING or v is None:
                continue
            if isinstance(v, str):
                v = v.strip()
                if not v:
                    continue
            elif isinstance(v, int) and not isinstance(v, bool):
                v = str(v)
            elif isinstance(v, float) and v.is_integer():
                v = str(int(v))
            else:
                raise DecodeError(Reason.WRONG_TYPE, f"device id at {tried[-1]} is {show(v)}, not a string")
            if len(v) > MAX_DEVICE_ID:
                raise DecodeError(
                    Reason.WRONG_TYPE, f"device id at {tried[-1]} is longer than {MAX_DEVICE_ID} characters"
                )
            return v  # type: ignore[no-any-return]
        raise DecodeError(Reason.MISSING_FIELD, "device id not found (tried " + ", ".join(tried) + ")")

    def embedded(self, p: Profile, doc: Any) -> None:
        e = p.embedded
        assert e is not None
        if not isinstance(doc, dict):
            return
        if e.unless is not None:
            present = get(doc, e.unless)
            if present is not MISSING and present is not None:
                return
        raw = get(doc, e.path)
        if raw is MISSING or raw is None or raw == "":
            return
        if not isinstance(raw, str):
            raise DecodeError(
                Reason.WRONG_TYPE, f"{e.path_text}: expected a {e.encoding} string, got {type(raw).__name__}"
            )
        try:
            data = base64.b64decode(raw, validate=True) if e.encoding == "base64" else bytes.fromhex(raw)
        except (binascii.Error, ValueError):
            raise malformed(f"{e.path_text}: not valid {e.encoding}") from None
        put(doc, e.into, decode_layout(data, e.layout, e.path_text))

    def records(self, c: Candidate, doc: Any) -> list[Any]:
        steps = c.topic.records if c.topic.records is not None else c.profile.records
        if steps is not None:
            v = get(doc, steps)
            if v is MISSING or v is None:
                return []
            return v if isinstance(v, list) else [v]
        return doc if isinstance(doc, list) else [doc]

    def timestamp(self, p: Profile, rec: Any, doc: Any) -> tuple[int, int]:
        if not p.ts_paths:
            return self.received, _RECEIVE
        value: Any = MISSING
        where: Any = ()
        for where in p.ts_paths:
            value = get(rec, where)
            if (value is MISSING or value is None) and rec is not doc:
                value = get(doc, where)
            if value is not MISSING and value is not None:
                break
        if value is MISSING or value is None:
            return self.received, _RECEIVE
        rel = p.ts_relative_below
        if rel is not None and value.__class__ in (int, float) and abs(value) < rel:
            return self.received + round(value * 1000), _RECEIVE
        try:
            ts = to_epoch_ms(value, p.ts_unit, p.ts_zone or self.profiles.zone)
        except ValueError as exc:
            raise DecodeError(Reason.BAD_TIMESTAMP, f"{format_path(where)}: {exc}") from None
        if abs(ts - self.now) > self.max_skew:
            return self.received, _SKEW
        return ts, 0

    def decode_with(self, c: Candidate, doc: Any) -> DecodeResult:
        p = c.profile
        if p.embedded is not None:
            self.embedded(p, doc)
        registry = self.profiles.registry
        base_q = _GENERIC if p.generic else 0
        readings: list[Reading] = []
        events: list[Event] = []
        waves: list[Waveform] = []
        for rec in self.records(c, doc):
            found: list[tuple[Any, Any, int]] = []
            for m in p.metrics:
                if m.where and not all(
                    norm_value(None if (v := get(rec, s)) is MISSING else v) in vals for s, vals in m.where
                ):
                    continue
                raw: Any = MISSING
                idx = 0
                for idx, steps in enumerate(m.paths):  # noqa: B007 - idx names the path in errors
                    raw = get(rec, steps)
                    if raw is not MISSING and raw is not None:
                        break
                if raw is MISSING or raw is None:
                    continue
                found.append((m, raw, idx))
            fired = []
            for e in p.events:
                tv = get(rec, e.trigger)
                if tv is MISSING or tv is None:
                    continue
                n = norm_value(tv)
                if (e.equals is not None and n not in e.equals) or n in e.not_equals:
                    continue
                fired.append(e)
            if not found and not fired:
                continue
            device = self.device_of(c, rec, doc)
            if self.device is None:
                self.device = device
            ts, tq = self.timestamp(p, rec, doc)
            q = base_q | tq
            for m, raw, idx in found:
                if m.type == "waveform":
                    waves.append(
                        Waveform(
                            device,
                            m.name,
                            ts,
                            sample_rate(m, rec),
                            samples_of(m, raw, rec, registry),
                            m.unit,
                            p.ref,
                        )
                    )
                    continue
                value = canonical_value(m, raw, rec, registry, idx)
                rq = q
                if (m.lo is not None and value < m.lo) or (m.hi is not None and value > m.hi):
                    if m.quarantine_out_of_range:
                        raise DecodeError(
                            Reason.OUT_OF_RANGE,
                            f"{m.name} = {value:g} {m.unit} (at '{m.path_texts[idx]}') "
                            f"is outside [{m.lo:g}, {m.hi:g}]",
                        )
                    rq |= _OOR
                readings.append(Reading(device, m.name, ts, value, m.unit, p.ref, rq, m.priority))
            for e in fired:
                attrs: list[tuple[str, Any]] = []
                for a in e.attributes:
                    if a.protect == "drop":
                        continue
                    v = MISSING
                    for steps in a.paths:
                        v = get(rec, steps)
                        if v is not MISSING and v is not None:
                            break
                    if v is MISSING:
                        v = None
                    if v is not None:
                        if a.protect == "hash":
                            if self.pseudo is None:
                                continue
                            v = self.pseudo.pseudonym(v)
                        elif a.protect == "truncate":
                            v = str(v)[: a.keep]
                        elif not isinstance(v, str | int | float | bool):
                            v = orjson.dumps(v, default=repr).decode()[:MAX_ATTR_TEXT]
                    attrs.append((a.name, v))
                events.append(Event(device, e.kind, ts, p.ref, tuple(attrs), q, e.priority))
        if not readings and not events and not waves:
            names = ", ".join(m.name for m in p.metrics[:8]) + (", ..." if len(p.metrics) > 8 else "")
            hint = ""
            rec_steps = c.topic.records if c.topic.records is not None else p.records
            if p.embedded is not None and get(doc, p.embedded.into) is MISSING:
                hint = f"; neither {format_path(p.embedded.into)} nor {p.embedded.path_text} is present"
            elif rec_steps is not None and get(doc, rec_steps) in (MISSING, None):
                hint = f"; {format_path(rec_steps)} is absent"
            return self.quarantine(
                Reason.NO_READINGS, f"no metric ({names}) or event of {p.ref} found in the payload{hint}"
            )
        msg = self.redacted() if p.personal else self.msg
        return DecodeResult(
            message=msg,
            profile=p.ref,
            device=self.device,
            readings=tuple(readings),
            events=tuple(events),
            quarantine=None,
            waveforms=tuple(waves),
        )
