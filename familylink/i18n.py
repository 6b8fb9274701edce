"""Languages: which one each request speaks, and the message catalogues `make` builds.

Strings go through gettext everywhere (`{{ _('…') }}` in templates, `gettext`, `ngettext` and
`lazy_gettext` in Python). The Spanish catalogue lives in
`familylink/translations/es/LC_MESSAGES/messages.po`; drafts of new translations may sit beside
it in `familylink/translations/es/parts/*.po` until `make translations-update` folds them in.
`make translations` (run by `make run` and `make test`) compiles what is there into `.mo`
files, which are build output and not committed.

Run `python -m familylink.i18n --help` for the commands behind the make targets.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import jinja2
from babel import support
from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po
from flask import g, request
from flask_babel import Domain, get_locale, get_translations
from flask_babel.speaklater import LazyString
from markupsafe import Markup
from wtforms.i18n import messages_path

# The languages a person may choose, in their own words (shown on the switch as they are).
LANGUAGES = {"en": "English", "es": "Español"}
DEFAULT_LANGUAGE = "en"

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TRANSLATIONS = Path(__file__).resolve().parent / "translations"
DOMAIN = "messages"

# Where strings are: Python under familylink/, Jinja templates under templates/.
SOURCES = (
    (PROJECT_ROOT / "familylink", [("**.py", "python")]),
    (
        PROJECT_ROOT / "templates",
        [("**.html", "jinja2"), ("**.txt", "jinja2"), ("**.ics", "jinja2")],
    ),
)
KEYWORDS = {
    "_": None,
    "gettext": None,
    "ngettext": (1, 2),
    "pgettext": ((1, "c"), 2),
    "lazy_gettext": None,
    "_l": None,
    "lazy_ngettext": (1, 2),
}
JINJA_OPTIONS = {"extensions": "jinja2.ext.i18n", "silent": "false"}

# Tests render every page under this locale with a catalogue that marks each translated string
# (`⟦…⟧`), so visible English that skipped gettext shows up unmarked. Nobody can choose it.
PSEUDO_LOCALE = "en_US_POSIX"
PSEUDO_OPEN, PSEUDO_CLOSE = "⟦", "⟧"


# Where the request's catalogue is remembered, on Flask-Babel's own per-request namespace.
_CATALOGUE = "familylink_catalogue"


def _babel_state() -> dict | None:
    """Flask-Babel's per-request namespace (its chosen Locale and Domain), as a dict; None
    when it has none yet. Raises RuntimeError outside an app context."""
    state = vars(g._get_current_object()).get("_flask_babel")
    return vars(state) if state is not None else None


def spoken_locale():
    """Flask-Babel's `get_locale()`: the Locale being spoken (the request's, or the one
    `force_locale` set), read from Flask-Babel's namespace once it has chosen one. Its own
    walks the context proxies again each time, and a page asks once per time it shows."""
    try:
        state = _babel_state()
    except RuntimeError:  # no app context: Flask-Babel's own answer (None)
        return get_locale()
    locale = state.get("babel_locale") if state is not None else None
    return locale if locale is not None else get_locale()


def remembered_catalogue(lookup):
    """`lookup()` (Flask-Babel's catalogue for the request's language and domain), kept for
    the rest of the request: a page asks for it 40 to 90 times, and each lookup walks several
    context proxies and spells the locale's name again.

    It is kept only while Flask-Babel's Locale and Domain objects for the request are the
    ones it was found for, so `force_locale` (consent forms, calendar files) and `refresh`
    (a changed language setting) are followed at once, and their end too."""
    try:
        state = _babel_state()
    except RuntimeError:  # no app context: Flask-Babel's own answer
        return lookup()
    if state is not None:
        kept = state.get(_CATALOGUE)
        if (
            kept is not None
            and kept[0] is state.get("babel_locale")
            and kept[1] is state.get("babel_domain")
        ):
            return kept[2]
    catalogue = lookup()
    state = _babel_state()
    locale = state.get("babel_locale") if state is not None else None
    if locale is not None:
        state[_CATALOGUE] = (locale, state.get("babel_domain"), catalogue)
    return catalogue


def gettext(string: str, **variables) -> str:
    """Flask-Babel's `gettext` (the same words, `%` formatting only with variables), from the
    remembered catalogue at once: Flask-Babel's first walks the context proxies to find the
    domain (about half of its calls). For words said once per item of a page (each time
    shown says two); `force_locale` is followed as the catalogue's memo follows it."""
    said = remembered_catalogue(get_translations).ugettext(string)
    return said % variables if variables else said


