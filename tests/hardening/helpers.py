"""Helpers the hardening suites share: an app on a fresh data folder and a customer over HTTP
(what Stripe was paid is tests.support.ledger.paid_state; the kiosk as its own process, tests.support.process)."""
import re

import requests

from kiosk import create_app
from tests.support.settings import make_settings


def hardening_app(tmp_path, stripe, clock=None, **settings_overrides):
    """A kiosk app on a fresh data folder, talking to `stripe`, with Settings attributes overridden (and its
    own wall clock, if given)."""
    settings = make_settings(tmp_path, stripe)
    for name, value in settings_overrides.items():
        setattr(settings, name, value)
    return create_app(settings, clock=clock, testing=True) if clock else create_app(settings, testing=True)


def books(app):
    """The catalog's books."""
    return app.extensions["kiosk"].catalog.books



def intent_id(reply_json):
    """The PaymentIntent id inside a client secret the kiosk handed out."""
    return reply_json["clientSecret"].split("_secret_")[0]


def local_path(url):
    """The path and query of an absolute URL the kiosk returned."""
    return re.sub(r"^https?://[^/]+", "", url)


class Shopper:
    """A customer's browser session over HTTP: its cookie and the CSRF token from the page."""

    def __init__(self, url):
        self.url = url
        self.http = requests.Session()
        page = self.http.get(url + "/", timeout=10).text
        self.token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)

    def headers(self):
        return {"X-CSRFToken": self.token, "Accept": "application/json", "Origin": self.url}

    def add(self, isbn, quantity=1):
        reply = self.http.post(self.url + "/cart/add", json={"isbn": isbn, "quantity": quantity},
                               headers=self.headers(), timeout=10)
        assert reply.status_code == 200, reply.text

    def attempt(self):
        page = self.http.get(self.url + "/checkout/", timeout=10).text
        return re.search(r'"attempt": ?"([0-9a-f]+)"', page).group(1)

    def twin(self):
        """Another connection carrying the same cookie, as a second tap from the same page would."""
        other = requests.Session()
        other.cookies.update(self.http.cookies)
        return other

    def buy(self, stripe, isbn, quantity=1):
        """A whole purchase over HTTP: add, open checkout, tap Pay, pay at Stripe, load the confirmation."""
        self.add(isbn, quantity)
        reply = self.http.post(self.url + "/checkout/intent", json={"attempt": self.attempt()},
                               headers=self.headers(), timeout=30)
        assert reply.status_code == 200, reply.text
        assert stripe.pay(intent_id(reply.json())) == "succeeded"
        page = self.http.get(reply.json()["returnUrl"], timeout=30)
        assert page.status_code == 200 and "Payment received" in page.text, page.text[:500]
        return intent_id(reply.json())
