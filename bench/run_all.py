"""Run every benchmark and rewrite docs/benchmarks.md with their figures.

    .venv/bin/python -m bench.run_all [--quick]

--quick shortens every measurement (for trying the scripts, not for the record).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import subprocess
import sys
import time

from bench.harness import ROOT, machine_summary, say

DOC = ROOT / "docs" / "benchmarks.md"

# (module, arguments for a full run, arguments for --quick)
SCRIPTS = [
    ("bench.pages", ["--database", "both"], ["--database", "both", "--seconds", "3"]),
    ("bench.contention", [], ["--clients", "20", "--seats", "5"]),
    ("bench.scale", ["--seconds", "5"], ["--factor", "0.05", "--seconds", "2"]),
]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, for trying it out")
    args = parser.parse_args(argv)
    started = time.monotonic()
    sections = []
    commands = []
    for index, (module, full, quick) in enumerate(SCRIPTS, start=1):
        arguments = quick if args.quick else full
        say(f"== [{index}/{len(SCRIPTS)}] {module} {' '.join(arguments)}")
        commands.append(f".venv/bin/python -m {module} {' '.join(arguments)}")
        sections.append(importlib.import_module(module).main(arguments))
    minutes = (time.monotonic() - started) / 60
    revision = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    header = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench.run_all`); do not edit by hand.",
        "",
        f"- Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, commit {revision}",
        f"- Machine: {machine_summary()} (shared and noisy: compare ratios, not absolutes)",
        f"- Python {sys.version.split()[0]}; whole run took {minutes:.1f} minutes",
        "- Commands:",
        *[f"  - `{command}`" for command in commands],
        "",
    ]
    DOC.write_text("\n".join(header) + "\n".join(sections))
    say(f"Wrote {DOC.relative_to(ROOT)} in {minutes:.1f} minutes.")


if __name__ == "__main__":
    main()
