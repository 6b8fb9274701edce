"""Every command the README shows works as written: `--help` with no settings at all, and a
real run with unsafe settings refuses with a message naming the setting, not a traceback
(issue 17, item 8)."""

import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from familylink import ConfigurationError, create_app

ROOT = Path(__file__).resolve().parent.parent.parent
FLASK = ".venv/bin/flask --app wsgi"


def _readme_commands() -> list[tuple[str, ...]]:
    """The command words of every `flask --app wsgi …` the README shows, e.g. ("mail", "send")."""
    readme = (ROOT / "README.md").read_text()
    found = set()
    for span in re.findall(r"`([^`\n]*flask --app wsgi[^`\n]*)`", readme):
        assert f"{FLASK} " in span, f"not the project's flask: {span}"
        words = span.split(f"{FLASK} ", 1)[1].split()
        command = tuple(re.match(r"[a-z][a-z-]*$", w) and w for w in words)
        found.add(command[: command.index(None)] if None in command else command)
    return sorted(found)


COMMANDS = _readme_commands()


def _run(*words: str, **environment: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*FLASK.split(), *words],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], **environment},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_readme_shows_the_commands():
    assert ("mail", "send") in COMMANDS and ("db", "upgrade") in COMMANDS and len(COMMANDS) >= 10


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_works_with_no_settings(command):
    result = _run(*command, "--help")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout.startswith("Usage: flask " + " ".join(command))


def test_a_real_command_without_settings_refuses_with_the_settings_name():
    result = _run("mail", "send")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "SECRET_KEY is not set" in result.stderr


def test_an_app_built_only_for_help_refuses_to_serve(monkeypatch):
    for name in ("SECRET_KEY", "FLASK_DEBUG", "SERVER_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(sys, "argv", ["flask", "--app", "wsgi", "mail", "send", "--help"])
    with click.Context(click.Command("flask")):
        app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})
    with pytest.raises(ConfigurationError, match="SECRET_KEY"):
        app.test_client().get("/login")


def _production(monkeypatch, **environment):
    for name in ("FLASK_DEBUG", "DEV_MAILBOX", "MAIL_SERVER", "MAIL_USE_TLS", "MAIL_USE_SSL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SERVER_NAME", "family.example-clinic.org")
    monkeypatch.setenv("SECRETS_KEYS", "Yl1Q9oWm2sQ3u0pW8b0m9JmZ2c1x5v6n7b8m9a0s1d4=")
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://"})


def test_a_short_secret_key_is_refused_in_production(monkeypatch):
    with pytest.raises(ConfigurationError, match="SECRET_KEY is shorter than 32"):
        _production(monkeypatch, SECRET_KEY="short")


def test_an_smtp_password_without_tls_is_refused_in_production(monkeypatch):
    key = "k" * 32
    mail = {"MAIL_SERVER": "smtp.example-clinic.org", "MAIL_PASSWORD": "pw"}
    with pytest.raises(ConfigurationError, match="MAIL_PASSWORD is set but neither MAIL_USE_TLS"):
        _production(monkeypatch, SECRET_KEY=key, **mail)
    assert _production(monkeypatch, SECRET_KEY=key, MAIL_USE_TLS="1", **mail)
