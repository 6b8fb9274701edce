"""The program overview: counts and rates, small cells hidden, no patient data."""

import csv
import io

from flask import Blueprint, Response, render_template, request
from flask_babel import gettext as _
from flask_login import current_user

from familylink.models import Role
from familylink.overview.charts import bar_chart
from familylink.overview.forms import PeriodForm
from familylink.services import overview
from familylink.services.errors import DomainError
from familylink.web import apply_error, request_now, role_required, run

bp = Blueprint("overview", __name__)


def _overview(form: PeriodForm, *, export: bool):
    """The overview of the asked period (the default one when none is asked), or None with
    the refusal beside its field."""
    if not form.validate():
        return None
    first, last = overview.default_period(request_now())
    if form.first.data or form.last.data:
        first, last = form.first.data, form.last.data
    try:
        return run(
            overview.program_overview,
            current_user,
            first=first,
            last=last,
            now=request_now(),
            export=export,
        )
    except DomainError as error:
        apply_error(form, error)
        return None


def _render(form, found, charts):
    return render_template(
        "overview/page.html",
        form=form,
        found=found,
        charts=charts,
        overview_cell=overview.display,
        final_after_days=overview.FINAL_AFTER_DAYS,
    )


@bp.route("/")
@role_required(Role.ADMIN, Role.DIRECTOR)
def page():
    form = PeriodForm(request.args)
    found = _overview(form, export=False)
    if found is not None and not request.args:
        form.first.data, form.last.data = found.first, found.last  # shown as their months
    charts = {
        table.key: bar_chart(table, _("%(title)s per month: bar chart.", title=table.title))
        for table in (found.tables if found else [])
    }
    status = 200 if found is not None else 400
    return _render(form, found, charts), status


@bp.route("/overview.csv")
@role_required(Role.ADMIN, Role.DIRECTOR)
def export():
    form = PeriodForm(request.args)
    found = _overview(form, export=True)
    if found is None:
        return _render(form, None, {}), 400
    out = io.StringIO()
    csv.writer(out).writerows(overview.csv_rows(found))
    name = f"program-overview-{found.first.isoformat()}-{found.last.isoformat()}.csv"
    return Response(
        out.getvalue(),
        mimetype="text/csv",
        headers={"Content-Disposition": f"attachment; filename={name}"},
    )
