"""The order ledger and stock: every state change is one transaction, and every one is idempotent."""
import json
import secrets
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from . import isbn as isbnlib
from . import tax
from .db import IntegrityError, LedgerUnavailable, get_meta, retry_conflicts, set_meta, transaction
from .money import exponent

STATUSES = ("pending", "paid", "failed", "canceled", "refunded", "partially_refunded")
OPEN = ("pending", "failed")
SOLD = ("paid", "partially_refunded", "refunded")
REFUNDABLE = ("paid", "partially_refunded")
SOLD_SQL = "status IN ('paid', 'partially_refunded', 'refunded')"
STAMP = "%Y-%m-%d %H:%M:%S"


# One lock order everywhere, so two counters never deadlock on PostgreSQL: an order's own rows first (orders,
# order_lines, refunds), then stock rows in ISBN order. Holds, sales, releases, refunds' restocking, shelf counts
# and the catalog's counts all follow it; each function that is one transaction runs again (retry_conflicts) if
# the database still breaks one off.


class LedgerError(ValueError):
    """A staff action the ledger cannot record; the message says why, for staff."""


def now():
    """UTC timestamp as stored in the ledger."""
    return datetime.now(UTC).strftime(STAMP)


def major(minor, currency):
    """Minor units as a plain decimal in major units ("12.99", "1500"), for forms, notes and spreadsheets."""
    digits = exponent(currency)
    return f"{Decimal(minor).scaleb(-digits):.{digits}f}"


def stamp_of(unix):
    """A Unix time as a ledger timestamp."""
    return datetime.fromtimestamp(unix, UTC).strftime(STAMP)


def parse_stamp(stamp):
    """A ledger timestamp as an aware UTC datetime, or None when it is empty or not one."""
    try:
        return datetime.strptime(stamp or "", STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def unix_of(stamp):
    """A ledger timestamp as a Unix time."""
    return parse_stamp(stamp).timestamp()


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
    return db.execute("SELECT isbn, title, unit_price, quantity, unit_price * quantity AS total, tax_class, tax_rate "
                      "FROM order_lines WHERE order_id = ? ORDER BY title", (order_id,)).fetchall()


def taxes(db, order_id):
    """The order's tax per class, as sold: rows of tax_class, rate (text), taxable and tax."""
    return db.execute("SELECT tax_class, rate, taxable, tax FROM order_taxes WHERE order_id = ? ORDER BY tax_class",
                      (order_id,)).fetchall()


class OutOfStock(LedgerError):
    """Another counter (or customer) holds or sold the last copies; `available` is what is left of `isbn`."""

    def __init__(self, isbn, title, available):
        super().__init__(f"{title}: {available} left")
        self.isbn, self.title, self.available = isbn, title, available


@retry_conflicts
def create_pending(db, *, attempt, priced_lines, currency, reference=None, intent=None, status="pending",
                   amount=None, adopted=False, created_at=None, note=None, kiosk_id=None, counter=None, hold=False,
                   tax_lines=(), inclusive=False, method="card"):
    """Write a pending order, its lines and its tax per class (tax.TaxLine); returns the order row.

    With `hold`, the order's copies are held on the shelf in the same transaction, each by a conditional
    update, so two counters cannot both hold the last copy: OutOfStock (and nothing written) if they cannot be."""
    subtotal = sum(line["unit_price"] * line["quantity"] for line in priced_lines)
    total_tax = sum(t.tax for t in tax_lines)
    if amount is None:
        amount = subtotal + (0 if inclusive else total_tax)
    rates = {t.tax_class: tax.percent(t.rate) for t in tax_lines}
    stamp = now()
    with transaction(db):
        order_id = db.execute(
            "INSERT INTO orders (reference, attempt, payment_intent, status, amount, currency, adopted, note,"
            " created_at, updated_at, kiosk_id, counter, subtotal, tax, tax_inclusive, method) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (reference or new_reference(), attempt, intent, status, amount, currency.upper(), int(adopted), note,
             created_at or stamp, stamp, kiosk_id, counter, subtotal, total_tax, int(inclusive),
             method)).fetchone()[0]
        for t in tax_lines:
            db.execute("INSERT INTO order_taxes (order_id, tax_class, rate, taxable, tax) VALUES (?, ?, ?, ?, ?)",
                       (order_id, t.tax_class, tax.percent(t.rate), t.taxable, t.tax))
        for ln in priced_lines:
            tax_class = ln.get("tax_class") if tax_lines else None
            db.execute("INSERT INTO order_lines (order_id, isbn, title, unit_price, quantity, held, tax_class, "
                       "tax_rate) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (order_id, ln["isbn"], ln["title"], ln["unit_price"], ln["quantity"],
                        ln["quantity"] if hold else 0, tax_class, rates.get(tax_class)))
        for ln in sorted(priced_lines, key=lambda ln: ln["isbn"]) if hold else ():  # stock rows in ISBN order
            if not db.execute("UPDATE stock SET held = held + ? WHERE isbn = ? AND on_hand - held >= ?",
                              (ln["quantity"], ln["isbn"], ln["quantity"])).rowcount:
                row = db.execute("SELECT on_hand - held FROM stock WHERE isbn = ?", (ln["isbn"],)).fetchone()
                raise OutOfStock(ln["isbn"], ln["title"], max(0, row[0] if row else 0))
    return get(db, order_id=order_id)