def lazy_gettext(string: str, **variables) -> LazyString:
    """Flask-Babel's `lazy_gettext`, the same LazyString (shown as it shows, trusted words
    and all), saying its words with `gettext` above: a form's label and hint are said twice
    each time the form is shown, and Flask-Babel's walks the context proxies each time."""
    return LazyString(gettext, string, **variables)


class RequestDomain(Domain):
    """Flask-Babel's message domain, whose catalogue each request looks up once (Python's
    `gettext`, `ngettext`, `lazy_gettext` all come here)."""

    def get_translations(self):
        return remembered_catalogue(super().get_translations)


@functools.cache
def _wtforms_catalogue(locale: str) -> support.NullTranslations:
    return support.Translations.load(messages_path(), [locale], domain="wtforms")


def forget_wtforms_catalogues() -> None:
    _wtforms_catalogue.cache_clear()


class WTFormsCatalogue:
    """WTForms' own words (a label it makes from a field's name, its validators' default
    messages) in the language of the moment, from a catalogue read once per process and
    language. Flask-WTF reads it from disk on each request that translates one (a twentieth
    of the booking page under cProfile); looked up at each call, it follows `force_locale`."""

    def ugettext(self, string: str) -> str:
        return _wtforms_catalogue(str(get_locale())).ugettext(string)

    def ungettext(self, singular: str, plural: str, n: int) -> str:
        return _wtforms_catalogue(str(get_locale())).ungettext(singular, plural, n)


def install(app, babel) -> None:
    """After `babel.init_app`: Python's and Jinja's gettext read the remembered catalogue.

    Jinja's `_`, `gettext`, `ngettext`, `pgettext` and `npgettext` are `jinja_gettext`'s:
    what Jinja's newstyle callables say, escaped and formatted as they are, for a fraction of
    the calls."""
    if not isinstance(vars(babel).get("domain_instance"), RequestDomain):
        # One per process, as Flask-Babel's cached_property was (its catalogue cache too).
        babel.domain_instance = RequestDomain(domain=DOMAIN)

    def catalogue():
        return remembered_catalogue(get_translations)

    wtforms_catalogue = WTFormsCatalogue()

    @app.before_request
    def wtforms_words_from_memory():
        # Where Flask-WTF keeps the request's WTForms catalogue once it has read one.
        request.wtforms_translations = wtforms_catalogue

    # `{% trans %}` passes its variables as keywords (newstyle), as the callables take them.
    app.jinja_env.newstyle_gettext = True
    app.jinja_env.globals.update(jinja_gettext(catalogue))

    @app.context_processor
    def gettext_of_this_render():
        # A page's words from the catalogue of the moment it is rendered, looked up once, not
        # once per word (a page says 20 to 40). Rendered under `force_locale`, a page takes
        # that language's catalogue all the same; macros imported without the context use
        # the globals above, which look it up at each word.
        spoken = catalogue()
        return jinja_gettext(lambda: spoken)


def _said(eval_ctx, said: str, variables: dict) -> str:
    """What Jinja's newstyle gettext makes of a translation: markup in an autoescaped
    template (the catalogue's text is trusted, each variable is escaped by `%`), and always
    a format string ("%%" reads "%" with no variable too). A string with no variable and no
    "%" is its own format, so it is not formatted again."""
    if eval_ctx.autoescape:
        said = Markup(said)  # noqa: S704  (the catalogue's text, as Jinja takes it)
    return said % variables if variables or "%" in said else said


def jinja_gettext(catalogue) -> dict:
    """Jinja's gettext callables over `catalogue()` (the catalogue of the moment, looked up
    at each call, so `force_locale` is followed), saying exactly what Jinja's newstyle
    callables say (`jinja2.ext._make_new_gettext` and its siblings: `num` and `context` as
    variables, the same escaping and formatting) without their three `Context.call`s per
    string. `_` is `gettext` itself, not Jinja's alias that looks `gettext` up and calls it
    again: a template given its own gettext (the email templates) is given its own `_`."""

    @jinja2.pass_eval_context
    def gettext(eval_ctx, string: str, /, **variables) -> str:
        return _said(eval_ctx, catalogue().ugettext(string), variables)

    @jinja2.pass_eval_context
    def ngettext(eval_ctx, singular: str, plural: str, num: int, /, **variables) -> str:
        variables.setdefault("num", num)
        return _said(eval_ctx, catalogue().ungettext(singular, plural, num), variables)

    @jinja2.pass_eval_context
    def pgettext(eval_ctx, string_context: str, string: str, /, **variables) -> str:
        variables.setdefault("context", string_context)
        return _said(eval_ctx, catalogue().upgettext(string_context, string), variables)

    @jinja2.pass_eval_context
    def npgettext(
        eval_ctx, string_context: str, singular: str, plural: str, num: int, /, **variables
    ) -> str:
        variables.setdefault("context", string_context)
        variables.setdefault("num", num)
        said = catalogue().unpgettext(string_context, singular, plural, num)
        return _said(eval_ctx, said, variables)

    return {
        "_": gettext,
        "gettext": gettext,
        "ngettext": ngettext,
        "pgettext": pgettext,
        "npgettext": npgettext,
    }


