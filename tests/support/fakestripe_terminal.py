"""Stripe Terminal, server-driven, for the in-process localstripe: locations, simulated readers, card-present payments.

localstripe has no Terminal endpoints. `install(app)` adds them to the aiohttp Application that
tests/support/fakestripe.py builds, before it starts; importing this module patches localstripe's PaymentIntent
so that a reader pays an intent through localstripe's own PaymentIntent and Charge objects. Shapes follow
Stripe's API reference; each patch and each choice names the real-Stripe behaviour it copies.

Tests steer a reader with `set_offline` and `set_busy`, or over HTTP with POST /_config/terminal/readers/{id}
(localstripe leaves /_config/ unauthenticated), for a kiosk running in another process.
"""
import copy
import itertools
import random
import time
import uuid
import warnings

with warnings.catch_warnings():
    # localstripe imports an aiohttp API that warns as deprecated.
    warnings.simplefilter("ignore", DeprecationWarning)
    import localstripe.resources as ls_resources
    import localstripe.server as ls_server
    from localstripe.errors import UserError
    from localstripe.webhooks import schedule_webhook

# Routes for FakeStripe.inject, in the style of fakestripe.CREATE_INTENT.
PROCESS_PAYMENT_INTENT = ("POST", r"/v1/terminal/readers/tmr_\w+/process_payment_intent")
CANCEL_ACTION = ("POST", r"/v1/terminal/readers/tmr_\w+/cancel_action")
RETRIEVE_READER = ("GET", r"/v1/terminal/readers/tmr_\w+")
PRESENT_PAYMENT_METHOD = ("POST", r"/v1/test_helpers/terminal/readers/tmr_\w+/present_payment_method")

# Stripe's registration codes for simulated readers ("Connect to a reader": simulated-wpe, simulated-s700).
SIMULATED_READERS = {"simulated-wpe": "simulated_wisepos_e", "simulated-s700": "simulated_stripe_s700"}

# The card a simulated reader reads when present_payment_method names none ("Test Stripe Terminal": card_present
# defaults to 4242424242424242, visa).
DEFAULT_CARD = "4242424242424242"

# Stripe's server-driven integration guide, which its Terminal error messages point to (on two hosts).
GUIDE = "terminal/payments/collect-card-payment?terminal-sdk-platform=server-driven"

# Terminal test cards that decline ("Test Stripe Terminal", error cases): number -> (code, decline_code, message).
DECLINES = {
    "4000000000000002": ("card_declined", "generic_decline", "Your card was declined."),
    "4000000000009995": ("card_declined", "insufficient_funds", "Your card has insufficient funds."),
    "4000000000009987": ("card_declined", "lost_card", "Your card was declined."),
    "4000000000009979": ("card_declined", "stolen_card", "Your card was declined."),
    "4000000000000069": ("expired_card", "expired_card", "Your card has expired."),
    "4000000000000119": ("processing_error", "processing_error",
                         "An error occurred while processing your card. Try again in a little bit."),
}

# Standard Terminal test cards whose funding is not credit ("Test Stripe Terminal", standard test cards).
FUNDING = {"4000056655665556": "debit", "5200828282828210": "debit", "5105105105105100": "prepaid"}

# Test cards that verify the cardholder by PIN: number -> (cardholder_verification_method, read_method).
PIN_CARDS = {"4001007020000002": ("offline_pin", "contact_emv"), "4001000360000005": ("online_pin", "contactless_emv")}

# Card brand by number prefix, longest first, and the EMV application id (AID, `dedicated_file_name`) each uses.
BRANDS = (("3056", "diners"), ("36", "diners"), ("34", "amex"), ("37", "amex"), ("35", "jcb"),
          ("6011", "discover"), ("62", "unionpay"), ("4", "visa"), ("5", "mastercard"), ("2", "mastercard"))