def attach_intent(db, order_id, intent_id):
    """Record the PaymentIntent created for a pending order; an intent already recorded is never replaced."""
    cur = db.execute("UPDATE orders SET payment_intent = ?, updated_at = ? WHERE id = ? AND payment_intent IS NULL",
                     (intent_id, now(), order_id))
    return cur.rowcount == 1


@retry_conflicts
def switch_method(db, order_id, method, canceled_intent=None):
    """The customer pays another way (the card reader, or typing the card): the order forgets its PaymentIntent,
    which Stripe has canceled, and the next one is made with a new Idempotency-Key. The copies stay held.

    Conditional on the intent it had, so two requests switching at once switch once; the canceled intent is
    named in the order's note for staff. False if the order changed meanwhile."""
    if canceled_intent:
        same, args = "payment_intent = ?", (f"{canceled_intent} canceled: paid another way.", canceled_intent)
        note = "note = COALESCE(note || ' ', '') || ?, "
    else:
        same, args, note = "payment_intent IS NULL", (), ""
    with transaction(db):
        return db.execute(
            f"UPDATE orders SET {note}payment_intent = NULL, method = ?, status = 'pending', last_error = NULL, "
            "intent_tries = intent_tries + 1, updated_at = ? "
            f"WHERE id = ? AND status IN ('pending', 'failed') AND {same}",
            (*args[:1], method, now(), order_id, *args[1:])).rowcount == 1


def bump_intent_tries(db, order_id):
    """Stripe answered 5xx to creating this order's intent: the next try uses a new Idempotency-Key."""
    db.execute("UPDATE orders SET intent_tries = intent_tries + 1, updated_at = ? WHERE id = ?", (now(), order_id))


@retry_conflicts
def count_receipt_email(db, order_id, limit):
    """Count one more receipt email for an order, if fewer than `limit` were sent; True if this one may go.

    Only the count is kept, never the address: the kiosk promises to forget it (Stripe keeps it, to send)."""
    with transaction(db):
        return db.execute("UPDATE orders SET receipt_emails = receipt_emails + 1, updated_at = ? "
                          "WHERE id = ? AND receipt_emails < ?", (now(), order_id, limit)).rowcount == 1


def uncount_receipt_email(db, order_id):
    """The email did not go (Stripe could not be reached): it does not count against the limit."""
    db.execute("UPDATE orders SET receipt_emails = receipt_emails - 1 WHERE id = ? AND receipt_emails > 0",
               (order_id,))


def _transition(db, order_id, to, allowed_from, **extra):
    sets = ", ".join([f"{k} = ?" for k in extra] + ["status = ?", "updated_at = ?"])
    marks = ",".join("?" * len(allowed_from))
    cur = db.execute(f"UPDATE orders SET {sets} WHERE id = ? AND status IN ({marks})",
                     (*extra.values(), to, now(), order_id, *allowed_from))
    return cur.rowcount == 1


def _move_stock(db, isbn, delta, reason, *, order_id=None, refund_id=None, note=None):
    """Change copies on hand and log why, in the caller's transaction."""
    db.execute("INSERT INTO stock (isbn, on_hand, catalog_qty) VALUES (?, ?, 0) "
               "ON CONFLICT (isbn) DO UPDATE SET on_hand = stock.on_hand + excluded.on_hand", (isbn, delta))
    db.execute("INSERT INTO stock_movements (isbn, delta, reason, order_id, refund_id, note, created_at) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)", (isbn, delta, reason, order_id, refund_id, note, now()))


def _release_holds(db, order_id):
    """Give the shelf back the copies an order holds, in the caller's transaction."""
    for line in db.execute("SELECT isbn, held FROM order_lines WHERE order_id = ? AND held > 0 ORDER BY isbn",
                           (order_id,)).fetchall():
        db.execute("UPDATE stock SET held = held - ? WHERE isbn = ?", (line["held"], line["isbn"]))
    db.execute("UPDATE order_lines SET held = 0 WHERE order_id = ? AND held > 0", (order_id,))


@retry_conflicts
def mark_paid(db, order_id, paid_at=None):
    """pending/failed/canceled -> paid, taking stock once (a hold becomes the sale); False if already paid."""
    with transaction(db):
        if not _transition(db, order_id, "paid", ("pending", "failed", "canceled"), paid_at=paid_at or now(),
                           last_error=None):
            return False
        oversold = False
        for line in db.execute("SELECT isbn, quantity, held FROM order_lines WHERE order_id = ? ORDER BY isbn",
                               (order_id,)).fetchall():
            row = db.execute(f"SELECT on_hand, held FROM stock WHERE isbn = ?{db.for_update}",
                             (line["isbn"],)).fetchone()
            # Paid is paid: the sale stands even if the shelf is empty, but staff are told.
            oversold = oversold or (row["on_hand"] if row else 0) < line["quantity"]
            _move_stock(db, line["isbn"], -line["quantity"], "sale", order_id=order_id)
        _release_holds(db, order_id)
        if oversold:
            db.execute("UPDATE orders SET oversold = 1 WHERE id = ?", (order_id,))
    return True


