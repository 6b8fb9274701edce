"""The Spanish catalogue keeps up with the code: every string in the code has a Spanish
translation that is not fuzzy, each translation keeps its msgid's placeholders, and
messages.po itself holds every msgid (drafts in parts/ are folded in by
`python -m familylink.i18n update`)."""

import re

from familylink import i18n

# A printf placeholder: `%(name)s` with its name and conversion, or a bare `%s` / `%d`.
PLACEHOLDER = re.compile(r"%(?:\((?P<name>[^)]*)\))?[-#0 +]*\d*(?:\.\d+)?(?P<kind>[a-zA-Z%])")


def placeholders(text: str) -> set[tuple[str | None, str]]:
    return {
        (found["name"], found["kind"])
        for found in PLACEHOLDER.finditer(text)
        if found["kind"] != "%"
    }


def wrong_placeholders(message) -> list[str]:
    """What is wrong with a translation's placeholders, in words (empty when nothing is)."""
    if isinstance(message.id, str):
        if message.string and placeholders(message.string) != placeholders(message.id):
            return [f"{message.id!r} → {message.string!r}"]
        return []
    # Plural forms: each may drop the count (“una sesión”) but none may invent a placeholder,
    # and the last form (the one for many) keeps every placeholder of the plural msgid.
    known = placeholders(message.id[0]) | placeholders(message.id[1])
    forms = [form for form in message.string if form]
    problems = [f"{message.id[1]!r} → {form!r}" for form in forms if placeholders(form) - known]
    if forms and placeholders(forms[-1]) != placeholders(message.id[1]):
        problems.append(f"{message.id[1]!r} → {forms[-1]!r}")
    return problems


def _catalogue():
    return i18n._read(i18n._po("es"), "es")


def test_every_string_in_the_code_is_translated_into_spanish():
    assert i18n.untranslated("es") == []


def test_messages_po_holds_every_string_of_the_code_without_fuzzy_entries():
    catalogue = _catalogue()
    lacking = [
        message.id
        for message in i18n.extract()
        if message.id and catalogue.get(message.id, context=message.context) is None
    ]
    fuzzy = [message.id for message in catalogue if message.id and message.fuzzy]
    assert (lacking, fuzzy) == ([], [])


def test_every_translation_keeps_its_placeholders():
    problems = [problem for message in _catalogue() for problem in wrong_placeholders(message)]
    assert problems == []


def test_the_placeholder_check_finds_a_missing_or_misspelled_name():
    from babel.messages.catalog import Message

    assert wrong_placeholders(Message("Hello %(name)s", "Hola %(name)s")) == []
    assert wrong_placeholders(Message("Hello %(name)s", "Hola"))
    assert wrong_placeholders(Message("Hello %(name)s", "Hola %(nombre)s"))
    assert wrong_placeholders(Message("Hello %(name)s", "Hola %(name)d"))
    plural = ("%(count)s session", "%(count)s sessions")
    assert wrong_placeholders(Message(plural, ("una sesión", "%(count)s sesiones"))) == []
    assert wrong_placeholders(Message(plural, ("%(count)s sesión", "sesiones")))
    assert wrong_placeholders(Message(plural, ("%(cuenta)s sesión", "%(count)s sesiones")))
