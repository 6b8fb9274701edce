"""Reading: the family library and module pages, therapists' assignments, admin editing."""

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import get_locale, ngettext
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup

from familylink.learn.forms import (
    EVERYONE,
    AssignForm,
    ModuleForm,
    ProgressForm,
    SearchForm,
    SequenceForm,
)
from familylink.learn.practice_forms import ANSWER_LABELS
from familylink.learn.practice_forms import FORMS as PRACTICE_FORMS
from familylink.models import Role, ToolKind
from familylink.services import access, learning
from familylink.services.errors import DomainError, NotFound, ValidationError
from familylink.web import (
    apply_error,
    back_on_refusal,
    query_id,
    request_now,
    role_required,
    run,
    submit,
)

bp = Blueprint("learn", __name__)

# ---------------------------------------------------------------------------------------------
# Library and module pages (family members read; staff may look at the same pages)


@bp.route("/")
@role_required(Role.FAMILY, Role.THERAPIST, Role.ADMIN)
def library():
    form = SearchForm(request.args)
    query = form.q.data if form.validate() else ""
    assigned = []
    if current_user.role == Role.FAMILY:
        assigned = learning.assigned_to(current_user, now=request_now())
    status = 400 if form.errors else 200
    language = get_locale().language
    return render_template(
        "learn/library.html",
        form=form,
        query=query,
        topics=learning.library(query, language),
        assigned=assigned,
        shown_modules=learning.in_language_all([r.module for r in assigned], language),
    ), status


@bp.route("/modules/<slug>")
@role_required(Role.FAMILY, Role.THERAPIST, Role.ADMIN)
def module(slug):
    module = learning.module_page(slug, get_locale().language)
    if current_user.role != Role.FAMILY:
        return _module_page(module)
    # ?patient= names the patient the reading is about (a link from their assignment).
    reading = learning.open_module(
        current_user, module, patient_id=query_id("patient"), now=request_now()
    )
    progress = reading.progress
    form = ProgressForm(
        data={
            "completed": progress.completed_at is not None,
            "reflection": progress.reflection or "",
            "share": str(progress.patient_id) if progress.reflection_shared else "",
        }
    )
    return _module_page(module, form, reading)


def _module_page(module, form=None, reading=None, status=200):
    """`module`: its `learning.module_page`, in the reader's language."""
    if form is not None:
        form.share.offer(reading.share_choices)
    return render_template(
        "learn/module.html",
        module=module,
        body=Markup(module.body_html),  # noqa: S704  cleaned by nh3 when it was saved
        sources=learning.source_links(module.sources),
        form=form,
        reading=reading,
        progress=reading.progress if reading else None,
    ), status


@bp.route("/modules/<slug>/progress", methods=["POST"])
@role_required(Role.FAMILY)
def save_progress(slug):
    module = learning.module_page(slug, get_locale().language)
    patient_id, now = query_id("patient"), request_now()
    form = ProgressForm()
    done = submit(
        form,
        lambda f: learning.save_progress(
            current_user,
            module,
            patient_id=patient_id,
            completed=f.completed.data,
            reflection=f.reflection.data,
            share_with=f.share.patient_id(),
            now=now,
        ),
        redirect_to=lambda p: url_for("learn.module", slug=slug, patient=p.patient_id),
        message=_("Saved."),
    )
    if done is not None:
        return done
    reading = learning.reading(current_user, module, patient_id=patient_id, now=now)
    return _module_page(module, form, reading, 400)


# ---------------------------------------------------------------------------------------------
# Practice tools: a family member's own, private unless shared with one patient's therapist


@bp.route("/practice/")
@role_required(Role.FAMILY)
def practice_home():
    return render_template(
        "learn/practice_home.html",
        entries=learning.practice.own_entries(current_user),
        safety_plan=learning.practice.safety_plan(current_user),
        kinds=list(ToolKind),
    )


@bp.route("/practice/<kind>/new", methods=["GET", "POST"])
@role_required(Role.FAMILY)
def new_practice(kind):
    spec = learning.practice.tool(kind)
    plan = learning.practice.safety_plan(current_user) if spec.one_only else None
    if plan is not None:  # one safety plan: a second "new" one is the first
        return redirect(url_for("learn.practice_entry", practice_id=plan.id))
    return _practice_form(spec, None)


@bp.route("/practice/<int:practice_id>", methods=["GET", "POST"])
@role_required(Role.FAMILY)
def practice_entry(practice_id):
    entry = learning.practice.own_entry(current_user, practice_id)
    return _practice_form(learning.practice.tool(entry.kind), entry)