AIDS = {"visa": "A0000000031010", "mastercard": "A0000000041010", "amex": "A00000002501",
        "discover": "A0000001523010", "diners": "A0000001523010", "jcb": "A0000000651010",
        "unionpay": "A000000333010101"}

_order = itertools.count()  # creation order: Stripe lists newest first, and `created` has one-second steps


def _now_ms():
    """Now in milliseconds: Reader.last_seen_at is the one Stripe timestamp not in seconds."""
    return int(time.time() * 1000)


def _hex(n):
    """n random upper-case hex digits, as EMV receipt fields are written."""
    return "".join(random.choice("0123456789ABCDEF") for _ in range(n))


def _unknown(params):
    """Stripe's answer to a parameter it does not take."""
    name = sorted(params)[0]
    return UserError(400, f"Received unknown parameter: {name}", {"code": "parameter_unknown", "param": name})


def _missing(name):
    """Stripe's answer to a required parameter left out."""
    return UserError(400, f"Missing required param: {name}.", {"code": "parameter_missing", "param": name})


def _no_such(kind, id, param=None):
    """Stripe's resource_missing: 404 for the object in the path, 400 for one a parameter names."""
    contents = {"code": "resource_missing"}
    if param is not None:
        contents["param"] = param
    return UserError(404 if param is None else 400, f"No such {kind}: '{id}'", contents)


def _offline_error():
    """terminal_reader_offline, word for word from Stripe's server-driven guide ("Reader offline")."""
    return UserError(400, "Reader is currently offline, please ensure the reader is powered on and connected to the "
                          "internet before retrying your request. Reference the integration guide at "
                          f"https://docs.stripe.com/{GUIDE}#reader-offline for details on how to handle this error.",
                     {"code": "terminal_reader_offline",
                      "doc_url": "https://docs.stripe.com/error-codes#terminal-reader-offline"})


def _busy_error():
    """terminal_reader_busy, word for word from Stripe's server-driven guide ("Reader busy")."""
    # (The guide's example gives doc_url the timeout anchor; this one names busy's own.)
    return UserError(400, "Reader is currently busy processing another request. Please reference the integration "
                          f"guide at https://stripe.com/docs/{GUIDE}#handle-errors for details on how to handle "
                          "this error.",
                     {"code": "terminal_reader_busy",
                      "doc_url": "https://docs.stripe.com/error-codes#terminal-reader-busy"})


def _invalid_state_error():
    """intent_invalid_state, word for word from Stripe's server-driven guide ("Avoiding double charges")."""
    # The guide: "An authorized, captured, or canceled PaymentIntent can't be processed by a reader".
    return UserError(400, "Payment intent must be in the requires_payment_method state to be processed by a reader.",
                     {"code": "intent_invalid_state",
                      "doc_url": "https://docs.stripe.com/error-codes#intent-invalid-state"})


def _bool(value, name):
    """A boolean parameter as Stripe takes it: true/false, sent as a form string."""
    value = ls_resources.try_convert_to_bool(value)
    if not isinstance(value, bool):
        raise UserError(400, f"Invalid boolean: {value}", {"param": name})
    return value


def _merge_metadata(current, metadata):
    """Stripe's metadata update: keys merge, an empty value unsets its key, and an empty metadata unsets all."""
    if metadata == "":
        return {}
    if not isinstance(metadata, dict):
        raise UserError(400, "Invalid object", {"param": "metadata"})
    merged = dict(current)
    for key, value in metadata.items():
        if value == "":
            merged.pop(key, None)
        else:
            merged[key] = str(value)
    return merged


def _stored(cls, id):
    """The stored object of a Terminal class by id, or Stripe's 404 resource_missing naming its type."""
    obj = ls_resources.store.get(cls.object + ":" + id)
    if obj is None:
        raise _no_such(cls.object, id)
    return obj


