"""The orders export streams (issue #28): the same bytes as the CSV built whole in memory before, on SQLite and
PostgreSQL, in constant memory, its first chunk sent before the rows are read, at most two exports at once, and the
save into the data folder run in the background with its progress."""
import csv
import errno
import io
import re
import threading
import tracemalloc
from contextlib import closing
from datetime import timedelta
from decimal import Decimal

import pytest

from kiosk import create_app
from kiosk.admin.exports import Serving, serving
from kiosk.core import stamps
from kiosk.core.i18n import gettext as _
from kiosk.core.pricing import Saving
from kiosk.core.tax import TaxLine
from kiosk.ledger import exports, orders
from kiosk.web import words
from kiosk.web.staff import export
from kiosk.web.staff.base import localtime_filter, major
from kiosk.web.state import current_kiosk
from tests.support.client import KioskClient, signed_in
from tests.support.ledger import ledger
from tests.support.promotions import FAIR10, add_promotion
from tests.support.settings import make_settings

PIN = "2468"


def make_app(tmp_path, ledger_url):
    database = {"KIOSK_DATABASE_URL": ledger_url} if ledger_url.startswith("postgres") else {}
    return create_app(make_settings(tmp_path, KIOSK_STAFF_PIN=PIN, KIOSK_TAX_RATES="standard:8.875,reduced:5",
                                    **database), testing=True)


def days_ago(n):
    return stamps.today() - timedelta(days=n)


def range_of(first, last):
    return {"from": first.isoformat(), "to": last.isoformat()}


def pool(app):
    """The ledger's pool: how many connections are out of it."""
    return app.extensions["kiosk"].ledger.engine.pool


# --- the CSV as the kiosk built it before (all in memory), kept as the reference for the bytes -------------------

def old_orders_between(db, first, last, zone):
    start, end = stamps.local_day_bounds(first, last, zone)
    found = db.execute("SELECT * FROM orders WHERE created_at >= ? AND created_at < ? ORDER BY created_at, id",
                       (start, end)).fetchall()
    by_order, taxes, savings = {}, {}, {}
    for line in db.execute("SELECT l.* FROM order_lines l JOIN orders o ON o.id = l.order_id "
                           "WHERE o.created_at >= ? AND o.created_at < ? ORDER BY l.title", (start, end)):
        by_order.setdefault(line["order_id"], []).append(line)
    for row in db.execute("SELECT t.* FROM order_taxes t JOIN orders o ON o.id = t.order_id "
                          "WHERE o.created_at >= ? AND o.created_at < ?", (start, end)):
        taxes.setdefault(row["order_id"], []).append(row)
    for row in db.execute("SELECT d.* FROM order_discounts d JOIN orders o ON o.id = d.order_id "
                          "WHERE o.created_at >= ? AND o.created_at < ? ORDER BY d.order_id, d.position", (start, end)):
        savings.setdefault(row["order_id"], []).append(row)
    return [(order, by_order.get(order["id"], [])) for order in found], taxes, savings


def old_item(line, currency):
    return _("%(title)s (%(isbn)s) x%(quantity)s: list %(list)s, discount %(discount)s, paid %(paid)s",
             title=line["title"], isbn=line["isbn"], quantity=line["quantity"],
             list=major(line["unit_price"] * line["quantity"], currency), discount=major(line["discount"], currency),
             paid=major(line["paid"], currency))