def _entry_data(entry) -> dict:
    latest = entry.versions[0] if entry.versions else None
    return {
        "title": entry.title,
        "share": str(entry.shared_patient_id or ""),
        "message": latest.text if latest else "",
        "checked": latest.checked if latest else [],
        **entry.answers,
    }


def _practice_form(spec, entry):
    now = request_now()
    form_class = PRACTICE_FORMS[spec.kind]
    form = form_class() if request.method == "POST" or entry is None else None
    form = form or form_class(data=_entry_data(entry))
    form.share.offer(learning.practice.share_choices(current_user, now=now))
    done = submit(
        form,
        lambda f: learning.practice.save_entry(
            current_user,
            spec.kind,
            entry_id=entry.id if entry else None,
            title=f.title.data,
            answers={field.name: field.data for field in f.answer_fields()},
            message=f.message.data if spec.kind == ToolKind.MESSAGE else None,
            checked=f.checked.data if spec.kind == ToolKind.MESSAGE else (),
            share_with=f.share.patient_id(),
            now=now,
        ),
        redirect_to=lambda saved: url_for("learn.practice_entry", practice_id=saved.id),
        message=_("Saved."),
    )
    status = 400 if request.method == "POST" else 200
    return done or (
        render_template("learn/practice_form.html", form=form, spec=spec, entry=entry),
        status,
    )


@bp.route("/practice/<int:practice_id>/delete", methods=["POST"])
@role_required(Role.FAMILY)
@back_on_refusal(lambda practice_id: url_for("learn.practice_entry", practice_id=practice_id))
def delete_practice(practice_id):
    # CSRFProtect has already checked the token of this button-only form.
    learning.practice.delete_entry(current_user, practice_id, now=request_now())
    flash(_("Deleted."), "success")
    return redirect(url_for("learn.practice_home"))


@bp.route("/practice/<int:practice_id>/card")
@role_required(Role.FAMILY)
def safety_card(practice_id):
    plan = learning.practice.own_entry(current_user, practice_id)
    if plan.kind != ToolKind.SAFETY_PLAN:
        raise NotFound()
    return render_template("learn/safety_card.html", plan=plan)


# ---------------------------------------------------------------------------------------------
# Therapists: assignments and progress of their own patients' consented family members


@bp.route("/therapist")
@role_required(Role.THERAPIST)
def therapist_home():
    patients = access.therapist_patients(current_user, now=request_now(), what="family reading")
    return render_template("learn/therapist_home.html", patients=patients)


def _family_forms(family, modules, shown, assign_form=None, sequence_form=None):
    """The two forms, offering `family` and the published `modules`, titled as `shown` (by
    id, in the reader's language)."""
    choices = [(EVERYONE, _("Every family member with consent"))] + [
        (str(m.id), m.name) for m in family
    ]
    assign_form = assign_form or AssignForm()
    sequence_form = sequence_form or SequenceForm()
    assign_form.family.choices = choices
    sequence_form.family.choices = choices
    assign_form.modules.choices = [
        (m.id, f"{m.order}. {shown[m.id].title}") for m in modules if m.published
    ]
    return assign_form, sequence_form


def _patient_page(patient_id, assign_form=None, sequence_form=None, status=200, read=None):
    now = request_now()
    # One answer from the gate for the forms, the progress and the shared tools (a refused
    # assignment passes on the one it read: `read`); the page's view is audited once, by
    # progress_of ("learning.progress_viewed"), within the budget of
    # tests/web/test_query_counts.py (a second audit row here costs a second INSERT).
    patient, family = read or access.reading_family(current_user, patient_id, now=now, what=None)
    modules = learning.all_modules()
    shown = learning.in_language_all(modules, get_locale().language)
    assign_form, sequence_form = _family_forms(family, modules, shown, assign_form, sequence_form)
    return render_template(
        "learn/therapist_patient.html",
        patient=patient,
        progress=learning.progress_of(current_user, patient, family, now=now),
        practice=learning.practice.practice_of(patient, family),
        answer_labels=ANSWER_LABELS,
        shown_modules=shown,
        assign_form=assign_form,
        sequence_form=sequence_form,
    ), status


@bp.route("/therapist/patients/<int:patient_id>")
@role_required(Role.THERAPIST)
def therapist_patient(patient_id):
    return _patient_page(patient_id)


def _target(form):
    if not form.family.data:
        # Nothing chosen is a mistake to show beside the field; a forged id is a 404.
        raise ValidationError(_("Choose who should read it."), field="family")
    try:
        return form.family.target()
    except (TypeError, ValueError):
        raise NotFound()


