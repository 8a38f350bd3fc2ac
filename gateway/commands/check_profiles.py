"""``campus-edge check-profiles [PATH...]``: validate device profiles; exit 1 if any is invalid."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edge_agent.errors import ProfileError
from edge_agent.profiles import Profile, find_root, load_directory

DEFAULT_DIR = "device_profiles"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check-profiles",
        help="validate device profiles (schema, units, metric names, topics, layouts)",
        description="Validate device profile files. Each PATH is a profile file or a directory; the "
        "profile root (the directory holding metrics.yaml) is found upwards from it. Prints "
        "'OK <file> <id@version>' or '<file>: <field>: <problem>' per profile. Exit status: "
        "0 all valid, 1 any invalid.",
    )
    p.add_argument(
        "paths", nargs="*", metavar="PATH", help=f"profile files or directories (default: {DEFAULT_DIR}/)"
    )
    p.set_defaults(func=run)


def check(paths: list[str]) -> tuple[list[str], int]:
    """Lines to print and the number of problems found."""
    lines: list[str] = []
    bad = 0
    for text in paths or [DEFAULT_DIR]:
        path = Path(text)
        if not path.exists():
            lines.append(f"{text}: no such file or directory")
            bad += 1
            continue
        root = find_root(path)
        if root is None:
            lines.append(f"{text}: no metrics.yaml in this directory or above it (not a profile root)")
            bad += 1
            continue
        only = None
        if not (path.is_dir() and path.resolve() == root.resolve()):
            only = [path] if path.is_file() else [p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")]
        report = load_directory(root, only=only)
        reported: set[int] = set()
        for file, result in sorted(report.files.items()):
            if isinstance(result, Profile):
                lines.append(f"OK    {file}  {result.ref}" + ("  (generic)" if result.generic else ""))
            else:
                lines.append(str(result))
                reported.add(id(result))
                bad += 1
        for err in report.errors:  # registry and layout problems belong to no profile file
            if id(err) not in reported and (only is None or _concerns(err, only)):
                lines.append(str(err))
                bad += 1
    return lines, bad


def _concerns(err: ProfileError, only: list[Path]) -> bool:
    return (
        not err.file.endswith((".yaml", ".yml"))
        or "layouts" in err.file
        or err.file.endswith("metrics.yaml")
        or any(Path(err.file).resolve() == p.resolve() for p in only)
    )


def run(args: argparse.Namespace) -> int:
    lines, bad = check(args.paths)
    out = sys.stdout
    for line in lines:
        out.write(line + "\n")
    ok = sum(1 for line in lines if line.startswith("OK "))
    out.write(f"{ok} valid, {bad} invalid\n")
    return 1 if bad else 0
