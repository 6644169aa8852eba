"""The staff area: PIN, lockout, idle lock, takings and charts, orders, refunds through Stripe, stock, CSV, catalog."""
import csv
import io
import re
import shutil
import time
from contextlib import closing
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from kiosk import create_app
from kiosk.core import charts, stamps
from kiosk.ledger import orders
from kiosk.ledger import stock as shelves
from kiosk.web import staff
from tests.support.client import KioskClient
from tests.support.ledger import books, buy, count, ledger, on_hand, order
from tests.support.refunds import confirm_form, review_url
from tests.support.settings import SAMPLE, make_settings

PIN = "2468"


@pytest.fixture
def clock():
    """Staff time, moved forward by tests: clock[0] is "now" (the apps here are made with it, as CLOCK)."""
    return [1_800_000_000.0]


def staff_app(tmp_path, stripe_server, clock):
    return create_app(make_settings(tmp_path, stripe_server, KIOSK_STAFF_PIN=PIN), clock=lambda: clock[0], testing=True)


@pytest.fixture
def app(tmp_path, stripe_server, clock):
    return staff_app(tmp_path, stripe_server, clock)


def sign_in(app, pin=PIN):
    client = KioskClient(app)
    client.token()  # read from the shop page before signing in: visiting the shop ends a staff session
    reply = client.post("/staff/login", data={"pin": pin})
    return client, reply


@pytest.fixture
def staff_client(app):
    client, reply = sign_in(app)
    assert reply.status_code == 302
    return client


def text(reply):
    body = reply.get_data(as_text=True)
    assert "Traceback" not in body
    return body


def flashes(body):
    return re.findall(r'class="flash[^"]*">([^<]+)<', body)


# --- entry, PIN, lockout, idle ---------------------------------------------------------------------------------

def test_every_page_offers_the_corner_control_and_the_shortcut(app):
    page = text(KioskClient(app).get("/"))
    assert 'id="staff-corner" href="/staff/"' in page and "js/staff.js" in page


@pytest.mark.parametrize("pin", ["", "12"])
def test_without_a_usable_pin_the_staff_area_never_opens(tmp_path, stripe_server, pin):
    app = create_app(make_settings(tmp_path, stripe_server, KIOSK_STAFF_PIN=pin), testing=True)
    client = KioskClient(app)
    page = client.get("/staff/")
    assert page.status_code == 403 and "KIOSK_STAFF_PIN" in text(page)
    for guess in ("", "12", "0000"):
        assert client.post("/staff/login", data={"pin": guess}).status_code == 403
    assert client.get("/staff/orders").status_code == 403
    assert client.post("/staff/exit").status_code == 403


