"""A served worker imports only what serving needs (issue 19: every gunicorn worker under
120 MB resident). gunicorn does not preload the app, so each worker imports `wsgi` on its own,
and what a command, a rare page or a rare character needs is imported where it is used."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent

# Each with why a worker that serves pages can do without it at start.
NOT_IMPORTED_TO_SERVE = {
    "flask_migrate": "migrations run from `flask db`, never inside a served worker",
    "alembic": "Flask-Migrate's engine (with Mako, about 11 MB)",
    "mako": "Alembic's templates for new revisions",
    "confusable_homoglyphs": "its table (about 7 MB) is needed only for a letter outside ASCII",
    "pygal": "only the program overview draws charts",
    "segno": "only setting up two-step sign-in draws a QR code",
    "markdown_it": "module texts are rendered when saved (a load or an admin's edit), not shown",
    "nh3": "the same: pages show the HTML cleaned when the text was saved",
    "yaml": "only `flask learn load` reads content files",
    "familylink.demo": "`flask seed-demo` only",
}


def _loaded(tmp_path, then: str = "") -> set[str]:
    """The modules a process holds after importing `wsgi` as gunicorn does (outside any flask
    command), and running `then`."""
    environment = {
        "PATH": os.environ["PATH"],
        "DATABASE_URL": f"sqlite:///{tmp_path / 'served.db'}",
        "SECRET_KEY": "served-imports-test-secret-key-0123456789",
        "SECRETS_KEYS": "7vY2mvLMaTUSb5ogjqrwPxtDN7HuQSumKUBysuHDL8o=",  # this test only
        "SERVER_NAME": "familylink.test",
    }
    script = f"import json, sys, wsgi\n{then}\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(result.stdout))


def test_serving_the_app_does_not_import_what_only_commands_or_rare_pages_use(tmp_path):
    loaded = _loaded(tmp_path)
    assert {name: why for name, why in NOT_IMPORTED_TO_SERVE.items() if name in loaded} == {}


def test_screening_text_outside_ascii_does_not_load_the_confusables_table(tmp_path):
    # A curly apostrophe, and a Cyrillic letter the screen folds to a Latin one.
    then = (
        "from familylink.services import screening\n"
        "assert screening.clinical_words('Lee\u2019s office') == ()\n"
        "assert screening.clinical_words('R\u0435covery Room') == ('recovery',)"
    )
    assert "confusable_homoglyphs" not in _loaded(tmp_path, then)
