from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms.validators import Optional

from familylink.forms import WholeMonthField


class PeriodForm(FlaskForm):
    """The overview's period in whole months (a GET form: nothing changes, so no CSRF
    token). Empty fields mean the default period; the overview service checks the months
    together."""

    class Meta:
        csrf = False

    first = WholeMonthField(_l("First month (YYYY-MM)"), validators=[Optional()])
    last = WholeMonthField(_l("Last month (YYYY-MM)"), validators=[Optional()])
