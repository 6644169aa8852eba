"""Browser fixtures: Debian's Chromium via Playwright (one per session, a new context per test), the real
kiosk served by waitress, Stripe.js of the kiosk's release train (kiosk.payments.STRIPE_JS_URL) replaced by
tests/stripejs/stripe-endive.js, and api.stripe.com answered from localstripe (tests/support/stripe_api.py)."""
import functools
import json
import re

import pytest

from kiosk import create_app
from tests.support.chromium import shared_browser
from tests.support.live import LiveServer
from tests.support.settings import ROOT, make_settings
from tests.support.stripe_api import STRIPE_JS_URL, StripeApi
from tests.support.stripe_types import release_train, train_options

STRIPE_JS_DOUBLE = ROOT / "tests" / "stripejs" / "stripe-endive.js"
# Chromium reports every 4xx/5xx fetch on the console; the tests provoke those (declines, refusals) on purpose.
EXPECTED_CONSOLE = re.compile(r"^Failed to load resource: the server responded with a status of (4\d\d|5\d\d)")


@functools.cache
def stripe_js_double():
    """The double's source, with the option names of the installed @stripe/stripe-js types written in."""
    source = STRIPE_JS_DOUBLE.read_text(encoding="utf-8")
    train = json.dumps({"release": release_train(), "options": train_options()})
    assert source.count("/*@TRAIN@*/null") == 1
    return source.replace("/*@TRAIN@*/null", train)


@pytest.fixture(scope="session")
def browser():
    """One headless Debian Chromium for the whole run, shared with other browser suites (see chromium.py)."""
    return shared_browser()


class LiveKiosk:
    """The kiosk app served over HTTP, with its settings and a look into its ledger."""

    def __init__(self, settings):
        self.settings = settings
        self.app = create_app(settings)
        self.server = LiveServer(self.app)
        self.url = self.server.url

    def _query(self, sql, *args):
        with self.app.extensions["kiosk"].ledger.connect() as db:
            return [dict(r) for r in db.execute(sql, args)]

    def orders(self):
        """Every order row in the ledger, oldest first."""
        return self._query("SELECT * FROM orders ORDER BY id")

    def order_lines(self, order_id):
        """An order's lines as {isbn: quantity}."""
        return {r["isbn"]: r["quantity"] for r in self._query(
            "SELECT isbn, quantity FROM order_lines WHERE order_id = ?", order_id)}


@pytest.fixture
def start_kiosk(tmp_path, stripe_server):
    """Start a kiosk: start_kiosk() talks to localstripe; start_kiosk(stripe=False) has no Stripe keys."""
    running = []

    def start(stripe=True, **env):
        folder = tmp_path / f"kiosk{len(running)}"
        folder.mkdir()
        kiosk = LiveKiosk(make_settings(folder, stripe_server if stripe else None, **env))
        running.append(kiosk)
        return kiosk

    yield start
    for kiosk in running:
        kiosk.server.close()


@pytest.fixture
def kiosk(start_kiosk):
    """The kiosk on the sample catalog, paying through localstripe."""
    return start_kiosk()


@pytest.fixture
def stripe_api(stripe_server):
    """The browser's api.stripe.com, backed by this test's localstripe."""
    return StripeApi(stripe_server)


class BrowserWatch:
    """What went wrong in the browser during a test: page errors, console errors, misuse of Stripe.js,
    requests Stripe would refuse, and any request leaving for a host that is neither the kiosk nor Stripe."""

    def __init__(self, stripe_api):
        self.stripe_api = stripe_api
        self.errors = []
        self.allowed = []
        self.stripe_js_loads = 0

    def console(self, message):
        if message.type == "error" and not EXPECTED_CONSOLE.match(message.text):
            self.errors.append(f"console: {message.text}")

    def outside(self, route, request):
        self.errors.append(f"request left the machine: {request.method} {request.url}")
        route.abort("internetdisconnected")

    def serve_stripe_js(self, route, request):
        self.stripe_js_loads += 1
        route.fulfill(status=200, body=stripe_js_double(), content_type="application/javascript; charset=utf-8")

    def allow(self, text):
        """Console errors containing `text` are provoked by the test on purpose: do not count them."""
        self.allowed.append(text)

    def problems(self):
        errors = [e for e in self.errors if not any(text in e for text in self.allowed)]
        return errors + [f"api.stripe.com: {p}" for p in self.stripe_api.problems]


@pytest.fixture
def open_page(browser, stripe_api, start_kiosk):
    """open_page(kiosk, viewport=None) -> a Page in a fresh browser context on that kiosk (1080x1600 unless told);
    page.watch holds what went wrong. The test fails if anything went wrong that the test did not expect. (It
    needs start_kiosk so that its browser contexts close before the kiosks stop, not while a page is still loading
    from one.)"""
    contexts = []
    watches = []

    def open_(kiosk, viewport=None):
        context = browser.new_context(base_url=kiosk.url, viewport=viewport or {"width": 1080, "height": 1600})
        context.set_default_timeout(10_000)
        watch = BrowserWatch(stripe_api)
        # Playwright tries routes last-registered first: the catch-all goes in first. Of js.stripe.com only the
        # release train's Stripe.js is served; anything else there (the legacy /v3/ included) fails the test.
        kiosk_origin = re.escape(kiosk.url + "/")
        stripe_js = re.escape(STRIPE_JS_URL)
        context.route(re.compile(rf"^(?!{kiosk_origin}|{stripe_js}$|https://api\.stripe\.com/)"), watch.outside)
        context.route(STRIPE_JS_URL, watch.serve_stripe_js)
        context.route("https://api.stripe.com/**", stripe_api)
        page = context.new_page()
        page.on("console", watch.console)
        page.on("pageerror", lambda exc: watch.errors.append(f"page error: {exc}"))
        page.watch = watch
        contexts.append(context)
        watches.append(watch)
        return page

    yield open_
    for context in contexts:
        context.close()
    problems = [p for w in watches for p in w.problems()]
    assert not problems, "the browser saw problems:\n" + "\n".join(problems)


@pytest.fixture
def page(open_page, kiosk):
    """A browser page on the default kiosk."""
    return open_page(kiosk)
