"""A year of sales on the staff screens (issue #28): the dashboard's figures are the database's sums over index
ranges, and they are exactly what adding up the ledger's rows gives, in any zone (a whole, half or quarter hour
from UTC, with or without DST); every order search reads an index, finds the orders it should, and counts and
pages no further than it says. Speed itself is measured by bench/, not here."""
import random
import re
from collections import defaultdict
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from kiosk import create_app
from kiosk.core import stamps
from kiosk.core.catalog import load_catalog
from kiosk.core.pricing import Saving
from kiosk.core.tax import TaxLine
from kiosk.ledger import db as dblib
from kiosk.ledger import migrations, orders, reports
from kiosk.ledger import refunds as refund_ledger
from kiosk.ledger import stock as shelves
from tests.support.client import signed_in
from tests.support.ledger import ledger
from tests.support.settings import SAMPLE, make_settings

CATALOG = load_catalog(SAMPLE, "USD")
BOOKS = CATALOG.books[:6]
# Two counters share a name: they are told apart by kiosk id.
COUNTERS = [("kiosk_a", "Front"), ("kiosk_b", "Back"), ("kiosk_c", "Front")]
ZONES = [ZoneInfo(name) for name in ("America/New_York", "Asia/Kolkata", "Asia/Kathmandu", "Australia/Lord_Howe",
                                     "UTC")]
# Nine days around New York's clocks going back (1 November 2026: a 25-hour day).
FIRST, LAST = date(2026, 10, 28), date(2026, 11, 5)
PIN = "2468"


def new_ledger(url):
    """A new ledger at `url` with the sample's stock (close it)."""
    migrations.init_db(url)
    conn = dblib.connect(url)
    shelves.sync_stock(conn, CATALOG.books)
    plenty(conn)
    return conn


@pytest.fixture
def db(ledger_url):
    """A new ledger, on SQLite and on PostgreSQL."""
    with closing(new_ledger(ledger_url)) as conn:
        yield conn


def plenty(db):
    """Copies enough on every shelf that only the orders a test marks are over-sold."""
    db.execute("UPDATE stock SET on_hand = 1000")


def stamp(moment):
    return moment.astimezone(UTC).strftime(stamps.STAMP)


def sell(db, n, book, paid_at=None, who=COUNTERS[0], quantity=1, discount=0, inclusive=False, method="card",
         intent=None):
    """Order `n`, one line of `book`, taxed 8.875%; paid at `paid_at` (a ledger stamp) unless None."""
    paid = book.price * quantity - discount
    tax = round(paid * Decimal("0.08875"))
    row = orders.open_checkout(
        db, attempt=f"a{n}", currency="USD", who=who, inclusive=inclusive, method=method, hold=False,
        lines=[{"isbn": book.isbn13, "title": book.title, "unit_price": book.price, "quantity": quantity,
                "discount": discount, "tax_class": "standard"}],
        taxes=[TaxLine("standard", Decimal("8.875"), paid, tax)],
        savings=[Saving(None, "", discount, reason="Damaged")] if discount else [])
    orders.attach_intent(db, row["id"], intent or f"pi_{n:04d}test")
    return orders.mark_paid(db, row["id"], paid_at=paid_at) if paid_at else orders.get(db, order_id=row["id"])


def refund(db, order, amount, made_at):
    """A refund Stripe made of `amount`, recorded as made at `made_at`."""
    key = f"re_{order['id']}_{amount}_{made_at}"
    refund_ledger.record_refund(db, order["id"], stripe_refund=key, amount=amount, request_key=key, returned={})
    db.execute("UPDATE refunds SET created_at = ? WHERE stripe_refund = ?", (made_at, key))


def edges():
    """Instants the sums must put on the right side: each zone's local midnights, and quarter hours, to the second."""
    for zone in ZONES:
        for n in range((LAST - FIRST).days + 1):
            midnight = datetime.fromisoformat(stamps.local_day_bounds(FIRST + timedelta(days=n), zone=zone)[0])
            yield from (midnight - timedelta(seconds=1), midnight, midnight + timedelta(minutes=14, seconds=59))


