"""Promotions in the ledger: the ones the shop runs, shared by every counter, and each code's uses.

A code's use is taken by a conditional update in the transaction that writes the order (take_code_use), exactly
as the last copy is held, so two counters cannot both take its last use; a canceled payment gives it back
(release_code_uses), and a payment found paid after all takes it again, past the limit if need be: paid is paid.
The lock order (orders.py): the order's own rows, then promotion rows, then stock rows."""
from decimal import Decimal

from kiosk.core.pricing import Promotion, Saving
from kiosk.core.stamps import now
from kiosk.ledger import audit
from kiosk.ledger.db import IntegrityError, LedgerError, get_meta, set_meta, transaction

FIELDS = ("name", "kind", "scope", "percent", "amount", "buy", "free", "category", "isbns", "min_spend", "starts_at",
          "ends_at", "code", "max_uses", "currency", "enabled")


class CodeUsedUp(LedgerError):
    """The cart's code had no use left when the order was written (another counter took the last one)."""


def _promotion(row, own_uses=0):
    return Promotion(id=row["id"], name=row["name"], kind=row["kind"], scope=row["scope"],
                     percent=Decimal(row["percent"]), amount=row["amount"], buy=row["buy"], free=row["free"],
                     category=row["category"], isbns=frozenset(filter(None, row["isbns"].split(","))),
                     min_spend=row["min_spend"], code=row["code"] or "", max_uses=row["max_uses"],
                     uses=row["uses"] - own_uses)


def running(db, currency, attempt=None, at=None):
    """The promotions running now in `currency` (pricing.Promotion), codes with a use left among them.

    A use held by the order of checkout `attempt` (the customer's own payment under way) is theirs: it still
    counts as left for them, as the copies their order holds do."""
    stamp = at or now()
    rows = db.execute(
        "SELECT p.*, (SELECT COUNT(*) FROM order_discounts d JOIN orders o ON o.id = d.order_id "
        "WHERE d.promotion_id = p.id AND d.use_counted = 1 AND o.attempt = ?) AS own FROM promotions p "
        "WHERE enabled = 1 AND currency = ? AND (starts_at IS NULL OR starts_at <= ?) "
        "AND (ends_at IS NULL OR ends_at > ?) ORDER BY id", (attempt or "", currency.upper(), stamp, stamp))
    found = [_promotion(row, row["own"]) for row in rows]
    return [p for p in found if p.max_uses is None or p.uses < p.max_uses]


def by_code(db, code, currency, at=None):
    """The promotion of a code as a customer typed it: ("ok", Promotion), or ("unknown"|"ended"|"used_up", None)."""
    row = db.execute("SELECT * FROM promotions WHERE code = ?", (code,)).fetchone()
    stamp = at or now()
    if row is None or not row["enabled"] or row["currency"] != currency.upper() or \
            (row["starts_at"] and row["starts_at"] > stamp):
        return "unknown", None  # a code not running yet says no more than a code that does not exist
    if row["ends_at"] and row["ends_at"] <= stamp:
        return "ended", None
    if row["max_uses"] is not None and row["uses"] >= row["max_uses"]:
        return "used_up", None
    return "ok", _promotion(row)


def take_code_use(db, order_id, promotion_id, code):
    """Take one use of a code for an order, in the caller's transaction; CodeUsedUp when none is left."""
    if not db.execute("UPDATE promotions SET uses = uses + 1 WHERE id = ? AND (max_uses IS NULL OR uses < max_uses)",
                      (promotion_id,)).rowcount:
        raise CodeUsedUp("code_used_up", "The code %(given)s has just been used for the last time.", given=code)
    db.execute("UPDATE order_discounts SET use_counted = 1 WHERE order_id = ? AND promotion_id = ?",
               (order_id, promotion_id))


def release_code_uses(db, order_id):
    """A payment that will not be made gives back the code use its order held, in the caller's transaction."""
    for row in db.execute("SELECT promotion_id FROM order_discounts WHERE order_id = ? AND use_counted = 1 "
                          "ORDER BY promotion_id", (order_id,)).fetchall():
        db.execute("UPDATE promotions SET uses = uses - 1 WHERE id = ? AND uses > 0", (row["promotion_id"],))
    db.execute("UPDATE order_discounts SET use_counted = 0 WHERE order_id = ? AND use_counted = 1", (order_id,))


def retake_code_uses(db, order_id):
    """A payment found paid after it was given up takes its code's use again, whatever is left: paid is paid."""
    for row in db.execute("SELECT promotion_id FROM order_discounts WHERE order_id = ? AND use_counted = 0 AND code "
                          "IS NOT NULL AND promotion_id IS NOT NULL ORDER BY promotion_id", (order_id,)).fetchall():
        db.execute("UPDATE promotions SET uses = uses + 1 WHERE id = ?", (row["promotion_id"],))
    db.execute("UPDATE order_discounts SET use_counted = 1 WHERE order_id = ? AND use_counted = 0 AND code IS NOT "
               "NULL AND promotion_id IS NOT NULL", (order_id,))


