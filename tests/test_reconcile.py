"""Reconciliation against localstripe: settling, adopting lost sales, finding unattached intents, abandoning."""
import shutil
import sqlite3
import time
from contextlib import closing
from pathlib import Path

import pytest

from kiosk import create_app
from kiosk.ledger import orders
from kiosk.ledger.db import get_meta, ledger_for, set_meta
from kiosk.payments import reconcile, stripe_terms
from tests.support.client import KioskClient
from tests.support.fakestripe import CREATE_INTENT
from tests.support.ledger import books, buy, count, ledger, ledger_url, on_hand, order
from tests.support.settings import make_settings

LATER = 31 * 60  # past KIOSK_ABANDON_MINUTES (30)


def sweep(app, now=None):
    with closing(ledger(app)) as db:
        return reconcile.sweep(db, app.extensions["kiosk"], now=now)


def start(settings):
    """An app on the settings' data folder, as one start of the kiosk."""
    return create_app(settings, testing=True)


def test_sweep_settles_a_payment_whose_page_was_never_opened(app, stripe_server):
    book = books(app)[0]
    purchase = buy(app, stripe_server, {book.isbn13: 2}, confirm=False)
    assert order(app, purchase.reference)["status"] == "pending"
    report = sweep(app)
    assert report.settled == [purchase.reference] and order(app, purchase.reference)["status"] == "paid"
    assert on_hand(app, book.isbn13) == book.stock - 2
    again = sweep(app)  # idempotent: the second sweep finds nothing to do
    assert (again.settled, again.adopted, again.canceled) == ([], [], [])
    assert on_hand(app, book.isbn13) == book.stock - 2
    # The confirmation page, arriving last, records nothing twice either.
    assert "Payment received" in purchase.confirm().get_data(as_text=True)
    assert count(app, "SELECT COUNT(*) FROM stock_movements WHERE reason = 'sale'") == 1


def test_a_failed_payment_is_recorded_as_failed(app, stripe_server):
    purchase = buy(app, stripe_server, {books(app)[0].isbn13: 1}, card="4000000000000002", confirm=False)
    sweep(app)
    row = order(app, purchase.reference)
    assert row["status"] == "failed" and "declined" in row["last_error"].lower()


def backup(app, to):
    """Copy the live ledger the way a backup tool would (SQLite's online backup)."""
    with closing(sqlite3.connect(ledger_url(app))) as db, closing(sqlite3.connect(to)) as copy:
        db.backup(copy)