def normalise(language: str | None) -> str:
    """A language a person may have: the known key for `language`, else the default."""
    if not language:
        return DEFAULT_LANGUAGE
    key = language.replace("_", "-").split("-")[0].lower()
    return key if key in LANGUAGES else DEFAULT_LANGUAGE


def select_locale() -> str:
    """Flask-Babel's locale selector: the person's setting, else the switch, else the browser."""
    from flask import current_app, has_request_context, request, session
    from flask_login import current_user

    if not has_request_context():  # commands and sweeps choose per recipient (force_locale)
        return DEFAULT_LANGUAGE
    forced = current_app.config.get("FORCE_LOCALE")
    if forced:
        return forced
    user = current_user._get_current_object()  # one look-up through the proxy, not three
    if user and user.is_authenticated:
        return normalise(user.locale)
    chosen = session.get("locale")
    if chosen in LANGUAGES:
        return chosen
    return request.accept_languages.best_match(list(LANGUAGES), default=DEFAULT_LANGUAGE)


class Later:
    """Words written when they are shown, in the language spoken then: an email's context is
    built in the sender's request and rendered under its recipient's `force_locale`.

    Written once for each language it is shown in (an email prints its title in the subject,
    the text and the HTML, and compares it to group emails that render alike): the language
    being spoken is the only thing the words may depend on while they are shown.

    Unlike Flask-Babel's LazyString (meant for trusted msgids, it calls itself safe HTML),
    the text is escaped like any other value, so a name inside it stays text."""

    __slots__ = ("_function", "_args", "_written")

    def __init__(self, function, *args):
        self._function, self._args = function, args
        self._written: tuple | None = None  # (the locale it was written in, the words)

    def __str__(self) -> str:
        locale = get_locale()
        if self._written is None or self._written[0] is not locale:
            self._written = (locale, str(self._function(*self._args)))
        return self._written[1]

    def __bool__(self) -> bool:
        return bool(str(self))

    def __eq__(self, other) -> bool:
        return str(self) == other

    def __hash__(self) -> int:
        return hash(str(self))


@jinja2.pass_context
def greeting(context, name: str | None, *, heading: bool = False) -> str:
    """Every greeting of an email ("Hello Maria,") or of a home page (`heading`: "Hello,
    Maria"), by the first word of `name`; with no name to give, the nameless form ("Hello,",
    "Hello"), never "Hello ," or "Hola, :".

    Said with the template's own gettext, so it is escaped as the template is (HTML or text)
    and an email sweep keeps its catalogue bound once per language."""

    def _(string: str, **variables) -> str:
        return context.call(context.resolve("gettext"), string, **variables)

    first = first_word(name)
    if heading:
        return _("Hello, %(name)s", name=first) if first else _("Hello")
    return _("Hello %(name)s,", name=first) if first else _("Hello,")


#: Titles a name may begin with: nobody is called by one ("Hello Dr.,").
TITLES = frozenset(
    ("dr", "dra", "mr", "mrs", "ms", "mx", "prof", "sr", "sra", "srta", "lic", "lcda", "lcdo")
)


def first_word(name: str | None) -> str:
    """What a page or an email calls a person: the first word of their name after any title;
    "" for no name, or a name of spaces alone."""
    words = (name or "").split()
    if len(words) > 1 and words[0].rstrip(".").lower() in TITLES:
        words = words[1:]
    return words[0] if words else ""


def _searched(directory: str) -> bool:
    # Babel skips folders starting with "_" by default, and templates/_macros holds strings.
    return not Path(directory).name.startswith((".", "__"))


def extract() -> Catalog:
    """Every translatable string in the code and templates, as a template catalogue."""
    catalog = Catalog(project="FamilyLink", charset="utf-8")
    for directory, method_map in SOURCES:
        options = {pattern: JINJA_OPTIONS for pattern, method in method_map if method == "jinja2"}
        for filename, lineno, message, comments, context in extract_from_dir(
            str(directory),
            method_map,
            options,
            keywords=KEYWORDS,
            strip_comment_tags=True,
            directory_filter=_searched,
        ):
            where = (str(Path(directory.name) / filename), lineno)
            catalog.add(message, None, [where], auto_comments=comments, context=context)
    return catalog


