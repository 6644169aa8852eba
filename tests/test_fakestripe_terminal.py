"""The simulated Stripe Terminal in tests/fakestripe_terminal.py, driven through stripe-python as the kiosk would."""
import pytest
import requests
import stripe

from tests.support import fakestripe_terminal as terminal

ADDRESS = {"line1": "1234 Main Street", "city": "San Francisco", "postal_code": "94111", "state": "CA",
           "country": "US"}


@pytest.fixture
def fake(stripe_server):
    """The FakeStripe (its routes include the Terminal ones), emptied for this test."""
    return stripe_server


@pytest.fixture
def client(fake):
    """stripe-python on the fake, as the kiosk's server code would use it."""
    return fake.client()


@pytest.fixture
def location(client):
    """A Terminal location, as Stripe's guide creates one."""
    return client.v1.terminal.locations.create({"display_name": "My First Store", "address": ADDRESS})


@pytest.fixture
def reader(client, location):
    """A simulated WisePOS E registered at the location."""
    return client.v1.terminal.readers.create({"registration_code": "simulated-wpe", "label": "Till 1",
                                              "location": location.id})


def in_person_intent(client, amount=1234, **params):
    """A PaymentIntent a reader may take."""
    return client.v1.payment_intents.create({"amount": amount, "currency": "usd",
                                             "allowed_payment_method_types": ["card_present"], **params})


def tap(client, reader, number=None):
    """The customer taps a card on the simulated reader; returns the reader."""
    params = {"card_present": {"number": number}, "type": "card_present"} if number else None
    return client.v1.test_helpers.terminal.readers.present_payment_method(reader.id, params)


def charge_of(client, intent_id):
    """The intent's latest charge, as a stripe-python object."""
    return client.v1.charges.retrieve(client.v1.payment_intents.retrieve(intent_id).latest_charge)


def stripe_error(call, kind=stripe.InvalidRequestError):
    """The Stripe error a call raises."""
    with pytest.raises(kind) as caught:
        call()
    return caught.value


def test_location_is_created_retrieved_listed_updated_and_deleted(client, location):
    assert location.id.startswith("tml_") and location.object == "terminal.location"
    assert (location.display_name, location.livemode, location.metadata.to_dict()) == ("My First Store", False, {})
    assert location.address.to_dict() == {**ADDRESS, "line2": ""}
    assert "created" not in location
    assert client.v1.terminal.locations.retrieve(location.id).id == location.id
    assert [loc.id for loc in client.v1.terminal.locations.list().data] == [location.id]
    updated = client.v1.terminal.locations.update(location.id, {"display_name": "Back shop",
                                                                "metadata": {"floor": "1"}})
    assert (updated.display_name, updated.metadata.to_dict()) == ("Back shop", {"floor": "1"})
    assert client.v1.terminal.locations.delete(location.id).deleted is True
    assert stripe_error(lambda: client.v1.terminal.locations.retrieve(location.id)).http_status == 404


def test_location_needs_a_name_and_a_country(fake, client):
    error = stripe_error(lambda: client.v1.terminal.locations.create({"address": ADDRESS}))
    assert (error.http_status, error.code, error.param) == (400, "parameter_missing", "display_name")
    error = stripe_error(lambda: client.v1.terminal.locations.create(
        {"display_name": "Shop", "address": {"line1": "1 High Street"}}))
    assert (error.code, error.param) == ("parameter_missing", "address[country]")
    # The SDK's LocationCreateParamsAddress requires country: the contract check refuses it before the fake.
    assert [(v.code, v.param) for v in fake.expect_violations()] == [("parameter_missing", "address[country]")]


