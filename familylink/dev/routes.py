"""The development mailbox: emails the sender 'delivered' with no SMTP server configured.

Registered only when DEV_MAILBOX is on and MAIL_SERVER is not set, so production never has it.
"""

from flask import Blueprint, abort, render_template
from sqlalchemy import select

from familylink.extensions import db
from familylink.models import OutboxEmail

bp = Blueprint("dev", __name__)


@bp.route("/mailbox")
def mailbox():
    emails = db.session.scalars(
        select(OutboxEmail)
        .order_by(OutboxEmail.created_at.desc(), OutboxEmail.id.desc())
        .limit(200)
    ).all()
    return render_template("dev/mailbox.html", emails=emails)


@bp.route("/mailbox/<int:email_id>")
def message(email_id: int):
    email = db.session.get(OutboxEmail, email_id)
    if email is None:
        abort(404)
    return render_template("dev/message.html", email=email)