def old_orders_csv(rows, taxes, savings):
    rates = sorted({(t["tax_class"], t["rate"]) for found in taxes.values() for t in found})
    label = current_kiosk().settings.tax_label
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    writer.writerow(tuple(str(c) for c in export.CSV_COLUMNS) + ((_("Subtotal"), _("Tax"), _("Total")) if rates else ())
                    + tuple(f"{label} {tax_class} {rate}%" for tax_class, rate in rates))
    for order, lines in rows:
        by_rate = {(t["tax_class"], t["rate"]): t["tax"] for t in taxes.get(order["id"], [])}
        cur = order["currency"]
        tax_cells = [major(order["subtotal"] or 0, cur), major(order["tax"], cur), major(order["amount"], cur)] \
            if rates else []
        tax_cells += [major(by_rate[key], cur) if key in by_rate else "" for key in rates]
        gross = (order["amount"] if order["subtotal"] is None else order["subtotal"]) + order["discount"]
        writer.writerow([export.safe_cell(v) for v in (
            order["reference"], localtime_filter(order["created_at"]), localtime_filter(order["paid_at"]),
            words.status(order["status"]), major(order["amount"], cur), major(order["amount_refunded"], cur), cur,
            sum(line["quantity"] for line in lines), "; ".join(old_item(line, cur) for line in lines),
            order["payment_intent"] or "", _("yes") if order["oversold"] else "", _("yes") if order["adopted"] else "",
            order["note"] or "", order["counter"] or "", words.paid_by(order["method"]), major(gross, cur),
            major(order["discount"], cur), "; ".join(export.saving_label(s) for s in savings.get(order["id"], [])),
            *tax_cells)])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def old_export(app, first, last):
    with app.test_request_context("/staff/orders"), closing(ledger(app)) as db:
        return old_orders_csv(*old_orders_between(db, first, last, current_kiosk().settings.zone))


# --- a shop's few days, every kind of row ---------------------------------------------------------------------

def line(isbn, title, price, quantity, discount=0, tax_class="standard"):
    return {"isbn": isbn, "title": title, "unit_price": price, "quantity": quantity, "discount": discount,
            "tax_class": tax_class}


def sell(db, attempt, lines, taxes=(), savings=(), pay=True, **kw):
    row = orders.open_checkout(db, attempt=attempt, lines=lines, currency="USD", taxes=taxes, savings=savings,
                               hold=False, **kw)
    return orders.mark_paid(db, row["id"]) if pay else row


def backdate(db, order, day, seconds=3600):
    start = stamps.local_day_bounds(day)[0]
    db.execute("UPDATE orders SET created_at = ? WHERE id = ?",
               (stamps.stamp_of(stamps.unix_of(start) + seconds), order["id"]))


@pytest.fixture
def shop(tmp_path, ledger_url):
    """Orders over a few days: two tax rates on one order, a zero rate, promotions and a staff discount, a note that
    looks like a formula, an order with no lines, a refund, one before the range, and two created at the same
    second, both before an order with a lower id."""
    app = make_app(tmp_path, ledger_url)
    fair = add_promotion(app, **FAIR10)
    eight, five = Decimal("8.875"), Decimal(5)
    with closing(ledger(app)) as db:
        made = [
            sell(db, "a1", [line("9780000000001", "Zebra Tales", 1200, 1, 120),
                            line("9780000000002", "Apple Pie", 900, 2, 180, "reduced")],
                 [TaxLine("standard", eight, 1080, 96), TaxLine("reduced", five, 1620, 81)],
                 [Saving(fair, "Book fair", 300, "FAIR10")], who=("kiosk_front", "Front")),
            sell(db, "a2", [line("9780000000003", "=HYPERLINK(\"x\")", 500, 1, 50)], [],
                 [Saving(None, "", 50, reason="Damaged")], method="card_present"),
            sell(db, "a3", [line("9780000000004", "Atlas, large", 1500, 1, 0, "zero")],
                 [TaxLine("zero", Decimal(0), 1500, 0)]),
            sell(db, "a4", [], pay=False),
            sell(db, "a5", [line("9780000000005", "Old Rate", 1000, 1)], [TaxLine("standard", Decimal(7), 1000, 70)]),
        ]
        db.execute("UPDATE orders SET note = '@SUM(1+1)', status = 'partially_refunded', amount_refunded = 100 "
                   "WHERE id = ?", (made[0]["id"],))
        backdate(db, made[4], days_ago(10))  # out of the range, with the only 7% sold
        backdate(db, made[2], days_ago(2))
        backdate(db, made[1], days_ago(2))  # the same second as a3: by id, after a3's stamp and before a1's
        db.execute("UPDATE orders SET adopted = 1 WHERE id = ?", (made[2]["id"],))
    return app, made