def _list(url, objects, limit, starting_after):
    """A localstripe List of `objects`, newest first, within Stripe's page limit of 1 to 100."""
    if ls_resources.try_convert_to_int(limit) not in (None, *range(1, 101)):
        raise UserError(400, "Invalid limit: must be an integer between 1 and 100", {"param": "limit"})
    li = ls_resources.List(url, limit=limit, starting_after=starting_after)
    li._list = sorted(objects, key=lambda obj: obj._order, reverse=True)
    return li


class Location(ls_resources.StripeObject):
    """A Terminal Location (tml_…), the place readers are registered to."""

    object = "terminal.location"
    _id_prefix = "tml_"
    _address_fields = ("city", "country", "line1", "line2", "postal_code", "state")

    def __init__(self, display_name=None, address=None, metadata=None, configuration_overrides=None, phone=None,
                 **kwargs):
        if kwargs:
            raise _unknown(kwargs)
        if display_name is None:
            raise _missing("display_name")
        address = self._checked_address(address)
        super().__init__()
        self.address = address
        self.display_name = str(display_name)
        self.metadata = _merge_metadata({}, metadata or {})
        # Stripe's Location example leaves out configuration_overrides and phone when they were never set.
        if configuration_overrides is not None:
            self.configuration_overrides = configuration_overrides
        if phone is not None:
            self.phone = phone
        self._order = next(_order)

    @classmethod
    def _checked_address(cls, address):
        """The address as Stripe echoes it: country required, fields not sent come back "" (its Location example)."""
        if address is None:
            raise _missing("address")
        if not isinstance(address, dict):
            raise UserError(400, "Invalid object", {"param": "address"})
        extra = set(address) - set(cls._address_fields)
        if extra:
            raise _unknown({f"address[{name}]" for name in extra})
        if not address.get("country"):
            raise _missing("address[country]")
        return {field: address.get(field, "") for field in cls._address_fields}

    @classmethod
    def _api_retrieve(cls, id):
        return _stored(cls, id)

    @classmethod
    def _api_update(cls, id, display_name=None, address=None, metadata=None, configuration_overrides=None,
                    phone=None, **kwargs):
        if kwargs:
            raise _unknown(kwargs)
        obj = cls._api_retrieve(id)
        address = cls._checked_address(address) if address is not None else None
        if display_name is not None:
            obj.display_name = str(display_name)
        if address is not None:
            obj.address = address
        if metadata is not None:
            obj.metadata = _merge_metadata(obj.metadata, metadata)
        if configuration_overrides is not None:
            obj.configuration_overrides = configuration_overrides
        if phone is not None:
            obj.phone = phone
        return obj

    @classmethod
    def _api_list_all(cls, url, limit=None, starting_after=None, **kwargs):
        if kwargs:
            raise _unknown(kwargs)
        objects = [obj for key, obj in ls_resources.store.items() if key.startswith(cls.object + ":")]
        return _list(url, objects, limit, starting_after)

    def _export(self, expand=None):
        obj = super()._export(expand=expand)
        obj.pop("created", None)  # Stripe's Location has no `created`
        return obj