def test_simulated_reader_has_stripes_shape(client, reader, location):
    assert reader.id.startswith("tmr_") and reader.object == "terminal.reader"
    assert (reader.device_type, reader.status, reader.action) == ("simulated_wisepos_e", "online", None)
    assert (reader.label, reader.location, reader.livemode, reader.metadata.to_dict()) == (
        "Till 1", location.id, False, {})
    assert reader.serial_number.startswith("simulated-wpe-")
    assert (reader.ip_address, reader.device_sw_version) == ("0.0.0.0", "")  # noqa: S104 - Stripe's value
    assert isinstance(reader.last_seen_at, int) and "created" not in reader
    unlabelled = client.v1.terminal.readers.create({"registration_code": "simulated-wpe", "location": location.id})
    assert unlabelled.label == unlabelled.serial_number


def test_reader_registration_errors(client, location):
    error = stripe_error(lambda: client.v1.terminal.readers.create({"registration_code": "purple-monkey-dishwasher",
                                                                    "location": location.id}))
    assert (error.http_status, error.param) == (400, "registration_code")
    error = stripe_error(lambda: client.v1.terminal.readers.create({"registration_code": "simulated-wpe",
                                                                    "location": "tml_nowhere"}))
    assert (error.http_status, error.code, error.param) == (400, "resource_missing", "location")
    error = stripe_error(lambda: client.v1.terminal.readers.retrieve("tmr_nothere"))
    assert (error.http_status, error.code) == (404, "resource_missing")


def test_readers_list_by_location_and_status_newest_first(client, location):
    other = client.v1.terminal.locations.create({"display_name": "Annexe", "address": ADDRESS})
    first, second, third = (client.v1.terminal.readers.create({"registration_code": "simulated-wpe",
                                                               "location": loc.id})
                            for loc in (location, location, other))
    terminal.set_offline(second.id)
    listed = client.v1.terminal.readers.list
    assert [r.id for r in listed().data] == [third.id, second.id, first.id]
    assert [r.id for r in listed({"location": location.id}).data] == [second.id, first.id]
    assert [r.id for r in listed({"status": "offline"}).data] == [second.id]
    assert [r.id for r in listed({"status": "online", "location": location.id}).data] == [first.id]
    page = listed({"limit": 1})
    assert [r.id for r in page.data] == [third.id] and page.has_more is True
    assert [r.id for r in listed({"limit": 2, "starting_after": third.id}).data] == [second.id, first.id]
    assert [r.id for r in listed({"limit": 1}).auto_paging_iter()] == [third.id, second.id, first.id]


def test_reader_update_expand_and_delete(client, reader, location):
    updated = client.v1.terminal.readers.update(reader.id, {"label": "Front till", "metadata": {"till": "1"}})
    assert (updated.label, updated.metadata.to_dict()) == ("Front till", {"till": "1"})
    expanded = client.v1.terminal.readers.retrieve(reader.id, {"expand": ["location"]})
    assert expanded.location.id == location.id and expanded.location.display_name == "My First Store"
    assert client.v1.terminal.readers.delete(reader.id).deleted is True
    assert stripe_error(lambda: client.v1.terminal.readers.retrieve(reader.id)).http_status == 404


def test_intents_keep_their_payment_method_types(client):
    assert client.v1.payment_intents.create({"amount": 500, "currency": "usd"}).payment_method_types == ["card"]
    assert in_person_intent(client).payment_method_types == ["card_present"]


def test_tap_pays_the_intent_with_a_card_present_charge(client, reader, location):
    intent = in_person_intent(client)
    waiting = client.v1.terminal.readers.process_payment_intent(reader.id, {"payment_intent": intent.id})
    assert waiting.action.to_dict() == {
        "failure_code": None, "failure_message": None, "process_payment_intent": {"payment_intent": intent.id},
        "status": "in_progress", "type": "process_payment_intent"}
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_payment_method"

    tapped = tap(client, reader)
    assert (tapped.action.status, tapped.action.failure_code) == ("succeeded", None)
    assert client.v1.terminal.readers.retrieve(reader.id).action.status == "succeeded"
    paid = client.v1.payment_intents.retrieve(intent.id)
    assert paid.status == "succeeded"
    method = client.v1.payment_methods.retrieve(paid.payment_method)
    assert method.type == "card_present" and method.card_present.brand == "visa"

    charge = charge_of(client, intent.id)
    assert (charge.amount, charge.status, charge.paid, charge.payment_intent) == (1234, "succeeded", True, intent.id)
    details = charge.payment_method_details
    assert details.type == "card_present"
    card = details.card_present
    assert (card.brand, card.last4, card.network, card.read_method) == ("visa", "4242", "visa", "contactless_emv")
    assert isinstance(card.exp_month, int) and isinstance(card.exp_year, int)
    assert (card.reader, card.location, card.amount_authorized) == (reader.id, location.id, 1234)
    receipt = card.receipt
    assert receipt.dedicated_file_name == "A0000000031010" and receipt.authorization_response_code == "3030"
    assert set(receipt.to_dict()) >= {
        "application_preferred_name", "dedicated_file_name", "authorization_response_code", "application_cryptogram",
        "terminal_verification_results", "transaction_status_information", "account_type",
        "cardholder_verification_method"}
    assert [ch.id for ch in client.v1.charges.list().data] == [charge.id]