def _assignment_post(patient_id, form, assign, *, form_name: str, weekly: bool = False):
    """Shared by both ways of assigning: `assign(family_user_id, opened, family)` calls the
    service with the gate's one answer for the request and the family it allows, which a
    refused form's page uses too."""
    now = request_now()
    opened = access.patient(current_user, patient_id, now=now, what=None)
    read = access.reading_family(current_user, patient_id, now=now, what=None, opened=opened)
    done = submit(
        form,
        lambda f: assign(_target(f), opened, read[1]),
        redirect_to=url_for("learn.therapist_patient", patient_id=patient_id),
        message=lambda made: _assigned_message(len(made), weekly=weekly),
    )
    if done is not None:
        return done
    return _patient_page(patient_id, status=400, read=read, **{form_name: form})


@bp.route("/therapist/patients/<int:patient_id>/assign", methods=["POST"])
@role_required(Role.THERAPIST)
def assign(patient_id):
    form = AssignForm()
    return _assignment_post(
        patient_id,
        form,
        lambda family_user_id, opened, family: learning.assign_modules(
            therapist=current_user,
            patient_id=patient_id,
            family_user_id=family_user_id,
            module_ids=form.modules.data or [],
            note=form.note.data,
            tool=form.tool.kind(),
            now=request_now(),
            opened=opened,
            family=family,
        ),
        form_name="assign_form",
    )


@bp.route("/therapist/patients/<int:patient_id>/sequence", methods=["POST"])
@role_required(Role.THERAPIST)
def apply_sequence(patient_id):
    return _assignment_post(
        patient_id,
        SequenceForm(),
        lambda family_user_id, opened, family: learning.apply_sequence(
            therapist=current_user,
            patient_id=patient_id,
            family_user_id=family_user_id,
            now=request_now(),
            opened=opened,
            family=family,
        ),
        form_name="sequence_form",
        weekly=True,
    )


def _assigned_message(count: int, *, weekly: bool) -> str:
    if count == 0:
        return _("Nothing new to assign: those readings were already assigned.")
    if weekly:
        return ngettext(
            "%(num)d reading assigned. One is released each week.",
            "%(num)d readings assigned. One is released each week.",
            count,
        )
    return ngettext("%(num)d reading assigned.", "%(num)d readings assigned.", count)


# ---------------------------------------------------------------------------------------------
# Admin: edit with a preview, keep every version, restore any of them


@bp.route("/admin")
@role_required(Role.ADMIN)
def admin_modules():
    return render_template("learn/admin_modules.html", modules=learning.all_modules())


def _text_from(form, slug) -> learning.ModuleText:
    def lines(value):
        return [line.strip() for line in (value or "").splitlines() if line.strip()]

    return learning.ModuleText(
        slug=slug,
        title=form.title.data.strip(),
        summary=" ".join(form.summary.data.split()),
        topic=form.topic.data.strip(),
        order=form.order.data,
        reading_minutes=form.reading_minutes.data,
        key_points=lines(form.key_points.data),
        reflection=form.reflection.data.strip(),
        exercise=form.exercise.data.strip(),
        sources=lines(form.sources.data),
        body_markdown=form.body_markdown.data.replace("\r\n", "\n").strip() + "\n",
        published=form.published.data,
    )


@bp.route("/admin/<int:module_id>", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def edit_module(module_id):
    module = learning.module_by_id(module_id)
    if request.method == "GET":
        form = ModuleForm(obj=module)
        form.key_points.data = "\n".join(module.key_points)
        form.sources.data = "\n".join(module.sources)
    else:
        form = ModuleForm()
    preview = None
    status = 200
    if form.validate_on_submit():
        text = _text_from(form, module.slug)
        if "preview" in request.form:
            preview = Markup(learning.render_markdown(text.body_markdown))  # noqa: S704
        else:
            try:
                version = run(
                    learning.save_module, module, text, actor=current_user, now=request_now()
                )
            except DomainError as error:
                apply_error(form, error)
            else:
                flash(_("Saved as version %(number)s.", number=version.number), "success")
                return redirect(url_for("learn.edit_module", module_id=module.id))
    if form.errors or form.form_errors:
        status = 400
    return render_template(
        "learn/admin_edit.html", module=module, form=form, preview=preview
    ), status


@bp.route("/admin/<int:module_id>/versions/<int:version_id>/restore", methods=["POST"])
@role_required(Role.ADMIN)
@back_on_refusal(lambda module_id, version_id: url_for("learn.edit_module", module_id=module_id))
def restore_version(module_id, version_id):
    # CSRFProtect has already checked the token of this button-only form.
    module = learning.module_by_id(module_id)
    version = learning.restore_version(module, version_id, actor=current_user, now=request_now())
    flash(_("Restored; saved as version %(number)s.", number=version.number), "success")
    return redirect(url_for("learn.edit_module", module_id=module.id))