class Reader(ls_resources.StripeObject):
    """A simulated Terminal Reader (tmr_…): online until a test says otherwise, one action at a time."""

    object = "terminal.reader"
    _id_prefix = "tmr_"

    def __init__(self, registration_code=None, label=None, location=None, metadata=None, **kwargs):
        if kwargs:
            raise _unknown(kwargs)
        if registration_code is None:
            raise _missing("registration_code")
        if registration_code not in SIMULATED_READERS:
            # Only Stripe's simulated registration codes can work here: no physical reader ever pairs with a test.
            raise UserError(400, f"The registration code '{registration_code}' is invalid or has expired. Only the "
                                 f"simulated codes {', '.join(sorted(SIMULATED_READERS))} register a reader in a "
                                 "sandbox.", {"param": "registration_code"})
        if location is not None and ls_resources.store.get(Location.object + ":" + str(location)) is None:
            raise _no_such("terminal.location", location, param="location")
        super().__init__()
        serial = f"{registration_code}-{uuid.uuid4()}"
        # The simulated reader Stripe's "Connect to a reader" guide shows: no software version, ip 0.0.0.0, and its
        # serial number as label when none is given.
        self._action = None
        self.device_sw_version = ""
        self.device_type = SIMULATED_READERS[registration_code]
        self.ip_address = "0.0.0.0"  # noqa: S104 - a value Stripe shows, not an address anything binds
        self.label = str(label) if label is not None else serial
        self.last_seen_at = _now_ms()
        self.location = location
        self.metadata = _merge_metadata({}, metadata or {})
        self.serial_number = serial
        self._offline = False
        self._busy = False
        self._order = next(_order)

    @property
    def action(self):
        """The most recent action, copied: expanding its payment_intent must not rewrite the reader's own."""
        return copy.deepcopy(self._action)

    @property
    def status(self):
        """online, or offline once a test cuts the reader off."""
        return "offline" if self._offline else "online"

    def _answer(self):
        """Reach the reader as Stripe would, or fail as Stripe does when it cannot."""
        if self._offline:
            raise _offline_error()
        if self._busy:
            raise _busy_error()
        self.last_seen_at = _now_ms()

    @classmethod
    def _api_retrieve(cls, id):
        return _stored(cls, id)

    @classmethod
    def _api_update(cls, id, label=None, metadata=None, **kwargs):
        if kwargs:
            raise _unknown(kwargs)
        obj = cls._api_retrieve(id)
        if label is not None:
            obj.label = str(label)
        if metadata is not None:
            obj.metadata = _merge_metadata(obj.metadata, metadata)
        return obj

    @classmethod
    def _api_list_all(cls, url, limit=None, starting_after=None, location=None, status=None, device_type=None,
                      serial_number=None, **kwargs):
        if kwargs:
            raise _unknown(kwargs)
        if status not in (None, "online", "offline"):
            raise UserError(400, "Invalid status: must be one of offline or online", {"param": "status"})
        wanted = {"location": location, "status": status, "device_type": device_type, "serial_number": serial_number}
        objects = [obj for key, obj in ls_resources.store.items() if key.startswith(cls.object + ":")
                   and all(value is None or getattr(obj, name) == value for name, value in wanted.items())]
        return _list(url, objects, limit, starting_after)

    @classmethod
    def _api_process_payment_intent(cls, id, payment_intent=None, process_config=None, **kwargs):
        """Hand a PaymentIntent to the reader: it waits for a card, with action in_progress."""
        if kwargs:
            raise _unknown(kwargs)
        reader = cls._api_retrieve(id)
        if payment_intent is None:
            raise _missing("payment_intent")
        intent = ls_resources.store.get(ls_resources.PaymentIntent.object + ":" + str(payment_intent))
        if intent is None:
            raise _no_such("payment_intent", payment_intent, param="payment_intent")
        config = _process_config(process_config)
        # "For Terminal payments, the payment_method_types parameter must include card_present."
        if "card_present" not in intent.payment_method_types:
            raise UserError(400, f"The PaymentIntent {intent.id} cannot be processed by a reader: its "
                                 f"payment_method_types ({', '.join(intent.payment_method_types)}) do not include "
                                 "card_present.", {"param": "payment_intent"})
        if intent.status != "requires_payment_method":
            raise _invalid_state_error()
        reader._answer()
        # "Payments that have not begun processing can be replaced with a new payment": a reader still waiting for
        # a card takes the new intent instead of answering busy (busy is for an authorization in flight: set_busy).
        handed = {"payment_intent": intent.id}
        if config:
            handed["process_config"] = config
        reader._action = {"failure_code": None, "failure_message": None, "process_payment_intent": handed,
                          "status": "in_progress", "type": "process_payment_intent"}
        return reader

    @classmethod
    def _api_cancel_action(cls, id, **kwargs):
        """Clear the reader's action: it is free again, and the intent it held is left as it was."""
        if kwargs:
            raise _unknown(kwargs)
        reader = cls._api_retrieve(id)
        reader._answer()  # an authorization in flight cannot be canceled: terminal_reader_busy (set_busy)
        reader._action = None  # Stripe's cancel_action example answers with action null
        return reader

    @classmethod
    def _api_present_payment_method(cls, id, type=None, card_present=None, amount_tip=None, card=None,
                                    interac_present=None, **kwargs):
        """Test helper: the customer taps a card on a simulated reader; the intent is paid or declined."""
        if kwargs:
            raise _unknown(kwargs)
        unsupported = {"amount_tip": amount_tip, "card": card, "interac_present": interac_present,
                       "type": None if type == "card_present" else type}
        for name, value in unsupported.items():
            if value is not None:
                # Loud rather than quietly wrong: tips, keyed-in cards and Interac are not simulated here.
                raise UserError(400, f"fakestripe_terminal simulates a tapped card_present card only, not {name}.",
                                {"param": name})
        if card_present is not None and not isinstance(card_present, dict):
            raise UserError(400, "Invalid object", {"param": "card_present"})
        number = (card_present or {}).get("number") or DEFAULT_CARD
        if not (isinstance(number, str) and number.isdigit() and 13 <= len(number) <= 19):
            raise UserError(400, "Invalid card number.", {"param": "card_present[number]"})
        reader = cls._api_retrieve(id)
        reader._answer()
        action = reader._action
        if action is None or action["status"] != "in_progress" or action["type"] != "process_payment_intent":
            raise UserError(400, "This reader has no action waiting for a payment method: call "
                                 "process_payment_intent first.", {"param": "reader"})
        intent = ls_resources.PaymentIntent._api_retrieve(action["process_payment_intent"]["payment_intent"])
        if intent.status != "requires_payment_method":  # canceled, say, while the reader waited
            raise _invalid_state_error()
        method = CardPresentPaymentMethod(number, reader)

        def failed():
            # After a failed attempt Stripe's intent holds no payment_method; last_payment_error carries it.
            intent.payment_method = None
            schedule_webhook(ls_resources.Event("payment_intent.payment_failed", intent))

        # The reader confirms the intent with the card it read, as Stripe does on a tap. Clearing a failed
        # latest_charge starts the new attempt: localstripe derives the intent's status from it.
        intent.payment_method = method.id
        intent.latest_charge = None
        intent._confirm(on_failure_now=failed)
        charge = intent.latest_charge
        declined = charge.status == "failed"
        action.update(status="failed" if declined else "succeeded", failure_code=charge.failure_code,
                      failure_message=charge.failure_message)
        event = "terminal.reader.action_failed" if declined else "terminal.reader.action_succeeded"
        schedule_webhook(ls_resources.Event(event, reader))
        return reader

    def _export(self, expand=None):
        obj = super()._export(expand=expand)
        obj.pop("created", None)  # Stripe's Reader has no `created`
        return obj


