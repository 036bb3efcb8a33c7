"""The package's layers, read from its import statements.

Every ``import`` and ``from ... import`` in ``visma_idp/`` counts, at the
top of a module or inside a function (an import inside a function is still a
dependency; it only runs later). Imports under ``if TYPE_CHECKING:`` do not
count: they never run and only name types for mypy.

A *package* is the first name below ``visma_idp``: a folder (``oidc``,
``login``) or a top-level module (``config``, ``audit``, ``cli``);
``visma_idp`` is the root (``__init__.py``, the extension that sets every
part up). A package's ``settings.py`` belongs to ``config``: it declares
rows that ``config.py`` gathers and imports nothing but config's parsers
(a rule below).

- :data:`RULES`: "package X may not import Y", one line each. ``X`` and ``Y``
  are dotted names below ``visma_idp`` (``oidc``, ``oidc.views``) and may
  hold ``*`` (``*.settings``); ``Only(...)`` turns a line into "may import
  only these".
- Cycles: no two packages import each other, directly or through others.
  A pair that must import each other for a while goes into
  :data:`KNOWN_CYCLES` with the work that removes it (none today).
- SQL: the modules outside ``storage/`` that build statements are exactly
  the ones ``storage/__init__.py`` names.
"""

from __future__ import annotations

import ast
import functools
import re
from collections import defaultdict
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "visma_idp"
ROOT = "visma_idp"


class Only(frozenset):
    """In :data:`RULES`: the importer may import only these packages (and its own)."""


# Below storage: modules that import nothing of visma_idp but each other.
BOTTOM = ("clock", "config", "errors", "crypto", "proxy")

# (who, what it may not import, why). Adding a rule is adding a line.
RULES: list[tuple[str, str | Only, str]] = [
    ("storage", Only(BOTTOM), "storage/ is the bottom layer: every package may use it, it uses none of them"),
    *[(name, Only(BOTTOM), "below storage: pure helpers and the settings") for name in BOTTOM],
    ("*.settings", Only({"config"}), "a package's settings are rows config.py gathers: config's parsers only"),
    # issue 9: the protocol and the sign-in meet in browser/ and through idp.handoff, never by import
    *[("oidc", side, "oidc/ hands a request over to the sign-in through idp.handoff; it imports none of it")
      for side in ("login", "factors", "password", "account", "admin")],
    *[(side, "oidc.views", "the sign-in never reaches into the protocol's endpoints")
      for side in ("login", "factors", "password", "account")],
    ("login", "oidc", "the sign-in hands back through idp.handoff.resume; it imports nothing of oidc/"),
    ("browser", Only({*BOTTOM, "storage", "context", "assurance"}),
     "what a browser holds (cookies, SSO session, interaction, sign-in) sits below both sides"),
    ("assurance", Only(set()), "the acr ladder and the amr values: words both sides speak, nothing else"),
    ("context", Only(set()), "the provider of the current app and the request's state: Flask only"),
    # issue 9: the package pairs that imported each other, each cut and kept cut
    ("addresses", Only({"errors"}), "the one address parser sits below every package that takes an address in"),
    ("notify", "account", "the outbox parses a recipient with addresses.py; it knows nothing of accounts"),
    ("notify", "factors", "the outbox sends and shows text messages (notify/sms.py masks a number); "
                          "the factors use it, never the other way"),
    ("account", "admin", "account/ owns its links (the Welcome email and resending it too); "
                         "the admin creates users through it, never the other way"),
    ("agreements", "admin", "admin/ manages agreements (its API, its console, the one-time codes on an "
                            "agreement's members page: admin/agreement_codes.py); agreements/ imports nothing of it"),
    ("factors", "admin", "a factor is the code and the way through the second step; who may issue an "
                         "admin's one-time code is admin/one_time_codes.py's"),
    ("federation", "admin", "upstream providers are managed through admin/ (the API) and the CLI; federation/ "
                            "makes its just-in-time accounts itself"),
    ("federation", "login", "the sign-in registers its round-trip handlers (federation/roundtrip.py: register); "
                            "federation/ imports nothing of login/"),
    ("oidc", "federation", "the protocol reads the national levels from storage/queries.py, never federation/"),
    ("agreements", "provisioning", "provisioning/ links its conflicts page on the members page through "
                                   "agreements/console.link_pages; agreements/ imports nothing of it"),
    ("account", "provisioning", "provisioning/ tells My details which fields an employer's system keeps, and hears "
                                "of the person's changes, through account/profile.keep_fields"),
    ("password", "account", "password/ is the password itself (policy, hashing, service, confirm, challenge); "
                            "the pages that use account's links (forgot, reset, the live check) are account's"),
]