def test_manual_capture_waits_for_capture(client, reader):
    intent = in_person_intent(client, capture_method="manual")
    client.v1.terminal.readers.process_payment_intent(reader.id, {"payment_intent": intent.id})
    tap(client, reader, "5555555555554444")
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_capture"
    card = charge_of(client, intent.id).payment_method_details.card_present
    assert (card.brand, card.last4, card.receipt.dedicated_file_name) == ("mastercard", "4444", "A0000000041010")
    assert card.capture_before is not None
    assert client.v1.payment_intents.capture(intent.id).status == "succeeded"


def test_declined_card_fails_the_action_and_the_same_intent_pays_on_retry(client, reader):
    intent = in_person_intent(client)
    client.v1.terminal.readers.process_payment_intent(reader.id, {"payment_intent": intent.id})
    failed = tap(client, reader, "4000000000000002")
    assert failed.action.to_dict() == {
        "failure_code": "card_declined", "failure_message": "Your card was declined.",
        "process_payment_intent": {"payment_intent": intent.id}, "status": "failed", "type": "process_payment_intent"}
    declined = client.v1.payment_intents.retrieve(intent.id)
    assert (declined.status, declined.payment_method) == ("requires_payment_method", None)
    error = declined.last_payment_error
    assert (error.type, error.code, error.decline_code, error.message) == (
        "card_error", "card_declined", "generic_decline", "Your card was declined.")
    assert error.payment_method.type == "card_present" and error.charge == declined.latest_charge
    assert charge_of(client, intent.id).payment_method_details.card_present.receipt.authorization_response_code \
        == "3035"

    # Stripe's guide: re-use the same PaymentIntent after a decline, handing it to the reader again.
    client.v1.terminal.readers.process_payment_intent(reader.id, {"payment_intent": intent.id})
    assert tap(client, reader).action.status == "succeeded"
    assert client.v1.payment_intents.retrieve(intent.id).status == "succeeded"
    charges = [ch for ch in client.v1.charges.list().data if ch.payment_intent == intent.id]
    assert sorted(ch.status for ch in charges) == ["failed", "succeeded"]


@pytest.mark.parametrize("number, code, decline_code, message", [
    ("4000000000009995", "card_declined", "insufficient_funds", "Your card has insufficient funds."),
    ("4000000000000069", "expired_card", "expired_card", "Your card has expired."),
])
def test_each_decline_card_gives_its_own_code(client, reader, number, code, decline_code, message):
    intent = in_person_intent(client)
    client.v1.terminal.readers.process_payment_intent(reader.id, {"payment_intent": intent.id})
    action = tap(client, reader, number).action
    assert (action.status, action.failure_code, action.failure_message) == ("failed", code, message)
    error = client.v1.payment_intents.retrieve(intent.id).last_payment_error
    assert (error.code, error.decline_code) == (code, decline_code)


def test_reader_refuses_an_intent_without_card_present(client, reader):
    intent = client.v1.payment_intents.create({"amount": 500, "currency": "usd",
                                               "allowed_payment_method_types": ["card"]})
    error = stripe_error(lambda: client.v1.terminal.readers.process_payment_intent(
        reader.id, {"payment_intent": intent.id}))
    assert (error.http_status, error.param) == (400, "payment_intent")
    assert client.v1.terminal.readers.retrieve(reader.id).action is None


