"""What the ledger adds up for staff: today's takings, sales by hour and day, closing the day per counter, way to
pay and promotion, and tax per rate (the export's orders: exports.py). Read-only. Days are local days in `zone`,
the shop's time zone (None: the process's own)."""
import json
from datetime import UTC, datetime, timedelta

from kiosk.core.stamps import local_day_bounds
from kiosk.ledger.orders import SOLD_SQL

# What an order's books came to at their list prices, before its savings and without any tax added on top (the
# subtotal is what they cost after the savings; an order older than the subtotal column was charged its prices).
GROSS_SQL = "COALESCE(subtotal, amount) + discount"
# The figures of the sales one day_report group adds up, each a column of _paid_groups().
SOLD_FIGURES = ("orders", "books", "gross", "discounts", "sales", "tax", "tax_added")
O_SOLD_SQL = SOLD_SQL.replace("status", "o.status")


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


def _blank_day():
    return {"orders": 0, "books": 0, "gross": 0, "discounts": 0, "sales": 0, "refunds": 0, "tax": 0,
            "tax_added": 0, "tax_refunded": 0, "first": None, "last": None}


def _finish_day(t):
    t["net"] = t["sales"] - t["refunds"]
    t["net_tax"] = t["tax"] - t["tax_refunded"]
    t["net_ex_tax"] = t["net"] - t["net_tax"]
    return t


def _paid_groups(db, start, end):
    """The sales paid between two ledger stamps, added up by the database per counter (kiosk id) and way to pay."""
    books = {(r[0], r[1]): r[2] for r in db.execute(
        f"SELECT COALESCE(o.kiosk_id, ''), o.method, SUM(l.quantity) FROM order_lines l JOIN orders o ON "
        f"o.id = l.order_id WHERE o.paid_at >= ? AND o.paid_at < ? AND {O_SOLD_SQL} "
        f"GROUP BY COALESCE(o.kiosk_id, ''), o.method", (start, end))}
    rows = db.execute(
        f"SELECT COALESCE(kiosk_id, '') AS kiosk, MAX(COALESCE(counter, '')) AS counter, method, COUNT(*) AS orders, "
        f"SUM({GROSS_SQL}) AS gross, SUM(discount) AS discounts, SUM(amount) AS sales, SUM(tax) AS tax, "
        f"SUM(CASE WHEN tax_inclusive = 0 THEN tax ELSE 0 END) AS tax_added, MIN(paid_at) AS first, "
        f"MAX(paid_at) AS last FROM orders WHERE paid_at >= ? AND paid_at < ? AND {SOLD_SQL} "
        f"GROUP BY COALESCE(kiosk_id, ''), method", (start, end)).fetchall()
    return [{**dict(row), "books": books.get((row["kiosk"], row["method"]), 0)} for row in rows]


def _refund_groups(db, start, end):
    """The refunds made between two ledger stamps, added up per counter (kiosk id) and way to pay of their order."""
    return db.execute(
        "SELECT COALESCE(o.kiosk_id, '') AS kiosk, MAX(COALESCE(o.counter, '')) AS counter, o.method, "
        "SUM(r.amount) AS refunds, SUM(r.tax) AS tax_refunded FROM refunds r JOIN orders o ON o.id = r.order_id "
        "WHERE r.created_at >= ? AND r.created_at < ? AND r.status = 'succeeded' "
        "GROUP BY COALESCE(o.kiosk_id, ''), o.method", (start, end)).fetchall()


def _rates(db, start, end):
    """{(tax class, rate): taxable, tax and tax refunded} of the sales paid and the refunds made between two stamps."""
    rates = {}
    for tax_class, rate, taxable, tax in db.execute(
            f"SELECT t.tax_class, t.rate, SUM(t.taxable), SUM(t.tax) FROM order_taxes t JOIN orders o ON "
            f"o.id = t.order_id WHERE o.paid_at >= ? AND o.paid_at < ? AND {O_SOLD_SQL} GROUP BY t.tax_class, t.rate",
            (start, end)):
        rates[(tax_class, rate)] = {"taxable": taxable, "tax": tax, "tax_refunded": 0}
    # Each refund keeps its tax per class as apportioned when it was made (JSON): read here, at its order's rate.
    for shares, tax_class, rate in db.execute(
            "SELECT r.taxes, t.tax_class, t.rate FROM refunds r JOIN order_taxes t ON t.order_id = r.order_id "
            "WHERE r.created_at >= ? AND r.created_at < ? AND r.status = 'succeeded'", (start, end)):
        rates.setdefault((tax_class, rate), {"taxable": 0, "tax": 0, "tax_refunded": 0})["tax_refunded"] += \
            json.loads(shares).get(tax_class, 0)
    return rates