def _process_config(config):
    """process_config as Stripe takes it (ReaderProcessPaymentIntentParamsProcessConfig), booleans parsed."""
    if config is None:
        return None
    if not isinstance(config, dict):
        raise UserError(400, "Invalid object", {"param": "process_config"})
    extra = set(config) - {"allow_redisplay", "enable_customer_cancellation", "return_url", "skip_tipping", "tipping"}
    if extra:
        raise _unknown({f"process_config[{name}]" for name in extra})
    parsed = dict(config)
    for name in ("enable_customer_cancellation", "skip_tipping"):
        if name in parsed:
            parsed[name] = _bool(parsed[name], f"process_config[{name}]")
    return parsed


def _card(number):
    """Brand, funding, verification and read method of a card number, as Stripe's Terminal test cards give them."""
    brand = next((name for prefix, name in BRANDS if number.startswith(prefix)), "unknown")
    cvm, read_method = PIN_CARDS.get(number, ("none", "contactless_emv"))
    return brand, FUNDING.get(number, "credit"), cvm, read_method


class CardPresentPaymentMethod(ls_resources.PaymentMethod):
    """A card_present PaymentMethod (pm_…), as a reader makes from a card it read; the API cannot create one."""

    def __init__(self, number, reader):
        ls_resources.StripeObject.__init__(self)
        brand, funding, _, read_method = _card(number)
        self._card_number = number
        self._reader, self._location = reader.id, reader.location
        self.type = "card_present"
        self.billing_details = {"address": dict.fromkeys(Location._address_fields),
                                "email": None, "name": None, "phone": None}
        # Fields of PaymentMethod.card_present in Stripe's API reference (no last4 there: the charge has it).
        # Expiry 12/2030 is the one Stripe's simulated test cards carry in the Terminal SDKs.
        self.card_present = {
            "brand": brand, "brand_product": None, "cardholder_name": None, "country": "US", "description": None,
            "exp_month": 12, "exp_year": 2030, "fingerprint": ls_resources.fingerprint(number), "funding": funding,
            "iin": None, "issuer": None, "networks": {"available": [brand], "preferred": None}, "offline": None,
            "preferred_locales": ["en"], "read_method": read_method, "wallet": None}
        self.customer = None
        self.metadata = {}

    def _requires_authentication(self):
        return False  # the card was verified on the reader (PIN or none), never by 3-D Secure

    def _attaching_is_declined(self):
        return False

    def _charging_is_declined(self):
        return self._card_number in DECLINES

    def _charge_details(self, charge):
        """Charge.payment_method_details.card_present for this card, with the EMV receipt fields Stripe returns."""
        brand, funding, cvm, read_method = _card(self._card_number)
        declined = not charge._authorized
        manual = not charge.captured and not declined
        receipt = {
            "account_type": {"debit": "checking"}.get(funding, funding),
            "application_cryptogram": _hex(16),
            "application_preferred_name": "Stripe Credit",  # what Stripe's physical test cards report
            "authorization_code": None if declined else f"{random.randrange(10 ** 6):06d}",
            # EMV tag 8A, the issuer's answer in ASCII hex: "3030" is "00", approved; "3035" is "05", do not honour.
            "authorization_response_code": "3035" if declined else "3030",
            "cardholder_verification_method": cvm,
            "dedicated_file_name": AIDS.get(brand, ""),
            "terminal_verification_results": "0000000000",
            "transaction_status_information": "0000",
        }
        return {
            "amount_authorized": None if declined else charge.amount, "brand": brand, "brand_product": None,
            # Uncaptured in-person authorizations lapse after two days (Stripe's place-a-hold guide, as remembered:
            # not checked against a stored copy).
            "capture_before": charge.created + 2 * 86400 if manual else None,
            "cardholder_name": None, "country": "US", "description": None,
            "emv_auth_data": "8A02" + receipt["authorization_response_code"],
            "exp_month": self.card_present["exp_month"], "exp_year": self.card_present["exp_year"],
            "fingerprint": self.card_present["fingerprint"], "funding": funding, "generated_card": None,
            "iin": None, "incremental_authorization_supported": False, "issuer": None,
            "last4": self._card_number[-4:], "location": self._location, "network": brand,
            "network_transaction_id": None if declined else _hex(15), "offline": None,
            "overcapture_supported": False, "preferred_locales": ["en"], "read_method": read_method,
            "reader": self._reader, "receipt": receipt, "wallet": None}


