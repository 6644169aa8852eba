"""The ledger on its own: schema and migrations, every order transition (and its replay), refunds, stock, reports."""
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from kiosk.core import stamps
from kiosk.core.catalog import load_catalog
from kiosk.ledger import db as dblib
from kiosk.ledger import migrations, orders, reports
from kiosk.ledger import refunds as refund_ledger
from kiosk.ledger import stock as shelves
from kiosk.payments.gateway import Intent
from tests.support.settings import SAMPLE

CATALOG = load_catalog(SAMPLE, "USD")
A, B = CATALOG.books[0], CATALOG.books[1]


@pytest.fixture
def db(ledger_url):
    """A new ledger with the sample's stock, on SQLite and on PostgreSQL (every test here runs on both)."""
    migrations.init_db(ledger_url)
    conn = dblib.connect(ledger_url)
    shelves.sync_stock(conn, CATALOG.books)
    yield conn
    conn.close()


def pending(db, *items, intent="pi_test1", attempt="a1"):
    lines = [{"isbn": book.isbn13, "title": book.title, "unit_price": book.price, "quantity": qty}
             for book, qty in items or [(A, 1)]]
    order = orders.open_checkout(db, attempt=attempt, lines=lines, currency="usd", hold=False)
    orders.attach_intent(db, order["id"], intent)
    return orders.get(db, order_id=order["id"])


def intent_for(order, status, **extra):
    return Intent(id=order["payment_intent"], status=status, amount=order["amount"], currency="USD", **extra)


def stock(db, book):
    return db.execute("SELECT on_hand FROM stock WHERE isbn = ?", (book.isbn13,)).fetchone()["on_hand"]


def status(db, order):
    return orders.get(db, order_id=order["id"])["status"]


def test_new_ledger_is_wal_with_foreign_keys_at_the_latest_version(db):
    if db.dialect == "sqlite":
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert dblib.get_meta(db, "schema_version") == str(migrations.SCHEMA_VERSION) == "11"
    db.execute("SELECT request_key, status, returns FROM refunds")  # the columns every migration added
    with pytest.raises(dblib.IntegrityError):
        db.execute("INSERT INTO order_lines (order_id, isbn, title, unit_price, quantity) VALUES (999, 'x', 't', 1, 1)")