@retry_conflicts
def mark_failed(db, order_id, message, release=False):
    """pending -> failed with Stripe's message; the customer may still retry the same intent (and keeps the
    copies held), unless `release`."""
    with transaction(db):
        if not _transition(db, order_id, "failed", ("pending", "failed"), last_error=message):
            return False
        if release:
            _release_holds(db, order_id)
    return True


@retry_conflicts
def mark_canceled(db, order_id, note=None):
    """pending/failed -> canceled, giving back the copies it held."""
    with transaction(db):
        if not _transition(db, order_id, "canceled", OPEN, last_error=note):
            return False
        _release_holds(db, order_id)
    return True


def settle(db, order, intent, paid_at=None):
    """Bring an order in line with its PaymentIntent; returns the new status. Safe to call any number of times."""
    if intent.id != order["payment_intent"]:
        raise ValueError("intent does not belong to this order")
    if intent.paid:
        if intent.amount != order["amount"] or intent.currency.upper() != order["currency"]:
            # Never mark paid what the ledger did not ask for; staff see it in the order list. Its copies go
            # back on the shelf: this payment will never be the sale of them.
            mark_failed(db, order["id"], f"Amount mismatch: Stripe charged {intent.amount} {intent.currency}.",
                        release=True)
        else:
            mark_paid(db, order["id"], paid_at)
    elif intent.canceled:
        mark_canceled(db, order["id"], "Canceled at Stripe.")
    elif intent.declined:
        mark_failed(db, order["id"], intent.last_error)
    return get(db, order_id=order["id"])["status"]


@retry_conflicts
def sync_stock(db, books):
    """Take stock counts from the catalog: new books start at the sheet's count; a count edited in the sheet
    adds (or takes away) the difference. It never sets a count outright, so a counter starting up with the
    same or an edited sheet never undoes the sales another counter made since."""
    stamp = now()
    known = {r["isbn"]: r["catalog_qty"] for r in db.execute("SELECT isbn, catalog_qty FROM stock")}
    with transaction(db):
        for book in sorted(books, key=lambda book: book.isbn13):  # stock rows in ISBN order
            was = known.get(book.isbn13)
            if was is None:
                db.execute("INSERT INTO stock (isbn, on_hand, catalog_qty) VALUES (?, ?, ?) ON CONFLICT (isbn) "
                           "DO NOTHING", (book.isbn13, book.stock, book.stock))
            elif was != book.stock and db.execute(
                    # Conditional: of two counters reading the same edited sheet, one applies the difference.
                    "UPDATE stock SET on_hand = on_hand + ?, catalog_qty = ? WHERE isbn = ? AND catalog_qty = ?",
                    (book.stock - was, book.stock, book.isbn13, was)).rowcount:
                db.execute("INSERT INTO stock_movements (isbn, delta, reason, note, created_at) "
                           "VALUES (?, ?, 'catalog', 'count changed in the catalog file', ?)",
                           (book.isbn13, book.stock - was, stamp))


def ping(db):
    """Raise LedgerUnavailable unless the ledger's database answers."""
    db.execute("SELECT 1")


def on_hand(db, isbn, unknown=None):
    """Copies of one book a customer may buy (never below zero); `unknown` when the database is not answering
    and the caller can go on without (the holds at checkout still decide)."""
    try:
        return stock_levels(db, [isbn]).get(isbn, 0)
    except LedgerUnavailable:
        if unknown is None:
            raise
        return unknown


def stock_levels(db, isbns=None, order_id=None, attempt=None):
    """Copies a customer may buy, by ISBN-13: on hand less what payments under way hold (never below zero).

    The copies held by the customer's own order (by `order_id`, or by checkout `attempt`) count as theirs,
    read in the same statement: a hold being taken at that moment is either seen with its order or not at all."""
    own, key = ("o.id = ?", order_id) if order_id is not None else ("o.attempt = ?", attempt)
    args = [key]
    where = ""
    if isbns is not None:
        isbns = list(isbns)
        if not isbns:
            return {}
        where = f" WHERE s.isbn IN ({','.join('?' * len(isbns))})"
        args += isbns
    rows = db.execute("SELECT s.isbn, s.on_hand - s.held + COALESCE((SELECT SUM(l.held) FROM order_lines l "
                      f"JOIN orders o ON o.id = l.order_id WHERE l.isbn = s.isbn AND {own}), 0) FROM stock s{where}",
                      args)
    return {r[0]: max(0, r[1]) for r in rows}