def _card_present_method(charge):
    """The card_present PaymentMethod a charge was made with, or None for any other charge."""
    method = ls_resources.store.get("payment_method:" + str(charge.payment_method))
    return method if isinstance(method, CardPresentPaymentMethod) else None


# Gap: localstripe's charges have no payment_method_details. Real Stripe's say how the card was paid: for a typed
# card, type card with its brand, last4 and expiry; for a reader, type card_present with brand, last4, read method
# and the EMV receipt fields. Set at creation, so the webhooks localstripe sends while confirming already carry them.
_charge_init = ls_resources.Charge.__init__


def _charge_init_details(self, *args, **kwargs):
    _charge_init(self, *args, **kwargs)
    method = _card_present_method(self)
    if method is not None:
        self.payment_method_details = {"card_present": method._charge_details(self), "type": "card_present"}
        return
    typed = ls_resources.store.get("payment_method:" + str(self.payment_method))
    if getattr(typed, "type", None) == "card":
        card = typed.card
        self.payment_method_details = {"type": "card", "card": {
            key: card[key] for key in ("brand", "last4", "exp_month", "exp_year", "funding", "country")}}


ls_resources.Charge.__init__ = _charge_init_details

# Gap: localstripe fails every declined charge as card_declined, "Your card was declined.". Real Stripe gives each
# Terminal test card its own code and message (insufficient funds, expired card, ...), and a decline_code.
_set_auth_failure = ls_resources.Charge._set_auth_failure


