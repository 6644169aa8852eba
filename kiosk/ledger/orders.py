"""Orders: their lifecycle from pending to paid, failed or canceled, the copies they hold, and what they are looked
up by. Every state change is one transaction, and every one is idempotent.

One lock order everywhere, so two counters never deadlock on PostgreSQL: an order's own rows first (orders,
order_lines, order_discounts, refunds), then the promotion rows of its code, then stock rows in ISBN order. Holds,
sales, releases, refunds' restocking, shelf counts and the catalog's counts all follow it; each function that is one
transaction runs again (retry_conflicts) if the database still breaks one off."""
import secrets
from typing import NamedTuple

from kiosk.core import isbn as isbnlib
from kiosk.core import tax
from kiosk.core.stamps import now
from kiosk.ledger import promotions, stock
from kiosk.ledger.db import LedgerError, retry_conflicts, set_meta, transaction
from kiosk.ledger.schema import STATUSES

OPEN = ("pending", "failed")
SOLD = ("paid", "partially_refunded", "refunded")
REFUNDABLE = ("paid", "partially_refunded")
SOLD_SQL = "status IN ('paid', 'partially_refunded', 'refunded')"


# An order reference is BK- and a code of eight characters, none a person could misread (no 0/O, 1/I).
CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
CODE_LENGTH = 8
# The order search counts this many matches at most, and pages through the newest this many; it sorts this many
# found by an index at most for a page, and past that reads the newest orders in order, checking each.
FOUND_LIMIT = 1000
SORT_LIMIT = 10_000


def new_reference():
    """A short order reference a person can read out: BK-7Q4M-2XWD."""
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
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
    return db.execute("SELECT isbn, title, unit_price, quantity, unit_price * quantity AS list_total, discount, "
                      "paid, paid AS total, tax_class, tax_rate FROM order_lines WHERE order_id = ? ORDER BY title",
                      (order_id,)).fetchall()


def taxes(db, order_id):
    """The order's tax per class, as sold: rows of tax_class, rate (text), taxable and tax."""
    return db.execute("SELECT tax_class, rate, taxable, tax FROM order_taxes WHERE order_id = ? ORDER BY tax_class",
                      (order_id,)).fetchall()


class OutOfStock(LedgerError):
    """Another counter (or customer) holds or sold the last copies; `available` is what is left of `isbn`."""

    def __init__(self, isbn, title, available):
        super().__init__("out_of_stock", "%(title)s: %(available)s left", title=title, available=available)
        self.isbn, self.title, self.available = isbn, title, available


def open_checkout(db, *, attempt, lines, currency, who=(None, None), taxes=(), inclusive=False, method="card",
                  hold=True, savings=()):
    """A customer pressed Pay: the pending order of a priced cart (its lines with their discounts, its savings
    (pricing.Saving) and tax.TaxLine per class) at the counter `who` (kiosk id, name), its copies held on the
    shelf and its code's use taken in the same transaction, each by a conditional update, so two counters cannot
    both hold the last copy or take a code's last use: OutOfStock or promotions.CodeUsedUp (and nothing written)
    if they cannot be."""
    return _create(db, attempt=attempt, priced_lines=lines, currency=currency, kiosk_id=who[0], counter=who[1],
                   tax_lines=taxes, inclusive=inclusive, method=method, hold=hold, savings=savings)


def adopt_paid(db, *, intent, lines, currency, amount, reference, created_at, note, who, taxes=(), inclusive=False,
               method="card", savings=()):
    """A payment Stripe took that the ledger never heard of, rebuilt (reconcile.adopt): a pending order for its
    intent and amount, holding nothing, for settle() to mark paid (which counts its code's use)."""
    return _create(db, attempt=None, priced_lines=lines, currency=currency, intent=intent, amount=amount,
                   adopted=True, reference=reference, created_at=created_at, note=note, kiosk_id=who[0],
                   counter=who[1], tax_lines=taxes, inclusive=inclusive, method=method, savings=savings)


