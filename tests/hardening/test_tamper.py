"""Tamper: forged prices, amounts, currencies, ISBNs and quantities, posted by hand to every route.

A forgery is "accepted" when it changes anything it should not: the cart, the ledger, the stock or
Stripe's intents, or when a payment is created or recorded for anything but the catalog total.
"""

import pytest

from kiosk.ledger import orders
from kiosk.ledger import stock as shelves
from tests.hardening.helpers import books, hardening_app, intent_id, local_path
from tests.support.client import KioskClient, stored_session
from tests.support.ledger import ledger, paid_state

FIGURE = ("TAMPER: {accepted} of {sent} forged requests accepted; the charged amount equalled the catalog "
          "total in {matched} of {payments} payments")


def fullwidth(text):
    return "".join(chr(ord(c) + 0xFEE0) if c.isdigit() else c for c in text)


def arabic_indic(text):
    return "".join(chr(ord(c) + 0x0630) if c.isdigit() else c for c in text)


def isbn_forgeries(real):
    """ISBNs nobody can sell: malformed, wrong check digit, unknown, other scripts, or not a string at all."""
    wrong_check = real[:-1] + str((int(real[-1]) + 1) % 10)
    return ["", "0", "978", wrong_check, real + "0", real[1:], "9780306406157", "0306406152",
            fullwidth(real), arabic_indic(real), real + "\x00", real + "' OR '1'='1", "../" + real,
            real + real, "X" * 13, [real], {"isbn": real}, None, -1]


def quantity_forgeries(stock):
    """Quantities outside whole numbers 1..stock, or not plain digits."""
    return ["0", "-1", "1.5", "1e1", "0x2", "+1", "21", str(10 ** 20), str(stock + 1), "", "one",
            arabic_indic("3"), fullwidth("3"), "1;2", 0, -1, 1.5, 1e309, True, [1], {"n": 1}, None]


PRICE_FIELDS = [{"price": "0.01"}, {"unit_price": "1"}, {"amount": "1"}, {"total": "0"}, {"currency": "jpy"},
                {"price": "-100", "amount": "-100"}, {"isbn13": "9780306406157", "title": "Free book"}]


@pytest.fixture
def app(tmp_path, stripe_server):
    return hardening_app(tmp_path, stripe_server)


class State:
    """What a forged request could change: the session's cart, the ledger, the stock and Stripe."""

    def __init__(self, app, client, stripe):
        self.app, self.client, self.stripe = app, client, stripe

    def cart(self):
        sid = self.client.http.get_cookie("kiosk_sid")
        stored = stored_session(self.app, sid.value) if sid else None
        return stored["cart"] if stored else {}

    def snapshot(self):
        db = ledger(self.app)
        try:
            ledger_rows = [tuple(r) for r in db.execute("SELECT id, status, amount, currency FROM orders")]
            stock = dict(shelves.stock_levels(db))
        finally:
            db.close()
        # Anything the kiosk created or changed at Stripe is a POST in the fake's request log.
        return {"cart": self.cart(), "orders": ledger_rows, "stock": stock,
                "stripe writes": sum(1 for method, _ in self.stripe.requests if method == "POST")}


def send(client, url, payload, as_json):
    if as_json:
        return client.post(url, json=payload, headers={"Accept": "application/json"})
    form = {k: v for k, v in payload.items() if isinstance(v, str)}
    return client.post(url, data=form)


ACCEPTED = []  # what was accepted, for the failure message


def judge(reply, before, after, expected, sent=None):
    """1 when the forgery took effect (the state is not what an honest server leaves), else 0."""
    assert reply.status_code < 500 and b"Traceback" not in reply.data
    if after == expected:
        return 0
    changed = {k: (before[k], after[k]) for k in after if after[k] != expected[k]}
    ACCEPTED.append((reply.request.path, sent, reply.status_code, changed))
    return 1


