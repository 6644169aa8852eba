"""The shop's clock (KIOSK_TIMEZONE, issue #25 "Receipts print UTC"): with the shop in New York and the computer
on another zone, the receipt (on screen and printed), the staff's orders, the CSV, the dashboard and Close the day
all use New York time, and its days run from New York midnight to midnight, 23 or 25 hours when the clocks change."""
import csv
import io
import os
import re
import time
from contextlib import closing
from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import expect

from kiosk import create_app
from kiosk.core import config, stamps
from tests.e2e.shopper import CARD_OK, add_to_cart, expect_confirmation, open_checkout, pay, pick_books
from tests.support.client import KioskClient
from tests.support.ledger import books, buy, ledger, order
from tests.support.settings import make_settings

PIN = "2468"
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(autouse=True)
def computer_in_tokyo():
    """The process's own zone is Tokyo (UTC+9, no DST): neither UTC nor the shop's, so a time in the wrong zone
    shows."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Tokyo"
    time.tzset()
    yield
    if before is None:
        del os.environ["TZ"]
    else:
        os.environ["TZ"] = before
    time.tzset()


@pytest.fixture
def app(tmp_path, stripe_server):
    settings = make_settings(tmp_path, stripe_server, KIOSK_STAFF_PIN=PIN, KIOSK_TIMEZONE="America/New_York",
                             KIOSK_PRINT_RECEIPTS="1")
    return create_app(settings, testing=True)


@pytest.fixture
def staff(app):
    client = KioskClient(app)
    client.token()
    assert client.post("/staff/login", data={"pin": PIN}).status_code == 302
    return client


def paid_at(app, reference, paid, created=None):
    """Move an order's payment (and creation) to the UTC instants given, as the ledger stores them."""
    with closing(ledger(app)) as db:
        db.execute("UPDATE orders SET paid_at = ?, created_at = ?, updated_at = ? WHERE reference = ?",
                   (paid, created or paid, paid, reference))


def page_text(reply):
    assert reply.status_code == 200
    body = reply.get_data(as_text=True)
    assert "Traceback" not in body
    return body


def day_csv(staff, day):
    """Close the day's CSV rows for a local day, the shop's row first."""
    return list(csv.DictReader(io.StringIO(page_text(staff.get(f"/staff/day.csv?date={day}")).lstrip("\ufeff"))))


# --- the setting ---------------------------------------------------------------------------------------------------

def test_the_setting_names_the_shops_zone_and_empty_is_the_computers(tmp_path):
    shop = make_settings(tmp_path, KIOSK_TIMEZONE="America/New_York")
    assert (shop.timezone, shop.zone) == ("America/New_York", NEW_YORK)
    assert not [p for p in shop.problems if p.setting == "KIOSK_TIMEZONE"]
    computer = make_settings(tmp_path)
    assert computer.timezone == "" and computer.zone.key == "Asia/Tokyo" == config.computer_zone().key


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "america/new york", "../../etc/passwd", "EST 5"])
def test_a_zone_that_does_not_exist_is_a_problem_that_says_how_to_fix_it(tmp_path, name):
    s = make_settings(tmp_path, KIOSK_TIMEZONE=name)
    [problem] = [p for p in s.problems if p.setting == "KIOSK_TIMEZONE"]
    assert repr(name) in problem.message and "not a time zone" in problem.message
    assert "America/New_York" in problem.fix and "Asia/Tokyo" in problem.fix  # what to write; what is used meanwhile
    assert not problem.fatal and s.timezone == "" and s.zone.key == "Asia/Tokyo"
    create_app(s, testing=True)  # the kiosk still starts, on the computer's clock


def test_a_computer_whose_zone_cannot_be_found_is_on_utc(monkeypatch):
    monkeypatch.setenv("TZ", "Nowhere/Special")
    assert config.computer_zone().key == "UTC"


# --- days ----------------------------------------------------------------------------------------------------------

def test_local_days_run_midnight_to_midnight_in_the_shops_zone():
    # 2026-03-08: New York springs forward at 2:00 (a 23-hour day); 2026-11-01: it falls back (25 hours).
    assert stamps.local_day_bounds(date(2026, 3, 8), zone=NEW_YORK) == ("2026-03-08 05:00:00", "2026-03-09 04:00:00")
    assert stamps.local_day_bounds(date(2026, 11, 1), zone=NEW_YORK) == ("2026-11-01 04:00:00", "2026-11-02 05:00:00")
    assert stamps.local_day_bounds(date(2026, 3, 7), date(2026, 3, 9), NEW_YORK) == \
        ("2026-03-07 05:00:00", "2026-03-10 04:00:00")
    assert [stamps.day_hours(date(2026, m, d), NEW_YORK) for m, d in ((3, 7), (3, 8), (11, 1), (11, 2))] == \
        [24, 23, 25, 24]
    # Where the clocks jump at midnight (Santiago, 2026-09-06), the day starts at the first moment it has: 01:00.
    assert stamps.local_day_bounds(date(2026, 9, 6), zone=ZoneInfo("America/Santiago"))[0] == "2026-09-06 04:00:00"
    assert stamps.local_time("2026-11-02 04:30:00", NEW_YORK).strftime("%Y-%m-%d %H:%M %Z") == "2026-11-01 23:30 EST"
    assert stamps.today(NEW_YORK) == datetime.now(NEW_YORK).date()


