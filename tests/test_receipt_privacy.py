"""A receipt emailed from the kiosk: Stripe keeps the customer's address to send it; the kiosk keeps no copy,
neither in its session store, its ledger, a cookie nor its log."""
import logging

import pytest

from kiosk.visit.sessions import FLASH_COOKIE, KioskSessionInterface
from tests.test_experience import buy, receipt_ref

ADDRESS = "reader.private@example.com"


def files_holding(app, text):
    """The kiosk's data files (SQLite databases with their journals) in which `text` appears."""
    folder = app.extensions["kiosk"].settings.data_dir
    return [p.name for p in folder.rglob("*") if p.is_file() and text.encode() in p.read_bytes()]


def cookies_holding(client, app, text):
    """The browser's cookies that hold `text`, the signed message cookie read as the kiosk reads it."""
    found = []
    for cookie in client.http._cookies.values():
        value = cookie.value
        if cookie.key == FLASH_COOKIE:
            value = str(KioskSessionInterface._notes(app).loads(value))
        if text in value:
            found.append(cookie.key)
    return found


@pytest.mark.parametrize("script", [False, True], ids=["page", "script"])
def test_a_receipt_sent_leaves_no_copy_of_the_address(client, app, stripe_server, caplog, script):
    caplog.set_level(logging.DEBUG, logger="kiosk")
    path, intent_id = buy(client, app, stripe_server)
    headers = {"Accept": "application/json"} if script else {}
    reply = client.post("/receipt/email", data={"ref": receipt_ref(client, path), "email": ADDRESS}, headers=headers)
    assert reply.status_code == (200 if script else 303)
    assert stripe_server.client().v1.payment_intents.retrieve(intent_id).receipt_email == ADDRESS
    assert files_holding(app, ADDRESS) == [] and cookies_holding(client, app, ADDRESS) == []
    page = client.get(path).get_data(as_text=True)  # the message shown, then gone
    if not script:
        assert "Saved. In test mode Stripe does not send the email" in page
    assert ADDRESS not in page
    assert files_holding(app, ADDRESS) == [] and cookies_holding(client, app, ADDRESS) == []
    assert [r for r in caplog.records if r.name.startswith("kiosk") and ADDRESS in r.getMessage()] == []