def test_forged_cart_requests(app, client, stripe_server, tally):
    a, b = [bk for bk in books(app) if bk.stock >= 3][:2]
    state = State(app, client, stripe_server)
    client.add(a.isbn13, 1)
    sent = accepted = 0
    refused = []
    for url in ("/cart/add", "/cart/update", "/cart/remove"):
        for as_json in (False, True):
            # Forged ISBNs and quantities: refused, nothing changes.
            for forged in isbn_forgeries(a.isbn13):
                refused.append((url, {"isbn": forged, "quantity": "1"}, as_json))
            if url != "/cart/remove":
                for forged in quantity_forgeries(a.stock):
                    refused.append((url, {"isbn": a.isbn13, "quantity": forged}, as_json))
    for url, payload, as_json in refused:
        if not as_json and not all(isinstance(v, str) for v in payload.values()):
            continue  # a form field is always a string; the JSON case covers the rest
        before = state.snapshot()
        reply = send(client, url, payload, as_json)
        accepted += judge(reply, before, state.snapshot(), before, payload)
        sent += 1
    # Forged prices, amounts and currencies beside an honest change: the change happens at catalog prices.
    for extra in PRICE_FIELDS:
        for as_json in (False, True):
            before = state.snapshot()
            reply = send(client, "/cart/add", {"isbn": b.isbn13, "quantity": "1", **extra}, as_json)
            expected = dict(before, cart={**before["cart"], b.isbn13: before["cart"].get(b.isbn13, 0) + 1})
            accepted += judge(reply, before, state.snapshot(), expected, extra)
            summary = client.get("/cart/summary").json
            accepted += summary["total"] != sum(bk.price * state.cart().get(bk.isbn13, 0) for bk in (a, b))
            client.post("/cart/remove", data={"isbn": b.isbn13})
            sent += 1
    tally(FIGURE, accepted=accepted, sent=sent, matched=0, payments=0)
    assert sent > 150 and accepted == 0, ACCEPTED


def start(app, stripe, lines):
    """A fresh customer with `lines` [(book, quantity)] in the cart, on the checkout page."""
    client = KioskClient(app)
    for book, quantity in lines:
        client.add(book.isbn13, quantity)
    return client, client.start_checkout()


def test_forged_checkout_requests(app, stripe_server, tally):
    shelf = [bk for bk in books(app) if bk.stock >= 2]
    currency = app.extensions["kiosk"].settings.currency
    sent = accepted = payments = matched = 0
    # Forged amounts, currencies, prices and items beside the customer's own attempt: the intent is
    # created from the server's cart all the same, and the customer is charged the catalog total.
    # Each customer buys other books, so no purchase runs short of stock.
    extras = [{"amount": 1}, {"amount": -1}, {"currency": "jpy"}, {"price": 1, "unit_price": 1, "total": 1},
              {"items": [{"isbn": shelf[0].isbn13, "quantity": 100, "price": 1}]},
              {"metadata": {"order_ref": "BK-AAAA-AAAA", "items": f"{shelf[0].isbn13}x100"}},
              {"payment_method_types": ["card", "customer_balance"]}, {"amount": "0", "currency": currency}]
    for n, extra in enumerate(extras):
        a, b = shelf[2 * n], shelf[2 * n + 1]
        total = a.price * 2 + b.price
        client, attempt = start(app, stripe_server, [(a, 2), (b, 1)])
        reply = client.post("/checkout/intent", json={"attempt": attempt, **extra})
        assert reply.status_code == 200
        pi = stripe_server.client().v1.payment_intents.retrieve(intent_id(reply.json))
        accepted += (pi.amount, pi.currency.upper()) != (total, currency)
        sent += 1
        assert stripe_server.pay(pi.id) == "succeeded"
        client.get(local_path(reply.json["returnUrl"]))
        charged = [ch.amount for ch in stripe_server.charges() if ch.payment_intent == pi.id]
        payments += 1
        matched += charged == [total]
    # Forged attempts: another customer's, made up, or not a string. Nothing is created.
    _victim, victim_attempt = start(app, stripe_server, [(shelf[-1], 1)])
    client, attempt = start(app, stripe_server, [(shelf[-1], 1)])
    state = State(app, client, stripe_server)
    for forged in [victim_attempt, "0" * 32, attempt + "0", attempt.upper(), [attempt], {"$ne": ""}, None, 1, ""]:
        for body in ({"attempt": forged}, {"attempt": forged, "amount": 1}):
            before = state.snapshot()
            reply = client.post("/checkout/intent", json=body)
            accepted += judge(reply, before, state.snapshot(), before) or reply.status_code < 400
            sent += 1
    # The attempt sent as a form instead of JSON is not the kiosk's script: refused.
    before = state.snapshot()
    reply = client.post("/checkout/intent", data={"attempt": attempt, "amount": "1"})
    accepted += judge(reply, before, state.snapshot(), before) or reply.status_code < 400
    sent += 1
    tally(FIGURE, accepted=accepted, sent=sent, matched=matched, payments=payments)
    assert accepted == 0 and matched == payments == len(extras)
    assert paid_state(app, stripe_server)["double"] == 0