def test_reader_refuses_an_intent_already_paid_or_canceled(client, reader):
    paid = in_person_intent(client)
    client.v1.terminal.readers.process_payment_intent(reader.id, {"payment_intent": paid.id})
    tap(client, reader)
    canceled = client.v1.payment_intents.cancel(in_person_intent(client).id)
    for intent in (paid, canceled):
        error = stripe_error(lambda intent=intent: client.v1.terminal.readers.process_payment_intent(
            reader.id, {"payment_intent": intent.id}))
        assert (error.http_status, error.code) == (400, "intent_invalid_state")


def test_waiting_reader_takes_a_new_intent_instead_of_answering_busy(client, reader):
    first, second = in_person_intent(client, 100), in_person_intent(client, 200)
    client.v1.terminal.readers.process_payment_intent(reader.id, {"payment_intent": first.id})
    replaced = client.v1.terminal.readers.process_payment_intent(reader.id, {"payment_intent": second.id})
    assert (replaced.action.process_payment_intent.payment_intent, replaced.action.status) == (second.id, "in_progress")
    tap(client, reader)
    assert client.v1.payment_intents.retrieve(second.id).status == "succeeded"
    assert client.v1.payment_intents.retrieve(first.id).status == "requires_payment_method"


def test_busy_reader_answers_terminal_reader_busy(client, reader):
    intent = in_person_intent(client)
    terminal.set_busy(reader.id)
    for call in (lambda: client.v1.terminal.readers.process_payment_intent(reader.id, {"payment_intent": intent.id}),
                 lambda: client.v1.terminal.readers.cancel_action(reader.id)):
        error = stripe_error(call)
        assert (error.http_status, error.code) == (400, "terminal_reader_busy")
        assert error.json_body["error"]["type"] == "invalid_request_error"
    terminal.set_busy(reader.id, False)
    assert client.v1.terminal.readers.process_payment_intent(
        reader.id, {"payment_intent": intent.id}).action.status == "in_progress"


def test_offline_reader_answers_terminal_reader_offline(client, reader):
    intent = in_person_intent(client)
    client.v1.terminal.readers.process_payment_intent(reader.id, {"payment_intent": intent.id})
    terminal.set_offline(reader.id)
    shown = client.v1.terminal.readers.retrieve(reader.id)
    assert shown.status == "offline" and shown.action.status == "in_progress"  # left as it was, as Stripe's guide says
    for call in (lambda: client.v1.terminal.readers.process_payment_intent(reader.id, {"payment_intent": intent.id}),
                 lambda: client.v1.terminal.readers.cancel_action(reader.id), lambda: tap(client, reader)):
        error = stripe_error(call)
        assert (error.http_status, error.code) == (400, "terminal_reader_offline")
    terminal.set_offline(reader.id, False)
    assert tap(client, reader).action.status == "succeeded"


def test_config_route_steers_a_reader_without_a_key(fake, client, reader):
    url = f"{fake.url}/_config/terminal/readers/{reader.id}"
    assert requests.post(url, data={"offline": "true"}, timeout=10).json()["status"] == "offline"
    assert client.v1.terminal.readers.retrieve(reader.id).status == "offline"
    assert requests.post(url, data={"offline": "false", "busy": "true"}, timeout=10).json()["status"] == "online"
    error = stripe_error(lambda: client.v1.terminal.readers.cancel_action(reader.id))
    assert error.code == "terminal_reader_busy"
    assert requests.post(url, data={"busy": "false"}, timeout=10).status_code == 200
    assert requests.post(url, data={"colour": "red"}, timeout=10).status_code == 400
    assert requests.post(f"{fake.url}/_config/terminal/readers/tmr_nothere", data={"busy": "true"},
                         timeout=10).status_code == 404


