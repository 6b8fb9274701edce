"""Absolute links for what leaves the app (emails, calendar files), built from the settings."""

from __future__ import annotations

from flask import current_app

# Where `make run` serves: the links of a debug app with no SERVER_NAME.
DEV_SERVER_NAME = "127.0.0.1:5000"


def external_url(endpoint: str, **values) -> str:
    """An absolute link for an email, built from the settings alone (SERVER_NAME and
    PREFERRED_URL_SCHEME), never from the request: its Host header is whatever the sender of
    the request chose, and a reset link on their host hands them the token."""
    app = current_app._get_current_object()
    config = app.config
    # No request context: pushing one would run the teardown hooks of the request being
    # served (its audit origin) when popped, and costs more than the link itself.
    adapter = app.url_map.bind(
        config.get("SERVER_NAME") or DEV_SERVER_NAME,
        script_name=config.get("APPLICATION_ROOT") or "/",
        url_scheme=config["PREFERRED_URL_SCHEME"],
    )
    app.inject_url_defaults(endpoint, values)
    return adapter.build(endpoint, values, force_external=True)
