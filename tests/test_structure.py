"""The structure docs/architecture.md describes, checked on the code itself (read with ast,
nothing imported): layers without import cycles, thin views, service files of a readable
size, and no behaviour that depends on which modules happen to be imported."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "familylink"
VIEW_MAX_LINES = 30
SERVICE_FILE_MAX_LINES = 500


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in MODULES.items()}


def _imported(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The familylink modules an import statement loads (the nearest existing module)."""
    if isinstance(node, ast.Import):
        targets = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:
            package = module.split(".")
            if MODULES[module].name != "__init__.py":
                package = package[:-1]
            package = package[: len(package) - node.level + 1]
            base = ".".join([*package, base] if base else package)
        targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
    result = set()
    for target in targets:
        while target and target not in MODULES:
            target = target.rpartition(".")[0]
        # A module's own package (__init__) is where it lives, not a layer it imports.
        own_package = module.startswith(target + ".")
        if target and target not in {"familylink", module} and not own_package:
            result.add(target)
    return result


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in MODULES}
    for name, tree in TREES.items():
        for node in ast.walk(tree):  # imports inside functions count too
            if isinstance(node, ast.Import | ast.ImportFrom):
                graph[name] |= _imported(name, node)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _is_route(function: ast.FunctionDef) -> bool:
    return any(
        isinstance(d, ast.Call)
        and isinstance(d.func, ast.Attribute)
        and d.func.attr in {"route", "get", "post"}
        for d in function.decorator_list
    )


def test_the_cycle_finder_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycle_among_familylink_modules():
    assert _cycles(_graph()) == []


def test_services_do_not_import_the_web_layer():
    web = {"familylink.web", "familylink.cli"} | {
        name for name in MODULES if name.endswith((".routes", ".forms"))
    }
    leaks = {
        (name, target)
        for name, targets in _graph().items()
        if name.startswith("familylink.services")
        for target in targets & web
    }
    assert leaks == set()


def test_no_view_is_longer_than_thirty_lines():
    long_views = [
        f"{name}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for name, tree in TREES.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and _is_route(node)
        and node.end_lineno - node.lineno + 1 > VIEW_MAX_LINES
    ]
    assert long_views == []


def test_no_service_file_is_longer_than_five_hundred_lines():
    big = {
        name: lines
        for name, path in MODULES.items()
        if name.startswith("familylink.services")
        and (lines := len(path.read_text(encoding="utf-8").splitlines())) > SERVICE_FILE_MAX_LINES
    }
    assert big == {}


def test_nothing_is_wired_by_a_signal_receiver():
    """Effects that happen only when some module was imported are effects that get lost:
    lifecycle changes are explicit operations (docs/architecture.md)."""
    receivers = [
        f"{name}.{node.name}"
        for name, tree in TREES.items()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and any(
            isinstance(d, ast.Attribute)
            and d.attr in {"connect", "connect_via"}
            or isinstance(d, ast.Call)
            and isinstance(d.func, ast.Attribute)
            and d.func.attr == "connect_via"
            for d in node.decorator_list
        )
    ]
    assert receivers == []


def test_only_the_gate_decides_which_patients_a_family_member_sees():
    """Issue 15: listing a family member's patients and writing the disclosure rows of what
    they were shown happen in the gate (familylink/services/access/), which returns what it
    allowed and records it, so no caller filters by patients itself or forgets the row."""
    gate_only = {"linked_patients", "record_disclosures"}
    callers = sorted(
        f"{name}:{node.lineno}"
        for name, tree in TREES.items()
        if not name.startswith("familylink.services.access")
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            isinstance(node.func, ast.Attribute)
            and node.func.attr in gate_only
            or isinstance(node.func, ast.Name)
            and node.func.id in gate_only
        )
    )
    assert callers == []


