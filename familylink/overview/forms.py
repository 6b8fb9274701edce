from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms.validators import Optional

from familylink.forms import DayField


class PeriodForm(FlaskForm):
    """The overview's period (a GET form: nothing changes, so no CSRF token). Empty fields
    mean the default period; the overview service checks the dates together."""

    class Meta:
        csrf = False

    first = DayField(_l("First day (YYYY-MM-DD)"), validators=[Optional()])
    last = DayField(_l("Last day (YYYY-MM-DD)"), validators=[Optional()])
