"""The overview's charts: SVG drawn on the server by pygal, embedded in the page.

pygal's SVG carries an inline <script> and <style> (and a few style attributes); the
Content-Security-Policy (script-src 'self', no inline styles) would block them, and the
page needs neither: they are taken out here and `static/style.css` styles the chart's
classes. Each chart says in words what it shows; the table beside it has the same numbers.
"""

from __future__ import annotations

import functools
import sys
from xml.etree import ElementTree

from flask_babel import gettext as _
from markupsafe import Markup

from familylink.services.overview import Table


@functools.cache
def _pygal():
    """pygal, imported on the first chart drawn: only the overview (admins and directors)
    draws one, so no other worker keeps it (about 2 MB; issue 19)."""
    import pygal

    # pygal puts an import hook on sys.meta_path (for its old plugin names, pygal.maps.*)
    # that makes Python warn at every later import it looks at; nothing here uses them.
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, pygal.PluginImportFixer)]
    return pygal


#: Charts kept drawn, per process: the last few distinct (figures, words) asked for.
DRAWN_CHARTS = 64


def bar_chart(table: Table, description: str) -> Markup:
    """The table's counts per month as grouped bars (a hidden count is a gap), as inline
    SVG with `description` as its accessible name.

    Drawing is most of the page's own time, and the figures of a period rarely change
    between two views, so each distinct chart is drawn once: the key is everything drawn
    (months, each measure's name and counts, the words), so a changed count, a hidden
    cell or another language draws it anew. Only counts that may be shown are in it."""
    series = tuple(
        (
            str(column.label),
            tuple(v if isinstance(v, int) else None for v in _column(table, column.key)),
        )
        for column in table.count_columns
    )
    labels = tuple(row.label for row in table.rows)
    return _draw(labels, series, description, _("No data"))


@functools.lru_cache(maxsize=DRAWN_CHARTS)
def _draw(labels: tuple, series: tuple, description: str, no_data: str) -> Markup:
    pygal = _pygal()
    chart = pygal.Bar(
        js=[],
        disable_xml_declaration=True,
        width=720,
        height=320,
        legend_at_bottom=True,
        legend_at_bottom_columns=1,
        truncate_legend=-1,  # a cut name is half a word, in any language
        show_y_guides=True,
        print_values=False,
        no_data_text=no_data,
        style=pygal.style.Style(font_family="inherit"),
    )
    chart.x_labels = list(labels)
    for title, values in series:
        chart.add(title, list(values))
    root = chart.render_tree()
    for parent in list(root.iter()):
        for child in list(parent):
            if child.tag in ("script", "style"):
                parent.remove(child)
        parent.attrib.pop("style", None)
    for title in root.iter("title"):  # pygal's own title says "Pygal"
        title.text = description
    root.set("role", "img")
    root.set("aria-label", description)
    root.set("class", "overview-chart pygal-chart")
    root.set("focusable", "false")
    # ElementTree escapes every text and attribute it writes (labels are the app's own
    # words and months), and the scripts and styles are gone.
    return Markup(ElementTree.tostring(root, encoding="unicode"))  # noqa: S704


def forget_drawn_charts() -> None:
    """Empty this process's kept charts (for tests)."""
    _draw.cache_clear()


def _column(table: Table, key: str) -> list:
    return [row.cells[key] for row in table.rows]
