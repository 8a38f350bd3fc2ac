"""Choosing the profile for a message: topic index, per-topic candidate cache, specificity order.

Rules (docs/device-profiles.md, "Matching"):

1. Topic: every profile with a topic pattern matching the topic and no exclusion matching it is a
   candidate. Exact topics are a dict lookup, patterns starting with a literal level are indexed by
   that level, the rest are tried in order; the candidate list is cached per topic.
2. An explicit device -> profile map (gateway configuration) wins over everything below.
3. Payload: candidates whose ``match`` conditions fail drop out.
4. Specificity: a model-specific profile beats the ecosystem's generic profile. Between two profiles of
   the same kind, A beats B when A's match conditions include all of B's and A is stricter (more
   conditions, or as many and more literal topic levels). The one candidate nobody beats wins; if there
   are several, the message is quarantined as ambiguous, naming them. Never a guess.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from edge_agent.errors import ProfileError
from edge_agent.profiles.loader import load_profiles
from edge_agent.profiles.registry import MetricRegistry
from edge_agent.profiles.spec import Profile, TopicSpec
from edge_agent.profiles.topics import topic_group

_LOGGER = logging.getLogger(__name__)

TOPIC_CACHE_SIZE = 65536  # topics remembered with their candidates; full -> cleared (one topic per device)
STATS_KEYS = 1000  # distinct topic groups counted; more go to "<other>" so counters stay bounded


@dataclass(slots=True, frozen=True, eq=False)
class Candidate:
    """A profile whose topic pattern matched, with the pattern's captures."""

    profile: Profile
    topic: TopicSpec
    captures: dict[str, str]

    @property
    def literal_levels(self) -> int:
        return self.topic.pattern.literal_levels


@dataclass(slots=True, eq=False)
class TopicMatch:
    """Cached result of topic matching: candidates, exclusions, and resolved choices per payload outcome."""

    candidates: tuple[Candidate, ...]
    excluded: tuple[tuple[Profile, str], ...]  # (profile, exclusion pattern) that removed it
    choices: dict[tuple[int, ...], Candidate | tuple[Candidate, ...]] = field(default_factory=dict)


@dataclass(slots=True)
class MatchStats:
    """Counters for /metrics and heartbeats: unmatched and ambiguous messages per topic group."""

    no_profile: Counter[str] = field(default_factory=Counter)
    ambiguous: Counter[str] = field(default_factory=Counter)
    cache_clears: int = 0

    def _bump(self, counter: Counter[str], topic: str) -> None:
        key = topic_group(topic)
        if key not in counter and len(counter) >= STATS_KEYS:
            key = "<other>"
        counter[key] += 1

    def count_no_profile(self, topic: str) -> None:
        self._bump(self.no_profile, topic)

    def count_ambiguous(self, topic: str) -> None:
        self._bump(self.ambiguous, topic)


def beats(a: Candidate, b: Candidate) -> bool:
    """True when ``a`` is strictly more specific than ``b`` (see module docstring)."""
    if a.profile.generic != b.profile.generic:
        return b.profile.generic
    sa, sb = a.profile.specificity, b.profile.specificity
    if not sa >= sb:
        return False
    return sa != sb or a.literal_levels > b.literal_levels