@retry_conflicts
def _create(db, *, attempt, priced_lines, currency, reference=None, intent=None, amount=None, adopted=False,
            created_at=None, note=None, kiosk_id=None, counter=None, hold=False, tax_lines=(), inclusive=False,
            method="card", savings=()):
    """Write a pending order, its lines, savings and tax per class (tax.TaxLine), holding its copies and taking its
    code's use if `hold`; returns the order row. The named constructors above say which order this is."""
    discount = sum(line.get("discount", 0) for line in priced_lines)
    subtotal = sum(line["unit_price"] * line["quantity"] for line in priced_lines) - discount
    total_tax = sum(t.tax for t in tax_lines)
    if amount is None:
        amount = subtotal + (0 if inclusive else total_tax)
    rates = {t.tax_class: tax.percent(t.rate) for t in tax_lines}
    stamp = now()
    with transaction(db):
        order_id = db.execute(
            "INSERT INTO orders (reference, attempt, payment_intent, status, amount, currency, adopted, note,"
            " created_at, updated_at, kiosk_id, counter, subtotal, tax, tax_inclusive, method, discount) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (reference or new_reference(), attempt, intent, "pending", amount, currency.upper(), int(adopted), note,
             created_at or stamp, stamp, kiosk_id, counter, subtotal, total_tax, int(inclusive),
             method, discount)).fetchone()[0]
        for t in tax_lines:
            db.execute("INSERT INTO order_taxes (order_id, tax_class, rate, taxable, tax) VALUES (?, ?, ?, ?, ?)",
                       (order_id, t.tax_class, tax.percent(t.rate), t.taxable, t.tax))
        for ln in priced_lines:
            tax_class = ln.get("tax_class") if tax_lines else None
            off = ln.get("discount", 0)
            db.execute("INSERT INTO order_lines (order_id, isbn, title, unit_price, quantity, held, tax_class, "
                       "tax_rate, discount, paid) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (order_id, ln["isbn"], ln["title"], ln["unit_price"], ln["quantity"],
                        ln["quantity"] if hold else 0, tax_class, rates.get(tax_class), off,
                        ln["unit_price"] * ln["quantity"] - off))
        for position, saving in enumerate(savings, 1):
            db.execute("INSERT INTO order_discounts (order_id, position, promotion_id, name, code, amount, reason) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", (order_id, position, saving.promotion_id, saving.name,
                                                         saving.code or None, saving.amount, saving.reason or None))
            if saving.code and hold:
                promotions.take_code_use(db, order_id, saving.promotion_id, saving.code)
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


@retry_conflicts
def mark_paid(db, order_id, paid_at=None):
    """pending/failed/canceled -> paid, taking stock once (a hold becomes the sale); the paid order's row, or None
    when it was paid already."""
    with transaction(db):
        if not _transition(db, order_id, "paid", ("pending", "failed", "canceled"), paid_at=paid_at or now(),
                           last_error=None):
            return None
        promotions.retake_code_uses(db, order_id)
        oversold = False
        for line in db.execute("SELECT isbn, quantity, held FROM order_lines WHERE order_id = ? ORDER BY isbn",
                               (order_id,)).fetchall():
            row = db.execute(f"SELECT on_hand, held FROM stock WHERE isbn = ?{db.for_update}",
                             (line["isbn"],)).fetchone()
            # Paid is paid: the sale stands even if the shelf is empty, but staff are told.
            oversold = oversold or (row["on_hand"] if row else 0) < line["quantity"]
            stock.move(db, line["isbn"], -line["quantity"], "sale", order_id=order_id)
        stock.release_holds(db, order_id)
        if oversold:
            db.execute("UPDATE orders SET oversold = 1 WHERE id = ?", (order_id,))
    return get(db, order_id=order_id)


@retry_conflicts
def mark_failed(db, order_id, message, release=False):
    """pending -> failed with Stripe's message; the customer may still retry the same intent (and keeps the
    copies held), unless `release`. The failed order's row, or None when it was no longer open."""
    with transaction(db):
        if not _transition(db, order_id, "failed", ("pending", "failed"), last_error=message):
            return None
        if release:
            promotions.release_code_uses(db, order_id)
            stock.release_holds(db, order_id)
    return get(db, order_id=order_id)