# --- the receipt, the staff screens, the CSV ----------------------------------------------------------------------

def test_the_receipt_and_the_staff_screens_show_the_shops_time(app, stripe_server, staff):
    purchase = buy(app, stripe_server, {books(app)[0].isbn13: 1})
    # Paid at 23:30 on 1 November in New York (EST): 04:30 UTC on the 2nd, 13:30 on the 2nd in Tokyo.
    paid_at(app, purchase.reference, "2026-11-02 04:30:00", created="2026-11-02 04:25:00")

    receipt = page_text(purchase.confirm())
    paid = re.search(r'<p class="paid-at">([^<]*)</p>', receipt).group(1)
    assert re.fullmatch(r"Paid Nov 1, 2026, 11:30:00\sPM", paid), paid
    assert "UTC" not in receipt and "4:30:00" not in receipt

    listed = page_text(staff.get("/staff/orders"))
    assert "2026-11-01 23:25" in listed and "2026-11-02" not in listed
    detail = page_text(staff.get(f"/staff/orders/{purchase.reference}"))
    assert "2026-11-01 23:25" in detail and "2026-11-01 23:30" in detail and "13:30" not in detail

    [row] = list(csv.DictReader(io.StringIO(page_text(staff.get(
        "/staff/export.csv?from=2026-11-01&to=2026-11-01")).lstrip("\ufeff"))))
    assert (row["Reference"], row["Created"], row["Paid"]) == (purchase.reference, "2026-11-01 23:25",
                                                               "2026-11-01 23:30")
    next_day = page_text(staff.get("/staff/export.csv?from=2026-11-02&to=2026-11-02")).lstrip("\ufeff")
    assert purchase.reference not in next_day


def test_the_printed_receipt_shows_the_shops_time(start_kiosk, open_page):
    kiosk = start_kiosk(KIOSK_TIMEZONE="America/New_York", KIOSK_PRINT_RECEIPTS="1")
    page = open_page(kiosk)
    [book] = pick_books(1)
    add_to_cart(page, book["isbn"])
    open_checkout(page)
    pay(page, CARD_OK)
    _, intent = expect_confirmation(page)
    paid_at(kiosk.app, order(kiosk.app, intent=intent)["reference"], "2026-03-09 03:30:00")  # 23:30 EDT, 8 March
    page.reload()
    page.emulate_media(media="print")
    expect(page.locator(".paid-at")).to_be_visible()
    expect(page.locator(".paid-at")).to_have_text(re.compile(r"^Paid Mar 8, 2026, 11:30:00\sPM$"))


def test_the_dashboard_counts_today_by_the_shops_clock(app, stripe_server, staff):
    book = books(app)[0]
    purchase = buy(app, stripe_server, {book.isbn13: 1})
    local = stamps.local_time(order(app, purchase.reference)["paid_at"], NEW_YORK)
    page = page_text(staff.get("/staff/"))
    assert f"Today, {local.date().isoformat()}" in page
    hours = re.search(r'<svg class="chart" id="chart-hours".*?</svg>', page, re.S).group(0)
    values = [int(v) for v in re.findall(r'data-value="(\d+)"', hours)]
    assert values[local.hour] == order(app, purchase.reference)["amount"] and sum(values) == values[local.hour]
    assert f'value="{local.date().isoformat()}"' in page_text(staff.get("/staff/orders"))  # the export's default


# --- Close the day -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("day", "before", "inside", "after", "hours"), [
    # 8 March, 23 hours: 05:00 UTC to 04:00 UTC the next day. A 24-hour day would take the 00:30 sale of the 9th.
    ("2026-03-08", "2026-03-08 04:30:00", ["2026-03-08 05:30:00", "2026-03-09 03:30:00"], "2026-03-09 04:30:00", 23),
    # 1 November, 25 hours: 04:00 UTC to 05:00 UTC the next day. A 24-hour day would miss its 23:30 sale.
    ("2026-11-01", "2026-11-01 03:30:00", ["2026-11-01 04:30:00", "2026-11-02 04:30:00"], "2026-11-02 05:30:00", 25),
    # An ordinary winter day: 23:30 local is 04:30 UTC on the next day.
    ("2026-01-15", "2026-01-15 04:30:00", ["2026-01-15 05:30:00", "2026-01-16 04:30:00"], "2026-01-16 05:30:00", 24),
])
def test_close_the_day_counts_the_shops_local_day(app, stripe_server, staff, day, before, inside, after, hours):
    book = books(app)[0]
    references = {}
    for when in [before, *inside, after]:
        references[when] = buy(app, stripe_server, {book.isbn13: 1}).reference
        paid_at(app, references[when], when)
    [shop] = [r for r in day_csv(staff, day) if r["Counter"] == "All counters"]
    first, last = (stamps.local_time(w, NEW_YORK).strftime("%Y-%m-%d %H:%M") for w in inside)
    assert (shop["Orders"], shop["First sale"], shop["Last sale"]) == ("2", first, last)
    assert first.startswith(day) and last.startswith(day) and last.endswith("23:30")
    report = page_text(staff.get(f"/staff/day?date={day}"))
    assert re.search(r'id="day-orders">2<', report) and f"<td>{last}</td>" in report
    zone_note = re.search(r'<p id="day-zone">([^<]*)</p>', report).group(1)
    assert zone_note.startswith("Times in America/New_York")
    assert (f"this day had {hours} hours" in zone_note) == (hours != 24)