def random_sales(db, rng, count=70):
    """`count` orders over the nine days and a little either side: most paid (some at the edges), some left
    pending or canceled, a few of the paid ones refunded in part or in full, later."""
    start = datetime.combine(FIRST - timedelta(days=1), datetime.min.time(), tzinfo=UTC)
    moments = rng.sample(list(edges()), 30) + [start + timedelta(seconds=rng.randrange(11 * 86400))
                                               for _ in range(count - 30)]
    for n, moment in enumerate(moments):
        book = rng.choice(BOOKS)
        quantity = rng.randint(1, 3)
        order = sell(db, n, book, paid_at=None if n % 9 in (4, 7) else stamp(moment), who=rng.choice(COUNTERS),
                     quantity=quantity, discount=rng.choice([0, 0, book.price // 4]), inclusive=rng.random() < 0.3,
                     method=rng.choice(["card", "card_present"]))
        if n % 9 == 7:
            orders.mark_canceled(db, order["id"])
        elif order["status"] == "paid" and rng.random() < 0.25:
            amount = order["amount"] if rng.random() < 0.4 else rng.randint(1, order["amount"] - 1)
            refund(db, order, amount, stamp(moment + timedelta(hours=rng.randint(0, 60))))


# --- what adding up the rows gives ----------------------------------------------------------------------------

def local_date(stamp_, zone):
    return stamps.local_time(stamp_, zone).date()


def rows(db):
    """The sold orders (with their books) and the succeeded refunds (with their order's counter and way to pay)."""
    books = defaultdict(int)
    for line in db.execute("SELECT order_id, quantity FROM order_lines"):
        books[line["order_id"]] += line["quantity"]
    sold = [{**dict(o), "books": books[o["id"]]} for o in db.execute("SELECT * FROM orders")
            if o["status"] in orders.SOLD]
    made = [dict(r) for r in db.execute(
        "SELECT r.amount, r.tax, r.created_at, r.status, o.kiosk_id, o.counter, o.method FROM refunds r "
        "JOIN orders o ON o.id = r.order_id") if r["status"] == "succeeded"]
    return sold, made


def added_up(sold, made):
    """A day's figures, added up in Python from its sold orders and refunds."""
    t = {"orders": len(sold), "books": sum(o["books"] for o in sold), "sales": sum(o["amount"] for o in sold),
         "gross": sum((o["subtotal"] if o["subtotal"] is not None else o["amount"]) + o["discount"] for o in sold),
         "discounts": sum(o["discount"] for o in sold), "tax": sum(o["tax"] for o in sold),
         "tax_added": sum(o["tax"] for o in sold if not o["tax_inclusive"]),
         "refunds": sum(r["amount"] for r in made), "tax_refunded": sum(r["tax"] for r in made),
         "first": min((o["paid_at"] for o in sold), default=None),
         "last": max((o["paid_at"] for o in sold), default=None)}
    return {**t, "net": t["sales"] - t["refunds"], "net_tax": t["tax"] - t["tax_refunded"],
            "net_ex_tax": t["sales"] - t["refunds"] - t["tax"] + t["tax_refunded"]}


def by(items, key):
    found = defaultdict(list)
    for item in items:
        found[key(item)].append(item)
    return found


def expected_day(sold, made, day, zone):
    """day_report's total, counters (label: orders, sales, refunds) and ways to pay, from the rows."""
    sold = [o for o in sold if local_date(o["paid_at"], zone) == day]
    made = [r for r in made if local_date(r["created_at"], zone) == day]
    kiosks = by(sold + made, lambda x: x["kiosk_id"])
    names = defaultdict(set)
    for kiosk, items in kiosks.items():
        names[max(x["counter"] for x in items)].add(kiosk)
    counters = sorted((f"{name} ({kiosk})" if len(names[name]) > 1 else name, added_up(
        [o for o in sold if o["kiosk_id"] == kiosk], [r for r in made if r["kiosk_id"] == kiosk]))
        for name in names for kiosk in names[name])
    methods = sorted((method, added_up([o for o in sold if o["method"] == method],
                                       [r for r in made if r["method"] == method]))
                     for method in by(sold + made, lambda x: x["method"]))
    return added_up(sold, made), counters, methods


def test_the_dashboard_and_close_the_day_are_the_sums_of_the_rows_in_every_zone(db):
    random_sales(db, random.Random(28))
    sold, made = rows(db)
    assert len(sold) > 40 and len(made) > 5  # the random ledger has what the sums are about
    seen = set()
    for zone in ZONES:
        days = reports.sales_by_day(db, LAST, 14, zone)
        assert [d for d, _, _ in days] == [LAST - timedelta(days=13 - i) for i in range(14)]
        for day, amount, count in days:
            that_day = [o for o in sold if local_date(o["paid_at"], zone) == day]
            assert (amount, count) == (sum(o["amount"] for o in that_day), len(that_day)), (zone, day)
        for n in range((LAST - FIRST).days + 1):
            day = FIRST + timedelta(days=n)
            hours = defaultdict(list)
            for o in sold:
                moment = stamps.local_time(o["paid_at"], zone)
                if moment.date() == day:
                    hours[moment.hour].append(o["amount"])
            assert reports.sales_by_hour(db, day, zone) == [(h, sum(hours[h]), len(hours[h])) for h in range(24)]
            total, counters, methods = expected_day(sold, made, day, zone)
            report = reports.day_report(db, day, zone=zone)
            assert report["total"] == total, (zone, day)
            assert report["counters"] == counters and report["methods"] == methods
            assert sum(r["tax"] for _, _, r in report["rates"]) == total["tax"]
            seen.add(total["orders"] > 0 and total["refunds"] > 0)
    assert True in seen  # some day had both sales and refunds to add up


def test_hours_are_the_shops_clock_a_half_or_quarter_hour_from_utc_and_across_dst(db):
    book = BOOKS[0]
    for n, paid in enumerate(["2026-11-02 03:14:59", "2026-11-02 03:15:00", "2026-11-02 03:29:59",
                              "2026-11-02 03:30:00", "2026-11-01 05:30:00", "2026-11-01 06:30:00"]):
        sell(db, n, book, paid_at=paid)
    price = book.price + round(book.price * Decimal("0.08875"))

    def hours(day, zone):
        return {h: n for h, _, n in reports.sales_by_hour(db, day, ZoneInfo(zone)) if n}

    # India, UTC+05:30: 03:29:59 UTC is 08:59:59 and 03:30 is 09:00.
    assert hours(date(2026, 11, 2), "Asia/Kolkata") == {8: 3, 9: 1}
    # Nepal, UTC+05:45: 03:14:59 UTC is 08:59:59 and 03:15 is 09:00.
    assert hours(date(2026, 11, 2), "Asia/Kathmandu") == {8: 1, 9: 3}
    # New York on 1 November: 01:30 EDT and, an hour later, 01:30 EST add up in the one 1 o'clock bucket.
    assert hours(date(2026, 11, 1), "America/New_York") == {1: 2, 22: 4}
    assert reports.sales_by_day(db, date(2026, 11, 2), 2, ZoneInfo("Asia/Kathmandu")) == [
        (date(2026, 11, 1), 2 * price, 2), (date(2026, 11, 2), 4 * price, 4)]


# --- searches ----------------------------------------------------------------------------------------------

def plans(db, run):
    """(plan line, statement) of every statement `run` makes, as SQLite plans it."""
    made = []
    execute = db.execute
    db.execute = lambda sql, params=(): (made.append((sql, params)), execute(sql, params))[1]
    try:
        run()
    finally:
        db.execute = execute
    return [(line["detail"], sql) for sql, params in made for line in execute(f"EXPLAIN QUERY PLAN {sql}", params)]


def full_scans(db, run):
    """The plan lines of the statements `run` makes that read a whole ledger table ("SCAN t" without an index)."""
    return [(line, sql) for line, sql in plans(db, run)
            if re.match(r"SCAN (?!found\b|\(subquery)", line) and "INDEX" not in line]


def found(db, query="", status="", oversold=False):
    return [o["reference"] for o in orders.find_orders(db, query, status, oversold)[0]]


def test_each_search_finds_its_orders_through_an_index(db):
    books = CATALOG.books
    made = [sell(db, n, books[n % 3], paid_at=f"2026-11-0{1 + n % 5} 12:00:00", intent=f"pi_{n:02d}AbC{n}")
            for n in range(12)]
    pending = sell(db, 12, books[4])
    db.execute("UPDATE orders SET oversold = 1 WHERE id IN (?, ?)", (made[2]["id"], made[7]["id"]))
    newest = sorted([*made, pending], key=lambda o: -o["id"])
    # A reference whose code does not start "B" (a "BK..." search reads both ways, tested apart).
    target = next(o["reference"] for o in made[5:] if o["reference"][3] != "B")
    at = next(n for n, o in enumerate(made) if o["reference"] == target)
    code = target[3:7] + target[8:]
    same_start = [o["reference"] for o in newest if o["reference"].startswith(target[:5])]
    searches = {
        target: [target], target.lower(): [target], code: [target], code.lower(): [target],  # exact, any spelling
        f"BK{code}": [target], f" bk-{target[3:7].lower()}-{target[8:].lower()} ": [target],
        target[:5].lower(): same_start, target[3:5]: same_start,  # the start of a reference
        f"pi_{at:02d}AbC{at}": [target],
        "pi_0": [o["reference"] for o in newest if o["payment_intent"].startswith("pi_0")],
        f"PI_{at:02d}abc{at}": [],  # the id's case is its own, only pi_ is read in any case
        books[1].isbn13: [o["reference"] for o in newest if o["id"] in {m["id"] for m in made[1::3]}],
        f"{books[1].isbn13[:3]}-{books[1].isbn13[3:]}": [o["reference"] for o in newest
                                                         if o["id"] in {m["id"] for m in made[1::3]}],
        "%": [], "BK-": [o["reference"] for o in newest], "ZZZZZZZZZ": [], "-": [],
    }
    for query, expected in searches.items():
        assert found(db, query) == expected, query
    assert found(db, status="pending") == [pending["reference"]]
    assert found(db, oversold=True) == [made[7]["reference"], made[2]["reference"]]
    assert found(db, target[:5], status="paid") == [r for r in same_start if r != pending["reference"]]
    assert found(db, books[2].isbn13, oversold=True) == [made[2]["reference"]]
    assert found(db, target, status="pending") == [] and found(db, "pi_07", oversold=True) == [made[7]["reference"]]
    if db.dialect == "sqlite":
        for query, status, oversold in [(q, "", False) for q in searches if q != "BK-"] + [
                ("", "pending", False), ("", "", True), (target[:5], "paid", False), (books[2].isbn13, "", True),
                ("", "paid", True), ("pi_0", "refunded", True)]:
            assert full_scans(db, lambda q=query, s=status, o=oversold: orders.find_orders(db, q, s, o)) == [], query


def test_the_sums_read_index_ranges_not_tables(tmp_path):
    day, zone = date(2026, 11, 2), ZoneInfo("America/New_York")
    with closing(new_ledger(str(tmp_path / "ledger.sqlite3"))) as db:  # EXPLAIN QUERY PLAN is SQLite's
        sell(db, 1, BOOKS[0], paid_at="2026-11-02 12:00:00")

        def sums():
            reports.day_report(db, day, zone=zone)
            reports.sales_by_hour(db, day, zone)
            reports.sales_by_day(db, day, 14, zone)

        # Orders and refunds are read by the day's range of stamps (or by id, from the other side of a join),
        # not by status alone: every sold order of the year is in that range of orders_by_status.
        assert [(line, sql) for line, sql in plans(db, sums) if re.match(r"(SCAN|SEARCH) (orders|o|refunds|r)\b", line)
                and not re.search(r"(paid_at|created_at)>\? AND|PRIMARY KEY", line)] == []
        assert full_scans(db, lambda: (sums(), orders.attention(db))) == []


def found_page(db, query="", status="", page=1):
    return [o["reference"] for o in orders.find_orders(db, query, status, page=page, size=2)[0]]


def test_counts_stop_at_the_limit_and_pages_at_the_newest_it_counted(db, monkeypatch):
    monkeypatch.setattr(orders, "FOUND_LIMIT", 5)
    made = [sell(db, n, BOOKS[n % 2], paid_at="2026-11-02 12:00:00", intent=f"pi_{n:02d}x") for n in range(9)]
    newest = [o["reference"] for o in sorted(made, key=lambda o: -o["id"])]
    rows, total = orders.find_orders(db, size=2)
    assert total == 6 and [o["reference"] for o in rows] == newest[:2]  # 6: more than 5
    rows, total = orders.find_orders(db, page=99, size=2)  # the last page is the one holding the 5th newest
    assert total == 6 and [o["reference"] for o in rows] == newest[4:5]
    assert found_page(db, "pi_0", page=3) == found_page(db, "pi_0", page=4) == newest[4:5]
    # Past SORT_LIMIT matches, the newest orders are read in order and checked: the same orders, the same count.
    isbn = BOOKS[0].isbn13
    sorted_ = [found_page(db, isbn, "paid", page) for page in (1, 2, 3)], found_page(db, "pi_0", page=2)
    assert sorted_[0] == [[r for r in newest if r in {m["reference"] for m in made[::2]}][i:i + 2] for i in (0, 2, 4)]
    # A book alone is paged in order_lines_by_isbn: the same pages, the last one where the counted matches end.
    assert [found_page(db, isbn, page=page) for page in (1, 2, 3, 9)] == [*sorted_[0], sorted_[0][-1]]
    assert orders.find_orders(db, isbn)[1] == 5
    monkeypatch.setattr(orders, "SORT_LIMIT", 2)
    assert ([found_page(db, isbn, "paid", page) for page in (1, 2, 3)], found_page(db, "pi_0", page=2)) == sorted_
    assert orders.find_orders(db, isbn, "paid")[1] == 5 and orders.find_orders(db, "pi_0")[1] == 6


# --- the pages ---------------------------------------------------------------------------------------------

def test_the_dashboard_and_the_order_list_show_the_sums_and_the_capped_count(tmp_path, stripe_server, monkeypatch):
    app = create_app(make_settings(tmp_path, stripe_server, KIOSK_STAFF_PIN=PIN, KIOSK_TIMEZONE="Asia/Kathmandu"),
                     testing=True)
    zone = ZoneInfo("Asia/Kathmandu")
    today = stamps.today(zone)
    with closing(ledger(app)) as conn:
        plenty(conn)
        made = [sell(conn, n, BOOKS[0], paid_at=stamps.now(), who=COUNTERS[n % 3]) for n in range(7)]
        conn.execute("UPDATE orders SET oversold = 1 WHERE id = ?", (made[0]["id"],))
        refund(conn, made[1], 100, stamps.now())
        takings = reports.day_report(conn, today, zone=zone)["total"]
    staff = signed_in(app, PIN)
    page = staff.get("/staff/").get_data(as_text=True)
    assert "Traceback" not in page
    assert re.search(r'id="takings-orders">7<', page) and "1 over-sold order" in page
    assert f'id="takings-net">{app.extensions["kiosk"].money(takings["net"])}<' in page
    assert "Front (kiosk_a)" in page and "Front (kiosk_c)" in page  # two counters of one name, per counter
    hours = re.search(r'<svg class="chart" id="chart-hours".*?</svg>', page, re.S).group(0)
    assert sum(int(v) for v in re.findall(r'data-value="(\d+)"', hours)) == takings["sales"]
    listed = staff.get("/staff/orders").get_data(as_text=True)
    assert "7 orders" in listed and "More than" not in listed
    monkeypatch.setattr(orders, "FOUND_LIMIT", 5)
    listed = staff.get("/staff/orders?page=9").get_data(as_text=True)
    assert "More than 5 orders (the newest 5 are listed)" in listed
    assert listed.count('href="/staff/orders/BK-') == 5
    assert made[0]["reference"] in staff.get("/staff/orders?oversold=1").get_data(as_text=True)
    assert made[3]["reference"] in staff.get(f"/staff/orders?q={made[3]['reference'][3:7].lower()}").get_data(
        as_text=True)
