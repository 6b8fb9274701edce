"""Run every benchmark and rewrite docs/benchmarks.md with their figures.

    .venv/bin/python -m bench.run_all [--quick]

--quick shortens every measurement (for trying the scripts, not for the record). The part
of docs/benchmarks.md below the NOTES marker is written by hand and kept as it is.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import time

from bench.harness import ROOT, machine_summary, say

DOC = ROOT / "docs" / "benchmarks.md"
NOTES = "<!-- notes: everything below is kept by make bench -->"

# (title, command after the interpreter, arguments for a full run, for --quick)
SCRIPTS = [
    ("Pages", ["-m", "bench.pages"], ["--database", "both"], ["--seconds", "3"]),
    ("Calls per request", ["-m", "bench.calls"], ["--database", "both"], ["--requests", "3"]),
    ("Contention", ["-m", "bench.contention"], [], ["--clients", "20", "--seats", "5"]),
    ("Scale", ["-m", "bench.scale"], ["--seconds", "5"], ["--factor", "0.05", "--seconds", "2"]),
    (
        "Reminders",
        ["bench/reminders.py"],
        ["--count", "10000", "--database", "both"],
        ["--count", "1000", "--database", "both"],
    ),
]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short runs, for trying it out")
    args = parser.parse_args(argv)
    started = time.monotonic()
    sections, commands = [], []
    for index, (title, command, full, quick) in enumerate(SCRIPTS, start=1):
        arguments = command + (quick if args.quick else full)
        shown = ".venv/bin/python " + " ".join(arguments)
        say(f"== [{index}/{len(SCRIPTS)}] {shown}")
        commands.append(shown)
        # Figures come on stdout; progress goes to stderr, shown as it happens.
        result = subprocess.run(
            [sys.executable, *arguments], cwd=ROOT, stdout=subprocess.PIPE, text=True
        )
        output = result.stdout.strip()
        if result.returncode != 0:
            output = f"**{title} failed** (exit {result.returncode}); see the command above."
        elif not output.startswith("## "):
            output = f"## {title}\n\n```\n{output}\n```"
        sections.append(output)
    minutes = (time.monotonic() - started) / 60
    revision = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    header = [
        "# Benchmarks",
        "",
        "Written by `make bench` (`python -m bench.run_all`) down to the notes marker.",
        "",
        f"- Date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, commit {revision}",
        f"- Machine: {machine_summary()} (shared and noisy: compare ratios, not absolutes)",
        f"- Python {sys.version.split()[0]}; whole run took {minutes:.1f} minutes",
        "- Commands:",
        *[f"  - `{command}`" for command in commands],
        "",
    ]
    notes = ""
    if DOC.exists() and NOTES in DOC.read_text():
        notes = DOC.read_text().split(NOTES, 1)[1]
    DOC.write_text("\n".join(header) + "\n\n".join(sections) + "\n\n" + NOTES + notes)
    say(f"Wrote {DOC.relative_to(ROOT)} in {minutes:.1f} minutes.")


if __name__ == "__main__":
    main()
