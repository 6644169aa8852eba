"""Rooms by concern, imports only downward: each room of kiosk/ may import its own modules and those of the rooms
below it, never one above. The rooms, from the bottom:

- core: the shop's own rules (money, tax, ISBNs, the cart, the catalog, settings, time stamps, page text);
- ledger: the database and what it keeps;
- payments: Stripe (the only `import stripe`), the card reader, reconciling;
- visit: the customer's sessions, cart and the purchase service;
- admin: the shop run from the staff screen, and the refund service;
- web: every page and the Kiosk object requests share;
- window: the kiosk's own window and its servers (the only `import webview`);
- app: kiosk/__init__.py (create_app), __main__.py and check.py, which put it together.
"""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "kiosk"
ROOMS = ["core", "ledger", "payments", "visit", "admin", "web", "window", "app"]
# What core may not touch: a database, Stripe, or a request (i18n reads the request's app for its catalog).
NOT_IN_CORE = ("sqlalchemy", "psycopg", "stripe", "flask", "werkzeug", "waitress", "webview")


def room_of(module):
    """The room of a dotted module name below kiosk ("" is kiosk itself)."""
    head = module.split(".")[0]
    return head if head in ROOMS else "app"


def imports(source, module, is_package=False):
    """(kiosk modules, other top-level modules) a module's source imports, as dotted names below kiosk."""
    package = module if is_package else module.rpartition(".")[0]
    ours, theirs = set(), set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                (ours.add(alias.name[6:]) if alias.name.startswith("kiosk.") else theirs.add(alias.name.split(".")[0]))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".") if package else []
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join([*base, *([node.module] if node.module else [])])
            elif node.module == "kiosk" or node.module.startswith("kiosk."):
                target = node.module[6:]
            else:
                theirs.add(node.module.split(".")[0])
                continue
            # `from kiosk.x import y`: y may be a module of the package x; either way it is in x's room or below.
            ours.update(target or a.name for a in node.names)
    return ours, theirs


def upward(module, source, is_package=False):
    """The imports of a module that run up into a room above its own."""
    here = room_of(module)
    ours, _ = imports(source, module, is_package)
    return sorted(f"kiosk.{t} ({room_of(t)})" for t in ours if ROOMS.index(room_of(t)) > ROOMS.index(here))


def module_of(path):
    """(dotted name below kiosk, is a package) of a file of the kiosk."""
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return (".".join(parts[:-1]), True) if parts[-1] == "__init__" else (".".join(parts), False)


def modules():
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_room_imports_only_itself_and_the_rooms_below():
    found = {}
    for path in modules():
        module, is_package = module_of(path)
        bad = upward(module, path.read_text(), is_package)
        if bad:
            found[str(path.relative_to(PACKAGE))] = bad
    assert found == {}


def test_every_module_is_in_a_room():
    loose = [str(p.relative_to(PACKAGE)) for p in modules()
             if len(p.relative_to(PACKAGE).parts) == 1 and p.name not in ("__init__.py", "__main__.py", "check.py")]
    assert loose == []


def test_core_touches_no_database_no_stripe_no_request():
    touching = {}
    for path in (PACKAGE / "core").glob("*.py"):
        _, theirs = imports(path.read_text(), *module_of(path))
        allowed = {"flask", "flask_babel"} if path.name == "i18n.py" else set()
        found = sorted(set(theirs) & set(NOT_IN_CORE) - allowed)
        if found:
            touching[path.name] = found
    assert touching == {}


def test_the_rule_sees_imports_that_run_upward():
    """Not a test that passes because it reads nothing: relative and absolute imports up are both caught."""
    source = ("from ..web import views\nfrom kiosk.payments import gateway\nfrom . import money\n"
              "import kiosk.ledger.db\n")
    assert upward("core.cart", source) == ["kiosk.ledger.db (ledger)", "kiosk.payments (payments)", "kiosk.web (web)"]
    assert upward("window.launcher", source) == []
    assert room_of("") == "app" and room_of("__main__") == "app" and room_of("web.staff.sales") == "web"