def savings_as_sold(db, pairs):
    """Savings (pricing.Saving) rebuilt from (promotion id or None for the staff discount, amount) pairs, as a
    payment's metadata lists them, named and coded as the ledger has the promotion now (a promotion this ledger
    does not have is named by its number)."""
    found = []
    for promotion_id, amount in pairs:
        row = get(db, promotion_id) if promotion_id is not None else None
        if row is not None:
            found.append(Saving(row["id"], row["name"], amount, row["code"] or ""))
        else:
            found.append(Saving(None, "" if promotion_id is None else f"Promotion {promotion_id}", amount))
    return found


def order_savings(db, order_id):
    """An order's savings as sold, in the order they were applied."""
    return db.execute("SELECT * FROM order_discounts WHERE order_id = ? ORDER BY position", (order_id,)).fetchall()


def savings_by_order(db, order_ids):
    """{order id: [saving rows]} for a page of orders."""
    found = {}
    ids = list(order_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        marks = ",".join("?" * len(chunk))
        for row in db.execute(f"SELECT * FROM order_discounts WHERE order_id IN ({marks}) ORDER BY order_id, "
                              "position", chunk):
            found.setdefault(row["order_id"], []).append(row)
    return found


def all_promotions(db):
    """Every promotion, running, to come, ended or switched off, newest first."""
    return db.execute("SELECT * FROM promotions ORDER BY id DESC").fetchall()


def get(db, promotion_id):
    """One promotion's row, or None."""
    return db.execute("SELECT * FROM promotions WHERE id = ?", (promotion_id,)).fetchone()


def _refused(exc):
    text = str(exc).lower()
    if "code" in text and ("unique" in text or "duplicate" in text):
        return LedgerError("promotion_code_taken", "Another promotion has that code already.")
    return LedgerError("promotion_refused", "The ledger refused this promotion: check its values.")


def _write(db, values, promotion_id, stamp):
    """Insert a promotion (promotion_id None) or change one, in the caller's transaction; returns its id."""
    if promotion_id is None:
        return db.execute(f"INSERT INTO promotions ({', '.join(FIELDS)}, created_at, updated_at) VALUES "
                          f"({', '.join('?' * len(FIELDS))}, ?, ?) RETURNING id",
                          (*(values[f] for f in FIELDS), stamp, stamp)).fetchone()[0]
    sets = ", ".join(f"{f} = ?" for f in FIELDS)
    db.execute(f"UPDATE promotions SET {sets}, updated_at = ? WHERE id = ?",
               (*(values[f] for f in FIELDS), stamp, promotion_id))
    return promotion_id


def save(db, values, who, promotion_id=None):
    """Add a promotion (or change one) from checked values (dicts of FIELDS), with its audit line; returns its id.

    Raises LedgerError when another promotion has its code."""
    what = f"Promotion {'added' if promotion_id is None else 'changed'}: {values['name']}"
    try:
        with transaction(db):
            promotion_id = _write(db, values, promotion_id, now())
            audit.write(db, who, "settings", what + (f" (code {values['code']})" if values["code"] else ""))
    except IntegrityError as exc:
        raise _refused(exc) from None
    return promotion_id


def save_many(db, rows, who, what):
    """Add or change promotions from a spreadsheet in one transaction, matched by name; returns (added, changed).

    All or nothing: a row the ledger refuses leaves every promotion as it was."""
    stamp, added = now(), 0
    try:
        with transaction(db):
            for values in rows:
                found = db.execute("SELECT id FROM promotions WHERE name = ?", (values["name"],)).fetchone()
                added += found is None
                _write(db, values, found["id"] if found else None, stamp)
            audit.write(db, who, "settings", what)
    except IntegrityError as exc:
        raise _refused(exc) from None
    return added, len(rows) - added


def switch(db, promotion_id, enabled, who):
    """Switch a promotion off (or on again), with its audit line; False when there is no such promotion."""
    with transaction(db):
        row = get(db, promotion_id)
        if row is None:
            return False
        db.execute("UPDATE promotions SET enabled = ?, updated_at = ? WHERE id = ?", (int(enabled), now(),
                                                                                    promotion_id))
        audit.write(db, who, "settings", f"Promotion {'switched on' if enabled else 'switched off'}: {row['name']}")
    return True


# Codes that are not the shop's, at most WRONG_CODES per GUESS_WINDOW seconds at a counter (all its customers
# together, as any program on the computer can make new visits): past that, codes are refused unread until the
# window ends, so nobody finds a code by trying them all.
WRONG_CODES = 20
GUESS_WINDOW = 600


def _guesses(db, kiosk_id, clock):
    start, _, count = (get_meta(db, f"code_guesses:{kiosk_id}", "") or "0,0").partition(",")
    start, count = float(start or 0), int(count or 0)
    if not 0 <= clock - start < GUESS_WINDOW:  # a new window (or a clock set back)
        return clock, 0
    return start, count


def guessing(db, kiosk_id, clock):
    """True when this counter has had too many wrong codes in the current window."""
    return _guesses(db, kiosk_id, clock)[1] >= WRONG_CODES


def count_wrong_code(db, kiosk_id, clock):
    """Count one wrong code at this counter."""
    with transaction(db):
        start, count = _guesses(db, kiosk_id, clock)
        set_meta(db, f"code_guesses:{kiosk_id}", f"{start},{count + 1}")
