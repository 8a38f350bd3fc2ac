"""Device profiles: one YAML file per device type, validated, compiled and matched to messages.

Public surface::

    ProfileSet.load(root, device_map=None, timezone="UTC") -> ProfileSet   # raises ProfileError
    load_directory(root) -> LoadReport          # every file's profile or error (check-profiles)
    MetricRegistry.load(path)                   # device_profiles/metrics.yaml
    Profile, MetricSpec, EventSpec, Reduction   # compiled, immutable runtime form

The file format is documented in docs/device-profiles.md.
"""

from edge_agent.profiles.loader import LoadReport, find_root, load_directory, load_profiles
from edge_agent.profiles.matcher import Candidate, MatchStats, ProfileSet
from edge_agent.profiles.registry import MetricDef, MetricRegistry, Unit
from edge_agent.profiles.spec import AttributeSpec, EventSpec, Layout, MetricSpec, Profile, Reduction

__all__ = [
    "AttributeSpec",
    "Candidate",
    "EventSpec",
    "Layout",
    "LoadReport",
    "MatchStats",
    "MetricDef",
    "MetricRegistry",
    "MetricSpec",
    "Profile",
    "ProfileSet",
    "Reduction",
    "Unit",
    "find_root",
    "load_directory",
    "load_profiles",
]
