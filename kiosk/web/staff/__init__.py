"""The staff area behind KIOSK_STAFF_PIN, one blueprint in parts: sign-in and guard, today's takings, orders and
refunds, stock, the CSV export, the card reader, the kiosk itself (catalog reload, reconcile, exit),
setting it up and its settings, the catalog edited on screen with its audit list, and promotions."""
from kiosk.web.staff import (
    books,
    day,
    discount,
    export,
    promotions,
    reader,
    sales,
    screen,
    setup,
    signin,
    stock,
    system,
    today,
)
from kiosk.web.staff.base import bp
from kiosk.web.staff.signin import LOCK_SECONDS, MAX_TRIES, OPEN_ENDPOINTS

__all__ = ["LOCK_SECONDS", "MAX_TRIES", "OPEN_ENDPOINTS", "books", "bp", "day", "discount", "export", "promotions",
           "reader", "sales", "screen", "setup", "signin", "stock", "system", "today"]