def attention(db):
    """What the staff dashboard flags: open orders by status (pending, failed), and how many were over-sold."""
    counts = {row["status"]: row["n"] for row in
              db.execute("SELECT status, COUNT(*) AS n FROM orders WHERE status IN ('pending', 'failed') "
                         "GROUP BY status")}
    return counts, db.execute("SELECT COUNT(*) FROM orders WHERE oversold = 1").fetchone()[0]


def open_orders(db, kiosk_id=None):
    """Orders still waiting on Stripe (pending or failed), oldest first; only this counter's, if given."""
    if kiosk_id is None:
        return db.execute("SELECT * FROM orders WHERE status IN ('pending', 'failed') ORDER BY id").fetchall()
    return db.execute("SELECT * FROM orders WHERE status IN ('pending', 'failed') AND (kiosk_id = ? OR kiosk_id "
                      "IS NULL) ORDER BY id", (kiosk_id,)).fetchall()


def holding_orders(db, kiosk_id, method="card"):
    """This counter's open orders (pending or failed) paid `method` that hold copies, least recently changed first."""
    return db.execute("SELECT * FROM orders o WHERE status IN ('pending', 'failed') AND kiosk_id = ? AND method = ? "
                      "AND EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.id AND l.held > 0) "
                      "ORDER BY updated_at, id", (kiosk_id, method)).fetchall()


def claim_orders(db, kiosk_id, counter):
    """Orders from before counters were recorded belong to this one (the only one there was)."""
    db.execute("UPDATE orders SET kiosk_id = ?, counter = ? WHERE kiosk_id IS NULL", (kiosk_id, counter))


def register_counter(db, kiosk_id, counter):
    """Note this kiosk and its counter name in the shared ledger; returns the ids of other kiosks of that name.

    Counters are counted by their kiosk id, but staff know them by name: two of one name must be told apart."""
    set_meta(db, f"counter:{kiosk_id}", counter)
    return sorted(row["key"].split(":", 1)[1] for row in db.execute(
        "SELECT key FROM meta WHERE key LIKE 'counter:%' AND key <> ? AND value = ?", (f"counter:{kiosk_id}", counter)))


def _counter_labels(names):
    """{kiosk key: label}: the counter's name, with the kiosk's id beside it where two kiosks share that name."""
    taken = {}
    for name in names.values():
        taken[name] = taken.get(name, 0) + 1
    return {key: f"{name} ({key})" if taken[name] > 1 and key else name for key, name in names.items()}


def _per_counter(rows):
    """[(label, takings)] by label, from {kiosk key: (counter name, takings)}."""
    labels = _counter_labels({key: name for key, (name, _) in rows.items()})
    return sorted((labels[key], t) for key, (_, t) in rows.items())


def returned_quantities(db, order_id):
    """Copies of each book already put back on the shelf from this order."""
    rows = db.execute("SELECT isbn, SUM(delta) AS n FROM stock_movements WHERE order_id = ? AND reason = 'return' "
                      "GROUP BY isbn", (order_id,))
    return {r["isbn"]: r["n"] for r in rows}


def refunds(db, order_id):
    """The order's refunds, oldest first."""
    return db.execute("SELECT * FROM refunds WHERE order_id = ? ORDER BY id", (order_id,)).fetchall()


def movements(db, order_id):
    """The stock movements an order caused, oldest first."""
    return db.execute("SELECT * FROM stock_movements WHERE order_id = ? ORDER BY id", (order_id,)).fetchall()


def webhook_seen(db, event_id):
    """True when this webhook event was handled already."""
    return db.execute("SELECT 1 FROM webhook_events WHERE id = ?", (event_id,)).fetchone() is not None


def remember_webhook(db, event, intent_id):
    """Note a handled webhook event, so a replay changes nothing."""
    db.execute("INSERT INTO webhook_events (id, type, payment_intent, received_at) VALUES (?, ?, ?, ?) "
               "ON CONFLICT (id) DO NOTHING", (event["id"], event["type"], intent_id, now()))


def held_or_returned(db, order_id):
    """Copies of each book of an order back on the shelf, or held for a refund not yet confirmed."""
    return {r["isbn"]: r["returned"] for r in
            db.execute("SELECT isbn, returned FROM order_lines WHERE order_id = ?", (order_id,))}


def refund_by_id(db, refund_id):
    """One refund row."""
    return db.execute("SELECT * FROM refunds WHERE id = ?", (refund_id,)).fetchone()


def refund_made(db, stripe_refund):
    """True when the ledger has a Stripe refund id already."""
    return db.execute("SELECT 1 FROM refunds WHERE stripe_refund = ?", (stripe_refund,)).fetchone() is not None


def refund_recorded(db, request_key):
    """The refund row written for a staff request (pending, succeeded or failed), or None."""
    return db.execute("SELECT * FROM refunds WHERE request_key = ?", (request_key,)).fetchone()