class ProfileSet:
    """All loaded profiles plus the gateway's device map and time zone; picks a profile per message.

    Build with :meth:`load`. Not thread-safe (the decoder runs on one thread); counters in
    :attr:`stats`.
    """

    def __init__(
        self,
        profiles: Iterable[Profile],
        registry: MetricRegistry,
        *,
        device_map: Mapping[str, str] | None = None,
        timezone: str = "UTC",
        root: Path | None = None,
    ) -> None:
        self.profiles: tuple[Profile, ...] = tuple(profiles)
        self.registry = registry
        self.root = root
        self._by_id = {p.id: p for p in self.profiles}
        if len(self._by_id) != len(self.profiles):
            raise ProfileError(str(root or "<profiles>"), "id", "duplicate profile ids")
        try:
            self.zone = ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ProfileError(
                "gateway configuration", "timezone", f"unknown time zone {timezone!r}"
            ) from None
        self.timezone = timezone
        self.device_map: dict[str, str] = {}
        for device, pid in (device_map or {}).items():
            if pid not in self._by_id:
                raise ProfileError("device map", str(device), f"unknown profile {pid!r}")
            self.device_map[str(device)] = pid
        self.max_payload_bytes = max((p.max_payload_bytes for p in self.profiles), default=0)
        self.needs_pseudonymizer = any(
            a.protect == "hash" for p in self.profiles for e in p.events for a in e.attributes
        )
        self.stats = MatchStats()
        self._exact: dict[str, list[tuple[Profile, TopicSpec]]] = {}
        self._by_first: dict[str, list[tuple[Profile, TopicSpec]]] = {}
        self._wild: list[tuple[Profile, TopicSpec]] = []
        for p in self.profiles:
            for t in p.topics:
                if t.pattern.exact:
                    self._exact.setdefault(t.pattern.text, []).append((p, t))
                elif t.pattern.first_literal is not None:
                    self._by_first.setdefault(t.pattern.first_literal, []).append((p, t))
                else:
                    self._wild.append((p, t))
        self._cache: dict[str, TopicMatch] = {}

    @classmethod
    def load(
        cls,
        root: str | Path,
        *,
        device_map: Mapping[str, str] | None = None,
        timezone: str = "UTC",
    ) -> ProfileSet:
        """Load every profile under ``root`` (which holds ``metrics.yaml``). Raises :class:`ProfileError`."""
        registry, profiles = load_profiles(root)
        return cls(profiles, registry, device_map=device_map, timezone=timezone, root=Path(root))

    def with_device_map(self, device_map: Mapping[str, str]) -> ProfileSet:
        """A copy using another device map (same profiles, fresh cache and counters)."""
        return ProfileSet(
            self.profiles, self.registry, device_map=device_map, timezone=self.timezone, root=self.root
        )

    def __len__(self) -> int:
        return len(self.profiles)

    def __iter__(self) -> Iterator[Profile]:
        return iter(self.profiles)

    def get(self, profile_id: str) -> Profile | None:
        return self._by_id.get(profile_id)

    def subscriptions(self) -> list[str]:
        """MQTT filters covering every profile's topics (deduplicated, most general first)."""
        filters = sorted({t.pattern.mqtt_filter() for p in self.profiles for t in p.topics})
        out: list[str] = []
        for f in sorted(filters, key=lambda x: (x.count("/"), x)):
            if not any(_covers(g, f) for g in out):
                out.append(f)
        return sorted(out)

    def match_topic(self, topic: str) -> TopicMatch:
        """Candidates for ``topic`` (cached)."""
        hit = self._cache.get(topic)
        if hit is not None:
            return hit
        first = topic.split("/", 1)[0]
        cands: list[Candidate] = []
        excluded: list[tuple[Profile, str]] = []
        seen: set[str] = set()
        for p, t in (*self._exact.get(topic, ()), *self._by_first.get(first, ()), *self._wild):
            if p.id in seen:
                continue
            caps = t.pattern.match(topic)
            if caps is None:
                continue
            ex = next((e for e in p.excludes if e.regex.fullmatch(topic)), None)
            if ex is not None:
                excluded.append((p, ex.text))
                continue
            seen.add(p.id)
            cands.append(Candidate(p, t, caps))
        result = TopicMatch(tuple(cands), tuple(excluded))
        if len(self._cache) >= TOPIC_CACHE_SIZE:
            self._cache.clear()
            self.stats.cache_clears += 1
        self._cache[topic] = result
        return result

    def resolve(self, tm: TopicMatch, matched: tuple[int, ...]) -> Candidate | tuple[Candidate, ...]:
        """The most specific of ``tm.candidates[i] for i in matched``, or the tied ones (ambiguous)."""
        hit = tm.choices.get(matched)
        if hit is not None:
            return hit
        cands = [tm.candidates[i] for i in matched]
        best = tuple(c for c in cands if not any(beats(o, c) for o in cands if o is not c))
        result: Candidate | tuple[Candidate, ...] = best[0] if len(best) == 1 else best
        tm.choices[matched] = result
        return result


def _covers(general: str, specific: str) -> bool:
    g, s = general.split("/"), specific.split("/")
    for i, level in enumerate(g):
        if level == "#":
            return True
        if i >= len(s) or (level != "+" and level != s[i]):
            return False
    return len(g) == len(s)
