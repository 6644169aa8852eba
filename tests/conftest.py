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


class KioskClient:
    """Wraps Flask's test client: reads the CSRF token from a page and posts it back."""

    def __init__(self, app):
        self.app = app
        self.http = app.test_client()
        self._token = None

    def get(self, *args, **kwargs):
        return self.http.get(*args, **kwargs)

    def token(self):
        if self._token is None:
            page = self.http.get("/").get_data(as_text=True)
            self._token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
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