def check_refund(db, order, amount, returned):
    """Raise LedgerError unless `amount` and the returned copies fit what is left of the order.

    A quick answer for the form; the schema's CHECKs decide when two refunds race (reserve_refund)."""
    if order["status"] not in REFUNDABLE:
        raise LedgerError(f"Order {order['reference']} is {order['status'].replace('_', ' ')}; "
                          "only a paid order can be refunded.")
    left = order["amount"] - order["amount_refunded"] - order["refund_pending"]
    if not 0 < amount <= left:
        raise LedgerError("The refund must be more than zero and at most what is left to refund.")
    out = {line["isbn"]: line["quantity"] - line["returned"] for line in
           db.execute("SELECT isbn, quantity, returned FROM order_lines WHERE order_id = ?", (order["id"],))}
    for isbn, quantity in returned.items():
        if isbn not in out or not 0 <= quantity <= out[isbn]:
            raise LedgerError("More copies are marked as returned than were sold and not yet returned.")


def _reserve(db, order_id, amount, returned, request_key, reason, status="pending", stripe_refund=None):
    """Hold `amount` and the returned copies against the order, in the caller's transaction.

    The schema refuses more refunded (or held) than paid, and more copies back than were sold, so two
    refunds submitted at the same moment cannot both pass, whatever Python checked before."""
    order = get(db, order_id=order_id)
    check_refund(db, order, amount, returned)
    try:
        db.execute("UPDATE orders SET refund_pending = refund_pending + ?, updated_at = ? WHERE id = ?",
                   (amount, now(), order_id))
        for isbn, quantity in sorted(returned.items()):
            if quantity > 0:
                db.execute("UPDATE order_lines SET returned = returned + ? WHERE order_id = ? AND isbn = ?",
                           (quantity, order_id, isbn))
    except IntegrityError:
        raise LedgerError("Another refund of this order was made at the same moment; "
                          "what is left to refund has changed. Open the order again.") from None
    back = {isbn: q for isbn, q in returned.items() if q > 0}
    # The tax inside the refund, apportioned per class, so the day's tax refunded is true to the pence.
    shares = tax.apportion(taxes(db, order_id), order["amount"],
                           order["amount_refunded"] + order["refund_pending"], amount)
    return db.execute("INSERT INTO refunds (order_id, stripe_refund, amount, restocked, reason, request_key, status, "
                      "returns, created_at, tax, taxes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                      (order_id, stripe_refund, amount, sum(back.values()), reason, request_key, status,
                       json.dumps(back, sort_keys=True), now(), sum(shares.values()),
                       json.dumps(shares, sort_keys=True))).fetchone()[0]


@retry_conflicts
def reserve_refund(db, order_id, *, amount, returned, request_key, reason=None):
    """Write a pending refund before Stripe is asked to make it; returns its row id. Raises LedgerError."""
    with transaction(db):
        return _reserve(db, order_id, amount, returned, request_key, reason)


def _complete(db, refund, stripe_refund, amount):
    """A pending refund Stripe made: money and returned books move, in the caller's transaction."""
    if not db.execute("UPDATE refunds SET status = 'succeeded', stripe_refund = ?, amount = ? "
                      "WHERE id = ? AND status = 'pending'", (stripe_refund, amount, refund["id"])).rowcount:
        return False
    stamp = now()
    db.execute("UPDATE orders SET refund_pending = refund_pending - ?, amount_refunded = amount_refunded + ?, "
               "updated_at = ?, status = CASE WHEN amount_refunded + ? >= amount THEN 'refunded' "
               "ELSE 'partially_refunded' END WHERE id = ?",
               (refund["amount"], amount, stamp, amount, refund["order_id"]))
    for isbn, quantity in sorted(json.loads(refund["returns"]).items()):
        _move_stock(db, isbn, quantity, "return", order_id=refund["order_id"], refund_id=refund["id"],
                    note="returned with a refund")
    return True


@retry_conflicts
def complete_refund(db, refund_id, *, stripe_refund, amount):
    """Record that Stripe made a pending refund; False if it was settled already."""
    with transaction(db):
        return _complete(db, refund_by_id(db, refund_id), stripe_refund, amount)


@retry_conflicts
def release_refund(db, refund_id):
    """Stripe did not make a pending refund: give back the amount and copies it held, and forget it."""
    with transaction(db):
        refund = db.execute("SELECT * FROM refunds WHERE id = ? AND status = 'pending'", (refund_id,)).fetchone()
        if refund is None:
            return False
        db.execute("UPDATE orders SET refund_pending = refund_pending - ?, updated_at = ? WHERE id = ?",
                   (refund["amount"], now(), refund["order_id"]))
        for isbn, quantity in sorted(json.loads(refund["returns"]).items()):
            db.execute("UPDATE order_lines SET returned = returned - ? WHERE order_id = ? AND isbn = ?",
                       (quantity, refund["order_id"], isbn))
        db.execute("DELETE FROM refunds WHERE id = ?", (refund_id,))
    return True


def pending_refunds(db):
    """Refunds written but not yet confirmed by Stripe, with their order's PaymentIntent, oldest first."""
    return db.execute("SELECT r.*, o.payment_intent, o.reference FROM refunds r JOIN orders o ON o.id = r.order_id "
                      "WHERE r.status = 'pending' ORDER BY r.id").fetchall()


