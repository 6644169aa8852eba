"""Soak: 1,000 purchases in a row through the HTTP API of `python -m kiosk --headless`, against localstripe.
No errors (in replies or in the kiosk's log), every payment recorded once, and the kiosk process's
resident memory at the end within 10% of its memory after the first 100 purchases. The reconciler
runs on its product timer (every 60 s) throughout.
"""
import csv
import time

from kiosk.ledger import stock as shelves
from tests.hardening.helpers import Shopper
from tests.support.ledger import ledger, paid_state
from tests.support.process import KioskProcess
from tests.support.settings import SAMPLE

PURCHASES = 1000
WARM = 100
CUSTOMERS_PER_SESSION = 10  # the kiosk's idle reset gives every few customers a new session
FIGURE = ("SOAK: {errors} errors in {purchases} purchases ({seconds} s); kiosk RSS {rss_warm} KiB after "
          "{warm}, {rss_end} KiB at the end ({growth_pct}% growth)")


def soak_catalog(folder):
    """The sample catalog with stock for every purchase."""
    with open(SAMPLE, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        row["stock"] = "100000"
    path = folder / "soak.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path, [row["isbn"] for row in rows[:5]]


def test_a_thousand_purchases(tmp_path, stripe_server, tally):
    catalog, isbns = soak_catalog(tmp_path)
    kiosk = KioskProcess(tmp_path / "data", stripe_server, catalog=catalog).start()
    errors = []
    bought = {}
    start = time.monotonic()
    try:
        assert kiosk.listening_addresses() == ["0100007F"]  # 127.0.0.1 only
        shopper = None
        for n in range(PURCHASES):
            if n % CUSTOMERS_PER_SESSION == 0:
                shopper = Shopper(kiosk.url)
            isbn, quantity = isbns[n % len(isbns)], 1 + n % 2
            try:
                shopper.buy(stripe_server, isbn, quantity)
                bought[isbn] = bought.get(isbn, 0) + quantity
            except Exception as exc:  # noqa: BLE001 - counted and shown below
                errors.append(f"purchase {n}: {exc!r}"[:300])
            if n + 1 == WARM:
                rss_warm = kiosk.rss_kib()
        rss_end = kiosk.rss_kib()
        seconds = time.monotonic() - start
        # Errors the kiosk logged without the customer seeing them count too.
        errors += [line for line in kiosk.log().splitlines() if " ERROR " in line or "Traceback" in line]
    finally:
        kiosk.kill()
    state = paid_state(kiosk, stripe_server)
    db = ledger(kiosk)
    stock = shelves.stock_levels(db, isbns)
    paid_orders = db.execute("SELECT COUNT(*) FROM orders WHERE status = 'paid'").fetchone()[0]
    db.close()
    growth = (rss_end - rss_warm) / rss_warm * 100
    tally(FIGURE, errors=len(errors), purchases=PURCHASES, seconds=round(seconds), rss_warm=rss_warm, warm=WARM,
          rss_end=rss_end, growth_pct=round(growth, 1))
    assert errors == [], errors[:5]
    assert paid_orders == state["charged"] == PURCHASES and state["lost"] == state["double"] == 0
    assert all(stock[isbn] == 100000 - bought[isbn] for isbn in isbns)
    assert growth <= 10

