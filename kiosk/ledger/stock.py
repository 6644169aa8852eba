"""Stock: copies on hand and held per book, every change logged as a movement; shelf counts with their audit line;
the catalog file's counts taken once. Stock rows are always locked in ISBN order (ledger/orders.py)."""
from kiosk.core.stamps import now
from kiosk.ledger import audit
from kiosk.ledger.db import LedgerError, LedgerUnavailable, retry_conflicts, transaction


def move(db, isbn, delta, reason, *, order_id=None, refund_id=None, note=None):
    """Change copies on hand and log why, in the caller's transaction."""
    db.execute("INSERT INTO stock (isbn, on_hand, catalog_qty) VALUES (?, ?, 0) "
               "ON CONFLICT (isbn) DO UPDATE SET on_hand = stock.on_hand + excluded.on_hand", (isbn, delta))
    db.execute("INSERT INTO stock_movements (isbn, delta, reason, order_id, refund_id, note, created_at) "
               "VALUES (?, ?, ?, ?, ?, ?, ?)", (isbn, delta, reason, order_id, refund_id, note, now()))


def release_holds(db, order_id):
    """Give the shelf back the copies an order holds, in the caller's transaction."""
    for line in db.execute("SELECT isbn, held FROM order_lines WHERE order_id = ? AND held > 0 ORDER BY isbn",
                           (order_id,)).fetchall():
        db.execute("UPDATE stock SET held = held - ? WHERE isbn = ?", (line["held"], line["isbn"]))
    db.execute("UPDATE order_lines SET held = 0 WHERE order_id = ? AND held > 0", (order_id,))


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


def movements(db, order_id):
    """The stock movements an order caused, oldest first."""
    return db.execute("SELECT * FROM stock_movements WHERE order_id = ? ORDER BY id", (order_id,)).fetchall()


def stock_list(db, isbns):
    """Stock rows for the given books, keyed by ISBN-13."""
    isbns = list(isbns)
    rows = db.execute(f"SELECT * FROM stock WHERE isbn IN ({','.join('?' * len(isbns))})", isbns) if isbns else []
    return {r["isbn"]: r for r in rows}


@retry_conflicts
def count_shelf(db, isbn, count, note, who):
    """Set a book's copies on hand after counting the shelf, with why and its audit line, in one transaction; returns
    the change. The only way to set a count, so every one reaches the audit list. The row stays locked until
    written, so a sale at another counter meanwhile is never undone."""
    note = (note or "").strip()
    if not note:
        raise LedgerError("stock_no_reason", "Say why the stock changes (for example: shelf count, damaged copy).")
    if count < 0:
        raise LedgerError("stock_negative", "Copies on hand cannot be below zero.")
    with transaction(db):
        row = db.execute(f"SELECT on_hand FROM stock WHERE isbn = ?{db.for_update}", (isbn,)).fetchone()
        delta = count - (row["on_hand"] if row else 0)
        if delta:
            move(db, isbn, delta, "adjust", note=note[:200])
            audit.write(db, who, "stock", f"{note}: {count} on hand ({delta:+d})", isbn)
    return delta