# Package pairs that may import each other for a while, with the work that
# removes each: none today. Issue 9 removed the last five (account<->password,
# account<->admin, account<->notify, admin<->factors, factors<->notify); the
# RULES lines above keep them cut. A pair listed here must still be a cycle:
# once it is gone, test_known_cycles_are_still_there fails until its line goes.
KNOWN_CYCLES: dict[tuple[str, str], str] = {}

# Calls that build a SQL statement (sqlalchemy's, or db.<name>, or db.session.query).
STATEMENT_BUILDERS = {"select", "update", "delete", "insert", "text"}


# -- reading the imports -----------------------------------------------------


def module_name(path: Path, package: Path) -> str:
    """``oidc.views`` for ``visma_idp/oidc/views.py``; ``visma_idp`` for the root."""
    parts = list(path.relative_to(package).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) or ROOT


def _type_checking_only(tree: ast.AST) -> set[int]:
    """Ids of the import nodes under ``if TYPE_CHECKING:``."""
    ids: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in {"TYPE_CHECKING", "typing.TYPE_CHECKING"}:
            for child in node.body:
                ids.update(id(n) for n in ast.walk(child))
    return ids


def read_imports(package: Path = PACKAGE) -> dict[str, set[tuple[str, int]]]:
    """Every module below ``package`` and the modules of it that it imports, with the line.

    ``from . import x`` names module ``x`` when there is one, else the
    package it was imported from.
    """
    paths = {module_name(p, package): p for p in sorted(package.rglob("*.py"))}
    found: dict[str, set[tuple[str, int]]] = {name: set() for name in paths}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(), str(path))
        skipped = _type_checking_only(tree)
        here = [] if name == ROOT else name.split(".")
        if path.name != "__init__.py":
            here = here[:-1]
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            if isinstance(node, ast.Import):
                targets = [a.name.split(".")[1:] for a in node.names if a.name.split(".")[0] == ROOT]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[: len(here) - node.level + 1] if node.level > 1 else list(here)
                    base += node.module.split(".") if node.module else []
                elif node.module and node.module.split(".")[0] == ROOT:
                    base = node.module.split(".")[1:]
                else:
                    continue
                targets = [base + [a.name] for a in node.names]
            else:
                continue
            for parts in targets:
                while parts and ".".join(parts) not in paths:
                    parts = parts[:-1]
                found[name].add((".".join(parts) or ROOT, node.lineno))
    return found


def package_of(module: str) -> str:
    if fnmatchcase(module, "*.settings"):
        return "config"
    return module.split(".")[0]


def matches(module: str, pattern: str) -> bool:
    return fnmatchcase(module, pattern) or fnmatchcase(module, pattern + ".*")


def package_graph(imports: dict[str, set[tuple[str, int]]]) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = defaultdict(set)
    for module, targets in imports.items():
        for target, _line in targets:
            if package_of(module) != package_of(target):
                graph[package_of(module)].add(package_of(target))
    return graph


