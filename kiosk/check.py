"""`kiosk --check`: is the configuration valid, does Stripe answer, which catalog loads."""
from kiosk.core.catalog import CatalogError, load_catalog
from kiosk.ledger.db import LedgerUnavailable, ledger_for
from kiosk.payments.gateway import STRIPE_API_VERSION, STRIPE_JS_URL, STRIPE_SDK_VERSION, Gateway, PaymentError


def run_check(settings, out=print):
    """Print a report of the kiosk's setup; returns 0 when everything is usable, 1 otherwise."""
    ok = True
    out(f"Configuration file: {settings.env_file}" + ("" if settings.env_file.is_file() else " (not found)"))
    for problem in settings.problems:
        if problem.warning:
            out(f"  WARNING: {problem}")
    problems = [p for p in settings.problems if not p.warning]
    if problems:
        ok = False
        out("Configuration: problems found")
        for problem in problems:
            out(f"  - {problem}")
    else:
        out("Configuration: valid")
    out(f"  currency {settings.currency}, locale {settings.locale}, data folder {settings.data_dir}")
    out(f"Stripe API version {STRIPE_API_VERSION} (stripe-python {STRIPE_SDK_VERSION}), Stripe.js {STRIPE_JS_URL}")
    if settings.payments_ready:
        mode = "test" if settings.test_mode else "live"
        try:
            Gateway(settings.secret_key, settings.api_base, timeout=10, retries=0).ping()
            out(f"Stripe: answers at {settings.api_base} ({mode} mode)")
        except PaymentError as exc:
            ok = False
            out(f"Stripe: no answer from {settings.api_base}: {exc.message}")
    else:
        ok = False
        out("Stripe: not checked, the keys are not set up (start the kiosk and press Staff: Set up this kiosk, or "
            "Settings once a PIN is set; customers are asked to pay at the counter meanwhile)")
    ok = check_ledger(settings, out) and ok
    try:
        catalog = load_catalog(settings.catalog_path, settings.currency, settings.tax_rates)
        out(f"Catalog: {catalog.path}: {len(catalog.books)} valid rows, {catalog.skipped} skipped")
        for warning in catalog.warnings:
            out(f"  - {warning}")
    except CatalogError as exc:
        ok = False
        out(f"Catalog: {exc}")
    out("Result: OK" if ok else "Result: problems found (see above)")
    return 0 if ok else 1


def check_ledger(settings, out):
    """Say which database holds the ledger and whether it answers; True when it does."""
    path = settings.data_dir / "kiosk.sqlite3"
    if not settings.database_url and not path.is_file():
        out(f"Ledger: SQLite {path}, on this kiosk only (the first start makes it)")
        return True
    ledger = ledger_for(settings.database_url or path)
    try:
        with ledger.connect() as db:
            db.execute("SELECT 1")
    except LedgerUnavailable as exc:
        out(f"Ledger: {exc}")
        return False
    shared = "shared by every counter" if settings.database_url else "on this kiosk only"
    out(f"Ledger: {ledger.describe()} answers ({shared}; this is counter {settings.counter_name!r})")
    return True

