"""A crash after payment: the kiosk process is killed (-9) before the confirmation page; the next start records
the sale. The kiosk runs as `python -m kiosk --headless` against the in-process localstripe."""
import os
import re
import signal
import socket
import subprocess
import sys
import time
from contextlib import closing
from urllib.parse import urlsplit

import pytest
import requests

from kiosk.core.catalog import load_catalog
from kiosk.ledger import db as dblib
from tests.support.settings import ROOT, SAMPLE

BOOK = load_catalog(SAMPLE, "USD").books[0]


def free_port():
    with closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class KioskProcess:
    """One run of the kiosk as staff start it, with its own data folder and port."""

    def __init__(self, tmp_path, stripe, **env):
        self.data = tmp_path / "data"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("KIOSK_", "STRIPE_"))}
        self.env.update(KIOSK_ENV_FILE=str(tmp_path / "none.env"), KIOSK_DATA_DIR=str(self.data),
                        KIOSK_CATALOG=str(SAMPLE), STRIPE_SECRET_KEY=stripe.sk, STRIPE_PUBLISHABLE_KEY=stripe.pk,
                        STRIPE_API_BASE=stripe.url, **env)
        self.log = tmp_path / "kiosk-output.log"
        self.proc = None

    def start(self):
        with self.log.open("a") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "kiosk", "--headless", "--port", str(self.port)],
                                         cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                requests.get(self.base + "/", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.05)
        raise AssertionError(f"the kiosk did not answer: {self.log.read_text()}")

    def kill(self, sig=signal.SIGKILL):
        self.proc.send_signal(sig)
        self.proc.wait(10)

    def ledger(self, sql, *args):
        with dblib.connect(self.env.get("KIOSK_DATABASE_URL") or self.data / "kiosk.sqlite3") as db:
            row = db.execute(sql, args).fetchone()
            return tuple(row) if row is not None else None

    def wait_for(self, sql, expected, seconds=20):
        deadline = time.time() + seconds
        while time.time() < deadline:
            row = self.ledger(sql)
            if row is not None and row[0] == expected:
                return
            time.sleep(0.1)
        raise AssertionError(f"{sql} never gave {expected!r}: {self.log.read_text()}")


@pytest.fixture
def kiosk_process(tmp_path, stripe_server, ledger_url):
    """Runs of one kiosk, its ledger in SQLite or (the test runs on both) in PostgreSQL."""
    runs = []
    database = {"KIOSK_DATABASE_URL": ledger_url} if ledger_url.startswith("postgres") else {}

    def run(**env):
        runs.append(KioskProcess(tmp_path, stripe_server, **database, **env).start())
        return runs[-1]
    yield run
    for one in runs:
        if one.proc.poll() is None:
            one.kill(signal.SIGTERM)


def checkout(base, session, isbn, quantity):
    """What the kiosk's pages do, over HTTP: add to the cart, open the checkout, ask for the intent."""
    token = re.search(r'name="csrf-token" content="([^"]+)"', session.get(base + "/").text).group(1)
    session.headers["X-CSRFToken"] = token
    assert session.post(base + "/cart/add", data={"isbn": isbn, "quantity": str(quantity)}).ok
    attempt = re.search(r'"attempt": ?"([0-9a-f]+)"', session.get(base + "/checkout/").text).group(1)
    return session.post(base + "/checkout/intent", json={"attempt": attempt}).json()


def test_killed_after_payment_the_next_start_records_the_sale(kiosk_process, stripe_server):
    first = kiosk_process(KIOSK_RECONCILE_SECONDS="3600")
    first.wait_for("SELECT COUNT(*) FROM meta WHERE key LIKE 'reconcile_last_sweep:%'", 1)  # start-up sweep done
    customer = requests.Session()
    reply = checkout(first.base, customer, BOOK.isbn13, 2)
    intent_id = reply["clientSecret"].split("_secret_")[0]
    assert stripe_server.pay(intent_id) == "succeeded"
    first.kill()  # kill -9: the confirmation page never runs
    assert first.ledger("SELECT status FROM orders WHERE payment_intent = ?", intent_id) == ("pending",)
    assert first.ledger("SELECT on_hand FROM stock WHERE isbn = ?", BOOK.isbn13) == (BOOK.stock,)

    second = kiosk_process()
    second.wait_for(f"SELECT status FROM orders WHERE payment_intent = '{intent_id}'", "paid")
    assert second.ledger("SELECT on_hand FROM stock WHERE isbn = ?", BOOK.isbn13) == (BOOK.stock - 2,)
    # The customer's page, reloaded against the new process, shows the receipt and takes no more stock.
    url = urlsplit(reply["returnUrl"])
    page = customer.get(f"{second.base}{url.path}?{url.query}")
    assert page.status_code == 200 and intent_id in page.text
    assert second.ledger("SELECT COUNT(*) FROM stock_movements WHERE reason = 'sale'") == (1,)
    assert second.ledger("SELECT on_hand FROM stock WHERE isbn = ?", BOOK.isbn13) == (BOOK.stock - 2,)