def staff_routes(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint.startswith("staff.") and rule.endpoint not in staff.OPEN_ENDPOINTS:
            path = re.sub(r"<int:\w+>", "1", rule.rule.replace("<reference>", "REF"))  # a promotion's id
            for method in sorted(rule.methods & {"GET", "POST"}):
                yield method, path


def test_staff_pages_refuse_anyone_without_the_pin(app, stripe_server):
    purchase = buy(app, stripe_server, {books(app)[0].isbn13: 1})
    client, reply = sign_in(app, pin="1357")  # a wrong PIN
    assert reply.status_code == 401
    routes = list(staff_routes(app))
    assert len(routes) >= 12
    for method, path in routes:
        path = path.replace("REF", purchase.reference)
        reply = client.get(path) if method == "GET" else client.post(path, data={"amount": "1", "count": "0"})
        assert reply.status_code == (302 if method == "GET" else 403), (method, path)
        assert purchase.reference not in text(reply) and "Sales" not in text(reply)
        if method == "GET":
            assert reply.headers["Location"].endswith("/staff/")
    assert order(app, purchase.reference)["status"] == "paid"  # no refund went through


def test_the_right_pin_opens_and_lock_closes(app, staff_client):
    assert "Net takings" in text(staff_client.get("/staff/"))
    assert staff_client.post("/staff/lock").headers["Location"].endswith("/")
    assert staff_client.get("/staff/orders").status_code == 302


def test_going_back_to_the_shop_ends_the_staff_session(app, staff_client):
    assert staff_client.get("/staff/orders").status_code == 200
    staff_client.get("/")
    assert staff_client.get("/staff/orders").status_code == 302


def test_signing_in_gives_a_fresh_session_id(app):
    client = KioskClient(app)
    client.token()
    before = client.http.get_cookie("kiosk_sid").value
    client.post("/staff/login", data={"pin": PIN})
    assert client.http.get_cookie("kiosk_sid").value != before
    assert client.get("/staff/orders").status_code == 200


def test_five_wrong_pins_lock_for_five_minutes_even_across_a_restart(app, tmp_path, stripe_server, clock):
    client = KioskClient(app)
    for tries_left in (4, 3, 2, 1):
        reply = client.post("/staff/login", data={"pin": "0000"})
        assert reply.status_code == 401 and f"{tries_left} tr" in " ".join(flashes(text(reply)))
    reply = client.post("/staff/login", data={"pin": "0000"})
    assert reply.status_code == 429 and "locked for 5 minutes" in text(reply)
    assert client.post("/staff/login", data={"pin": PIN}).status_code == 429  # even the right PIN
    restarted = staff_app(tmp_path, stripe_server, clock)
    clock[0] += 299
    assert KioskClient(restarted).post("/staff/login", data={"pin": PIN}).status_code == 429
    clock[0] += 2
    assert KioskClient(restarted).post("/staff/login", data={"pin": PIN}).status_code == 302
    # A success resets the count: four more wrong tries do not lock.
    for _ in range(4):
        KioskClient(restarted).post("/staff/login", data={"pin": "0000"})
    assert KioskClient(restarted).post("/staff/login", data={"pin": PIN}).status_code == 302


def test_wrong_pins_from_a_script_lock_the_script_out_not_the_kiosks_screen(app, clock):
    """Any program on the computer can send PINs: its five wrong tries lock its own count only, while the kiosk's
    screen (which holds this launch's screen key) signs in; the screen's own wrong tries still lock the screen."""
    script = KioskClient(app)
    for _ in range(5):
        script.post("/staff/login", data={"pin": "0000"})
    assert script.post("/staff/login", data={"pin": PIN}).status_code == 429  # the script stays locked out
    assert KioskClient(app).post("/staff/login", data={"pin": PIN}).status_code == 429  # and every other program
    screen = KioskClient(app)
    assert screen.get(app.extensions["kiosk"].screen_path()).status_code == 303
    screen.token()
    assert screen.post("/staff/login", data={"pin": PIN}).status_code == 302  # staff at the screen get in
    at_screen = KioskClient(app)
    at_screen.get(app.extensions["kiosk"].screen_path())
    for _ in range(5):
        at_screen.post("/staff/login", data={"pin": "0000"})
    assert at_screen.post("/staff/login", data={"pin": PIN}).status_code == 429  # guessing at the screen stops too
    clock[0] += staff.LOCK_SECONDS + 1
    assert at_screen.post("/staff/login", data={"pin": PIN}).status_code == 302


def test_the_pin_is_compared_in_constant_time(app, monkeypatch):
    seen = []
    real = staff.signin.hmac.compare_digest
    monkeypatch.setattr(staff.signin.hmac, "compare_digest", lambda a, b: seen.append((a, b)) or real(a, b))
    sign_in(app, pin="1111")
    assert (b"1111", PIN.encode()) in seen  # (Flask-WTF compares its CSRF token the same way)


def test_five_idle_minutes_end_the_staff_session(app, clock):
    client, _ = sign_in(app)
    clock[0] += 299
    assert client.get("/staff/orders").status_code == 200  # use restarts the 5 minutes
    clock[0] += 299
    assert client.get("/staff/stock").status_code == 200
    clock[0] += 301
    reply = client.get("/staff/orders")
    assert reply.status_code == 302
    assert "5 minutes without use" in text(client.get("/staff/"))


# --- the day, orders, refunds ----------------------------------------------------------------------------------

def test_dashboard_shows_takings_and_svg_charts(app, stripe_server, staff_client):
    a, b = books(app)[:2]
    buy(app, stripe_server, {a.isbn13: 2})
    buy(app, stripe_server, {b.isbn13: 1})
    buy(app, stripe_server, {b.isbn13: 1}, pay=False)  # not paid: not takings
    page = text(staff_client.get("/staff/"))
    money = app.extensions["kiosk"].money
    total = 2 * a.price + b.price
    assert re.search(r'id="takings-sales">([^<]+)<', page).group(1) == money(total)
    assert re.search(r'id="takings-orders">([^<]+)<', page).group(1) == "2"
    hours = re.search(r'<svg class="chart" id="chart-hours".*?</svg>', page, re.S).group(0)
    values = [int(v) for v in re.findall(r'data-value="(\d+)"', hours)]
    assert len(values) == 24 and sum(values) == total and values.count(0) == 23
    days = re.search(r'<svg class="chart" id="chart-days".*?</svg>', page, re.S).group(0)
    assert [int(v) for v in re.findall(r'data-value="(\d+)"', days)][-1] == total
    assert "1 waiting for payment" in page


def test_order_search_by_reference_isbn_and_intent(app, stripe_server, staff_client):
    a, b = books(app)[:2]
    first = buy(app, stripe_server, {a.isbn13: 1})
    second = buy(app, stripe_server, {b.isbn13: 1})

    def found(q):
        page = text(staff_client.get("/staff/orders", query_string={"q": q}))
        return set(re.findall(r'href="/staff/orders/(BK-[A-Z0-9-]+)"', page))
    assert found(first.reference.lower()) == {first.reference}
    assert found(f"{b.isbn13[:3]}-{b.isbn13[3:]}") == {second.reference}
    assert found(second.intent) == {second.reference}
    assert found("") == {first.reference, second.reference}
    assert found("BK-NONE") == set()


def test_order_list_pages(app, staff_client):
    with closing(ledger(app)) as db:
        refs = [orders.open_checkout(db, attempt=f"a{n}", lines=[], currency="USD", hold=False)["reference"]
                for n in range(30)]
    first, second = (text(staff_client.get("/staff/orders", query_string={"page": p})) for p in (1, 2))
    assert "Page 1 of 2" in first and refs[-1] in first and refs[0] not in first
    assert refs[0] in second and refs[-1] not in second


def test_order_detail_and_over_sell_flag(app, stripe_server, staff_client):
    book = books(app)[0]
    with closing(ledger(app)) as db:
        shelves.count_shelf(db, book.isbn13, 2, "two copies", ("tests", "Front"))
    first = buy(app, stripe_server, {book.isbn13: 1}, pay=False)
    second = buy(app, stripe_server, {book.isbn13: 1}, pay=False)  # each holds a copy
    with closing(ledger(app)) as db:  # then staff find one of the two damaged
        shelves.count_shelf(db, book.isbn13, 1, "last copy", ("tests", "Front"))
    for purchase in (first, second):  # both paid for the one copy left
        stripe_server.pay(purchase.intent)
        purchase.confirm()
    page = text(staff_client.get(f"/staff/orders/{second.reference}"))
    assert 'id="oversold-flag"' in page and second.intent in page and book.title.replace("'", "&#39;") in page
    assert 'id="oversold-flag"' not in text(staff_client.get(f"/staff/orders/{first.reference}"))
    assert "over-sold" in text(staff_client.get("/staff/orders", query_string={"oversold": "1"}))
    assert staff_client.get("/staff/orders/BK-NOPE-NOPE").status_code == 404


def reviewed(client, reference, returned=None, amount=None):
    """The confirm form of the refund review page, as staff reach it from the order page."""
    return confirm_form(text(client.get(review_url(reference, returned, amount))))


def stripe_refunds(stripe_server, intent):
    return [r.amount for r in stripe_server.client().v1.refunds.list({"payment_intent": intent}).data]


def test_partial_then_full_refund_through_stripe(app, stripe_server, staff_client):
    a, b = books(app)[:2]
    purchase = buy(app, stripe_server, {a.isbn13: 2, b.isbn13: 1})
    form = {**reviewed(staff_client, purchase.reference, {a.isbn13: 1}), "reason": "damaged"}
    assert (form["mode"], form["expected"], form[f"return-{a.isbn13}"]) == ("books", str(a.price), "1")
    reply = staff_client.post(f"/staff/orders/{purchase.reference}/refund", data=form)
    assert reply.status_code == 302
    assert stripe_refunds(stripe_server, purchase.intent) == [a.price]
    row = order(app, purchase.reference)
    assert (row["status"], row["amount_refunded"]) == ("partially_refunded", a.price)
    assert on_hand(app, a.isbn13) == a.stock - 1 and on_hand(app, b.isbn13) == b.stock - 1
    # The same form sent again (double tap, reload) refunds nothing more.
    staff_client.post(f"/staff/orders/{purchase.reference}/refund", data=form)
    assert stripe_refunds(stripe_server, purchase.intent) == [a.price]
    assert on_hand(app, a.isbn13) == a.stock - 1
    left = row["amount"] - row["amount_refunded"]
    page = text(staff_client.get(review_url(purchase.reference, amount=f"{(left + 1) / 100:.2f}"),
                                 follow_redirects=True))
    assert "at most what is left" in page and 'class="refund-confirm"' not in page
    over = {**reviewed(staff_client, purchase.reference, amount="0.01"), "amount": f"{(left + 1) / 100:.2f}"}
    page = text(staff_client.post(f"/staff/orders/{purchase.reference}/refund", data=over, follow_redirects=True))
    assert "at most what is left" in page and len(stripe_refunds(stripe_server, purchase.intent)) == 1
    rest = reviewed(staff_client, purchase.reference, amount=f"{left / 100:.2f}")
    page = text(staff_client.post(f"/staff/orders/{purchase.reference}/refund", data=rest, follow_redirects=True))
    assert f"Refunded {app.extensions['kiosk'].money(left)}" in page
    row = order(app, purchase.reference)
    assert (row["status"], row["amount_refunded"]) == ("refunded", row["amount"])
    assert sorted(stripe_refunds(stripe_server, purchase.intent)) == sorted([a.price, left])
    assert on_hand(app, b.isbn13) == b.stock - 1  # not chosen as returned: not back on the shelf
    assert 'id="refund-form"' not in page  # nothing left to refund


def test_a_refund_stripe_refuses_records_nothing(app, stripe_server, staff_client):
    book = books(app)[0]
    purchase = buy(app, stripe_server, {book.isbn13: 1})
    stripe_server.inject("500", ("POST", r"/v1/refunds"))
    form = reviewed(staff_client, purchase.reference, {book.isbn13: 1})
    page = text(staff_client.post(f"/staff/orders/{purchase.reference}/refund", data=form, follow_redirects=True))
    assert "Stripe did not make the refund" in page
    assert order(app, purchase.reference)["status"] == "paid" and count(app, "SELECT COUNT(*) FROM refunds") == 0
    assert on_hand(app, book.isbn13) == book.stock - 1


def test_an_unpaid_order_cannot_be_refunded(app, stripe_server, staff_client):
    purchase = buy(app, stripe_server, {books(app)[0].isbn13: 1}, pay=False)
    assert 'id="refund-form"' not in text(staff_client.get(f"/staff/orders/{purchase.reference}"))
    form = {"request": "a" * 32, "mode": "custom", "amount": "1.00"}
    page = text(staff_client.post(f"/staff/orders/{purchase.reference}/refund", data=form, follow_redirects=True))
    assert "only a paid order" in page and count(app, "SELECT COUNT(*) FROM refunds") == 0


# --- stock, export, catalog, exit ------------------------------------------------------------------------------

def test_stock_adjustment_needs_a_reason(app, staff_client):
    book = books(app)[0]
    page = text(staff_client.post("/staff/stock", data={"isbn": book.isbn13, "count": "2", "note": ""},
                                  follow_redirects=True))
    assert "Say why" in page and on_hand(app, book.isbn13) == book.stock
    page = text(staff_client.post("/staff/stock", data={"isbn": book.isbn13, "count": "2", "note": "shelf count"},
                                  follow_redirects=True))
    assert f"2 on hand ({2 - book.stock:+d})" in page.replace("&#43;", "+") and on_hand(app, book.isbn13) == 2
    assert count(app, "SELECT COUNT(*) FROM stock_movements WHERE reason = 'adjust' AND note = 'shelf count'") == 1
    assert staff_client.post("/staff/stock", data={"isbn": book.isbn13, "count": "-1", "note": "x"}).status_code == 302
    assert on_hand(app, book.isbn13) == 2


def test_csv_export_opens_cleanly_in_a_spreadsheet(app, stripe_server, staff_client):
    a = books(app)[0]
    purchase = buy(app, stripe_server, {a.isbn13: 2})
    with closing(ledger(app)) as db:
        evil = orders.open_checkout(db, attempt="evil", currency="USD", lines=[
            {"isbn": a.isbn13, "title": "=HYPERLINK(\"http://x\")", "unit_price": 5, "quantity": 1}], hold=False)
        db.execute("UPDATE orders SET note = '@SUM(1+1)' WHERE id = ?", (evil["id"],))
        old = orders.open_checkout(db, attempt="old", currency="USD", lines=[], hold=False)
        db.execute("UPDATE orders SET created_at = ? WHERE id = ?",
                   (stamps.local_day_bounds(stamps.today() - timedelta(days=3))[0], old["id"]))
    today = stamps.today().isoformat()
    reply = staff_client.get("/staff/export.csv", query_string={"from": today, "to": today})
    assert reply.mimetype == "text/csv" and \
        f'filename="orders-{today}-to-{today}.csv"' in reply.headers["Content-Disposition"]
    raw = reply.data
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"))))
    assert [r["Reference"] for r in rows] == [purchase.reference, evil["reference"]]  # not the old one
    paid = rows[0]
    assert (paid["Status"], paid["Amount"], paid["Refunded"], paid["Currency"], paid["Books"]) == \
        ("paid", f"{2 * a.price / 100:.2f}", "0.00", "USD", "2")
    assert paid["Payment ID"] == purchase.intent and f"({a.isbn13}) x2" in paid["Items"]
    assert rows[1]["Items"].startswith("'=HYPERLINK") and rows[1]["Note"] == "'@SUM(1+1)"
    assert rows[1]["Amount"] == "0.05"
    assert b"\r\n" in raw
    wide = staff_client.get("/staff/export.csv", query_string={
        "from": (stamps.today() - timedelta(days=7)).isoformat(), "to": today})
    assert len(list(csv.DictReader(io.StringIO(wide.data.decode("utf-8-sig"))))) == 3
    bad = staff_client.get("/staff/export.csv", query_string={"from": "yesterday"}, follow_redirects=True)
    assert "YYYY-MM-DD" in text(bad)


def test_csv_export_saved_in_the_data_folder(app, stripe_server, staff_client):
    purchase = buy(app, stripe_server, {books(app)[0].isbn13: 1})
    today = stamps.today().isoformat()
    answer = staff_client.post("/staff/export", data={"from": today, "to": today})
    path = app.extensions["kiosk"].settings.data_dir / "exports" / f"orders-{today}-to-{today}.csv"
    job = parse_qs(urlsplit(answer.headers["Location"]).query).get("export")
    if job:  # a busy machine: not done within the page's wait, so its progress is asked for as the page does
        for _ in range(600):
            state = staff_client.get(f"/staff/export/{job[0]}").get_json()
            if state["state"] != "running":
                break
            time.sleep(0.1)
        said = state["message"]
    else:
        said = text(staff_client.get(answer.headers["Location"]))
    assert str(path) in said and purchase.reference in path.read_text(encoding="utf-8-sig")


def test_catalog_warnings_and_reload(tmp_path, stripe_server):
    catalog = tmp_path / "books.csv"
    shutil.copy(SAMPLE, catalog)
    with catalog.open("a", encoding="utf-8") as f:
        f.write("9780000000000,Bad Check Digit,Nobody,1.00,1,,,\n")
    app = create_app(make_settings(tmp_path, stripe_server, KIOSK_STAFF_PIN=PIN,
                                   KIOSK_CATALOG=str(catalog)), testing=True)
    client, _ = sign_in(app)
    page = text(client.get("/staff/catalog"))
    assert "wrong check digit" in page and \
        re.search(r'id="catalog-books">(\d+)<', page).group(1) == str(len(books(app)))
    before = len(books(app))
    lines = catalog.read_text(encoding="utf-8").splitlines()
    new_book = "9780306406157,A New Arrival,Someone New,9.99,4,,,"
    catalog.write_text("\n".join([*lines[:-1], new_book]) + "\n", encoding="utf-8")
    page = text(client.post("/staff/catalog/reload", follow_redirects=True))
    assert f"Catalog reloaded: {before + 1} books, 0 warnings" in page
    assert app.extensions["kiosk"].catalog.get("9780306406157").title == "A New Arrival"
    assert on_hand(app, "9780306406157") == 4
    catalog.write_text("isbn,title,author,price,stock\nnot-an-isbn,x,y,1,1\n", encoding="utf-8")
    page = text(client.post("/staff/catalog/reload", follow_redirects=True))
    assert "was not reloaded" in page and f"keeps selling the {before + 1} books" in page
    assert len(books(app)) == before + 1


def test_exit_closes_the_window_or_says_there_is_none(app, staff_client):
    page = text(staff_client.post("/staff/exit"))
    assert "no window to close" in page and "headless" in page
    closed = []
    app.extensions["kiosk"].on_exit = lambda: closed.append(True)
    client, _ = sign_in(app)
    assert "Closing the kiosk" in text(client.post("/staff/exit")) and closed == [True]
    assert client.get("/staff/orders").status_code == 302  # exiting also locks


def test_check_now_runs_a_sweep(app, stripe_server, staff_client):
    purchase = buy(app, stripe_server, {books(app)[0].isbn13: 1}, confirm=False)
    page = text(staff_client.post("/staff/reconcile", follow_redirects=True))
    assert "Checked with Stripe: 1 settled" in page and order(app, purchase.reference)["status"] == "paid"
    assert "Last check with Stripe" in page and "1 settled" in page


def test_state_changing_staff_forms_need_the_csrf_token(app, staff_client):
    book = books(app)[0]
    reply = staff_client.http.post("/staff/stock", data={"isbn": book.isbn13, "count": "1", "note": "x"})
    assert reply.status_code == 400 and on_hand(app, book.isbn13) == book.stock


def test_chart_scales_to_round_gridlines_labels_and_escapes():
    assert [charts.nice_ceiling(v) for v in (0, 1, 7, 500, 501, 1234, 99_999)] == [1, 1, 10, 500, 1000, 2000, 100_000]
    points = [("<b>", 0, ""), ("b", 1234, " (2 orders)"), ("c", 2000, ""), ("d", 10, "")]
    svg = charts.bar_chart(points, title="Sales & more", fmt=lambda v: f"${v}", chart_id="c", label_every=2,
                           label_last=True)
    assert "&lt;b&gt;" in svg and "Sales &amp; more" in svg and "<b>" not in svg
    heights = [float(h) for h in re.findall(r'height="([\d.]+)" data-value', svg)]
    plot = charts.HEIGHT - charts.TOP - charts.BOTTOM
    assert heights == [0.0, round(plot * 1234 / 2000, 1), float(plot), round(plot * 10 / 2000, 1)]
    assert ">$2000</text>" in svg and ">$1000</text>" in svg  # gridlines at the top and half of a round maximum
    axis = re.findall(r'text-anchor="middle">([^<]+)</text>', svg)
    assert axis == ["b", "d"]  # every second label, counted from the last bar