def test_helpers_name_a_missing_reader(fake):
    with pytest.raises(LookupError):
        terminal.set_offline("tmr_nothere")


def test_cancel_action_frees_the_reader_and_leaves_the_intent(client, reader):
    intent = in_person_intent(client)
    client.v1.terminal.readers.process_payment_intent(reader.id, {"payment_intent": intent.id})
    assert client.v1.terminal.readers.cancel_action(reader.id).action is None
    assert client.v1.payment_intents.retrieve(intent.id).status == "requires_payment_method"
    error = stripe_error(lambda: tap(client, reader))
    assert error.http_status == 400
    assert client.v1.terminal.readers.process_payment_intent(
        reader.id, {"payment_intent": intent.id}).action.status == "in_progress"


def test_canceled_intent_cannot_be_tapped(client, reader):
    intent = in_person_intent(client)
    client.v1.terminal.readers.process_payment_intent(reader.id, {"payment_intent": intent.id})
    client.v1.payment_intents.cancel(intent.id)
    assert stripe_error(lambda: tap(client, reader)).code == "intent_invalid_state"


def test_expanding_the_action_intent_leaves_the_reader_alone(client, reader):
    intent = in_person_intent(client)
    client.v1.terminal.readers.process_payment_intent(reader.id, {"payment_intent": intent.id})
    expanded = client.v1.terminal.readers.retrieve(
        reader.id, {"expand": ["action.process_payment_intent.payment_intent"]})
    assert expanded.action.process_payment_intent.payment_intent.amount == 1234
    assert client.v1.terminal.readers.retrieve(reader.id).action.process_payment_intent.payment_intent == intent.id


def test_process_config_is_kept_on_the_action(fake, client, reader):
    intent = in_person_intent(client)
    action = client.v1.terminal.readers.process_payment_intent(
        reader.id, {"payment_intent": intent.id, "process_config": {"enable_customer_cancellation": True}}).action
    assert action.process_payment_intent.process_config.enable_customer_cancellation is True
    error = stripe_error(lambda: client.v1.terminal.readers.process_payment_intent(
        reader.id, {"payment_intent": intent.id, "process_config": {"tip_jar": "yes"}}))
    assert error.code == "parameter_unknown"
    assert [v.param for v in fake.expect_violations()] == ["process_config[tip_jar]"]


def test_card_cannot_pay_an_in_person_only_intent(fake, client):
    intent = in_person_intent(client)
    error = stripe_error(lambda: fake.pay(intent.id))
    assert error.http_status == 400 and "not allowed for this PaymentIntent" in error.user_message
    assert client.v1.payment_intents.retrieve(intent.id).status != "succeeded"


def test_online_card_payments_still_work(fake, client):
    intent = client.v1.payment_intents.create({"amount": 700, "currency": "usd",
                                               "allowed_payment_method_types": ["card"]})
    assert fake.pay(intent.id) == "succeeded"
    assert fake.pay(client.v1.payment_intents.create({"amount": 700, "currency": "usd"}).id,
                    card="4000000000000002") == "requires_payment_method"


def test_reader_actions_send_stripes_webhook_events(client, reader):
    for number in (None, "4000000000000002"):
        intent = in_person_intent(client)
        client.v1.terminal.readers.process_payment_intent(reader.id, {"payment_intent": intent.id})
        tap(client, reader, number)
    events = client.v1.events.list({"limit": 100}).data
    types = [event.type for event in events]
    assert types.count("terminal.reader.action_succeeded") == 1 and types.count("terminal.reader.action_failed") == 1
    failed = next(event for event in events if event.type == "terminal.reader.action_failed")
    assert failed.data.object.action.failure_code == "card_declined"


def test_fault_routes_match_terminal_paths(fake, client, reader):
    fault = fake.inject("500", terminal.PROCESS_PAYMENT_INTENT, times=1)
    intent = in_person_intent(client)
    stripe_error(lambda: client.v1.terminal.readers.process_payment_intent(reader.id, {"payment_intent": intent.id}),
                 stripe.APIError)
    assert fault.hits == 1
