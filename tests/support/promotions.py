"""Promotions written straight into a test kiosk's ledger, as the staff screen would (kiosk.ledger.promotions.save)."""
from contextlib import closing

from kiosk.ledger import promotions
from tests.support.ledger import ledger

DEFAULTS = {"kind": "percent", "scope": "cart", "percent": "0", "amount": 0, "buy": 0, "free": 0, "category": "",
            "isbns": "", "min_spend": 0, "starts_at": None, "ends_at": None, "code": None, "max_uses": None,
            "currency": "USD", "enabled": 1}
THREE_FOR_TWO = {"name": "3 for 2 on Paperbacks", "kind": "bundle", "scope": "category", "buy": 3, "free": 1,
                 "category": "Paperbacks"}
FAIR10 = {"name": "Book fair", "kind": "percent", "scope": "cart", "percent": "10", "code": "FAIR10",
          "max_uses": 100}


def add_promotion(app, **fields):
    """Add a promotion (DEFAULTS overridden by `fields`) to the app's ledger; returns its id."""
    with closing(ledger(app)) as db:
        return promotions.save(db, {**DEFAULTS, **fields}, ("test", "Test counter"))


def uses(app, promotion_id):
    """How many uses of a promotion's code the ledger counts."""
    with closing(ledger(app)) as db:
        return promotions.get(db, promotion_id)["uses"]
