"""Entry point for gunicorn (`gunicorn wsgi:app`) and the flask command (`flask --app wsgi`)."""

from familylink import ConfigurationError, create_app

try:
    app = create_app()
except ConfigurationError as error:
    # A setting to fix, not a bug: say which one, without a traceback.
    raise SystemExit(f"FamilyLink did not start. {error}") from None