def test_forged_confirmations(app, stripe_server, tally):
    a = books(app)[0]
    sent = accepted = 0
    # Another customer's receipt, or made-up references: never shown, never settled.
    payer, attempt = start(app, stripe_server, [(a, 1)])
    reply = payer.post("/checkout/intent", json={"attempt": attempt}).json
    stripe_server.pay(intent_id(reply))
    ref = local_path(reply["returnUrl"]).split("ref=")[1]
    stranger = KioskClient(app)
    for forged in [ref, ref.lower(), ref + "'--", "BK-0000-0000", "", "x" * 5000, "%00", "../" + ref]:
        page = stranger.get("/checkout/complete", query_string={"ref": forged})
        accepted += page.status_code != 404 or b"Payment received" in page.data
        sent += 1
    db = ledger(app)
    assert orders.get(db, intent=intent_id(reply))["status"] == "pending"  # the stranger settled nothing
    db.close()
    # An intent whose amount was changed at Stripe after the kiosk created it is never recorded as a sale.
    client, attempt = start(app, stripe_server, [(a, 2)])
    reply = client.post("/checkout/intent", json={"attempt": attempt}).json
    pi = intent_id(reply)
    stripe_server.client().v1.payment_intents.update(pi, {"amount": 50})
    stripe_server.pay(pi)
    page = client.get(local_path(reply["returnUrl"]))
    db = ledger(app)
    order = orders.get(db, intent=pi)
    stock = db.execute("SELECT on_hand FROM stock WHERE isbn = ?", (a.isbn13,)).fetchone()[0]  # on the shelf
    db.close()
    accepted += order["status"] == "paid" or b"Payment received" in page.data or stock != a.stock
    sent += 1
    tally(FIGURE, accepted=accepted, sent=sent, matched=0, payments=0)
    assert accepted == 0


def forged_path(rule):
    """The rule's URL with every variable part filled with a forged value."""
    path = rule.rule
    for name in rule.arguments:
        path = path.replace(f"<{name}>", "9780306406157")
        for converter in ("path", "int", "string"):
            path = path.replace(f"<{converter}:{name}>", "1" if converter == "int" else "9780306406157")
    return path


def effect(app, stripe, book, url, payload, as_json):
    """What one POST does to a fresh customer with `book` in the cart: the cart after, and what changed elsewhere."""
    client = KioskClient(app)
    client.add(book.isbn13, 1)
    state = State(app, client, stripe)
    before = state.snapshot()
    reply = send(client, url, payload, as_json)
    assert reply.status_code < 500 and b"Traceback" not in reply.data
    after = state.snapshot()
    ids = {row[0] for row in before["orders"]}
    return reply, {"cart": after["cart"],
                   "new orders": sorted(row[1:] for row in after["orders"] if row[0] not in ids),
                   "stock": {k: v - before["stock"].get(k, 0) for k, v in after["stock"].items()
                             if v != before["stock"].get(k, 0)},
                   "stripe writes": after["stripe writes"] - before["stripe writes"]}


def test_every_post_route_ignores_forged_fields(app, stripe_server, tally):
    """Every route that takes a POST (today's and any added later): forged fields change nothing that
    the same request without them would not change."""
    a = books(app)[0]
    forged = {"isbn": "9780306406157", "quantity": "-5", "price": "0", "amount": "1", "currency": "xxx",
              "unit_price": "0", "total": "0", "attempt": "0" * 32, "ref": "BK-0000-0000", "pin": "0000"}
    sent = accepted = routes = 0
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods:
            continue
        routes += 1
        for as_json in (False, True):
            _, honest = effect(app, stripe_server, a, forged_path(rule), {}, as_json)
            reply, outcome = effect(app, stripe_server, a, forged_path(rule), forged, as_json)
            if outcome != honest:
                accepted += 1
                ACCEPTED.append((rule.rule, as_json, reply.status_code, honest, outcome))
            sent += 1
    tally(FIGURE, accepted=accepted, sent=sent, matched=0, payments=0)
    assert routes >= 4 and accepted == 0, ACCEPTED
