"""The book-counter kiosk: a Flask app for selling books at a counter with Stripe."""
import logging
import secrets
import threading
import uuid
from pathlib import Path

from flask import Flask, current_app
from jinja2 import FileSystemBytecodeCache

from . import datadir, db
from .catalog import CatalogError, load_catalog
from .config import load_settings, resource_dir
from .money import format_money
from .payments import Gateway

log = logging.getLogger("kiosk")


class StartupError(Exception):
    """The kiosk cannot start; the message tells staff what to fix."""


class Kiosk:
    """What the app shares across requests: settings, the catalog, the Stripe gateway and this install's id."""

    def __init__(self, settings, catalog, kiosk_id):
        self.settings = settings
        self.catalog = catalog
        self.kiosk_id = kiosk_id
        self._gateway = None
        self._locks = {}
        self._locks_guard = threading.Lock()
        # Set by the launcher: how staff "exit" closes the window. Headless, exit stops nothing.
        self.on_exit = None
        # Set by the launcher: what the idle reset also clears in the window (its cookies), after the server
        # has forgotten the customer. Headless, there is nothing more to clear.
        self.on_reset = None

    @property
    def gateway(self):
        """The Stripe gateway (None without keys), made on first use: start-up never talks to Stripe."""
        if self._gateway is None and self.settings.payments_ready:
            with self._locks_guard:
                if self._gateway is None:
                    s = self.settings
                    self._gateway = Gateway(s.secret_key, s.api_base, s.stripe_timeout, s.stripe_retries)
        return self._gateway

    def request_exit(self):
        """Close the kiosk window (staff only); returns False when there is no window to close."""
        if self.on_exit is None:
            return False
        self.on_exit()
        return True

    def lock(self, key):
        """A lock per checkout attempt, so a double tap runs the payment steps once."""
        with self._locks_guard:
            if len(self._locks) > 1000:
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            return self._locks.setdefault(key, threading.Lock())

    def money(self, minor):
        """Format minor units in the shop currency and locale."""
        return format_money(minor, self.settings.currency, self.settings.locale)


def kiosk():
    """The running app's Kiosk."""
    return current_app.extensions["kiosk"]


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


def create_app(test_config=None):
    """Build the kiosk app; raises StartupError when it cannot run at all."""
    test_config = dict(test_config or {})
    settings = test_config.pop("SETTINGS", None) or load_settings()
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
        DATABASE=str(settings.data_dir / "kiosk.sqlite3"),
        MAX_CONTENT_LENGTH=64 * 1024,
        SESSION_COOKIE_NAME="kiosk_sid",
        TEMPLATES_AUTO_RELOAD=False,
    )
    app.config.update(test_config)
    # Compiled templates are kept in the data folder (Jinja checks each against its source's checksum),
    # so only the first start compiles them: that was most of the first page's 0.2 s (bench_start).
    templates_cache = settings.data_dir / "compiled-templates"
    datadir.make_private(templates_cache)
    app.jinja_env.bytecode_cache = FileSystemBytecodeCache(str(templates_cache))

    try:
        catalog = load_catalog(settings.catalog_path, settings.currency)
    except CatalogError as exc:
        raise StartupError(str(exc)) from None
    for warning in catalog.warnings:
        log.warning("catalog: %s", warning)

    db.init_db(datadir.private_file(app.config["DATABASE"]))
    conn = db.connect(app.config["DATABASE"])
    try:
        from . import orders
        orders.sync_stock(conn, catalog.books)
    finally:
        conn.close()
    kiosk_id = _install_secret(settings.data_dir, "kiosk_id", lambda: "kiosk_" + uuid.uuid4().hex[:16])
    app.extensions["kiosk"] = Kiosk(settings, catalog, kiosk_id)

    db.init_app(app)
    from . import i18n, security, sessions, views
    sessions.init_app(app, datadir.private_file(settings.data_dir / "sessions.sqlite3"))
    security.init_app(app)
    views.init_app(app)
    i18n.init_app(app, settings.locale)

    from . import checkout, shop
    app.register_blueprint(shop.bp)
    app.register_blueprint(checkout.bp)
    from . import experience
    app.register_blueprint(experience.bp)
    from . import reconcile, staff, webhooks
    app.register_blueprint(staff.bp)
    app.register_blueprint(webhooks.bp)
    reconcile.init_app(app)  # one sweep at start-up, then on a timer (off in tests unless RECONCILER=True)
    return app