def test_the_streamed_csv_is_the_same_bytes_as_the_whole_one(shop):
    app, made = shop
    staff = signed_in(app, PIN)
    for first, last in ((days_ago(3), stamps.today()), (days_ago(10), days_ago(10)), (days_ago(30), days_ago(20))):
        reply = staff.get("/staff/export.csv", query_string=range_of(first, last))
        body = reply.get_data()
        assert reply.mimetype == "text/csv" and body == old_export(app, first, last)
        assert f'filename="orders-{first}-to-{last}.csv"' in reply.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(old_export(app, days_ago(3), stamps.today()).decode("utf-8-sig"))))
    label = app.extensions["kiosk"].settings.tax_label
    assert rows[0][18:] == ["Subtotal", "Tax", "Total", f"{label} reduced 5%", f"{label} standard 8.875%",
                            f"{label} zero 0%"]
    references = [r[0] for r in rows[1:]]
    assert references == [made[1]["reference"], made[2]["reference"], made[0]["reference"], made[3]["reference"]]
    first_sale = rows[3]
    assert "Apple Pie" in first_sale[8].split(";")[0] and first_sale[17] == "Book fair (FAIR10)"
    assert first_sale[-3:] == ["0.81", "0.96", ""]
    assert rows[1][8].startswith("'=HYPERLINK") and rows[3][12] == "'@SUM(1+1)"


def test_the_tax_columns_are_the_rates_sold_in_the_range(shop):
    app, _ = shop
    with closing(ledger(app)) as db:
        assert exports.rates_between(db, days_ago(3), stamps.today()) == \
            [("reduced", "5"), ("standard", "8.875"), ("zero", "0")]
        assert exports.rates_between(db, days_ago(10), days_ago(10)) == [("standard", "7")]
        assert exports.rates_between(db, days_ago(2), days_ago(2)) == [("zero", "0")]
        assert exports.rates_between(db, days_ago(30), days_ago(20)) == []
        assert exports.count_between(db, days_ago(3), stamps.today()) == 4


def test_the_day_csv_streams_the_same_rows(shop):
    app, _ = shop
    body = signed_in(app, PIN).get("/staff/day.csv").get_data()
    assert body.startswith(b"\xef\xbb\xbf\"Day\",\"Counter\"") and body.endswith(b"\r\n")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    assert ["Day", "Tax", "Class", "Rate %", "Charged on", "Tax", "Tax refunded", "Net tax", "Currency"] in rows
    assert [] in rows and any(r[1:3] == ["Book fair", "FAIR10"] for r in rows)


# --- a big range: constant memory, sent as it is read, and let go of when the client goes away ----------------

BIG = 20_000


def fill(app, count, day=None):
    """`count` orders of two lines, a tax row and a saving each, written by SQL in one go (the same on both
    databases), created in the last second of `day` (today unless told) in id order."""
    created = stamps.stamp_of(stamps.unix_of(stamps.local_day_bounds(day or stamps.today())[1]) - 1)
    numbers = "WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < ?) "
    with closing(ledger(app)) as db:
        db.execute(numbers + "INSERT INTO orders (reference, status, amount, currency, created_at, updated_at, "
                   "subtotal, tax, discount, note) SELECT 'BIG-' || i, 'paid', 2178, 'USD', ?, ?, 2000, 178, 100, "
                   "'a note to make the row longer, as a shop writes them' FROM k", (count, created, created))
        for isbn, title in (("9780000000001", "A long title for a book that sells well"),
                            ("9780000000002", "Another long title, with a comma")):
            db.execute("INSERT INTO order_lines (order_id, isbn, title, unit_price, quantity, tax_class, tax_rate, "
                       "discount, paid) SELECT id, ?, ?, 1050, 1, 'standard', '8.875', 50, 1000 FROM orders "
                       "WHERE reference LIKE 'BIG-%'", (isbn, title))
        db.execute("INSERT INTO order_taxes (order_id, tax_class, rate, taxable, tax) SELECT id, 'standard', "
                   "'8.875', 2000, 178 FROM orders WHERE reference LIKE 'BIG-%'")
        db.execute("INSERT INTO order_discounts (order_id, position, name, code, amount) SELECT id, 1, "
                   "'Staff', NULL, 100 FROM orders WHERE reference LIKE 'BIG-%'")


