"""The admin's outbox page: counts, failed rows, and retrying one."""

import pytest
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import AuditEvent, OutboxEmail, OutboxStatus, Role
from familylink.services import mail
from tests.conftest import AuthActions
from tests.factories import PASSWORD, create_user


@pytest.fixture
def outbox(app, now):
    """An admin, a family member, and one sent, one pending and one failed email."""
    with app.app_context():
        admin = create_user(Role.ADMIN, email="admin@example.org")
        create_user(Role.FAMILY, email="family@example.org")
        ids = {}
        for status in ("sent", "pending", "failed"):
            row = mail.queue_email(
                "password_reset",
                to=f"{status}@example.org",
                dedupe_key=f"outbox-page:{status}",
                now=now,
                context={"link": "https://familylink.test/reset/x"},
            )
            row.status = status
            if status == "failed":
                row.attempts, row.last_error = 8, "SMTPDataError: (550, b'No such mailbox')"
            ids[status] = row.id
        db.session.commit()
        return {"admin_id": admin.id, **ids}


def _row(app, email_id):
    with app.app_context():
        return db.session.get(OutboxEmail, email_id)


def test_the_admin_sees_counts_by_status_and_the_failed_rows_with_their_error(client, auth, outbox):
    auth.login("admin@example.org")
    page = client.get("/admin/outbox").get_data(as_text=True)
    for status in ("Sent", "Pending", "Failed", "Cancelled"):
        assert f"<td>{status}</td><td>{0 if status == 'Cancelled' else 1}</td>" in page
    assert "failed@example.org" in page and "No such mailbox" in page
    assert "pending@example.org" not in page


def test_the_admin_can_retry_one_failed_email(app, client, auth, outbox):
    auth.login("admin@example.org")
    response = client.post(f"/admin/outbox/{outbox['failed']}/retry")
    assert response.status_code == 302
    row = _row(app, outbox["failed"])
    assert (row.status, row.attempts) == (OutboxStatus.PENDING, 0)
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "email.retried"))
        assert event.actor_id == outbox["admin_id"] and event.object_id == outbox["failed"]
        assert event.detail["last_error"] == "SMTPDataError"  # not the server's own words


@pytest.mark.parametrize("which", ["sent", "pending", "unknown"])
def test_only_a_failed_email_can_be_retried(app, client, auth, outbox, which):
    auth.login("admin@example.org")
    email_id = outbox.get(which, 999)
    assert client.post(f"/admin/outbox/{email_id}/retry").status_code == 404
    if which != "unknown":
        assert _row(app, email_id).status == which


@pytest.mark.parametrize(
    ("method", "path"), [("get", "/admin/outbox"), ("post", "/admin/outbox/{failed}/retry")]
)
def test_anyone_but_an_admin_gets_404(app, client, auth, outbox, method, path):
    auth.login("family@example.org")
    response = getattr(client, method)(path.format(**outbox))
    assert response.status_code == 404
    assert _row(app, outbox["failed"]).status == OutboxStatus.FAILED


def _csrf(page: str) -> str:
    return page.split('name="csrf_token" type="hidden" value="')[1].split('"')[0]


def test_retry_needs_the_pages_csrf_token(make_app, outbox):
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    token = _csrf(client.get("/login").get_data(as_text=True))
    step = client.post(
        "/login",
        data={"email": "admin@example.org", "password": PASSWORD, "csrf_token": token},
    )
    code_page = client.get(step.location).get_data(as_text=True)
    client.post(
        step.location,
        data={
            "code": AuthActions(client, app).current_code("admin@example.org"),
            "csrf_token": _csrf(code_page),
        },
    )
    retry = f"/admin/outbox/{outbox['failed']}/retry"
    assert client.post(retry).status_code == 400
    assert _row(app, outbox["failed"]).status == OutboxStatus.FAILED
    page = client.get("/admin/outbox").get_data(as_text=True)
    assert client.post(retry, data={"csrf_token": _csrf(page)}).status_code == 302
    assert _row(app, outbox["failed"]).status == OutboxStatus.PENDING
