"""Video rooms: the join link every email and calendar file carries (/join/<token>), and
the therapist's page to paste a session's own room when the program has no room template."""

from flask import Blueprint, redirect, render_template, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm

from familylink.forms import optional_text_field
from familylink.models import Role
from familylink.services.booking import rooms
from familylink.web import form_status, request_now, role_required, submit

bp = Blueprint("rooms", __name__)


class RoomLinkForm(FlaskForm):
    # Checked (https only) by the rooms service, whose message names this field.
    room_link = optional_text_field(
        _l("This session's video link"),
        max_length=500,
        description=_l(
            "A link made for this session only. Families never see it: they get a "
            "FamilyLink join link that opens it for them 15 minutes before the start."
        ),
        render_kw={"inputmode": "url"},
    )


@bp.route("/join/<token>")
@role_required(Role.FAMILY, Role.PATIENT, Role.THERAPIST)
def join(token: str):
    answer = rooms.join(current_user, token, now=request_now())
    if answer.state == rooms.JoinState.OPEN:
        return redirect(answer.room_url, code=303)
    # Nothing here is cached: the answer changes with the clock and with consent.
    page = render_template("rooms/not_open.html", answer=answer, states=rooms.JoinState)
    return page, 200, {"Cache-Control": "no-store"}


@bp.route("/therapist/appointments/<int:appointment_id>/room", methods=["GET", "POST"])
@role_required(Role.THERAPIST)
def room_link(appointment_id: int):
    now = request_now()
    appointment = rooms.therapist_video_session(current_user, appointment_id, now=now)
    form = RoomLinkForm(room_link=appointment.room_link)
    done = submit(
        form,
        lambda f: rooms.set_room_link(
            actor=current_user, appointment_id=appointment.id, link=f.room_link.data, now=now
        ),
        redirect_to=url_for("rooms.room_link", appointment_id=appointment.id),
        message=_l("Video link saved."),
    )
    if done is not None:
        return done
    page = render_template("rooms/room_link.html", form=form, appointment=appointment)
    return page, form_status(form)