def cyclic_pairs(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Pairs of packages each of which reaches the other (directly or through others)."""

    def reach(start: str) -> set[str]:
        seen: set[str] = set()
        todo = [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    reached = {name: reach(name) for name in list(graph)}
    return {tuple(sorted((a, b))) for a in reached for b in reached[a]  # type: ignore[misc]
            if a != b and a in reached.get(b, ())}


def violations(imports: dict[str, set[tuple[str, int]]], who: str, banned: str | Only) -> list[str]:
    found = []
    for module, targets in sorted(imports.items()):
        if not matches(module, who):
            continue
        for target, line in sorted(targets):
            if isinstance(banned, Only):
                bad = package_of(target) != package_of(module) and not any(matches(target, p) for p in banned)
            else:
                bad = matches(target, banned)
            if bad:
                found.append(f"{module} (line {line}) imports {target}")
    return found


@functools.cache
def _imports() -> dict[str, set[tuple[str, int]]]:
    return read_imports()


# -- the layers ----------------------------------------------------------------


@pytest.mark.parametrize(("who", "banned", "why"), RULES, ids=[f"{w}-{i}" for i, (w, _b, _y) in enumerate(RULES)])
def test_rule(who, banned, why):
    assert any(matches(m, who) for m in _imports()), f"the rule names {who!r}, which is no module (any more)"
    assert violations(_imports(), who, banned) == [], why


def test_known_cycles_are_still_there():
    """Each pair in :data:`KNOWN_CYCLES` still imports each other; a pair that is gone leaves the list."""
    graph = package_graph(_imports())
    gone = [pair for pair in KNOWN_CYCLES if not (pair[1] in graph[pair[0]] and pair[0] in graph[pair[1]])]
    assert gone == [], "these pairs no longer import each other: remove their lines from KNOWN_CYCLES"


def test_no_other_cycles():
    """With the known pairs (none today) set aside, the packages form no cycle, through any number of them."""
    graph = package_graph(_imports())
    known = {tuple(sorted(pair)) for pair in KNOWN_CYCLES}
    for a, b in known:
        graph[a].discard(b)
        graph[b].discard(a)
    assert cyclic_pairs(graph) == set()


# -- SQL -----------------------------------------------------------------------


def builds_statements(path: Path) -> bool:
    tree = ast.parse(path.read_text(), str(path))
    names = {a.asname or a.name for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
             and (node.module or "").split(".")[0] == "sqlalchemy" for a in node.names if a.name in STATEMENT_BUILDERS}
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Name) and func.id in names:
            return True
        if isinstance(func, ast.Attribute) and (
            (func.attr in STATEMENT_BUILDERS and ast.unparse(func.value) == "db")
            or (func.attr == "query" and ast.unparse(func.value) == "db.session")
        ):
            return True
    return False


def test_sql_lives_where_storage_says():
    """``storage/__init__.py`` names every module outside storage/ that builds a SQL statement
    (in its docstring, each in single backticks: `factors/totp.py`)."""
    import visma_idp.storage

    named = {name for name in re.findall(r"(?<!`)`((?:[a-z_]+/)*[a-z_]+\.py)`(?!`)", visma_idp.storage.__doc__ or "")
             if (PACKAGE / name).is_file() and not name.startswith("storage/")}
    building = {p.relative_to(PACKAGE).as_posix() for p in PACKAGE.rglob("*.py")
                if p.parent != PACKAGE / "storage" and builds_statements(p)}
    assert sorted(building - named) == [], "these build SQL statements, but storage/__init__.py does not say so"
    assert sorted(named - building) == [], "storage/__init__.py names these, but they build no statement"


# -- the walker itself -------------------------------------------------------------


def test_the_walker_reads_every_kind_of_import(tmp_path):
    pkg = tmp_path / ROOT
    for folder in ("a", "b", "c"):
        (pkg / folder).mkdir(parents=True)
        (pkg / folder / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("from .a import views\n")
    (pkg / "clock.py").write_text("")
    (pkg / "a" / "views.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from .. import clock\n"                  # a module through its package
        "from ..b import thing\n"                 # a name: counts as the module b
        "import visma_idp.c\n"                    # absolute
        "if TYPE_CHECKING:\n    from ..c import hidden\n"
        "def later():\n    from ..b import settings\n"  # inside a function
    )
    (pkg / "b" / "settings.py").write_text("from .. import clock\n")
    (pkg / "c" / "mod.py").write_text("from visma_idp.a.views import later\nfrom . import mod\n")
    imports = read_imports(pkg)
    assert {t for t, _ in imports["a.views"]} == {"clock", "b", "c", "b.settings"}
    assert {t for t, _ in imports[ROOT]} == {"a.views"}
    assert {t for t, _ in imports["c.mod"]} == {"a.views", "c.mod"}
    graph = package_graph(imports)
    assert graph["a"] == {"clock", "b", "c", "config"}  # b/settings.py counts as config
    assert cyclic_pairs(graph) == {("a", "c")}
    assert violations(imports, "a", Only({"clock"})) == [
        "a.views (line 3) imports b", "a.views (line 8) imports b.settings", "a.views (line 4) imports c"]
    assert violations(imports, "*.settings", "clock") == ["b.settings (line 1) imports clock"]


@pytest.mark.parametrize(("source", "builds"), [
    ("from sqlalchemy import select\nselect(User)\n", True),
    ("from sqlalchemy import update as upd\nupd(User).values(x=1)\n", True),
    ("from sqlalchemy import text\ndb.session.execute(text('LOCK TABLE t'))\n", True),
    ("db.session.execute(db.select(User))\n", True),
    ("db.session.query(SmsCode).filter(x).delete()\n", True),
    ("db.session.delete(row)\ndb.session.get(User, 1)\nqueries.user_by_email(e)\n", False),  # the ORM, a lookup
    ("headers.update(NO_STORE)\nnames.update(claims)\n", False),
])
def test_what_counts_as_building_a_statement(tmp_path, source, builds):
    path = tmp_path / "mod.py"
    path.write_text(source)
    assert builds_statements(path) is builds
