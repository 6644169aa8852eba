"""What the ledger adds up for staff: today's takings, sales by hour and day, closing the day per counter and way to
pay, tax per rate, and orders between dates for the export. Read-only. Days are local days in `zone`, the shop's
time zone (None: the process's own)."""
import json
from datetime import timedelta

from kiosk.core.stamps import local_day_bounds, local_time
from kiosk.ledger.orders import SOLD_SQL, taxes


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


def takings(db, day, zone=None):
    """Sales, refunds and paid-order count for one local day, in minor units."""
    start, end = local_day_bounds(day, zone=zone)
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


def day_report(db, first, last=None, zone=None):
    """Closing the day (or days `first`..`last`): sales, refunds, net, tax per rate, orders and books, first and
    last sale, in all, per counter and per way to pay (card reader or typed card). Everything in minor units;
    the tax is the tax as sold.

    Sales count on the day they were paid; refunds on the day they were made, against the counter that took
    the order (wherever they were made), their tax apportioned as recorded with each refund."""
    start, end = local_day_bounds(first, last, zone)
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


def _sales_in(db, first, last, bucket, zone):
    """Paid sales of local days `first`..`last` summed by bucket(local datetime): {bucket: (amount, orders)}.

    The local time is worked out here, not in SQL: SQLite and PostgreSQL spell it differently, and the
    shop's time zone is the kiosk's setting, not the database server's."""
    start, end = local_day_bounds(first, last, zone)
    found = {}
    for paid_at, amount in db.execute(f"SELECT paid_at, amount FROM orders WHERE paid_at >= ? AND paid_at < ? "
                                      f"AND {SOLD_SQL}", (start, end)):
        key = bucket(local_time(paid_at, zone))
        total, count = found.get(key, (0, 0))
        found[key] = (total + amount, count + 1)
    return found


def takings_by_counter(db, day, zone=None):
    """Today's sales, refunds and paid orders for each counter that sold: [(counter, takings dict)], by name.

    Counted by kiosk id (two kiosks given one name are two counters); refunds count against the counter that took
    the order, wherever they were made."""
    start, end = local_day_bounds(day, zone=zone)
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


def sales_by_hour(db, day, zone=None):
    """Sales of one local day in 24 hourly buckets by the clock: [(hour, amount, orders)] (on the day clocks go
    back, the repeated hour's sales add up in one bucket; on the day they go forward, the skipped hour has none)."""
    found = _sales_in(db, day, day, lambda moment: moment.hour, zone)
    return [(h, *found.get(h, (0, 0))) for h in range(24)]


def sales_by_day(db, last, days=14, zone=None):
    """Sales per local day for the `days` days ending on `last`: [(date, amount, orders)]."""
    first = last - timedelta(days=days - 1)
    found = _sales_in(db, first, last, lambda moment: moment.date(), zone)
    return [(d, *found.get(d, (0, 0))) for d in (first + timedelta(days=i) for i in range(days))]


def taxes_between(db, first, last, zone=None):
    """The tax rows (order_taxes) of the orders created on local days `first` to `last`, by order id."""
    start, end = local_day_bounds(first, last, zone)
    found = {}
    for row in db.execute("SELECT t.* FROM order_taxes t JOIN orders o ON o.id = t.order_id "
                          "WHERE o.created_at >= ? AND o.created_at < ?", (start, end)):
        found.setdefault(row["order_id"], []).append(row)
    return found


def orders_between(db, first, last, zone=None):
    """Orders created on local days `first` to `last`, oldest first, each with its lines."""
    start, end = local_day_bounds(first, last, zone)
    found = db.execute("SELECT * FROM orders WHERE created_at >= ? AND created_at < ? ORDER BY created_at, id",
                       (start, end)).fetchall()
    by_order = {}
    for line in db.execute("SELECT l.* FROM order_lines l JOIN orders o ON o.id = l.order_id "
                           "WHERE o.created_at >= ? AND o.created_at < ? ORDER BY l.title", (start, end)):
        by_order.setdefault(line["order_id"], []).append(line)
    return [(order, by_order.get(order["id"], [])) for order in found]
