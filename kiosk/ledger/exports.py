"""The orders of a date range for the CSV export, read as they are written: each order with its lines, taxes and
savings, from four cursors in the same order (created_at, id) merged as they go, never a whole range in memory.
Read-only. Days are local days in `zone`, the shop's time zone (None: the process's own)."""
from contextlib import ExitStack, closing
from itertools import groupby
from operator import itemgetter

from kiosk.core.stamps import local_day_bounds

RANGE = "created_at >= ? AND created_at < ?"
ORDERS_SQL = f"SELECT * FROM orders WHERE {RANGE} ORDER BY created_at, id"
# Each order's own rows, joined to the same range and sorted by their order first, so that the next group of each
# stream is the next order's (or a later order's: an order may have none). Lines by title, as on the order page
# (then by ISBN, so that two books of one title come in the same order every time).
O_RANGE = "o.created_at >= ? AND o.created_at < ?"
DETAILS_SQL = (
    f"SELECT l.* FROM order_lines l JOIN orders o ON o.id = l.order_id WHERE {O_RANGE} "
    f"ORDER BY o.created_at, o.id, l.title, l.isbn",
    f"SELECT t.* FROM order_taxes t JOIN orders o ON o.id = t.order_id WHERE {O_RANGE} "
    f"ORDER BY o.created_at, o.id, t.tax_class",
    f"SELECT d.* FROM order_discounts d JOIN orders o ON o.id = d.order_id WHERE {O_RANGE} "
    f"ORDER BY o.created_at, o.id, d.position")


class _ByOrder:
    """One order's rows at a time from a stream sorted like the orders."""

    def __init__(self, rows):
        self._groups = groupby(rows, key=itemgetter("order_id"))
        self._next = next(self._groups, None)

    def take(self, order_id):
        """The rows of order `order_id` ([] when it has none), which must be the next order of the range."""
        if self._next is None or self._next[0] != order_id:
            return []
        found = list(self._next[1])
        self._next = next(self._groups, None)
        return found


def orders_between(ledger, first, last, zone=None):
    """Orders created on local days `first` to `last`, oldest first, each as (order, lines, taxes, savings): lines
    by title, savings in the order they were applied. A generator on a connection of its own, held while it runs:
    one snapshot, so the four cursors agree; closing the generator gives the connection back."""
    bounds = local_day_bounds(first, last, zone)
    with ledger.reading() as db, ExitStack() as cursors:
        orders = cursors.enter_context(closing(db.stream(ORDERS_SQL, bounds)))
        details = [_ByOrder(cursors.enter_context(closing(db.stream(sql, bounds)))) for sql in DETAILS_SQL]
        for order in orders:
            yield (order, *(rows.take(order["id"]) for rows in details))


def count_between(db, first, last, zone=None):
    """How many orders were created on local days `first` to `last`, counted in the index orders_created_at."""
    return db.execute(f"SELECT COUNT(*) FROM orders WHERE {RANGE}", local_day_bounds(first, last, zone)).fetchone()[0]


def _next_rate(db, pair):
    """The (tax class, rate) after `pair` in order_taxes_rate's order (the first one after None), or None."""
    if pair is None:
        found = db.execute("SELECT tax_class, rate FROM order_taxes ORDER BY tax_class, rate LIMIT 1").fetchone()
    else:
        found = db.execute("SELECT tax_class, rate FROM order_taxes WHERE tax_class = ? AND rate > ? "
                           "ORDER BY rate LIMIT 1", pair).fetchone() or \
            db.execute("SELECT tax_class, rate FROM order_taxes WHERE tax_class > ? ORDER BY tax_class, rate "
                       "LIMIT 1", pair[:1]).fetchone()
    return None if found is None else tuple(found)


def rates_between(db, first, last, zone=None):
    """The (tax class, rate) pairs of the orders created on local days `first` to `last`, sorted: the export's tax
    columns, known before its first row.

    Not a pass over the range's taxes (a year is a million rows): each pair the ledger ever sold, a few, found by
    skipping along the index order_taxes_rate (tax_class, rate, order_id), is looked for among the order ids the
    range spans, which comes down to a seek or two. Ids follow time closely, but not exactly (an adopted order
    keeps its own date), so the range's own dates are checked too."""
    start, end = local_day_bounds(first, last, zone)
    low, high = db.execute(f"SELECT MIN(id), MAX(id) FROM orders WHERE {RANGE}", (start, end)).fetchone()
    found, pair = [], (None if low is None else _next_rate(db, None))
    while pair is not None:
        if db.execute(f"SELECT 1 FROM order_taxes t JOIN orders o ON o.id = t.order_id WHERE t.tax_class = ? AND "
                      f"t.rate = ? AND t.order_id BETWEEN ? AND ? AND {O_RANGE} LIMIT 1",
                      (*pair, low, high, start, end)).fetchone():
            found.append(pair)
        pair = _next_rate(db, pair)
    return sorted(found)