# Issue 15, "one definition of each access rule": whether a consent covers a scope, when it
# ends (and whether soon) and whether it is closed are the gate's answers
# (familylink/services/access/). Elsewhere a consent's scopes, end and closure are shown,
# never compared: a list of many people asks each `access.family_in_force` row what it
# `covers`, a sweep asks `access.status_of`.
_SCOPE_VALUES = {"scheduling", "attendance", "progress"}
_SET_CALLS = {"set", "frozenset"}
_SET_METHODS = {"update", "union", "difference", "intersection", "issubset", "issuperset"}
_GATE_ONLY_NAMES = {"EXPIRING_SOON"}
_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def _is_scopes(node: ast.AST) -> bool:
    """A consent's scopes (`x.scopes`), or a set made of them."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return node.func.id in _SET_CALLS and any(_is_scopes(arg) for arg in node.args)
    return isinstance(node, ast.Attribute) and node.attr == "scopes"


def _called(node: ast.Call) -> str | None:
    func = node.func
    return func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)


def _tested(node: ast.AST, parents: dict) -> bool:
    """Whether `node` (or an attribute read from it) is compared or tested as a condition."""
    while isinstance(parents.get(node), ast.Attribute):
        node = parents[node]
    parent = parents.get(node)
    if isinstance(parent, ast.Compare | ast.BoolOp):
        return True
    if isinstance(parent, ast.UnaryOp) and isinstance(parent.op, ast.Not):
        return True
    if isinstance(parent, ast.If | ast.IfExp | ast.While):
        return parent.test is node
    return isinstance(parent, ast.comprehension) and node in parent.ifs


def consent_rule_decisions(tree: ast.AST) -> list[int]:
    """Lines of `tree` that decide from a consent's scopes, dates or status themselves."""
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            scoped = any(
                isinstance(op, ast.In | ast.NotIn) and _is_scopes(right)
                for op, right in zip(node.ops, node.comparators, strict=True)
            )
            expiry = any(isinstance(op, _ORDERING) for op in node.ops) and any(
                isinstance(side, ast.Attribute)
                and side.attr == "expires_at"
                and "token" not in ast.unparse(side.value).lower()
                for side in (node.left, *node.comparators)
            )
            decides = scoped or expiry
        elif isinstance(node, ast.BinOp):
            decides = _is_scopes(node.left) or _is_scopes(node.right)
        elif isinstance(node, ast.Call):
            name = _called(node)
            decides = (name in _SET_METHODS and any(_is_scopes(arg) for arg in node.args)) or (
                # The gate's end by the clock, outside it, is a value to show: a dict value
                # or a keyword argument (an email's or a page's context), never compared.
                name == "consent_end" and not isinstance(parents.get(node), ast.Dict | ast.keyword)
            )
        elif isinstance(node, ast.Attribute):
            decides = (
                node.attr == "closure"
                and _tested(node, parents)
                or node.attr.startswith("scope_")
                and node.attr.removeprefix("scope_") in _SCOPE_VALUES
                or node.attr in _GATE_ONLY_NAMES
            )
        elif isinstance(node, ast.Name):
            decides = node.id in _GATE_ONLY_NAMES
        else:
            decides = False
        if decides:
            found.append(node.lineno)
    return sorted(set(found))


def test_the_consent_rule_scan_finds_planted_decisions():
    planted = """
if Scope.SCHEDULING in member.scopes: pass
dropped = covered - set(by.scopes)
covered.update(old.scopes)
if consent.closure is not None: pass
ok = [c for c in consents if c.closure is None]
if consent.closure.reason != "superseded": pass
soon = end - access.EXPIRING_SOON <= now
end = access.consent_end(consent, patient)
late = record.expires_at < now
shown = select(ConsentRecord.id).where(ConsentRecord.scope_progress)
"""
    assert consent_rule_decisions(ast.parse(planted)) == list(range(2, 12))
    shown = """
words = ", ".join(scope.label for scope in consent.scopes)
detail = {"scopes": consent.scopes}
context = {"ends_at": access.consent_end(consent, patient)}
closed = consent.closure.closed_at
fresh = token.expires_at > now
if member.covers(Scope.SCHEDULING): pass
"""
    assert consent_rule_decisions(ast.parse(shown)) == []


def test_only_the_gate_decides_from_a_consents_scopes_dates_or_status():
    """Issue 15: one definition of each access rule, the gate's."""
    decisions = [
        f"{name}:{line}"
        for name, tree in TREES.items()
        if not name.startswith(("familylink.services.access", "familylink.models"))
        for line in consent_rule_decisions(tree)
    ]
    assert decisions == []