def promotions_between(db, start, end):
    """What each promotion saved on the sales paid between two ledger stamps: rows of promotion_id, name and code
    as sold, orders and amount, biggest saving first. The staff discount (no promotion, no name) is one row."""
    return db.execute(
        f"SELECT d.promotion_id, d.name, COALESCE(d.code, '') AS code, COUNT(DISTINCT d.order_id) AS orders, "
        f"SUM(d.amount) AS amount FROM order_discounts d JOIN orders o ON o.id = d.order_id WHERE o.paid_at >= ? "
        f"AND o.paid_at < ? AND {O_SOLD_SQL} GROUP BY d.promotion_id, d.name, COALESCE(d.code, '') "
        f"ORDER BY 5 DESC, 2, 3", (start, end)).fetchall()


def _add(t, group):
    """Add one group's figures (_paid_groups or _refund_groups) to running takings."""
    for key in (*SOLD_FIGURES, "refunds", "tax_refunded"):
        t[key] += group.get(key, 0)
    if group.get("first"):
        t["first"] = min(filter(None, (t["first"], group["first"])), default=None)
        t["last"] = max(filter(None, (t["last"], group["last"])), default=None)


def day_report(db, first, last=None, zone=None):
    """Closing the day (or days `first`..`last`): gross sales (list prices), discounts, sales (charged), refunds,
    net, tax per rate, orders and books, first and last sale, in all, per counter and per way to pay (card reader
    or typed card), and what each promotion saved. Everything in minor units; the tax is the tax as sold;
    `tax_added` is the part of it added on top of the prices (gross - discounts + tax_added = sales).

    Sales count on the day they were paid; refunds on the day they were made, against the counter that took
    the order (wherever they were made), their tax apportioned as recorded with each refund."""
    start, end = local_day_bounds(first, last, zone)
    total, counters, methods = _blank_day(), {}, {}
    for group in [*_paid_groups(db, start, end), *_refund_groups(db, start, end)]:
        counter = counters.setdefault(group["kiosk"], (group["counter"], _blank_day()))[1]
        for t in (total, counter, methods.setdefault(group["method"], _blank_day())):
            _add(t, group)
    return {"first_day": first, "last_day": last or first, "total": _finish_day(total),
            "counters": [(name, _finish_day(t)) for name, t in _per_counter(counters)],
            "methods": sorted((name, _finish_day(t)) for name, t in methods.items()),
            "rates": [(tax_class, rate, {**r, "net_tax": r["tax"] - r["tax_refunded"]})
                      for (tax_class, rate), r in sorted(_rates(db, start, end).items())],
            "promotions": [dict(row) for row in promotions_between(db, start, end)]}


def sales_by_hour(db, day, zone=None):
    """Sales of one local day in 24 hourly buckets by the clock: [(hour, amount, orders)] (on the day clocks go
    back, the repeated hour's sales add up in one bucket; on the day they go forward, the skipped hour has none).

    The database adds them up per UTC quarter hour over an index range (stamps compared as stored), and each
    quarter goes to its local hour here: every zone's offset is a whole number of quarter hours, so a quarter is
    all in one local hour, and the shop's zone is the kiosk's setting, not the database server's."""
    start, end = local_day_bounds(day, zone=zone)
    sums = dict.fromkeys(range(24), (0, 0))
    for hour, quarter, amount, count in db.execute(
            f"SELECT SUBSTR(paid_at, 1, 13), CAST(SUBSTR(paid_at, 15, 2) AS INTEGER) / 15, SUM(amount), COUNT(*) "
            f"FROM orders WHERE paid_at >= ? AND paid_at < ? AND {SOLD_SQL} GROUP BY 1, 2", (start, end)):
        local = datetime.fromisoformat(f"{hour}:{quarter * 15:02d}").replace(tzinfo=UTC).astimezone(zone).hour
        sums[local] = (sums[local][0] + amount, sums[local][1] + count)
    return [(h, *sums[h]) for h in range(24)]


def sales_by_day(db, last, days=14, zone=None):
    """Sales per local day for the `days` days ending on `last`: [(date, amount, orders)].

    One index range per day, added up as it is read, with nothing to sort or group (one statement of them all
    costs PostgreSQL more: it plans parallel workers, slower to start than the sums take)."""
    dates = [last - timedelta(days=days - 1 - i) for i in range(days)]
    return [(d, *db.execute(f"SELECT COALESCE(SUM(amount), 0), COUNT(*) FROM orders WHERE paid_at >= ? AND "
                            f"paid_at < ? AND {SOLD_SQL}", local_day_bounds(d, zone=zone)).fetchone()) for d in dates]
