"""Shared fixtures: an app on a temporary data folder, its client, and localstripe in-process."""
import re
from pathlib import Path

import pytest

from kiosk import create_app
from kiosk.config import load_settings
from tests.fakestripe import FakeStripe

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_catalog" / "books.csv"


@pytest.fixture(scope="session")
def fake_stripe():
    """One localstripe for the whole run; each test starts from an empty store."""
    server = FakeStripe()
    yield server
    server.close()


@pytest.fixture
def stripe_server(fake_stripe):
    """localstripe, emptied for this test."""
    fake_stripe.reset()
    return fake_stripe


def make_settings(tmp_path, stripe=None, **env):
    """Settings as the kiosk would load them, on a temporary data folder."""
    values = {"KIOSK_DATA_DIR": str(tmp_path / "data"), "KIOSK_CATALOG": str(SAMPLE)}
    if stripe is not None:
        values.update(STRIPE_SECRET_KEY=stripe.sk, STRIPE_PUBLISHABLE_KEY=stripe.pk, STRIPE_API_BASE=stripe.url)
    values.update(env)
    settings = load_settings(environ=values, env_file=tmp_path / "no.env")
    settings.stripe_retries = 0
    settings.stripe_timeout = 5
    return settings


@pytest.fixture
def app(tmp_path, stripe_server):
    """The kiosk app on a temporary data folder, talking to localstripe."""
    return create_app({"TESTING": True, "SETTINGS": make_settings(tmp_path, stripe_server)})


@pytest.fixture
def client(app):
    """A test client that sends the kiosk's CSRF token like its pages do."""
    return KioskClient(app)


def stored_session(app, sid):
    """What the kiosk's session store keeps for a browser's session id: None when it has no row at all."""
    from kiosk.sessions import digest
    store = app.extensions["sessions"]
    db = store.db()
    row = db.execute("SELECT revoked FROM sessions WHERE id = ?", (digest(sid),)).fetchone()
    if row is None:
        return None
    return {"revoked": row["revoked"] is not None, "cart": store.cart(digest(sid)),
            "staff": store.staff_signed_in(digest(sid)),
            "attempts": db.execute("SELECT COUNT(*) FROM checkout_attempts WHERE session = ?",
                                   (digest(sid),)).fetchone()[0],
            "plain id stored": db.execute("SELECT COUNT(*) FROM sessions WHERE id = ?", (sid,)).fetchone()[0] > 0}


class KioskClient:
    """Wraps Flask's test client: reads the CSRF token from a page and posts it back."""

    def __init__(self, app):
        self.app = app
        self.http = app.test_client()
        self._token = None
        self._token_sid = None

    def get(self, *args, **kwargs):
        return self.http.get(*args, **kwargs)

    def sid(self):
        cookie = self.http.get_cookie("kiosk_sid")
        return cookie.value if cookie else None

    def token(self):
        """The CSRF token of the current session id (it changes with the id: on sign-in and after a reset)."""
        if self._token is None or self._token_sid != self.sid():
            # A new id after signing in: read it from a staff page, since a shop page ends a staff sign-in.
            page = self.http.get("/" if self._token is None else "/staff/").get_data(as_text=True)
            self._token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
            self._token_sid = self.sid()
        return self._token

    def post(self, url, data=None, json=None, **kwargs):
        headers = kwargs.pop("headers", {})
        headers.setdefault("X-CSRFToken", self.token())
        return self.http.post(url, data=data, json=json, headers=headers, **kwargs)

    def add(self, isbn, quantity=1):
        return self.post("/cart/add", data={"isbn": isbn, "quantity": str(quantity)})

    def start_checkout(self):
        """Open the checkout page and return the attempt id it embeds."""
        page = self.get("/checkout/").get_data(as_text=True)
        return re.search(r'"attempt": ?"([0-9a-f]+)"', page).group(1)
