"""Helpers the hardening suites share: an app on a fresh data folder, the ledger, and what Stripe was paid."""
import re
from collections import defaultdict

from kiosk import create_app, orders
from kiosk.db import connect
from tests.conftest import make_settings


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