@retry_conflicts
def record_refund(db, order_id, *, stripe_refund, amount, request_key, returned, reason=None):
    """Write a refund Stripe already made, in one go; False if it (or its request) was already recorded."""
    with transaction(db):
        if db.execute("SELECT 1 FROM refunds WHERE stripe_refund = ? OR request_key = ?",
                      (stripe_refund, request_key)).fetchone():
            return False
        refund_id = _reserve(db, order_id, amount, returned, request_key, reason)
        return _complete(db, refund_by_id(db, refund_id), stripe_refund, amount)


@retry_conflicts
def adjust_stock(db, isbn, count, note):
    """Set a book's copies on hand after a count, logging the difference; returns the change."""
    if not note or not note.strip():
        raise LedgerError("Say why the stock changes (for example: shelf count, damaged copy).")
    if count < 0:
        raise LedgerError("Copies on hand cannot be below zero.")
    with transaction(db):
        # Locked until the count is written: a sale at another counter meanwhile would make the change wrong.
        row = db.execute(f"SELECT on_hand FROM stock WHERE isbn = ?{db.for_update}", (isbn,)).fetchone()
        if row is None:
            raise LedgerError("That book is not in the stock list.")
        delta = count - row["on_hand"]
        if delta:
            _move_stock(db, isbn, delta, "adjust", note=note.strip()[:200])
    return delta


def _like(text):
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def find_orders(db, query="", status="", oversold=False, page=1, size=25):
    """Orders matching a reference, ISBN or pi_ id (newest first), one page of them, and how many match."""
    where, args = [], []
    query = query.strip()
    code = isbnlib.normalize(query)
    if query.lower().startswith("pi_"):
        where.append("payment_intent = ?")
        args.append(query)
    elif code and isbnlib.is_valid(code):
        where.append("id IN (SELECT order_id FROM order_lines WHERE isbn = ?)")
        args.append(isbnlib.to_isbn13(code))
    elif query:
        where.append("UPPER(reference) LIKE UPPER(?) ESCAPE '\\'")
        args.append(_like(query))
    if status in STATUSES:
        where.append("status = ?")
        args.append(status)
    if oversold:
        where.append("oversold = 1")
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    total = db.execute(f"SELECT COUNT(*) FROM orders{clause}", args).fetchone()[0]
    rows = db.execute(f"SELECT * FROM orders{clause} ORDER BY id DESC LIMIT ? OFFSET ?",
                      (*args, size, (max(1, page) - 1) * size)).fetchall()
    return rows, total


def stock_list(db, isbns):
    """Stock rows for the given books, keyed by ISBN-13."""
    isbns = list(isbns)
    rows = db.execute(f"SELECT * FROM stock WHERE isbn IN ({','.join('?' * len(isbns))})", isbns) if isbns else []
    return {r["isbn"]: r for r in rows}


def local_day_bounds(first, last=None):
    """Ledger timestamps bounding local days `first` to `last` (inclusive), for range queries."""
    last = last or first

    def at(day):
        return datetime.combine(day, time()).astimezone(UTC).strftime(STAMP)
    return at(first), at(last + timedelta(days=1))


def today():
    """The kiosk's local date."""
    return date.today()


def takings(db, day):
    """Sales, refunds and paid-order count for one local day, in minor units."""
    start, end = local_day_bounds(day)
    sold = db.execute(f"SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM orders WHERE paid_at >= ? AND paid_at < ? "
                      f"AND {SOLD_SQL}", (start, end)).fetchone()
    refunded = db.execute("SELECT COALESCE(SUM(amount), 0) FROM refunds WHERE created_at >= ? AND created_at < ? "
                          "AND status = 'succeeded'", (start, end)).fetchone()[0]
    return {"orders": sold[0], "sales": sold[1], "refunds": refunded, "net": sold[1] - refunded}


def _blank_day():
    return {"orders": 0, "books": 0, "sales": 0, "refunds": 0, "tax": 0, "tax_refunded": 0, "first": None,
            "last": None}


def _finish_day(t):
    t["net"] = t["sales"] - t["refunds"]
    t["net_tax"] = t["tax"] - t["tax_refunded"]
    t["net_ex_tax"] = t["net"] - t["net_tax"]
    return t


def _counter(counters, row):
    """The running takings of the counter (kiosk) that took an order, kept by kiosk id with its name."""
    return counters.setdefault(row["kiosk_id"] or "", (row["counter"] or "", _blank_day()))[1]


