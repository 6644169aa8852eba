"""The issue's rules on input, headers, secrets and Stripe settings, one check each."""
import logging
import os
import re
import stat

import pytest

from kiosk.check import run_check
from kiosk.core import cart as cartlib
from kiosk.core import isbn as isbnlib
from kiosk.core.config import load_settings
from kiosk.core.logs import RedactingFilter
from kiosk.payments.gateway import Gateway
from tests.hardening.helpers import books, hardening_app, intent_id, local_path
from tests.support.client import KioskClient
from tests.support.fakestripe import CREATE_INTENT
from tests.support.settings import SAMPLE

WEBHOOK_SECRET = "whsec_inputsecret000000000000000"


@pytest.fixture
def app(tmp_path, stripe_server):
    return hardening_app(tmp_path, stripe_server, webhook_secret=WEBHOOK_SECRET)


def isbn13(n):
    core = f"978{n:09d}"
    return core + str((10 - sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(core)) % 10) % 10)


def test_cart_lines_are_capped(tmp_path, stripe_server):
    rows = [f"{isbn13(n)},Book {n},Author,1.00,5" for n in range(cartlib.MAX_LINES + 5)]
    (tmp_path / "many.csv").write_text("isbn,title,author,price,stock\n" + "\n".join(rows) + "\n")
    app = hardening_app(tmp_path, stripe_server, catalog_path=tmp_path / "many.csv")
    client = KioskClient(app)
    replies = [client.post("/cart/add", json={"isbn": b.isbn13, "quantity": 1}) for b in books(app)]
    assert [r.status_code for r in replies].count(200) == cartlib.MAX_LINES
    assert all(r.status_code == 409 and "at most" in r.json["message"] for r in replies[cartlib.MAX_LINES:])
    assert client.get("/cart/summary").json["count"] == cartlib.MAX_LINES


def test_quantities_are_whole_numbers_up_to_the_stock(app, client):
    book = min(books(app), key=lambda b: b.stock)
    assert client.post("/cart/add", json={"isbn": book.isbn13, "quantity": book.stock + 1}).status_code == 409
    assert client.post("/cart/add", json={"isbn": book.isbn13, "quantity": book.stock}).status_code == 200
    for bad in ("0", "-1", "1.0", "٣", "３", " ", "1_0"):
        assert client.post("/cart/update", json={"isbn": book.isbn13, "quantity": bad}).status_code == 409
    assert client.get("/cart/summary").json["count"] == book.stock


def test_isbns_are_ascii_only():
    real = "9783434922599"
    assert isbnlib.normalize(real) == real and isbnlib.normalize("978-3-434-92259-9") == real
    for forged in ("".join(chr(ord(c) + 0x0630) for c in real), "".join(chr(ord(c) + 0xFEE0) for c in real),
                   real[:-1] + "٩", real + "0", "X" * 13):
        assert isbnlib.normalize(forged) == ""


@pytest.mark.parametrize("as_json", [False, True])
def test_oversized_bodies_get_a_friendly_413(app, client, as_json):
    big = "9" * (app.config["MAX_CONTENT_LENGTH"] + 1)
    if as_json:
        reply = client.post("/checkout/intent", json={"attempt": big}, headers={"Accept": "application/json"})
        assert reply.status_code == 413 and reply.json["error"]
    else:
        reply = client.post("/cart/add", data={"isbn": big, "quantity": "1"})
        assert reply.status_code == 413 and "too large" in reply.get_data(as_text=True)
    assert b"Traceback" not in reply.data


def test_every_error_path_is_friendly(app, client, monkeypatch):
    """404, 405, 400 (no CSRF token), 403 (cross-origin), 421 (foreign Host) and an unexpected error,
    each as a page for people and as JSON for the kiosk's scripts."""
    def broken(*args, **kwargs):
        raise RuntimeError(f"boom with {app.extensions['kiosk'].settings.secret_key}")

    cases = [(404, lambda h: client.get("/no/such/page", headers=h)),
             (405, lambda h: client.http.put("/cart/add", headers=h)),
             (400, lambda h: client.http.post("/cart/add", data={"isbn": "1"}, headers=h)),
             (403, lambda h: client.post("/cart/add", data={}, headers={**h, "Origin": "http://127.0.0.1:1"})),
             (421, lambda h: client.get("/", headers={**h, "Host": "evil.example"}))]
    for status, case in cases:
        for accept in ("text/html", "application/json"):
            reply = case({"Accept": accept})
            assert reply.status_code == status and b"Traceback" not in reply.data
            assert reply.is_json == (accept == "application/json" and status != 421)
            assert (reply.json["error"] if reply.is_json else reply.get_data(as_text=True)).strip()
    monkeypatch.setattr(app.extensions["kiosk"].catalog, "search", broken)
    for accept in ("text/html", "application/json"):
        reply = client.get("/search?q=x", headers={"Accept": accept})
        body = reply.get_data(as_text=True)
        assert reply.status_code == 500 and "Traceback" not in body and "boom" not in body
        assert "Nothing was charged" in body


