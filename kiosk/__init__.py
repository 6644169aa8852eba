"""The book-counter kiosk: a Flask app for selling books at a counter with Stripe."""
import contextlib
import logging
import secrets
import time
import uuid
from pathlib import Path

from flask import Flask, request
from jinja2 import FileSystemBytecodeCache

from kiosk.admin import catalog_edits
from kiosk.core import datadir, i18n
from kiosk.core.catalog import CatalogError, load_catalog
from kiosk.core.config import Problem, load_settings, resource_dir
from kiosk.ledger import db, migrations, orders
from kiosk.payments import reconcile
from kiosk.visit import sessions
from kiosk.web import checkout, experience, security, shop, staff, views, webhooks
from kiosk.web.state import Kiosk

log = logging.getLogger("kiosk")


class StartupError(Exception):
    """The kiosk cannot start; the message tells staff what to fix."""


def _install_secret(data_dir, name, make):
    """A value generated once per install and kept in the data folder, readable by its owner only."""
    path = Path(data_dir) / name
    if path.is_file():
        value = path.read_text().strip()
        if value:
            return value
    value = make()
    datadir.write_private(path, value.encode())
    return value


def prepare_ledger(kiosk):
    """Make or upgrade the ledger's tables, put the staff screen's catalog edits on top of the file, and take
    stock counts from the catalog; raises LedgerUnavailable."""
    migrations.init_db(kiosk.ledger.url)
    with kiosk.ledger.connect() as conn:
        catalog_edits.refresh(kiosk, conn)
        orders.claim_orders(conn, kiosk.kiosk_id, kiosk.settings.counter_name)
        namesakes = orders.register_counter(conn, kiosk.kiosk_id, kiosk.settings.counter_name)
    if namesakes:
        # Said at start (the log also goes to the terminal) and on the staff screen, with the settings' problems.
        problem = Problem("KIOSK_COUNTER_NAME", f"{kiosk.settings.counter_name!r} is also the name of another kiosk "
                          f"on this ledger ({', '.join(namesakes)}); the day's figures tell them apart by id.",
                          "Give each counter its own name in Settings.", warning=True)
        log.warning("%s", problem)
        kiosk.settings.problems = [*(p for p in kiosk.settings.problems if p.setting != problem.setting), problem]
    kiosk.ledger_ready = True


def create_app(settings=None, *, clock=time.time, testing=False):
    """Build the kiosk app from `settings` (else .env and the environment); raises StartupError when it cannot run
    at all. `clock` is the staff screens' wall clock. Nothing runs in the background until an entry point calls
    Kiosk.start_background()."""
    settings = settings or load_settings()
    fatal = [p for p in settings.problems if p.fatal]
    if fatal:
        raise StartupError("\n".join(str(p) for p in fatal))
    try:
        datadir.make_private(settings.data_dir)
    except OSError as exc:
        raise StartupError(f"KIOSK_DATA_DIR: cannot create {settings.data_dir}: {exc.strerror}. "
                           "Point KIOSK_DATA_DIR at a folder the kiosk may write.") from None

    root = resource_dir() / "webui"
    app = Flask(__name__, template_folder=str(root / "templates"), static_folder=str(root / "static"))
    app.config.from_mapping(
        SECRET_KEY=_install_secret(settings.data_dir, "secret_key", lambda: secrets.token_hex(32)),
        TESTING=testing,
        MAX_CONTENT_LENGTH=64 * 1024,
        SESSION_COOKIE_NAME="kiosk_sid",
        TEMPLATES_AUTO_RELOAD=False,
    )
    # Compiled templates are kept in the data folder (Jinja checks each against its source's checksum),
    # so only the first start compiles them: that was most of the first page's 0.2 s (bench_start).
    templates_cache = settings.data_dir / "compiled-templates"
    datadir.make_private(templates_cache)
    app.jinja_env.bytecode_cache = FileSystemBytecodeCache(str(templates_cache))

    try:
        catalog = load_catalog(settings.catalog_path, settings.currency, settings.tax_rates)
    except CatalogError as exc:
        raise StartupError(str(exc)) from None
    for warning in catalog.warnings:
        log.warning("catalog: %s", warning)

    ledger_url = settings.database_url or str(datadir.private_file(settings.data_dir / "kiosk.sqlite3"))
    kiosk_id = _install_secret(settings.data_dir, "kiosk_id", lambda: "kiosk_" + uuid.uuid4().hex[:16])
    kiosk = app.extensions["kiosk"] = Kiosk(settings, catalog, kiosk_id, clock)
    kiosk.ledger = db.ledger_for(ledger_url)  # the app's one handle to its ledger (get_db, the reconciler)
    try:
        prepare_ledger(kiosk)
    except db.LedgerUnavailable as exc:
        # The shop still opens and browses; checkout says payments are paused until the database answers.
        log.warning("starting without the ledger's database: %s", exc)

    db.init_app(app)

    @app.before_request
    def ledger_ready():
        # A ledger that did not answer at start is prepared by the first request after it does.
        if not kiosk.ledger_ready and kiosk.retry_ledger_now():
            with contextlib.suppress(db.LedgerUnavailable):  # the request says what it can; browsing works
                prepare_ledger(kiosk)
    sessions.init_app(app, datadir.private_file(settings.data_dir / "sessions.sqlite3"))

    @app.before_request
    def upload_limit():
        # The few staff forms that take files (a catalog, covers) say how much in `max_upload`; every other
        # request keeps MAX_CONTENT_LENGTH. Set before the CSRF check reads the form.
        limit = getattr(app.view_functions.get(request.endpoint), "max_upload", None)
        if limit:
            request.max_content_length = limit

    @app.before_request
    def catalog_from_other_counters():
        # Books edited at another counter (or before a restart) reach this one within 15 s.
        if kiosk.ledger_ready and kiosk.check_catalog_now():
            with contextlib.suppress(db.LedgerUnavailable):
                catalog_edits.follow_other_counters(kiosk, db.get_db())
    security.init_app(app)
    views.init_app(app)
    # Settings saved on screen apply at once: both are asked each request.
    i18n.init_app(app, experience.page_locale, lambda: kiosk.settings.zone)
    for blueprint in (shop.bp, checkout.bp, experience.bp, staff.bp, webhooks.bp):
        app.register_blueprint(blueprint)
    # settings, not kiosk.gateway: making the gateway imports stripe, which start-up leaves to the timer's thread.
    kiosk.reconciler = reconcile.Reconciler(app) if settings.payments_ready else None
    return app
