"""The staff area behind KIOSK_STAFF_PIN, one blueprint in parts: sign-in and guard, today's takings, orders and
refunds, stock, the CSV export, the card reader, and the kiosk itself (catalog reload, reconcile, exit)."""
from . import day, export, reader, sales, signin, stock, system, today
from .base import bp
from .signin import LOCK_SECONDS, MAX_TRIES, OPEN_ENDPOINTS

__all__ = ["LOCK_SECONDS", "MAX_TRIES", "OPEN_ENDPOINTS", "bp", "day", "export", "reader", "sales", "signin", "stock",
           "system", "today"]
