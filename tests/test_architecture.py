"""The import directions of docs/architecture.md, checked on the source (no module is imported).

Every ``import`` in ``annae/`` counts, at module level or inside a function; imports under
``if TYPE_CHECKING:`` do not (they never run). A *unit* is a package (``annae/kb``) or a top-level
module (``annae/logs.py``). The known exceptions are listed below, each with the reason it still
exists: the test fails when one appears that is not listed, and when a listed one is gone (so the
list only shrinks).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "annae"
HTTP = ("fastapi", "starlette", "uvicorn")
COMPOSITION = {"cli"}  # `annae` itself: wires every package's commands, the server among them

# pairs that break a rule today, with the reason: (importer, imported) for an import of web/ from
# outside it; (first, second) in alphabetical order for two units that import each other
KNOWN: dict[tuple[str, str], str] = {}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "annae"


def _type_checking_lines(tree: ast.Module) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def _imports() -> dict[tuple[str, str], set[str]]:
    """(importer unit, imported unit or third-party top name) → the importing ``module:line``."""
    found: dict[tuple[str, str], set[str]] = defaultdict(set)
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        source = _unit(module)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        skip = _type_checking_lines(tree)
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                target = _unit(name) if name.startswith("annae.") else name.split(".")[0]
                if name.startswith("annae.") and target == source:
                    continue
                found[(source, target)].add(f"{module}:{node.lineno}")
    return found


IMPORTS = _imports()
UNITS = {source for source, _ in IMPORTS}


def _breaks() -> dict[tuple[str, str], set[str]]:
    breaks: dict[tuple[str, str], set[str]] = {}
    for (source, target), where in IMPORTS.items():
        if source in COMPOSITION or source == "web":
            continue
        outside_web_imports_http = target in HTTP or target == "web"
        nlu_reads_storage = source == "nlu" and target in ("store", "web", "kb", "dialogue")
        mutual = target in UNITS and (target, source) in IMPORTS and target not in COMPOSITION
        if outside_web_imports_http or nlu_reads_storage:
            breaks.setdefault((source, target), set()).update(where)
        elif mutual:  # one entry per pair, both directions' lines
            pair = (source, target) if source < target else (target, source)
            breaks.setdefault(pair, set()).update(where)
    return breaks


def test_the_walk_sees_the_imports_it_checks() -> None:
    # a broken walk would pass every rule: check it finds imports that exist
    assert IMPORTS[("web", "channels")] and IMPORTS[("dialogue", "nlu")]
    assert IMPORTS[("web", "fastapi")] and IMPORTS[("kb", "store")]
    assert ("logs", "starlette") not in IMPORTS  # its starlette import is under TYPE_CHECKING
    assert {"kb", "nlu", "dialogue", "agents", "learning", "recommend", "privacy", "store"} <= UNITS


def test_import_directions() -> None:
    """Outside web/ nothing imports FastAPI, Starlette or web/; nlu reads no database, KB,
    conversation or HTTP module; no two units import each other. Only the listed exceptions."""
    breaks = _breaks()
    new = {pair: sorted(where) for pair, where in breaks.items() if pair not in KNOWN}
    assert not new, f"imports against docs/architecture.md: {new}"
    gone = sorted(set(KNOWN) - set(breaks))
    assert not gone, f"no longer broken, remove from KNOWN (and docs/architecture.md): {gone}"


def test_store_and_nlu_sit_at_the_bottom() -> None:
    """store imports no other unit but settings; nlu only store-free helpers (settings)."""
    store = {t for (s, t) in IMPORTS if s == "store" and t in UNITS}
    assert store <= {"settings"}, store
    nlu = {t for (s, t) in IMPORTS if s == "nlu" and t in UNITS}
    assert nlu <= {"settings", "progress"}, nlu


def test_one_error_family_with_its_http_meaning() -> None:
    """Every package's request errors derive from annae.errors.AnnaeError, and a "not found"
    or "conflict" of any package is caught as the kind (and answers 404 / 409) whatever its
    package's default."""
    from annae import errors
    from annae.agents import replies, users
    from annae.dialogue import conversations
    from annae.kb import entries
    from annae.learning import feedback, retrain
    from annae.privacy import consent, rights
    from annae.recommend import store

    kinds = {errors.NotFound: 404, errors.Conflict: 409, errors.Forbidden: 403, errors.Invalid: 422}
    classes = [
        conversations.ConversationError,
        conversations.NotFound,
        conversations.Conflict,
        conversations.Invalid,
        replies.Forbidden,
        feedback.LearningError,
        feedback.NotFound,
        feedback.Forbidden,
        feedback.Conflict,
        feedback.Invalid,
        entries.KBError,
        entries.EntryNotFound,
        entries.EntryExists,
        users.UserError,
        users.UserNotFound,
        users.UserExists,
        store.RecommendError,
        store.ProductNotFound,
        rights.RightsError,
        rights.UnknownCustomer,
        rights.AlreadyErased,
        rights.UnknownMessage,
        consent.ConsentError,
        retrain.GateError,
        retrain.Busy,
    ]
    for cls in classes:
        assert issubclass(cls, errors.AnnaeError), cls
        for kind, status in kinds.items():
            if issubclass(cls, kind):
                assert (cls.status, cls.code) == (status, kind.code), cls
    assert entries.EntryNotFound("x").status == 404 and users.UserExists("x").status == 409