def test_security_headers(app, client, stripe_server):
    client.add(books(app)[0].isbn13)
    reply = client.post("/checkout/intent", json={"attempt": client.start_checkout()}).json
    stripe_server.pay(intent_id(reply))
    pages = {"/": None, "/cart": None, "/checkout/": None, local_path(reply["returnUrl"]): None}
    for url in pages:
        pages[url] = client.get(url)
        assert pages[url].status_code == 200, url
    csp = pages["/"].headers["Content-Security-Policy"]
    directives = dict(d.strip().split(" ", 1) for d in csp.split(";"))
    assert directives["script-src"] == "'self' https://js.stripe.com"
    assert directives["frame-src"] == "https://js.stripe.com https://hooks.stripe.com"
    assert directives["connect-src"] == "'self' https://api.stripe.com"
    assert directives["frame-ancestors"] == "'none'" and directives["default-src"] == "'self'"
    assert not any("*" in v.replace("https://*.stripe.com", "") for v in directives.values())
    for url, page in pages.items():
        assert page.headers["Cache-Control"] == "no-store", url
        assert page.headers["Referrer-Policy"] and page.headers["X-Content-Type-Options"] == "nosniff"
    staff_page = client.get("/staff/")
    assert staff_page.headers["Cache-Control"] == "no-store"


def test_flask_secret_key_is_strong_and_per_install(tmp_path, stripe_server):
    one = hardening_app(tmp_path / "one", stripe_server)
    two = hardening_app(tmp_path / "two", stripe_server)
    again = hardening_app(tmp_path / "one", stripe_server)
    assert one.secret_key != two.secret_key and one.secret_key == again.secret_key
    assert len(one.secret_key) >= 64 and re.fullmatch(r"[0-9a-f]+", one.secret_key)
    key_file = one.extensions["kiosk"].settings.data_dir / "secret_key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600


def test_check_warns_when_env_is_readable_by_others(tmp_path, stripe_server):
    env = tmp_path / ".env"
    env.write_text(f"STRIPE_SECRET_KEY={stripe_server.sk}\nSTRIPE_PUBLISHABLE_KEY={stripe_server.pk}\n"
                   f"STRIPE_API_BASE={stripe_server.url}\nSTRIPE_WEBHOOK_SECRET={WEBHOOK_SECRET}\n"
                   f"KIOSK_CATALOG={SAMPLE}\nKIOSK_DATA_DIR={tmp_path / 'data'}\n")
    for mode, warned in ((0o644, True), (0o640, True), (0o600, False)):
        os.chmod(env, mode)
        lines = []
        run_check(load_settings(environ={}, env_file=env), out=lines.append)
        text = "\n".join(lines)
        assert ("can be read by other users" in text) == warned, (oct(mode), text)
        assert stripe_server.sk not in text and WEBHOOK_SECRET not in text


def test_logs_redact_keys_even_in_tracebacks(tmp_path, stripe_server, caplog):
    handler = logging.FileHandler(tmp_path / "kiosk.log")
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        app = hardening_app(tmp_path, stripe_server, webhook_secret=WEBHOOK_SECRET)
        client = KioskClient(app)
        log = logging.getLogger("kiosk.test")
        log.warning("keys: %s and %s", stripe_server.sk, WEBHOOK_SECRET)
        try:
            raise RuntimeError(f"Stripe said no to {stripe_server.sk}")
        except RuntimeError:
            log.exception("while paying")
        # A full purchase and a Stripe outage, with whatever the kiosk logs along the way.
        client.add(books(app)[0].isbn13)
        attempt = client.start_checkout()
        stripe_server.inject("500", CREATE_INTENT)
        client.post("/checkout/intent", json={"attempt": attempt})
        stripe_server.clear_faults()
        reply = client.post("/checkout/intent", json={"attempt": attempt}).json
        stripe_server.pay(intent_id(reply))
        client.get(local_path(reply["returnUrl"]))
    finally:
        root.removeHandler(handler)
        handler.close()
    text = (tmp_path / "kiosk.log").read_text()
    assert "while paying" in text and "Traceback" in text and "sk_…redacted" in text and "whsec_…redacted" in text
    assert stripe_server.sk not in text and WEBHOOK_SECRET not in text


def test_stripe_client_has_timeouts_few_retries_and_idempotent_retries(tmp_path, stripe_server):
    settings = load_settings(environ={"STRIPE_SECRET_KEY": stripe_server.sk}, env_file=tmp_path / "none")
    assert 0 < settings.stripe_timeout <= 30 and 1 <= settings.stripe_retries <= 3  # product defaults
    gateway = Gateway(stripe_server.sk, stripe_server.url, timeout=2, retries=2)
    requestor = gateway._client._requestor
    assert requestor._client._timeout == 2 and requestor._options.max_network_retries == 2
    # A dropped connection after Stripe did the work: the retry carries the same key, so one intent.
    stripe_server.inject("drop", CREATE_INTENT, after=True, times=1)
    replays = stripe_server.idempotency.replays
    intent = gateway.create_intent(amount=500, currency="usd", allowed_types=["card"], metadata={},
                                   description="x", idempotency_key="key-1")
    assert [pi.id for pi in stripe_server.intents()] == [intent.id]
    assert stripe_server.idempotency.replays == replays + 1
