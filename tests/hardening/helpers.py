"""Helpers the hardening suites share: an app on a fresh data folder, the ledger, what Stripe was paid,
a customer over HTTP, and the kiosk as its own process (`python -m kiosk --headless`)."""
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import requests

from kiosk import create_app, orders
from kiosk.db import connect
from tests.conftest import SAMPLE, make_settings

ROOT = Path(__file__).absolute().parents[2]  # not resolve(): run the tree the tests run from


def hardening_app(tmp_path, stripe, **settings_overrides):
    """A kiosk app on a fresh data folder, talking to `stripe`, with Settings attributes overridden."""
    settings = make_settings(tmp_path, stripe)
    for name, value in settings_overrides.items():
        setattr(settings, name, value)
    return create_app({"TESTING": True, "SETTINGS": settings})


def books(app):
    """The catalog's books."""
    return app.extensions["kiosk"].catalog.books


def ledger(app):
    """A connection to the app's ledger."""
    return connect(app.config["DATABASE"])


def intent_id(reply_json):
    """The PaymentIntent id inside a client secret the kiosk handed out."""
    return reply_json["clientSecret"].split("_secret_")[0]


def local_path(url):
    """The path and query of an absolute URL the kiosk returned."""
    return re.sub(r"^https?://[^/]+", "", url)


def paid_state(app, stripe):
    """Stripe's charges against the ledger: {"lost", "double", "paid", "charged"}.

    lost: succeeded charges whose order is not recorded as paid; double: orders charged more than once
    or charged another amount than the ledger's total; paid: paid orders; charged: succeeded charges."""
    intents = {pi.id: pi for pi in stripe.intents()}
    charges = [ch for ch in stripe.charges() if ch.status == "succeeded"]
    per_order = defaultdict(list)
    db = ledger(app)
    try:
        lost = 0
        for ch in charges:
            order = orders.get(db, intent=ch.payment_intent)
            lost += order is None or order["status"] != "paid"
            per_order[intents[ch.payment_intent].metadata["order_ref"]].append((ch.amount, order))
        double = sum(1 for paid in per_order.values()
                     if len(paid) > 1 or paid[0][1] is not None and paid[0][0] != paid[0][1]["amount"])
        paid = db.execute("SELECT COUNT(*) FROM orders WHERE status = 'paid'").fetchone()[0]
    finally:
        db.close()
    return {"lost": lost, "double": double, "paid": paid, "charged": len(charges)}


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


def free_port():
    """A TCP port nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class KioskProcess:
    """`python -m kiosk --headless` as its own process, paying through `stripe`, its ledger in `data_dir`.

    start() waits for the first page; kill() is `kill -9`; rss_kib() reads the process's resident memory."""

    def __init__(self, data_dir, stripe, catalog=SAMPLE, **env):
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "STRIPE_SECRET_KEY": stripe.sk, "STRIPE_PUBLISHABLE_KEY": stripe.pk,
                    "STRIPE_API_BASE": stripe.url, "KIOSK_DATA_DIR": str(self.data_dir),
                    "KIOSK_CATALOG": str(catalog), "KIOSK_ENV_FILE": str(self.data_dir / "no.env"),
                    "PYTHONDONTWRITEBYTECODE": "1", **env}
        self.proc = None
        self.starts = 0
        self.config = {"DATABASE": str(self.data_dir / "kiosk.sqlite3")}  # so ledger() and paid_state() take it

    def start(self, timeout=30):
        """Start the kiosk and wait until it serves its home page."""
        self.starts += 1
        self.output = open(self.data_dir.parent / f"kiosk-{self.port}-{self.starts}.log", "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "kiosk", "--headless", "--port", str(self.port)],
                                     cwd=ROOT, env=self.env, stdout=self.output, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the kiosk exited with {self.proc.returncode}: {self.log()[-2000:]}")
            try:
                if requests.get(self.url + "/", timeout=2).status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"the kiosk did not answer within {timeout} s: {self.log()[-2000:]}")

    def log(self):
        """What the kiosk printed and logged so far."""
        self.output.flush()
        return Path(self.output.name).read_text(errors="replace")

    def kill(self):
        """kill -9: no shutdown code runs, as when the power goes."""
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        if self.proc is not None:
            self.output.close()

    def rss_kib(self):
        """Resident memory of the kiosk process, in KiB."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))

    def listening_addresses(self):
        """The local addresses of every listening socket on the kiosk's port (from /proc/net/tcp*)."""
        found = []
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            for line in Path(table).read_text().splitlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, port = local.rsplit(":", 1)
                if state == "0A" and int(port, 16) == self.port:
                    found.append(address)
        return found