def replace_ledger(app, source=None):
    """The kiosk is stopped and its ledger file restored from `source`, or deleted when None."""
    path = Path(ledger_url(app))
    ledger_for(path).dispose()  # the stopped kiosk's connections go with it
    for suffix in ("", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    if source is not None:
        shutil.copy(source, path)


@pytest.mark.parametrize("restore", [True, False], ids=["restored-from-older-copy", "deleted"])
def test_lost_ledger_adopts_the_missing_paid_orders(tmp_path, stripe_server, restore):
    settings = make_settings(tmp_path, stripe_server)
    app = start(settings)
    a, b, c = books(app)[:3]
    first = buy(app, stripe_server, {a.isbn13: 1})
    backup(app, tmp_path / "older.sqlite3")
    second = buy(app, stripe_server, {b.isbn13: 2, a.isbn13: 1})
    third = buy(app, stripe_server, {c.isbn13: 1}, confirm=False)  # paid, page never opened
    unpaid = buy(app, stripe_server, {c.isbn13: 1}, pay=False)
    replace_ledger(app, tmp_path / "older.sqlite3" if restore else None)

    app = start(settings)
    report = sweep(app)
    lost = [second, third] if restore else [first, second, third]
    assert sorted(report.adopted) == sorted(p.reference for p in lost)
    for purchase in lost:
        row = order(app, purchase.reference)
        assert (row["status"], row["adopted"], row["payment_intent"]) == ("paid", 1, purchase.intent)
        assert "Adopted from Stripe" in row["note"]
    with closing(ledger(app)) as db:
        rebuilt = {ln["isbn"]: (ln["quantity"], ln["unit_price"], ln["title"])
                   for ln in orders.lines(db, order(app, second.reference)["id"])}
    assert rebuilt == {b.isbn13: (2, b.price, b.title), a.isbn13: (1, a.price, a.title)}
    assert order(app, second.reference)["amount"] == 2 * b.price + a.price
    assert order(app, unpaid.reference) is None  # nothing was paid, nothing to adopt
    # Stock is down by every sale exactly once, whichever way it was recorded.
    assert (on_hand(app, a.isbn13), on_hand(app, b.isbn13), on_hand(app, c.isbn13)) == \
        (a.stock - 2, b.stock - 2, c.stock - 1)
    assert sweep(app).adopted == []
    assert on_hand(app, a.isbn13) == a.stock - 2
    assert count(app, "SELECT COUNT(*) FROM orders WHERE status = 'paid'") == 3


def test_intent_created_but_never_recorded_is_found_by_order_ref(app, stripe_server):
    # Stripe creates the intent, then the answer is lost: the kiosk holds a pending order with no intent.
    stripe_server.inject("drop", CREATE_INTENT, after=True, times=1)
    purchase_client = KioskClient(app)
    book = books(app)[0]
    purchase_client.add(book.isbn13, 1)
    reply = purchase_client.post("/checkout/intent", json={"attempt": purchase_client.start_checkout()})
    assert reply.status_code in (502, 503)
    with closing(ledger(app)) as db:
        pending = db.execute("SELECT * FROM orders").fetchone()
    assert pending["payment_intent"] is None
    (intent,) = stripe_server.intents()
    assert intent.metadata["order_ref"] == pending["reference"]
    stripe_server.pay(intent.id)  # e.g. paid through a retried page before the kiosk recorded it
    report = sweep(app)
    assert report.attached == [pending["reference"]] and report.settled == [pending["reference"]]
    row = order(app, pending["reference"])
    assert (row["payment_intent"], row["status"], row["adopted"]) == (intent.id, "paid", 0)
    assert on_hand(app, book.isbn13) == book.stock - 1


def test_abandoned_intents_are_canceled(app, stripe_server):
    a = books(app)[0]
    waiting = buy(app, stripe_server, {a.isbn13: 1}, pay=False)
    declined = buy(app, stripe_server, {a.isbn13: 1}, card="4000000000000002", confirm=False)
    paid = buy(app, stripe_server, {a.isbn13: 1}, confirm=False)
    assert sweep(app).canceled == []  # a customer may still be paying: nothing is canceled yet
    assert order(app, waiting.reference)["status"] == "pending"

    report = sweep(app, now=time.time() + LATER)
    assert sorted(report.canceled) == sorted([waiting.reference, declined.reference])
    client = stripe_server.client()
    for purchase in (waiting, declined):
        assert client.v1.payment_intents.retrieve(purchase.intent).status == "canceled"
        assert order(app, purchase.reference)["status"] == "canceled"
    assert order(app, paid.reference)["status"] == "paid"
    assert sweep(app, now=time.time() + LATER).canceled == []  # canceling is done once


def test_pending_order_without_any_intent_is_canceled_when_abandoned(app, stripe_server):
    with closing(ledger(app)) as db:
        row = orders.open_checkout(db, attempt="x", lines=[], currency="USD", hold=False)
    assert sweep(app).canceled == []
    assert sweep(app, now=time.time() + LATER).canceled == [row["reference"]]
    assert order(app, row["reference"])["last_error"] == "No payment was started."


def intent(stripe_server, kiosk_id, amount=1000, items="9783434922599x1", ref="BK-ZZZZ-ZZZZ"):
    """An intent made straight at Stripe, with kiosk metadata, as if by a kiosk whose ledger is gone."""
    return stripe_server.client().v1.payment_intents.create({
        "amount": amount, "currency": "usd", "allowed_payment_method_types": ["card"],
        "metadata": {"kiosk_id": kiosk_id, "order_ref": ref, "items": items}})


def test_other_kiosks_intents_are_left_alone(app, stripe_server):
    theirs_paid, theirs_open = intent(stripe_server, "kiosk_other"), intent(stripe_server, "kiosk_other")
    stripe_server.pay(theirs_paid.id)
    report = sweep(app, now=time.time() + LATER)
    assert (report.adopted, report.canceled) == ([], [])
    assert stripe_server.client().v1.payment_intents.retrieve(theirs_open.id).status == "requires_payment_method"
    assert count(app, "SELECT COUNT(*) FROM orders") == 0


def test_our_intent_with_no_order_is_canceled_when_abandoned(app, stripe_server):
    ours = intent(stripe_server, app.extensions["kiosk"].kiosk_id)
    assert sweep(app).canceled == []
    assert sweep(app, now=time.time() + LATER).canceled == [ours.id]
    assert stripe_server.client().v1.payment_intents.retrieve(ours.id).status == "canceled"


def test_adopted_order_keeps_a_taken_reference_free(app, stripe_server):
    kept = buy(app, stripe_server, {books(app)[0].isbn13: 1})
    # Another paid intent of ours claims the same reference (e.g. a restored ledger reused it).
    stray = intent(stripe_server, app.extensions["kiosk"].kiosk_id, amount=1299, ref=kept.reference)
    stripe_server.pay(stray.id)
    (adopted,) = sweep(app).adopted
    assert adopted != kept.reference and adopted.startswith(kept.reference)
    assert order(app, kept.reference)["payment_intent"] == kept.intent
    assert order(app, adopted)["payment_intent"] == stray.id


def test_items_metadata_split_across_keys():
    metadata = {"items": "9783434922599x2,9782031511977x1", "items_2": "9789067349192x3", "items_10": "9785425955470x1",
                "kiosk_id": "k", "order_ref": "BK"}
    assert stripe_terms.items_from_metadata(metadata) == [
        ("9783434922599", 2), ("9782031511977", 1), ("9789067349192", 3), ("9785425955470", 1)]
    assert stripe_terms.items_from_metadata({"items": "junk,97834349x"}) == []


def test_watermark_holds_back_for_intents_that_may_still_be_paid(app, stripe_server):
    before = time.time()
    waiting = buy(app, stripe_server, {books(app)[0].isbn13: 1}, pay=False)
    sweep(app)
    created = stripe_server.client().v1.payment_intents.retrieve(waiting.intent).created
    with closing(ledger(app)) as db:
        assert int(get_meta(db, reconcile.mine(reconcile.WATERMARK, app.extensions["kiosk"]))) == created
    sweep(app, now=time.time() + LATER)  # canceled: nothing holds the watermark back any more
    with closing(ledger(app)) as db:
        assert int(get_meta(db, reconcile.mine(reconcile.WATERMARK, app.extensions["kiosk"]))) >= before + LATER - 1


def test_stripe_down_is_logged_and_retried(app, stripe_server, caplog):
    purchase = buy(app, stripe_server, {books(app)[0].isbn13: 1}, confirm=False)
    reconciler = reconcile.Reconciler(app)
    stripe_server.inject("500", ("GET", r"/v1/payment_intents"))
    assert reconciler.run_once() is None
    assert "unreachable" in caplog.text and order(app, purchase.reference)["status"] == "pending"
    with closing(ledger(app)) as db:
        assert "unreachable" in get_meta(db, reconcile.mine(reconcile.LAST_RESULT, app.extensions["kiosk"]))
    stripe_server.clear_faults()
    assert reconciler.run_once().settled == [purchase.reference]


def test_one_order_stripe_cannot_answer_does_not_stop_the_others(app, stripe_server):
    a = books(app)[0]
    first = buy(app, stripe_server, {a.isbn13: 1}, confirm=False)
    second = buy(app, stripe_server, {a.isbn13: 1}, confirm=False)
    with closing(ledger(app)) as db:  # the first is older than the watermark, so it must be retrieved
        set_meta(db, reconcile.mine(reconcile.WATERMARK, app.extensions["kiosk"]), int(time.time()) + 3600)
    stripe_server.inject("500", ("GET", rf"/v1/payment_intents/{first.intent}"))
    report = sweep(app)
    assert report.settled == [second.reference] and first.reference in report.errors[0]
    assert order(app, first.reference)["status"] == "pending"


def test_thread_sweeps_at_start_up_and_on_its_timer(tmp_path, stripe_server):
    settings = make_settings(tmp_path, stripe_server)
    app = create_app(settings, testing=True)
    purchase = buy(app, stripe_server, {books(app)[0].isbn13: 1}, confirm=False)
    settings.reconcile_seconds = 0.2
    app = create_app(settings, testing=True)
    app.extensions["kiosk"].start_background()  # as python -m kiosk does once it serves
    try:
        deadline = time.time() + 10
        while order(app, purchase.reference)["status"] != "paid" and time.time() < deadline:
            time.sleep(0.05)
        assert order(app, purchase.reference)["status"] == "paid"  # the start-up sweep
        later = buy(app, stripe_server, {books(app)[1].isbn13: 1}, confirm=False)
        while order(app, later.reference)["status"] != "paid" and time.time() < deadline:
            time.sleep(0.05)
        assert order(app, later.reference)["status"] == "paid"  # a timed sweep
    finally:
        app.extensions["kiosk"].reconciler.stop()


def test_reconciler_is_off_in_tests_unless_asked(app):
    assert app.extensions["kiosk"].reconciler._thread is None


def test_adopting_without_readable_items_still_records_the_sale(app, stripe_server):
    odd = intent(stripe_server, app.extensions["kiosk"].kiosk_id, amount=555, items="garbled")
    stripe_server.pay(odd.id)
    (reference,) = sweep(app).adopted
    row = order(app, reference)
    assert (row["status"], row["amount"]) == ("paid", 555)
    assert "could not be identified" in row["note"] and "total 0.00, not the 5.55 USD charged" in row["note"]



def test_a_book_listed_twice_in_the_metadata_is_one_line():
    assert stripe_terms.items_from_metadata({"items": "9783434922599x1,9783434922599x2"}) == [("9783434922599", 3)]