def day_report(db, first, last=None):
    """Closing the day (or days `first`..`last`): sales, refunds, net, tax per rate, orders and books, first and
    last sale, in all, per counter and per way to pay (card reader or typed card). Everything in minor units;
    the tax is the tax as sold.

    Sales count on the day they were paid; refunds on the day they were made, against the counter that took
    the order (wherever they were made), their tax apportioned as recorded with each refund."""
    start, end = local_day_bounds(first, last)
    total, counters, methods, rates = _blank_day(), {}, {}, {}
    paid = db.execute(f"SELECT id, kiosk_id, counter, method, amount, tax, paid_at FROM orders WHERE paid_at >= ? "
                      f"AND paid_at < ? AND {SOLD_SQL} ORDER BY paid_at", (start, end)).fetchall()
    books = {r[0]: r[1] for r in db.execute(
        f"SELECT l.order_id, SUM(l.quantity) FROM order_lines l JOIN orders o ON o.id = l.order_id "
        f"WHERE o.paid_at >= ? AND o.paid_at < ? AND {SOLD_SQL.replace('status', 'o.status')} GROUP BY l.order_id",
        (start, end))}
    sold_tax = db.execute(
        f"SELECT t.order_id, t.tax_class, t.rate, t.taxable, t.tax FROM order_taxes t JOIN orders o ON o.id = "
        f"t.order_id WHERE o.paid_at >= ? AND o.paid_at < ? AND {SOLD_SQL.replace('status', 'o.status')}",
        (start, end)).fetchall()
    for order in paid:
        for t in (total, _counter(counters, order),
                  methods.setdefault(order["method"], _blank_day())):
            t["orders"] += 1
            t["books"] += books.get(order["id"], 0)
            t["sales"] += order["amount"]
            t["tax"] += order["tax"]
            t["first"] = t["first"] or order["paid_at"]
            t["last"] = order["paid_at"]
    for row in sold_tax:
        rate = rates.setdefault((row["tax_class"], row["rate"]), {"taxable": 0, "tax": 0, "tax_refunded": 0})
        rate["taxable"] += row["taxable"]
        rate["tax"] += row["tax"]
    refunded = db.execute("SELECT r.amount, r.tax, r.taxes, r.order_id, o.kiosk_id, o.counter, o.method FROM refunds r "
                          "JOIN orders o ON o.id = r.order_id WHERE r.created_at >= ? AND r.created_at < ? "
                          "AND r.status = 'succeeded'",
                          (start, end)).fetchall()
    for refund in refunded:
        for t in (total, _counter(counters, refund),
                  methods.setdefault(refund["method"], _blank_day())):
            t["refunds"] += refund["amount"]
            t["tax_refunded"] += refund["tax"]
        order_rates = {r["tax_class"]: r["rate"] for r in taxes(db, refund["order_id"])}
        for tax_class, amount in json.loads(refund["taxes"]).items():
            key = (tax_class, order_rates.get(tax_class, "?"))
            rates.setdefault(key, {"taxable": 0, "tax": 0, "tax_refunded": 0})["tax_refunded"] += amount
    return {"first_day": first, "last_day": last or first, "total": _finish_day(total),
            "counters": [(name, _finish_day(t)) for name, t in _per_counter(counters)],
            "methods": sorted((name, _finish_day(t)) for name, t in methods.items()),
            "rates": [(tax_class, rate, {**r, "net_tax": r["tax"] - r["tax_refunded"]})
                      for (tax_class, rate), r in sorted(rates.items())]}


def _sales_in(db, first, last, bucket):
    """Paid sales of local days `first`..`last` summed by bucket(local datetime): {bucket: (amount, orders)}.

    The local time is worked out here, not in SQL: SQLite and PostgreSQL spell it differently, and the
    kiosk's time zone is the computer's, not the database server's."""
    start, end = local_day_bounds(first, last)
    found = {}
    for paid_at, amount in db.execute(f"SELECT paid_at, amount FROM orders WHERE paid_at >= ? AND paid_at < ? "
                                      f"AND {SOLD_SQL}", (start, end)):
        key = bucket(parse_stamp(paid_at).astimezone())
        total, count = found.get(key, (0, 0))
        found[key] = (total + amount, count + 1)
    return found


def takings_by_counter(db, day):
    """Today's sales, refunds and paid orders for each counter that sold: [(counter, takings dict)], by name.

    Counted by kiosk id (two kiosks given one name are two counters); refunds count against the counter that took
    the order, wherever they were made."""
    start, end = local_day_bounds(day)
    found = {}
    for kiosk_id, counter, count, amount in db.execute(
            f"SELECT COALESCE(kiosk_id, ''), MAX(COALESCE(counter, '')), COUNT(*), COALESCE(SUM(amount), 0) "
            f"FROM orders WHERE paid_at >= ? AND paid_at < ? AND {SOLD_SQL} GROUP BY COALESCE(kiosk_id, '')",
            (start, end)):
        found[kiosk_id] = (counter, {"orders": count, "sales": amount, "refunds": 0})
    for kiosk_id, counter, amount in db.execute(
            "SELECT COALESCE(o.kiosk_id, ''), MAX(COALESCE(o.counter, '')), COALESCE(SUM(r.amount), 0) FROM refunds r "
            "JOIN orders o ON o.id = r.order_id WHERE r.created_at >= ? AND r.created_at < ? AND "
            "r.status = 'succeeded' GROUP BY COALESCE(o.kiosk_id, '')", (start, end)):
        found.setdefault(kiosk_id, (counter, {"orders": 0, "sales": 0, "refunds": 0}))[1]["refunds"] = amount
    return [(name, {**t, "net": t["sales"] - t["refunds"]}) for name, t in _per_counter(found)]


