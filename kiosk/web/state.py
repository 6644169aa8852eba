"""What the app shares across requests: the Kiosk object, and current_kiosk() to reach it from a request."""
import secrets
import threading
import time
from contextlib import contextmanager
from urllib.parse import urlencode

from flask import current_app

from kiosk.core.i18n import page_locale
from kiosk.core.money import format_money
from kiosk.payments.gateway import Gateway


class Kiosk:
    """The settings, the catalog, the Stripe gateway, this install's id, and the hooks the window sets."""

    def __init__(self, settings, catalog, kiosk_id, clock=time.time):
        self.settings = settings
        self.catalog = catalog
        # The catalog file as loaded, before the staff screen's entries (catalog_edits.py) go on top of it,
        # and the ledger's catalog version those entries had.
        self.file_catalog = catalog
        self.catalog_version = None
        self.kiosk_id = kiosk_id
        # Wall-clock time for the staff PIN lockout and idle lock; create_app(clock=...) may pass its own.
        self.clock = clock
        # The timed reconciliation (reconcile.Reconciler), None without Stripe keys; the entry points start it.
        self.reconciler = None
        # Set by the launcher: how staff "exit" closes the window. Headless, exit stops nothing.
        self.on_exit = None
        # Set by the launcher: what the idle reset also clears in the window (its cookies and storage), after
        # the server has forgotten the customer. Headless, there is nothing more to clear.
        self.on_reset = None
        # The ledger's database (db.Ledger), and whether its tables are ready (a database down at start is
        # prepared by a later request, a few seconds apart).
        self.ledger = None
        self.ledger_ready = False
        self._last_tries = {}  # what _due() last said yes to, and when
        self._gateway = None
        self.background = False  # start_background() ran: a reconciler made later starts at once
        self._locks = {}
        self._locks_guard = threading.Lock()
        # This launch's screen key: any program on the computer can reach 127.0.0.1 and forge any header, so only
        # the kiosk's own window (launcher.py) and whoever started it headless (the terminal) are given it. It
        # becomes a cookie (staff/screen.py) that opens the first-run form and gives the screen its own count of
        # wrong PINs, which no other program can run up.
        self.screen_token = secrets.token_urlsafe(32)
        self.wrong_keys = []  # when screen keys that were not this launch's were offered (a rate limit)

    @property
    def gateway(self):
        """The Stripe gateway (None without keys), made on first use: start-up never talks to Stripe."""
        if self._gateway is None and self.settings.payments_ready:
            with self._locks_guard:
                if self._gateway is None:
                    s = self.settings
                    self._gateway = Gateway(s.secret_key, s.api_base, s.stripe_timeout, s.stripe_retries)
        return self._gateway

    def replace_settings(self, settings):
        """Use settings saved on the staff screen from the next request on; the gateway is made again from them."""
        with self._locks_guard:
            self.settings = settings
            self._gateway = None

    def screen_path(self, then=None):
        """The address that gives a browser this launch's screen key, then shows `then`."""
        return "/staff/screen?" + urlencode({"key": self.screen_token, **({"next": then} if then else {})})

    def _due(self, what, every):
        now = time.monotonic()
        if now - self._last_tries.get(what, float("-inf")) < every:
            return False
        self._last_tries[what] = now
        return True

    def check_catalog_now(self, every=15.0):
        """True at most once every `every` seconds: time to see whether another counter edited the catalog."""
        return self._due("catalog", every)

    def retry_ledger_now(self, every=5.0):
        """True at most once every `every` seconds: time to try preparing the ledger again."""
        return self._due("ledger", every)

    def start_background(self):
        """Start what runs beside the requests (the reconciler's timer); the entry points call this."""
        self.background = True
        if self.reconciler is not None:
            self.reconciler.start()

    def request_exit(self):
        """Close the kiosk window (staff only); returns False when there is no window to close."""
        if self.on_exit is None:
            return False
        self.on_exit()
        return True

    @contextmanager
    def lock(self, key):
        """`with kiosk.lock(attempt):` one holder per checkout attempt, so a double tap runs the payment steps once.

        Each lock counts who holds it or waits for it and is forgotten when the last one leaves: a lock about to
        be taken is never dropped (pruning unheld locks could drop one just handed out, and the next request for
        that attempt would get a second lock)."""
        with self._locks_guard:
            entry = self._locks.setdefault(key, [threading.Lock(), 0])
            entry[1] += 1
        try:
            with entry[0]:
                yield
        finally:
            with self._locks_guard:
                entry[1] -= 1
                if not entry[1]:
                    del self._locks[key]

    def money(self, minor):
        """Format minor units in the shop's currency, written the way the page's locale writes money ("15,50 €" for
        a French customer, "€15.50" for an Irish one); the shop's locale outside a request."""
        return format_money(minor, self.settings.currency, page_locale(self.settings.locale))


def current_kiosk():
    """The running app's Kiosk."""
    return current_app.extensions["kiosk"]