def _set_auth_failure_card_present(self):
    _set_auth_failure(self)
    method = _card_present_method(self)
    if method is not None:
        self.failure_code, self._decline_code, self.failure_message = DECLINES[method._card_number]


ls_resources.Charge._set_auth_failure = _set_auth_failure_card_present


# Gap: localstripe knows nothing of `allowed_payment_method_types`, which replaced the writable
# `payment_method_types` at API version 2026-10-28.endive (stripe_contract refuses the old one before it gets here).
# Real Stripe keeps the allowed list (["card"] here when none is given, as before) and returns the types it kept as
# the read-only `payment_method_types`; Terminal needs card_present there. Stripe also silently drops types that do
# not fit the currency, amount or account; this fake keeps every type it is given, in order, once each.
_pi_init = ls_resources.PaymentIntent.__init__


def _allowed_types(value):
    """The allowed_payment_method_types parameter as a list (stripe_contract has checked its values)."""
    if value is None:
        return ["card"]
    if isinstance(value, dict):  # a[0]=x arrives from localstripe's form parsing as {"0": x}
        value = [value[key] for key in sorted(value, key=int)]
    if not (isinstance(value, list) and value and all(isinstance(name, str) for name in value)):
        raise UserError(400, "Invalid array", {"param": "allowed_payment_method_types"})
    return list(dict.fromkeys(value))


def _pi_init_with_types(self, allowed_payment_method_types=None, **kwargs):
    allowed = _allowed_types(allowed_payment_method_types)
    _pi_init(self, **kwargs)
    self.allowed_payment_method_types = allowed
    self.payment_method_types = list(allowed)


ls_resources.PaymentIntent.__init__ = _pi_init_with_types

# The same on update: new allowed types give the intent its new payment_method_types.
_pi_update = ls_resources.PaymentIntent._update


def _pi_update_types(self, allowed_payment_method_types=None, **data):
    allowed = None if allowed_payment_method_types is None else _allowed_types(allowed_payment_method_types)
    _pi_update(self, **data)
    if allowed is not None:
        self.allowed_payment_method_types = allowed
        self.payment_method_types = list(allowed)


ls_resources.PaymentIntent._update = _pi_update_types

# Gap: localstripe confirms an intent with any payment method. Real Stripe refuses one whose type the intent does
# not allow, as here a card on an in-person-only intent (its message, from a Terminal integration's report). Only
# intents that allow card_present are checked, so the other payment tests see localstripe as before.
_pi_confirm = ls_resources.PaymentIntent._confirm