def test_migration_from_version_1_keeps_every_order(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript((Path(__file__).parent / "support" / "schema_v1.sql").read_text())
    old.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    old.execute("INSERT INTO orders (reference, status, amount, currency, created_at, updated_at) "
                "VALUES ('BK-OLD1-OLD1', 'paid', 1299, 'USD', '2025-01-01 10:00:00', '2025-01-01 10:00:00')")
    old.commit()
    old.close()
    for _ in range(2):  # a second start changes nothing
        migrations.init_db(path)
    conn = dblib.connect(path)
    assert dblib.get_meta(conn, "schema_version") == str(migrations.SCHEMA_VERSION)
    assert [tuple(r) for r in conn.execute("SELECT reference, amount FROM orders")] == [("BK-OLD1-OLD1", 1299)]
    assert conn.execute("SELECT COUNT(*) FROM webhook_events").fetchone()[0] == 0
    assert "refund_id" in {r[1] for r in conn.execute("PRAGMA table_info(stock_movements)")}


def test_a_migrated_ledger_has_the_tables_and_columns_of_a_new_one(tmp_path):
    old = sqlite3.connect(tmp_path / "old.sqlite3")
    old.executescript((Path(__file__).parent / "support" / "schema_v1.sql").read_text())
    old.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    old.commit()
    old.close()
    migrations.init_db(tmp_path / "old.sqlite3")
    migrations.init_db(tmp_path / "new.sqlite3")

    def shape(path):
        with sqlite3.connect(path) as conn:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            return {t: sorted(r[1] for r in conn.execute(f"PRAGMA table_info({t})")) for t in tables}

    assert shape(tmp_path / "old.sqlite3") == shape(tmp_path / "new.sqlite3")


def test_pending_to_paid_takes_stock_exactly_once(db):
    order = pending(db, (A, 2))
    assert orders.mark_paid(db, order["id"])["status"] == "paid"
    assert orders.mark_paid(db, order["id"]) is None
    assert orders.settle(db, order, intent_for(order, "succeeded")) == "paid"
    assert stock(db, A) == A.stock - 2
    assert db.execute("SELECT COUNT(*) FROM stock_movements WHERE reason = 'sale'").fetchone()[0] == 1


@pytest.mark.parametrize("stripe_status, error, expected", [
    ("succeeded", "", "paid"),
    ("requires_payment_method", "Your card was declined.", "failed"),
    ("requires_payment_method", "", "pending"),
    ("requires_action", "", "pending"),
    ("processing", "", "pending"),
    ("canceled", "", "canceled"),
])
def test_settle_follows_the_intent_and_replays_change_nothing(db, stripe_status, error, expected):
    order = pending(db)
    intent = intent_for(order, stripe_status, last_error=error)
    assert orders.settle(db, order, intent) == expected
    before = dict(orders.get(db, order_id=order["id"]))
    assert orders.settle(db, orders.get(db, order_id=order["id"]), intent) == expected
    after = dict(orders.get(db, order_id=order["id"]))
    assert {k: v for k, v in after.items() if k != "updated_at"} == {k: v for k, v in before.items()
                                                                      if k != "updated_at"}
    assert stock(db, A) == A.stock - (1 if expected == "paid" else 0)


def test_failed_then_paid_clears_the_error(db):
    order = pending(db)
    assert orders.settle(db, order, intent_for(order, "requires_payment_method", last_error="Declined.")) == "failed"
    assert orders.get(db, order_id=order["id"])["last_error"] == "Declined."
    assert orders.settle(db, order, intent_for(order, "succeeded")) == "paid"
    assert orders.get(db, order_id=order["id"])["last_error"] is None


def test_canceled_order_whose_intent_was_paid_after_all_becomes_paid(db):
    order = pending(db)
    assert orders.mark_canceled(db, order["id"], "abandoned")["status"] == "canceled"
    assert orders.mark_canceled(db, order["id"], "again") is None
    assert orders.settle(db, order, intent_for(order, "succeeded")) == "paid"
    assert stock(db, A) == A.stock - 1


@pytest.mark.parametrize("later", ["canceled", "requires_payment_method"])
def test_paid_is_never_undone_by_a_later_intent_state(db, later):
    order = pending(db)
    orders.mark_paid(db, order["id"])
    assert orders.settle(db, order, intent_for(order, later, last_error="late")) == "paid"
    assert orders.mark_failed(db, order["id"], "late") is None


def test_amount_mismatch_is_never_marked_paid(db):
    order = pending(db)
    wrong = Intent(id=order["payment_intent"], status="succeeded", amount=order["amount"] - 1, currency="USD")
    assert orders.settle(db, order, wrong) == "failed"
    assert "mismatch" in orders.get(db, order_id=order["id"])["last_error"]
    assert stock(db, A) == A.stock


def test_settle_refuses_another_orders_intent(db):
    order = pending(db)
    with pytest.raises(ValueError):
        orders.settle(db, order, Intent(id="pi_other", status="succeeded", amount=order["amount"], currency="USD"))


def test_attach_intent_never_replaces_a_recorded_one(db):
    order = pending(db, intent="pi_first")
    assert orders.attach_intent(db, order["id"], "pi_second") is False
    assert orders.get(db, order_id=order["id"])["payment_intent"] == "pi_first"


def test_selling_past_the_shelf_flags_an_over_sell(db):
    shelves.count_shelf(db, A.isbn13, 1, "shelf count", ("tests", "Front"))
    first, second = pending(db, intent="pi_1", attempt="a1"), pending(db, intent="pi_2", attempt="a2")
    orders.mark_paid(db, first["id"])
    orders.mark_paid(db, second["id"])
    assert [orders.get(db, order_id=o["id"])["oversold"] for o in (first, second)] == [0, 1]
    assert stock(db, A) == -1 and shelves.stock_levels(db, [A.isbn13])[A.isbn13] == 0


def test_partial_then_full_refund_with_a_return(db):
    order = pending(db, (A, 2), (B, 1))
    orders.mark_paid(db, order["id"])
    order = orders.get(db, order_id=order["id"])
    refund_ledger.check_refund(db, order, A.price, {A.isbn13: 1})
    assert refund_ledger.record_refund(db, order["id"], stripe_refund="re_1", amount=A.price, request_key="k1",
                                       returned={A.isbn13: 1, B.isbn13: 0}) is True
    # The same request (double tap) or the same Stripe refund is recorded once.
    assert refund_ledger.record_refund(db, order["id"], stripe_refund="re_1", amount=A.price, request_key="k2",
                                       returned={A.isbn13: 1}) is False
    assert refund_ledger.record_refund(db, order["id"], stripe_refund="re_9", amount=A.price, request_key="k1",
                                       returned={A.isbn13: 1}) is False
    order = orders.get(db, order_id=order["id"])
    assert (order["status"], order["amount_refunded"]) == ("partially_refunded", A.price)
    assert stock(db, A) == A.stock - 1 and refund_ledger.returned_quantities(db, order["id"]) == {A.isbn13: 1}
    left = order["amount"] - order["amount_refunded"]
    with pytest.raises(orders.LedgerError):
        refund_ledger.check_refund(db, order, left + 1, {})
    with pytest.raises(orders.LedgerError):
        refund_ledger.check_refund(db, order, left, {A.isbn13: 2})  # only one copy is still out
    refund_ledger.record_refund(db, order["id"], stripe_refund="re_2", amount=left, request_key="k3",
                                returned={B.isbn13: 1})
    order = orders.get(db, order_id=order["id"])
    assert (order["status"], order["amount_refunded"]) == ("refunded", order["amount"])
    with pytest.raises(orders.LedgerError):
        refund_ledger.check_refund(db, order, 1, {})
    assert [r["stripe_refund"] for r in refund_ledger.refunds(db, order["id"])] == ["re_1", "re_2"]


def test_only_a_paid_order_can_be_refunded(db):
    order = pending(db)
    with pytest.raises(orders.LedgerError, match="only a paid order"):
        refund_ledger.check_refund(db, order, 1, {})


def test_stock_adjustment_needs_a_reason_and_logs_the_difference(db):
    with pytest.raises(orders.LedgerError):
        shelves.count_shelf(db, A.isbn13, 2, "  ", ("tests", "Front"))
    with pytest.raises(orders.LedgerError):
        shelves.count_shelf(db, A.isbn13, -1, "lost", ("tests", "Front"))
    assert shelves.count_shelf(db, A.isbn13, A.stock + 3, "delivery", ("tests", "Front")) == 3
    assert shelves.count_shelf(db, A.isbn13, A.stock + 3, "recount", ("tests", "Front")) == 0
    moves = db.execute("SELECT delta, note FROM stock_movements WHERE reason = 'adjust'").fetchall()
    assert [tuple(m) for m in moves] == [(3, "delivery")] and stock(db, A) == A.stock + 3


def test_find_orders_by_reference_isbn_and_intent(db):
    first = pending(db, (A, 1), intent="pi_findme", attempt="a1")
    second = pending(db, (B, 1), intent="pi_other", attempt="a2")
    find = lambda q: [o["reference"] for o in orders.find_orders(db, q)[0]]  # noqa: E731
    assert find(first["reference"][3:7].lower()) == [first["reference"]]
    assert find("pi_findme") == [first["reference"]]
    hyphenated = f"{B.isbn13[:3]}-{B.isbn13[3:]}"
    assert find(hyphenated) == [second["reference"]]
    assert find("") == [second["reference"], first["reference"]]
    assert find("%") == []  # LIKE wildcards are searched as text
    rows, total = orders.find_orders(db, "", page=2, size=1)
    assert total == 2 and [o["reference"] for o in rows] == [first["reference"]]


def local_stamp(day, hour):
    """The ledger (UTC) timestamp of a local day and hour."""
    return datetime(day.year, day.month, day.day, hour, 30).astimezone(UTC).strftime(stamps.STAMP)


def test_takings_and_sales_by_hour_and_day_use_local_time(db):
    today = date(2026, 3, 10)
    for n, (day, hour) in enumerate([(today, 9), (today, 9), (today, 15), (today - timedelta(days=3), 11)]):
        order = pending(db, (A, 1), intent=f"pi_{n}", attempt=f"a{n}")
        orders.mark_paid(db, order["id"], paid_at=local_stamp(day, hour))
    refund_ledger.record_refund(db, 1, stripe_refund="re_1", amount=100, request_key="k", returned={})
    db.execute("UPDATE refunds SET created_at = ?", (local_stamp(today, 16),))
    takings = reports.day_report(db, today)["total"]
    assert {key: takings[key] for key in ("orders", "sales", "gross", "discounts", "refunds", "net")} == {
        "orders": 3, "sales": 3 * A.price, "gross": 3 * A.price, "discounts": 0, "refunds": 100,
        "net": 3 * A.price - 100}
    hours = reports.sales_by_hour(db, today)
    assert len(hours) == 24 and hours[9] == (9, 2 * A.price, 2) and hours[15] == (15, A.price, 1)
    assert sum(n for _, _, n in hours) == 3
    days = reports.sales_by_day(db, today, 14)
    assert len(days) == 14 and days[-1] == (today, 3 * A.price, 3) and \
        days[-4] == (today - timedelta(days=3), A.price, 1)
    assert days[0][0] == today - timedelta(days=13)