def sales_by_hour(db, day):
    """Sales of one local day in 24 hourly buckets: [(hour, amount, orders)]."""
    found = _sales_in(db, day, day, lambda moment: moment.hour)
    return [(h, *found.get(h, (0, 0))) for h in range(24)]


def sales_by_day(db, last, days=14):
    """Sales per local day for the `days` days ending on `last`: [(date, amount, orders)]."""
    first = last - timedelta(days=days - 1)
    found = _sales_in(db, first, last, lambda moment: moment.date())
    return [(d, *found.get(d, (0, 0))) for d in (first + timedelta(days=i) for i in range(days))]


def taxes_between(db, first, last):
    """The tax rows (order_taxes) of the orders created on local days `first` to `last`, by order id."""
    start, end = local_day_bounds(first, last)
    found = {}
    for row in db.execute("SELECT t.* FROM order_taxes t JOIN orders o ON o.id = t.order_id "
                          "WHERE o.created_at >= ? AND o.created_at < ?", (start, end)):
        found.setdefault(row["order_id"], []).append(row)
    return found


def orders_between(db, first, last):
    """Orders created on local days `first` to `last`, oldest first, each with its lines."""
    start, end = local_day_bounds(first, last)
    found = db.execute("SELECT * FROM orders WHERE created_at >= ? AND created_at < ? ORDER BY created_at, id",
                       (start, end)).fetchall()
    by_order = {}
    for line in db.execute("SELECT l.* FROM order_lines l JOIN orders o ON o.id = l.order_id "
                           "WHERE o.created_at >= ? AND o.created_at < ? ORDER BY l.title", (start, end)):
        by_order.setdefault(line["order_id"], []).append(line)
    return [(order, by_order.get(order["id"], [])) for order in found]


# --- The catalog edited on the staff screen, and the audit list of staff changes ----------------------------------

ENTRY_FIELDS = ("isbn", "title", "author", "price", "stock", "cover", "description", "category", "tax_class",
                "currency", "hidden")


def catalog_entries(db):
    """Every book added, edited or hidden on the staff screen (applied on top of the catalog file)."""
    return db.execute("SELECT * FROM catalog_entries ORDER BY isbn").fetchall()


def catalog_version(db):
    """A token that changes with every catalog edit, so each counter knows when to load the entries again."""
    return get_meta(db, "catalog_version", "")


def _audit(db, who, area, what, isbn=None):
    """One line of the audit list, in the caller's transaction; `who` is (kiosk_id, counter name)."""
    db.execute("INSERT INTO audit_log (at, kiosk_id, counter, area, what, isbn) VALUES (?, ?, ?, ?, ?, ?)",
               (now(), who[0], who[1], area, what[:2000], isbn))


def record_audit(db, who, area, what):
    """Add a line to the audit list on its own (a change kept outside the ledger, such as the settings file)."""
    with transaction(db):
        _audit(db, who, area, what)


def save_catalog_entries(db, entries, who, what):
    """Write entries (dicts of ENTRY_FIELDS) and their audit line in one transaction; returns the new version.

    Stock is not touched here: sync_stock takes each entry's count as the catalog file's count would be taken,
    once, at whichever counter loads it first (so a crash between the two is made good at the next load)."""
    version = secrets.token_hex(8)
    stamp = now()
    columns = ", ".join(ENTRY_FIELDS)
    updates = ", ".join(f"{f} = excluded.{f}" for f in ENTRY_FIELDS[1:])
    with transaction(db):
        for entry in entries:
            db.execute(f"INSERT INTO catalog_entries ({columns}, updated_at) VALUES ({', '.join('?' * 12)}) "
                       f"ON CONFLICT (isbn) DO UPDATE SET {updates}, updated_at = excluded.updated_at",
                       (*(entry[f] for f in ENTRY_FIELDS), stamp))
        _audit(db, who, "catalog", what, entries[0]["isbn"] if len(entries) == 1 else None)
        set_meta(db, "catalog_version", version)
    return version


@retry_conflicts
def count_shelf(db, isbn, count, note, who):
    """Set a book's copies on hand from the staff screen, with its audit line, in one transaction; returns the
    change. The row stays locked until written, so a sale at another counter meanwhile is never undone."""
    if count < 0:
        raise LedgerError("Copies on hand cannot be below zero.")
    with transaction(db):
        row = db.execute(f"SELECT on_hand FROM stock WHERE isbn = ?{db.for_update}", (isbn,)).fetchone()
        delta = count - (row["on_hand"] if row else 0)
        if delta:
            _move_stock(db, isbn, delta, "adjust", note=note[:200])
            _audit(db, who, "stock", f"{note}: {count} on hand ({delta:+d})", isbn)
    return delta


def audit_list(db, page=1, size=25):
    """The audit list, newest first, one page of it, and how many lines there are."""
    total = db.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]
    rows = db.execute("SELECT * FROM audit_log ORDER BY id DESC LIMIT ? OFFSET ?",
                      (size, (max(1, page) - 1) * size)).fetchall()
    return rows, total