def _pi_confirm_allowed_types(self, on_failure_now):
    types = getattr(self, "payment_method_types", ["card"])
    kind = ls_resources.PaymentMethod._api_retrieve(self.payment_method).type
    if "card_present" in types and kind not in types:
        raise UserError(400, f"The PaymentMethod provided ({kind}) is not allowed for this PaymentIntent. Please "
                             f"attach a PaymentMethod of one of the following types: {', '.join(types)}. "
                             "Alternatively, update the allowed payment_method_types for this PaymentIntent to "
                             f"include \"{kind}\".", {"param": "payment_method"})
    _pi_confirm(self, on_failure_now)


ls_resources.PaymentIntent._confirm = _pi_confirm_allowed_types

# Gap: localstripe's last_payment_error has only charge, code and message. For a card a reader declined, real
# Stripe also gives type card_error, decline_code, doc_url and the payment_method itself (the intent no longer
# holds it).
_last_payment_error = ls_resources.PaymentIntent.last_payment_error


def _last_payment_error_card_present(self):
    error = _last_payment_error.fget(self)
    charge = self.latest_charge
    method = _card_present_method(charge) if error and charge is not None else None
    if method is not None:
        error.update(type="card_error", decline_code=charge._decline_code, payment_method=method._export(),
                     doc_url="https://stripe.com/docs/error-codes/" + error["code"].replace("_", "-"))
    return error


ls_resources.PaymentIntent.last_payment_error = property(_last_payment_error_card_present)


def _reader(reader_id):
    """The simulated reader with this id; LookupError when there is none."""
    reader = ls_resources.store.get(Reader.object + ":" + reader_id)
    if reader is None:
        raise LookupError(f"no simulated reader {reader_id}")
    return reader


def set_offline(reader_id, offline=True):
    """Cut a reader off (or bring it back): offline, it shows status "offline" and answers terminal_reader_offline."""
    _reader(reader_id)._offline = offline


def set_busy(reader_id, busy=True):
    """Hold a reader busy (or free it), as during an authorization or an update: it answers terminal_reader_busy."""
    _reader(reader_id)._busy = busy


async def _config_reader(request):
    """POST /_config/terminal/readers/{id} with offline= and/or busy= (true|false): set_offline/set_busy over HTTP."""
    data = await ls_server.get_post_data(request) or {}
    extra = set(data) - {"offline", "busy"}
    if extra or not data:
        raise UserError(400, "Send offline=true|false and/or busy=true|false")
    reader = Reader._api_retrieve(request.match_info["id"])
    wanted = {name: _bool(value, name) for name, value in data.items()}  # all parsed before any is set
    reader._offline = wanted.get("offline", reader._offline)
    reader._busy = wanted.get("busy", reader._busy)
    return ls_server.json_response(reader._export())


def _routes():
    """Every Terminal route, built with localstripe's own request plumbing (form parsing, expand, errors)."""
    readers, locations = "/v1/terminal/readers", "/v1/terminal/locations"
    routes = []
    for cls, url in ((Location, locations), (Reader, readers)):
        routes += [("POST", url, ls_server.api_create(cls, url)),
                   ("GET", url, ls_server.api_list_all(cls, url)),
                   ("GET", url + "/{id}", ls_server.api_retrieve(cls, url)),
                   ("POST", url + "/{id}", ls_server.api_update(cls, url)),
                   ("DELETE", url + "/{id}", ls_server.api_delete(cls, url))]
    for path, func in ((readers + "/{id}/process_payment_intent", Reader._api_process_payment_intent),
                       (readers + "/{id}/cancel_action", Reader._api_cancel_action),
                       ("/v1/test_helpers/terminal/readers/{id}/present_payment_method",
                        Reader._api_present_payment_method)):
        routes.append(("POST", path, ls_server.api_extra(func, path)))
    routes.append(("POST", "/_config/terminal/readers/{id}", _config_reader))
    return routes


def install(app):
    """Add the Terminal routes to an aiohttp Application that has not started; on one that has them, do nothing."""
    if any(route.resource.canonical == "/v1/terminal/readers" for route in app.router.routes()):
        return
    for method, path, handler in _routes():
        app.router.add_route(method, path, handler)