@retry_conflicts
def mark_canceled(db, order_id, note=None):
    """pending/failed -> canceled, giving back the copies it held; the canceled order's row, or None when it was no
    longer open."""
    with transaction(db):
        if not _transition(db, order_id, "canceled", OPEN, last_error=note):
            return None
        promotions.release_code_uses(db, order_id)
        stock.release_holds(db, order_id)
    return get(db, order_id=order_id)


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


def ping(db):
    """Raise LedgerUnavailable unless the ledger's database answers."""
    db.execute("SELECT 1")


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


def webhook_seen(db, event_id):
    """True when this webhook event was handled already."""
    return db.execute("SELECT 1 FROM webhook_events WHERE id = ?", (event_id,)).fetchone() is not None


def remember_webhook(db, event, intent_id):
    """Note a handled webhook event, so a replay changes nothing."""
    db.execute("INSERT INTO webhook_events (id, type, payment_intent, received_at) VALUES (?, ?, ?, ?) "
               "ON CONFLICT (id) DO NOTHING", (event["id"], event["type"], intent_id, now()))


class Condition(NamedTuple):
    """One condition of the order search, spelled twice: `lead` reads an index range (its values `lead_args`), and
    `check` only filters orders found otherwise (`check_args`), so that the database reads the index meant.
    `matches`, if given, lists one row per matching order more cheaply than the lead can (with the lead's values);
    `newest`, if given, lists the matching orders' ids newest first from an index alone (with the lead's values)."""

    lead: str
    lead_args: list
    check: str
    check_args: list
    matches: str = ""
    newest: str = ""

    def __or__(self, other):
        return Condition(f"({self.lead}) OR ({other.lead})", self.lead_args + other.lead_args,
                         f"({self.check}) OR ({other.check})", self.check_args + other.check_args)

    def checked(self):
        """This condition as a check only, even where it comes first."""
        return Condition(self.check, self.check_args, self.check, self.check_args)


NOTHING = Condition("1 = 0", [], "1 = 0", [])  # what no order matches


def _starting(column, start, last_char):
    """`column` starts with `start`: led, one range of its index, from `start` to `start` followed by the last
    character its values use, the SUBSTR keeping it exact whatever the database's collation orders between."""
    check = f"SUBSTR({column}, 1, {len(start)}) = ?"
    return Condition(f"{column} >= ? AND {column} <= ? AND {check}", [start, start + last_char * 40, start],
                     check, [start])


def _reference(query):
    """The orders whose reference is, or starts as, what staff typed: in any case, with or without its dashes and
    its BK- ("bk-7q4m-2xwd", "7Q4M2XWD", "7q4"); None when that is every order.

    Text starting "BK" without the dash may be the prefix or the code's own start (BK-BK...): both are looked up."""
    typed = query.upper()
    text = "".join(c for c in typed if c.isalnum())
    codes = {text[2:]} if text.startswith("BK") else set()
    if not typed.startswith("BK-"):
        codes.add(text)
    if "" in codes:  # "BK" is every order; punctuation alone ("%", "-") none
        return None if text else NOTHING
    found = None
    for code in sorted(c for c in codes if len(c) <= CODE_LENGTH):
        reference = f"BK-{code[:4]}-{code[4:]}".rstrip("-")
        one = Condition("reference = ?", [reference], "reference = ?", [reference]) if len(code) == CODE_LENGTH \
            else _starting("reference", reference, CODE_ALPHABET[-1])
        found = one if found is None else found | one
    return found or NOTHING


def _search(query):
    """The Condition of what the order search box holds: a PaymentIntent id or its start, an ISBN, or a reference;
    None when it is empty."""
    code = isbnlib.normalize(query)
    if query.lower().startswith("pi_"):
        return _starting("payment_intent", "pi_" + query[3:], "z")
    if code and isbnlib.is_valid(code):
        isbn = [isbnlib.to_isbn13(code)]
        # An order has one line per ISBN: its lines are its orders, counted without the orders.
        return Condition("id IN (SELECT order_id FROM order_lines WHERE isbn = ?)", isbn,
                         "EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = orders.id AND l.isbn = ?)", isbn,
                         "SELECT 1 FROM order_lines WHERE isbn = ?",
                         "SELECT order_id FROM order_lines WHERE isbn = ? ORDER BY order_id DESC")
    return _reference(query) if query else None