@pytest.fixture
def big(tmp_path, ledger_url):
    app = make_app(tmp_path, ledger_url)
    fill(app, BIG)
    return app


def test_a_big_export_streams_in_constant_memory(big):
    staff = signed_in(big, PIN)
    today = stamps.today()
    tracemalloc.start()
    try:
        reply = staff.get("/staff/export.csv", query_string=range_of(today, today))
        tracemalloc.reset_peak()
        size, rows, last = 0, 0, b""
        for chunk in reply.response:
            size, rows, last = size + len(chunk), rows + chunk.count(b'"BIG-'), chunk
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        reply.close()
    assert rows == BIG and last.endswith(b"\r\n")
    # The CSV built whole would hold all of its bytes at once, at the least: sent as read, it never holds half.
    assert size > 6_000_000
    assert peak < size // 2, f"{peak} bytes at the peak for a {size}-byte CSV"


def test_the_first_chunk_comes_before_the_rows_are_read_and_closing_lets_go(big):
    staff = signed_in(big, PIN)
    today = stamps.today()
    reply = staff.get("/staff/export.csv", query_string=range_of(today, today))
    chunks = iter(reply.response)
    header = next(chunks)
    assert header.startswith(b"\xef\xbb\xbf\"Reference\"") and b"BIG-" not in header
    second = next(chunks)
    assert b'"BIG-1"' in second and f'"BIG-{BIG}"'.encode() not in second
    assert pool(big).checkedout() == 1  # the stream's own connection, still reading
    with big.test_request_context():
        second_place = export.running().slot()
        assert second_place is not None and export.running().slot() is None
        second_place.release()
    reply.close()
    assert pool(big).checkedout() == 0
    with big.test_request_context():
        assert export.running().slot() is not None


def test_a_third_export_at_once_is_refused_in_words(big):
    staff = signed_in(big, PIN)
    today = stamps.today()
    running = []
    for _n in range(2):
        reply = staff.get("/staff/export.csv", query_string=range_of(today, today))
        next(iter(reply.response))
        running.append(reply)
    third = staff.get("/staff/export.csv", query_string=range_of(today, today), follow_redirects=True)
    page = third.get_data(as_text=True)
    assert third.mimetype == "text/html" and "An export is already running" in page and "at most 2 at a time" in page
    saved = staff.post("/staff/export", data=range_of(today, today), follow_redirects=True).get_data(as_text=True)
    assert "An export is already running" in saved
    running.pop().close()
    again = staff.get("/staff/export.csv", query_string=range_of(today, today))
    assert again.mimetype == "text/csv"
    again.close()
    running.pop().close()


def test_the_stream_holds_its_connection_only_while_iterated(big, ledger_url):
    kiosk_ledger = big.extensions["kiosk"].ledger
    rows = kiosk_ledger.stream("SELECT id, reference FROM orders ORDER BY id", size=100)
    assert pool(big).checkedout() == 0
    first = next(rows)
    assert first["reference"] == "BIG-1" and first[1] == "BIG-1" and pool(big).checkedout() == 1
    if ledger_url.startswith("postgres"):
        with closing(ledger(big)) as other:  # a server-side cursor: the rows are fetched as they are asked for
            assert any(row[0].startswith("FETCH") for row in other.execute(
                "SELECT query FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"))
    rows.close()
    assert pool(big).checkedout() == 0
    assert sum(1 for _ in kiosk_ledger.stream("SELECT id FROM orders")) == BIG and pool(big).checkedout() == 0