def _po(language: str) -> Path:
    return TRANSLATIONS / language / "LC_MESSAGES" / f"{DOMAIN}.po"


def _read(path: Path, language: str) -> Catalog:
    with path.open("rb") as handle:
        return read_po(handle, locale=language)


def _with_parts(catalog: Catalog, language: str) -> Catalog:
    """The catalogue with draft translations from parts/*.po filling the entries it lacks."""
    for part in sorted((TRANSLATIONS / language / "parts").glob("*.po")):
        for message in _read(part, language):
            if not message.id or not message.string or message.fuzzy:
                continue
            if isinstance(message.string, tuple):  # a draft may carry CLDR's third form
                message.string = message.string[: catalog.num_plurals]
            current = catalog.get(message.id, context=message.context)
            if current is None:
                catalog.add(message.id, message.string, context=message.context)
            elif not current.string or current.fuzzy:
                current.string = message.string
                current.flags.discard("fuzzy")
    return catalog


def _languages() -> list[str]:
    return [language for language in LANGUAGES if _po(language).exists()]


def update() -> list[str]:
    """Re-extract, fold the drafts in and write each language's .po (sorted by message)."""
    template = extract()
    written = []
    for language in _languages():
        catalog = _with_parts(_read(_po(language), language), language)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        with _po(language).open("wb") as handle:
            write_po(handle, catalog, sort_output=True, omit_header=False, width=100)
        for part in (TRANSLATIONS / language / "parts").glob("*.po"):
            part.unlink()
        written.append(str(_po(language).relative_to(PROJECT_ROOT)))
    return written


def compile_catalogues(directory: Path | None = None) -> list[str]:
    """Write each language's .mo (into `directory`, default beside the .po files)."""
    written = []
    for language in _languages():
        catalog = _with_parts(_read(_po(language), language), language)
        target = (directory or TRANSLATIONS) / language / "LC_MESSAGES" / f"{DOMAIN}.mo"
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("wb") as handle:
            write_mo(handle, catalog)
        written.append(str(target))
    return written


def pseudo_marked(text: str) -> str:
    return f"{PSEUDO_OPEN}{text}{PSEUDO_CLOSE}"


def compile_pseudo(directory: Path) -> Path:
    """A catalogue for PSEUDO_LOCALE that marks every extracted string, for the tests."""
    catalog = Catalog(locale=PSEUDO_LOCALE, charset="utf-8")
    for message in extract():
        if not message.id:
            continue
        if message.pluralizable:
            string = tuple(pseudo_marked(form) for form in message.id)
        else:
            string = pseudo_marked(message.id)
        catalog.add(message.id, string, context=message.context)
    target = directory / PSEUDO_LOCALE / "LC_MESSAGES" / f"{DOMAIN}.mo"
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("wb") as handle:
        write_mo(handle, catalog)
    return directory


def untranslated(language: str) -> list[str]:
    """Strings in the code that `language`'s catalogue does not translate (or marks fuzzy)."""
    catalog = _with_parts(_read(_po(language), language), language)
    missing = []
    for message in extract():
        if not message.id:
            continue
        entry = catalog.get(message.id, context=message.context)
        strings = entry.string if entry else None
        filled = all(strings) if isinstance(strings, tuple) else bool(strings)
        if entry is None or entry.fuzzy or not filled:
            missing.append(message.id if isinstance(message.id, str) else message.id[0])
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m familylink.i18n",
        description="Build FamilyLink's message catalogues (what the make targets run).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "extract", help="write every translatable string to translations/messages.pot"
    )
    commands.add_parser("compile", help="write the .mo files the app reads (make translations)")
    commands.add_parser(
        "update",
        help="re-extract strings, fold parts/*.po drafts in, rewrite each .po "
        "(make translations-update)",
    )
    commands.add_parser("missing", help="list strings the Spanish catalogue does not translate yet")
    args = parser.parse_args(argv)
    if args.command == "extract":
        target = TRANSLATIONS / f"{DOMAIN}.pot"
        with target.open("wb") as handle:
            write_po(handle, extract(), sort_output=True, width=100)
        print(f"wrote {target.relative_to(PROJECT_ROOT)}")
    elif args.command == "compile":
        for path in compile_catalogues():
            print(f"compiled {Path(path).relative_to(PROJECT_ROOT)}")
    elif args.command == "update":
        for path in update():
            print(f"updated {path}")
    else:
        missing = untranslated("es")
        for message in missing:
            print(message)
        print(f"{len(missing)} strings not translated into Spanish", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
