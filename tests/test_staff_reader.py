"""Staff → Card reader: the readers with their status, registering one from its code (with a new location), and
choosing the one this counter's checkout offers."""
import pytest

from kiosk import create_app
from tests.support import fakestripe_terminal
from tests.support.client import KioskClient, signed_in
from tests.support.settings import make_settings

PIN = "2468"


@pytest.fixture
def app(tmp_path, stripe_server):
    settings = make_settings(tmp_path, stripe_server, KIOSK_STAFF_PIN=PIN,
                             KIOSK_SHOP_ADDRESS="1 Market Street|Springfield|62701")
    return create_app(settings, testing=True)


@pytest.fixture
def staff(app):
    return signed_in(app, PIN)


def page(client):
    reply = client.get("/staff/reader")
    body = reply.get_data(as_text=True)
    assert reply.status_code == 200 and "Traceback" not in body
    return body


def test_register_a_simulated_reader_at_a_new_location_and_use_it(app, staff, stripe_server):
    body = page(staff)
    assert "No reader is registered" in body and 'value="1 Market Street"' in body and 'value="US"' in body
    form = {"registration_code": "simulated-wpe", "label": "Front till", "location": "new", "display_name": "Shop",
            "line1": "1 Market Street", "city": "Springfield", "state": "IL", "postal_code": "62701",
            "country": "us", "request_key": "k1"}
    assert staff.post("/staff/reader/register", data=form).status_code == 302
    assert staff.post("/staff/reader/register", data=form).status_code == 302  # sent twice: registered once
    [reader] = stripe_server.client().v1.terminal.readers.list().data
    [location] = stripe_server.client().v1.terminal.locations.list().data
    assert reader.label == "Front till" and reader.location == location.id and location.address.country == "US"
    body = page(staff)
    assert f"This counter uses the reader <code>{reader.id}</code>" in body and "online" in body
    shopper = KioskClient(app)
    shopper.add(app.extensions["kiosk"].catalog.books[0].isbn13)
    assert "Pay with the card reader" in shopper.get("/checkout/").get_data(as_text=True)

    fakestripe_terminal.set_offline(reader.id)
    assert "offline" in page(staff)
    assert staff.post("/staff/reader/choose", data={"reader": ""}).status_code == 302
    assert "uses no card reader" in page(staff)
    assert "Pay with the card reader" not in shopper.get("/checkout/").get_data(as_text=True)


def test_bad_registration_input_is_said_and_nothing_is_made(staff, stripe_server):
    reply = staff.post("/staff/reader/register", data={"registration_code": "x", "location": "new"},
                       follow_redirects=True)
    assert "Type the registration code the reader shows" in reply.get_data(as_text=True)
    reply = staff.post("/staff/reader/register", data={"registration_code": "wrong-code-here", "location": "new",
                                                       "line1": "1 Main", "city": "Town", "country": "US",
                                                       "state": "CA", "postal_code": "90000"}, follow_redirects=True)
    assert "The reader was not registered" in reply.get_data(as_text=True)
    reply = staff.post("/staff/reader/register", data={"registration_code": "simulated-wpe", "location": "new",
                                                       "city": "Town"}, follow_redirects=True)
    assert "A new location needs at least the street" in reply.get_data(as_text=True)
    reply = staff.post("/staff/reader/choose", data={"reader": "tmr_<script>"}, follow_redirects=True)
    assert "That is not a reader id." in reply.get_data(as_text=True)
    assert stripe_server.client().v1.terminal.readers.list().data == []


def test_a_malformed_reader_setting_is_a_warning_and_the_card_form_stays(tmp_path, stripe_server):
    settings = make_settings(tmp_path, stripe_server, STRIPE_TERMINAL_READER="reader-one")
    [problem] = [p for p in settings.problems if p.setting == "STRIPE_TERMINAL_READER"]
    assert problem.warning and not problem.fatal and settings.terminal_reader == "" and settings.payments_ready