# --- saving into the data folder, in the background -------------------------------------------------------------

def test_a_save_runs_in_the_background_with_its_progress(big, monkeypatch):
    staff = signed_in(big, PIN)
    today = stamps.today()
    download = staff.get("/staff/export.csv", query_string=range_of(today, today)).get_data()
    halfway, go_on = threading.Event(), threading.Event()
    streamed = exports.orders_between

    def paused(*args):
        for n, order in enumerate(streamed(*args)):
            if n == BIG // 2:
                halfway.set()
                go_on.wait(30)
            yield order
    monkeypatch.setattr(exports, "orders_between", paused)
    monkeypatch.setattr(export, "QUICK", 0)
    reply = staff.post("/staff/export", data=range_of(today, today))
    job = re.search(r"export=([\w-]+)", reply.headers["Location"]).group(1)
    assert halfway.wait(30)
    page = staff.get(reply.headers["Location"]).get_data(as_text=True)
    assert re.search(rf"Saving orders-{today}-to-{today}\.csv: 50%", page) and f"/staff/export/{job}" in page
    progress = staff.get(f"/staff/export/{job}").json
    assert progress["state"] == "running" and progress["percent"] == 50
    assert KioskClient(big).get(f"/staff/export/{job}").status_code == 302  # behind the PIN like every staff page
    go_on.set()
    with big.test_request_context():
        assert export.running().find(job).wait(60)
    path = big.extensions["kiosk"].settings.data_dir / "exports" / f"orders-{today}-to-{today}.csv"
    done = staff.get(f"/staff/export/{job}").json
    assert (done["state"], done["percent"], done["message"]) == ("done", 100, f"Saved {path}.")
    assert path.read_bytes() == download
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    assert staff.get("/staff/export/nosuchjob").status_code == 404


def test_a_save_that_cannot_be_written_says_why(shop):
    app, _ = shop
    staff = signed_in(app, PIN)
    folder = app.extensions["kiosk"].settings.data_dir / "exports"
    folder.write_text("a file where the folder should be")
    page = staff.post("/staff/export", data=range_of(days_ago(3), stamps.today()), follow_redirects=True)
    assert f"Could not save the export in {folder}: File exists." in page.get_data(as_text=True)
    folder.unlink()
    with app.test_request_context():
        assert export.running().slot() is not None and export.running().slot() is not None  # both places free


def test_a_full_disk_leaves_no_half_file(shop, monkeypatch):
    app, _ = shop
    staff = signed_in(app, PIN)

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr("kiosk.admin.exports.os.fsync", full)
    page = staff.post("/staff/export", data=range_of(days_ago(3), stamps.today()), follow_redirects=True)
    folder = app.extensions["kiosk"].settings.data_dir / "exports"
    assert f"Could not save the export in {folder}: No space left on device." in page.get_data(as_text=True)
    assert list(folder.iterdir()) == []


def test_an_export_makes_way_while_a_request_is_answered_and_not_for_itself(big):
    waits = Serving(quiet=0, longest=600)  # a wait that only a request's end can cut short in this test
    waits.begin()
    returned = threading.Event()
    maker = threading.Thread(target=lambda: (waits.make_way(), returned.set()))
    maker.start()
    assert not returned.wait(0.3)  # still making way: the request has not been answered
    waits.end()
    maker.join(30)
    assert returned.is_set() and not maker.is_alive()
    staff = signed_in(big, PIN)
    today = stamps.today()
    reply = staff.get("/staff/export.csv", query_string=range_of(today, today))
    next(iter(reply.response))
    assert serving._count == 0  # the download is not a request the export waits for (it would wait for itself)
    staff.get("/staff/")
    assert serving._count == 0  # a page answered is counted no longer
    reply.close()
