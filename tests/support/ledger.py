"""Buying through the kiosk's own routes, for the ledger, reconciliation, staff and webhook tests."""
from collections import defaultdict
from contextlib import closing
from dataclasses import dataclass

from kiosk.ledger import orders
from kiosk.ledger.db import connect
from tests.support.client import KioskClient

CARD = "4242424242424242"


@dataclass
class Purchase:
    """One checkout: its order reference, PaymentIntent id, confirmation path and the customer's client."""

    reference: str
    intent: str
    return_path: str
    client: KioskClient

    def confirm(self):
        """Open the confirmation page, as the browser does after paying."""
        return self.client.get(self.return_path)


def ledger_url(app):
    """Where an app's ledger is (its one handle, kiosk.ledger), or a kiosk process's."""
    return app.ledger_url if hasattr(app, "ledger_url") else app.extensions["kiosk"].ledger.url


def ledger(app):
    """A fresh connection to the app's (or a kiosk process's) ledger (close it, or use `with closing(...)`)."""
    return connect(ledger_url(app))


def books(app):
    """The app's catalog, in title order."""
    return app.extensions["kiosk"].catalog.books


def buy(app, stripe, items, *, pay=True, confirm=True, card=CARD):
    """A new customer checks out {isbn: quantity}; pays at Stripe and opens the confirmation unless told not to."""
    client = KioskClient(app)
    for isbn, quantity in items.items():
        assert client.add(isbn, quantity).status_code in (200, 302)
    reply = client.post("/checkout/intent", json={"attempt": client.start_checkout()}).json
    purchase = Purchase(reply["reference"], reply["clientSecret"].split("_secret_")[0],
                        reply["returnUrl"].split("localhost", 1)[1], client)
    if pay:
        stripe.pay(purchase.intent, card)
        if confirm:
            assert purchase.confirm().status_code == 200
    return purchase


def order(app, reference=None, intent=None):
    """The ledger's row for an order, or None."""
    with closing(ledger(app)) as db:
        return orders.get(db, reference=reference) if reference else orders.get(db, intent=intent)


def on_hand(app, isbn):
    """Copies on hand as the ledger has them (may be negative after an over-sell)."""
    with closing(ledger(app)) as db:
        return db.execute("SELECT on_hand FROM stock WHERE isbn = ?", (isbn,)).fetchone()["on_hand"]


def count(app, sql, *args):
    """The single number a COUNT/SUM query over the ledger returns."""
    with closing(ledger(app)) as db:
        return db.execute(sql, args).fetchone()[0]


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
                     if len(paid) > 1 or (paid[0][1] is not None and paid[0][0] != paid[0][1]["amount"]))
        paid = db.execute("SELECT COUNT(*) FROM orders WHERE status = 'paid'").fetchone()[0]
    finally:
        db.close()
    return {"lost": lost, "double": double, "paid": paid, "charged": len(charges)}
