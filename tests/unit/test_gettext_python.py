"""Every user-visible string made in Python goes through gettext (read with ast, nothing
imported): flashes, the messages of the errors services raise, form validator messages,
field labels and help texts, and `abort` descriptions. A literal or an f-string there is
English for a Spanish reader.

A value counts as translated when it is a gettext call, or is made only of translated
values: a name or constant assigned only translated values (module constants found by name
across the package), a dict of them, `%` on one, a function (or lambda) whose every return
is one, a parameter whose every caller passes one, an exception's `.message` (checked where
it is raised) or what the person typed (`.data`).

Left out on purpose: `familylink/cli.py` (English-only command output, by design) and log
calls; `services/learning/content.py`, whose errors name a content file to whoever runs
`flask learn load`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "familylink"
ENGLISH_ONLY = {"cli.py", "services/learning/content.py"}
GETTEXT = {"_", "_l", "gettext", "ngettext", "lazy_gettext", "lazy_ngettext", "pgettext"}
GETTEXT |= {"npgettext", "lazy_pgettext"}
ERRORS = {"DomainError", "ValidationError", "Conflict", "NotFound", "InvalidToken"}
ERRORS |= {"StopValidation", "WordsToConfirm", "ScreenedWords"}


def _name(func: ast.AST) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None


class Scan:
    """What the package defines, by name, and the user-visible values it passes."""

    def __init__(self, sources: dict[str, str]):
        self.trees = {path: ast.parse(text) for path, text in sources.items()}
        self.parents: dict[ast.AST, ast.AST] = {}
        self.constants: dict[str, list[ast.AST]] = {}
        self.functions: dict[str, list[ast.AST]] = {}
        for tree in self.trees.values():
            for node in ast.walk(tree):
                for child in ast.iter_child_nodes(node):
                    self.parents[child] = node
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    self.functions.setdefault(node.name, []).append(node)
            for statement in tree.body:
                for target, value in _assignments(statement):
                    self.constants.setdefault(target, []).append(value)
        self.seen: set[int] = set()

    def _function_of(self, node: ast.AST):
        while node in self.parents:
            node = self.parents[node]
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                return node
        return None

    def translated(self, value: ast.AST | None, at: ast.AST) -> bool:
        if value is None or id(value) in self.seen:
            return True  # absent, or already being checked further up
        self.seen.add(id(value))
        try:
            return self._translated(value, at)
        finally:
            self.seen.discard(id(value))

    def _translated(self, value: ast.AST, at: ast.AST) -> bool:
        match value:
            case ast.Constant(value=str() as text):
                return not any(ch.isalpha() for ch in text)
            case ast.Constant():
                return True
            case ast.Call(func=func) if _name(func) in GETTEXT:
                return True
            case ast.Call(func=ast.Name(id="str" | "LazyString"), args=[inner]):
                return self.translated(inner, at)
            case ast.Call(func=ast.Attribute(attr="get", value=container), args=[_, *default]):
                return all(self.translated(item, at) for item in (container, *default))
            case ast.Call(func=ast.Name(id=name)) if self._is_parameter(name, at):
                return self._bound(name, at)  # a callable the callers pass
            case ast.Call(func=func):
                return self._returns_translated(_name(func))
            case ast.Attribute(attr="message" | "data"):
                return True
            case ast.Attribute(attr="label" | "description"):
                return True  # a LabelledEnum's words: see test_enums_carry_translated_words
            case ast.Attribute(attr=attr):
                return self._constant(attr, at) or self._returns_translated(attr)
            case ast.Name(id=name):
                return self._bound(name, at)
            case ast.BinOp(op=ast.Mod(), left=left):
                return self.translated(left, at)
            case ast.IfExp(body=body, orelse=orelse):
                return self.translated(body, at) and self.translated(orelse, at)
            case ast.BoolOp(values=values):
                return all(self.translated(item, at) for item in values)
            case ast.Subscript(value=container):
                return self.translated(container, at)
            case ast.Dict(values=values) | ast.Tuple(elts=values) | ast.List(elts=values):
                return all(self.translated(item, at) for item in values)
            case ast.Lambda(body=body):
                return self.translated(body, value)
        return False

    def _constant(self, name: str, at: ast.AST) -> bool:
        found = self.constants.get(name)
        return bool(found) and all(self.translated(item, at) for item in found)

    def _returns_translated(self, name: str | None) -> bool:
        functions = self.functions.get(name or "")
        if not functions:
            return False
        returns = [
            node.value
            for function in functions
            for node in ast.walk(function)
            if isinstance(node, ast.Return) and self._function_of(node) is function
        ]
        return bool(returns) and all(self.translated(item, item) for item in returns)

    def _bound(self, name: str, at: ast.AST) -> bool:
        function = self._function_of(at)
        if function is None:
            return self._constant(name, at)
        if isinstance(function, ast.Lambda):
            return self._bound(name, function)
        values = [
            value
            for node in ast.walk(function)
            if self._function_of(node) is function
            for target, value in _assignments(node)
            if target == name
        ]
        caught = any(
            isinstance(node, ast.ExceptHandler) and node.name == name for node in ast.walk(function)
        )
        if caught:
            return True  # an exception: its message is checked where it is raised
        parameters = [a.arg for a in (*function.args.posonlyargs, *function.args.args)]
        keywords = [a.arg for a in function.args.kwonlyargs]
        if name in parameters or name in keywords:
            return self._callers_pass_translated(function, name, parameters)
        if values:
            return all(self.translated(item, item) for item in values)
        if self._function_of(function) is not None:
            return self._bound(name, function)  # bound in the enclosing function
        return self._constant(name, at) or self._returns_translated(name)

    def _is_parameter(self, name: str, at: ast.AST) -> bool:
        function = self._function_of(at)
        while isinstance(function, ast.Lambda):
            function = self._function_of(function)
        if function is None:
            return False
        arguments = function.args
        return name in [
            a.arg for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs)
        ]

    def _callers_pass_translated(self, function, name: str, parameters: list[str]) -> bool:
        index = parameters.index(name) if name in parameters else None
        if index is not None and parameters[:1] == ["self"]:
            index -= 1
        for call in self.calls(function.name):
            passed = [k.value for k in call.keywords if k.arg == name]
            if index is not None and index < len(call.args):
                passed.append(call.args[index])
            if not all(self.translated(item, item) for item in passed):
                return False
        return True

    def _takes_label(self, name: str | None) -> bool:
        """A field factory of ours (`text_field(label, ...)`)."""
        functions = self.functions.get(name or "", [])
        return any(f.args.args[:1] and f.args.args[0].arg == "label" for f in functions)

    def calls(self, name: str):
        for tree in self.trees.values():
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and _name(node.func) == name:
                    yield node

    def shown(self):
        """(path, line, what) for each user-visible value that is not translated."""
        for path, tree in self.trees.items():
            for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
                for what, value in _visible(call, self._takes_label(_name(call.func))):
                    if not self.translated(value, call):
                        yield path, call.lineno, f"{what}: {ast.unparse(value)[:70]}"
            for answer in _answered_text(tree):
                if not self.translated(answer, answer):
                    yield path, answer.lineno, f"answer: {ast.unparse(answer)[:70]}"


def _assignments(node: ast.AST):
    if isinstance(node, ast.Assign):
        for target in node.targets:
            # `a, b = pair` binds each name to a part of `pair`: each counts as all of it.
            for name in target.elts if isinstance(target, ast.Tuple) else [target]:
                if isinstance(name, ast.Name):
                    yield name.id, node.value
    elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
        yield node.target.id, node.value


def _visible(call: ast.Call, field_factory: bool):
    """The values of `call` a person reads (`field_factory`: it makes a form field)."""
    name = _name(call.func) or ""
    keywords = {k.arg: k.value for k in call.keywords}
    first = call.args[0] if call.args else keywords.get("message")
    if name == "flash" and first is not None:
        yield "flash", first
    elif name in ERRORS and first is not None:
        yield name, first
    elif name == "abort":
        description = call.args[1] if len(call.args) > 1 else keywords.get("description")
        if description is not None:
            yield "abort", description
    elif name == "append" and call.args and _owner(call) in {"errors", "form_errors"}:
        yield "form error", call.args[0]
    if name.endswith("Field") or field_factory:
        label = call.args[0] if call.args else keywords.get("label")
        if label is not None:
            yield f"{name} label", label
        if "description" in keywords:
            yield f"{name} description", keywords["description"]
    elif "message" in keywords and name not in ERRORS:
        yield f"{name} message", keywords["message"]


def _answered_text(tree: ast.AST):
    """Text a view or an error handler answers with (`return "…", 400`), when it is text
    written here rather than a template or a file."""
    for function in ast.walk(tree):
        if not isinstance(function, ast.FunctionDef):
            continue
        decorators = {_name(getattr(d, "func", d)) for d in function.decorator_list}
        if not decorators & {"route", "get", "post", "errorhandler"}:
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.Return) and node.value is not None:
                value = node.value
                answer = value.elts[0] if isinstance(value, ast.Tuple) and value.elts else value
                if isinstance(answer, (ast.Constant, ast.JoinedStr)):
                    yield answer


def _owner(call: ast.Call) -> str | None:
    """`errors` in `field.errors.append(...)`."""
    return _name(call.func.value) if isinstance(call.func, ast.Attribute) else None


def _sources() -> dict[str, str]:
    return {
        str(path.relative_to(PACKAGE)): path.read_text(encoding="utf-8")
        for path in sorted(PACKAGE.rglob("*.py"))
        if str(path.relative_to(PACKAGE)) not in ENGLISH_ONLY
    }


def test_every_user_visible_string_from_python_goes_through_gettext():
    untranslated = [f"{path}:{line}: {what}" for path, line, what in Scan(_sources()).shown()]
    assert untranslated == []


UNTRANSLATED = {
    "f-string flash": 'flash(f"Revocation recorded. {name} left.", "success")',
    "literal error": 'raise ValidationError("That is already yours.", field="email")',
    "constant error": 'GONE = "Gone."\ndef f():\n    raise Conflict(GONE)',
    "validator": 'x = StringField(_l("Name"), validators=[Length(message="Too long.")])',
    "label": 'x = StringField("Name")',
    "abort": 'abort(404, description="No such page.")',
    "local": 'def v():\n    said = "Saved."\n    flash(said)',
    "helper": 'def said():\n    return "Saved."\ndef v():\n    flash(said())',
    "parameter": 'def tell(m):\n    flash(m)\ndef v():\n    tell(m="Saved.")',
    "answer": '@app.errorhandler(E)\ndef refused(error):\n    return "Go away.", 400',
}

TRANSLATED = {
    "gettext": 'flash(_("Saved %(n)s.", n=1), "success")',
    "lazy constant": 'GONE = _l("Gone.")\ndef f():\n    raise Conflict(GONE)',
    "error message": "try:\n    pass\nexcept Conflict as error:\n    flash(error.message)",
    "helper": 'def said(n):\n    return _("Saved.") if n else _("No.")\nflash(said(1))',
    "parameter": 'def tell(m):\n    flash(m)\ndef v():\n    tell(m=lambda r: _("Saved."))',
    "percent": 'def v():\n    m = _("%(name)s left.")\n    flash(m % {"name": "x"})',
}


@pytest.mark.parametrize("source", UNTRANSLATED.values(), ids=UNTRANSLATED.keys())
def test_the_scan_finds_an_untranslated_string(source):
    assert list(Scan({"planted.py": source}).shown())


@pytest.mark.parametrize("source", TRANSLATED.values(), ids=TRANSLATED.keys())
def test_the_scan_accepts_a_translated_string(source):
    assert list(Scan({"planted.py": source}).shown()) == []


def test_enums_carry_translated_words():
    """A LabelledEnum member's label and description (`NAME = "value", _l(...)`) are what
    the scan accepts as `.label` and `.description`."""
    scan = Scan(_sources())
    untranslated = [
        f"{path}:{member.lineno}: {ast.unparse(word)[:70]}"
        for path, tree in scan.trees.items()
        for enum in ast.walk(tree)
        if isinstance(enum, ast.ClassDef) and "LabelledEnum" in map(_name, enum.bases)
        for member in enum.body
        if isinstance(member, ast.Assign) and isinstance(member.value, ast.Tuple)
        for word in member.value.elts[1:]
        if not scan.translated(word, member)
    ]
    assert untranslated == []