def _where(conditions):
    """WHERE clause and values: the first condition leads (reads its index), the others only check what it found.

    SQLite keeps no statistics to choose by: given two indexes, it would rather read every paid order by status
    than the few of a reference."""
    if not conditions:
        return "", []
    first, *others = conditions
    return (" WHERE " + " AND ".join(f"({sql})" for sql in [first.lead, *(c.check for c in others)]),
            first.lead_args + [v for c in others for v in c.check_args])


def _count(db, conditions, most, order=""):
    """How many orders match, counting `most` + 1 at most (found in `order`, if given)."""
    clause, args = _where(conditions)
    return db.execute(f"SELECT COUNT(*) FROM (SELECT 1 FROM orders{clause}{order} LIMIT ?) AS found",
                      (*args, most + 1)).fetchone()[0]


def _count_matches(db, search, most):
    """How many orders match the search alone, counting `most` + 1 at most."""
    matches = search.matches or f"SELECT 1 FROM orders WHERE {search.lead}"
    return db.execute(f"SELECT COUNT(*) FROM ({matches} LIMIT ?) AS found",
                      (*search.lead_args, most + 1)).fetchone()[0]


def find_orders(db, query="", status="", oversold=False, page=1, size=25):
    """Orders matching a reference, ISBN or pi_ id (newest first), one page of them, and how many match, counted
    up to FOUND_LIMIT + 1: more than FOUND_LIMIT are not counted, and the pages stop at the FOUND_LIMIT newest.

    Each condition reads an index: the reference's or the PaymentIntent's (exact, or a range for the start of it),
    order_lines_by_isbn, orders_oversold or orders_by_status."""
    search = _search(query.strip())
    if search is NOTHING:  # nothing a reference, ISBN or pi_ id could be
        return [], 0
    others = [c for c, on in ((Condition("oversold = 1", [], "oversold + 0 = 1", []), oversold),
                              (Condition("status = ?", [status], "status || '' = ?", [status]), status in STATUSES))
              if on]
    newest = " ORDER BY id DESC"
    if search and search.newest and not others:
        # A book's orders alone: counted and paged in order_lines_by_isbn, the page's orders then read by id.
        total = _count_matches(db, search, FOUND_LIMIT)
        page = _last_page(page, total, size)
        rows = db.execute(f"SELECT * FROM orders WHERE id IN ({search.newest} LIMIT ? OFFSET ?){newest}",
                          (*search.lead_args, *_window(page, size))).fetchall()
        return rows, total
    if search and _count_matches(db, search, SORT_LIMIT) > SORT_LIMIT:
        # Too many to sort for a page ("pi_", "7"): the newest orders are read in order (by the other conditions'
        # index, or by id) and each checked against the search; with this many matches, few are read in vain.
        conditions, order = [*others, search.checked()], newest
    else:
        conditions, order = [search, *others] if search else others, ""
    total = _count(db, conditions, FOUND_LIMIT, order)
    clause, args = _where(conditions)
    page = _last_page(page, total, size)
    rows = db.execute(f"SELECT * FROM orders{clause}{newest} LIMIT ? OFFSET ?",
                      (*args, *_window(page, size))).fetchall()
    return rows, total


def _last_page(page, total, size):
    """The page asked for, within the pages `total` matches (counted up to FOUND_LIMIT + 1) fill."""
    return min(max(1, page), max(1, -(-min(total, FOUND_LIMIT) // size)))


def _window(page, size):
    """LIMIT and OFFSET of a page, the pages stopping at the newest FOUND_LIMIT matches."""
    return min(size, FOUND_LIMIT - (page - 1) * size), (page - 1) * size
