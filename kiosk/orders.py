"""The order ledger and stock: every state change is one transaction, and every one is idempotent."""
import secrets
from datetime import datetime, timezone

from .db import transaction

STATUSES = ("pending", "paid", "failed", "canceled", "refunded", "partially_refunded")
OPEN = ("pending", "failed")


def now():
    """UTC timestamp as stored in the ledger."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def new_reference():
    """A short order reference a person can read out: BK-7Q4M-2XWD."""
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    code = "".join(secrets.choice(alphabet) for _ in range(8))
    return f"BK-{code[:4]}-{code[4:]}"


def get(db, *, order_id=None, reference=None, intent=None, attempt=None):
    """One order row by id, reference, PaymentIntent id or checkout attempt, or None."""
    for column, value in (("id", order_id), ("reference", reference), ("payment_intent", intent),
                          ("attempt", attempt)):
        if value is not None:
            return db.execute(f"SELECT * FROM orders WHERE {column} = ?", (value,)).fetchone()
    raise TypeError("get() needs one key")


def lines(db, order_id):
    """The order's book lines."""
    return db.execute("SELECT isbn, title, unit_price, quantity, unit_price * quantity AS total "
                      "FROM order_lines WHERE order_id = ? ORDER BY title", (order_id,)).fetchall()


def create_pending(db, *, attempt, priced_lines, currency, reference=None, intent=None, status="pending"):
    """Write a pending order and its lines; returns the order row."""
    amount = sum(line["unit_price"] * line["quantity"] for line in priced_lines)
    stamp = now()
    with transaction(db):
        cur = db.execute(
            "INSERT INTO orders (reference, attempt, payment_intent, status, amount, currency, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (reference or new_reference(), attempt, intent, status, amount, currency.upper(), stamp, stamp))
        db.executemany("INSERT INTO order_lines (order_id, isbn, title, unit_price, quantity) VALUES (?, ?, ?, ?, ?)",
                       [(cur.lastrowid, ln["isbn"], ln["title"], ln["unit_price"], ln["quantity"])
                        for ln in priced_lines])
    return get(db, order_id=cur.lastrowid)


def attach_intent(db, order_id, intent_id):
    """Record the PaymentIntent created for a pending order."""
    db.execute("UPDATE orders SET payment_intent = ?, updated_at = ? WHERE id = ?", (intent_id, now(), order_id))


def set_email(db, order_id, email):
    """Keep the receipt address the customer typed."""
    db.execute("UPDATE orders SET email = ?, updated_at = ? WHERE id = ?", (email, now(), order_id))


def _transition(db, order_id, to, allowed_from, **extra):
    sets = ", ".join([f"{k} = ?" for k in extra] + ["status = ?", "updated_at = ?"])
    marks = ",".join("?" * len(allowed_from))
    cur = db.execute(f"UPDATE orders SET {sets} WHERE id = ? AND status IN ({marks})",
                     (*extra.values(), to, now(), order_id, *allowed_from))
    return cur.rowcount == 1


def mark_paid(db, order_id):
    """pending/failed/canceled -> paid, taking stock once; False if it was already paid."""
    with transaction(db):
        if not _transition(db, order_id, "paid", ("pending", "failed", "canceled"), paid_at=now(), last_error=None):
            return False
        oversold = False
        for line in lines(db, order_id):
            row = db.execute("SELECT on_hand FROM stock WHERE isbn = ?", (line["isbn"],)).fetchone()
            on_hand = row["on_hand"] if row else 0
            # Paid is paid: the sale stands even if the shelf is empty, but staff are told.
            oversold = oversold or on_hand < line["quantity"]
            db.execute("INSERT INTO stock (isbn, on_hand, catalog_qty) VALUES (?, ?, 0) "
                       "ON CONFLICT (isbn) DO UPDATE SET on_hand = on_hand + excluded.on_hand",
                       (line["isbn"], -line["quantity"]))
            db.execute("INSERT INTO stock_movements (isbn, delta, reason, order_id, created_at) "
                       "VALUES (?, ?, 'sale', ?, ?)", (line["isbn"], -line["quantity"], order_id, now()))
        if oversold:
            db.execute("UPDATE orders SET oversold = 1 WHERE id = ?", (order_id,))
    return True


def mark_failed(db, order_id, message):
    """pending -> failed with Stripe's message; the customer may still retry the same intent."""
    with transaction(db):
        return _transition(db, order_id, "failed", ("pending", "failed"), last_error=message)


def mark_canceled(db, order_id, note=None):
    """pending/failed -> canceled."""
    with transaction(db):
        return _transition(db, order_id, "canceled", OPEN, last_error=note)


def settle(db, order, intent):
    """Bring an order in line with its PaymentIntent; returns the new status. Safe to call any number of times."""
    if intent.id != order["payment_intent"]:
        raise ValueError("intent does not belong to this order")
    if intent.status == "succeeded":
        if intent.amount != order["amount"] or intent.currency.upper() != order["currency"]:
            # Never mark paid what the ledger did not ask for; staff see it in the order list.
            mark_failed(db, order["id"], f"Amount mismatch: Stripe charged {intent.amount} {intent.currency}.")
        else:
            mark_paid(db, order["id"])
    elif intent.status == "canceled":
        mark_canceled(db, order["id"], "Canceled at Stripe.")
    elif intent.status == "requires_payment_method" and intent.last_error:
        mark_failed(db, order["id"], intent.last_error)
    return get(db, order_id=order["id"])["status"]


def sync_stock(db, books):
    """Take stock counts from the catalog for new books, or where staff changed the count in the sheet."""
    stamp = now()
    with transaction(db):
        known = {r["isbn"]: r for r in db.execute("SELECT isbn, on_hand, catalog_qty FROM stock")}
        for book in books:
            row = known.get(book.isbn13)
            if row is None:
                db.execute("INSERT INTO stock (isbn, on_hand, catalog_qty) VALUES (?, ?, ?)",
                           (book.isbn13, book.stock, book.stock))
            elif row["catalog_qty"] != book.stock:
                db.execute("UPDATE stock SET on_hand = ?, catalog_qty = ? WHERE isbn = ?",
                           (book.stock, book.stock, book.isbn13))
                db.execute("INSERT INTO stock_movements (isbn, delta, reason, note, created_at) "
                           "VALUES (?, ?, 'catalog', 'count changed in the catalog file', ?)",
                           (book.isbn13, book.stock - row["on_hand"], stamp))


def stock_levels(db, isbns=None):
    """Copies on hand by ISBN-13 (never below zero for selling purposes)."""
    if isbns is None:
        rows = db.execute("SELECT isbn, on_hand FROM stock")
    else:
        isbns = list(isbns)
        rows = db.execute(f"SELECT isbn, on_hand FROM stock WHERE isbn IN ({','.join('?' * len(isbns))})", isbns)
    return {r["isbn"]: max(0, r["on_hand"]) for r in rows}
