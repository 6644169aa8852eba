"""The payments gateway: the only module that imports `stripe`; Stripe errors become PaymentError."""
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ParamSpec, TypeVar

from kiosk.core.config import LIVE_KEYS
from kiosk.core.config import STRIPE_API_BASE as STRIPE_API

if TYPE_CHECKING:  # the pinned SDK's generated request types: mypy (scripts/test.sh) holds every call to them
    from stripe import StripeClient
    from stripe.params import (
        PaymentIntentCreateParams,
        PaymentIntentListParams,
        RefundCreateParams,
        RefundListParams,
    )
    from stripe.params.terminal import LocationListParams, ReaderListParams

_P = ParamSpec("_P")
_R = TypeVar("_R")

# The versions of Stripe the kiosk speaks, in one place (README: "Which Stripe the kiosk speaks"). The SDK is
# pinned in requirements.txt; every request it sends carries STRIPE_API_VERSION (stripe/_api_version.py), and
# its generated stripe/params/ define what a request at that version may carry. Stripe.js is versioned by
# release train, named like the API version's major ("Stripe.js versioning and support policy"): the page loads
# the train of the same name. tests/test_stripe_versions.py holds these against the installed SDK and the
# @stripe/stripe-js types the front end is checked with.
STRIPE_SDK_VERSION = "16.1.0"
STRIPE_API_VERSION = "2026-10-28.endive"
STRIPE_JS_RELEASE = STRIPE_API_VERSION.rsplit(".", 1)[1]
STRIPE_JS_URL = f"https://js.stripe.com/{STRIPE_JS_RELEASE}/stripe.js"


def _sdk():
    """stripe-python, imported on first use: the import takes longer than the rest of start-up together."""
    import stripe
    return stripe


class PaymentError(Exception):
    """A Stripe call failed. `kind` says how (words.say words it, with `params`), `code` and `decline` are Stripe's
    error and decline codes, `message` the English text for the log (Stripe's own for a card); `retryable` says
    whether to try again."""

    def __init__(self, message, kind="api", retryable=False, code=None, status=None, *, decline=None, params=None):
        super().__init__(message)
        self.message = message
        self.kind = kind
        self.retryable = retryable
        self.code = code
        self.status = status
        self.decline = decline
        self.params = params or {}


UNAVAILABLE = "Payments are briefly unavailable. Your cart is kept; please try again in a moment."


@dataclass
class Intent:
    """The parts of a Stripe PaymentIntent the kiosk uses."""

    id: str
    status: str
    amount: int
    currency: str
    client_secret: str = ""
    metadata: dict = field(default_factory=dict)
    created: int = 0
    last_error: str = ""
    last_error_code: str = ""  # the last decline's decline_code (else its error code), for words.decline
    receipt_url: str = ""
    amount_received: int = 0
    payment_method_types: tuple = ("card",)  # read-only: what Stripe kept of the allowed types
    # For a card read by a card reader: what card networks require on the receipt (see _card_present).
    card_present: dict = field(default_factory=dict)
    card_brand: str = ""  # the paying card's network (visa, mastercard...) and last four digits, typed or read,
    card_last4: str = ""  # so staff can say which card a refund goes back to


    # Stripe's PaymentIntent states, read here and nowhere else ("The PaymentIntent object", status): the rest of
    # the kiosk asks these questions of an intent instead.

    @property
    def paid(self):
        """Stripe took the money."""
        return self.status == "succeeded"

    @property
    def canceled(self):
        """Canceled at Stripe: it can never be paid."""
        return self.status == "canceled"

    @property
    def processing(self):
        """Paid by the customer, not yet settled by the bank (it ends paid, or back for another card)."""
        return self.status == "processing"

    @property
    def closed(self):
        """Paid or canceled: nothing more will happen to it."""
        return self.paid or self.canceled

    @property
    def untouched(self):
        """Waiting for a card: never confirmed, or declined and not tried again; nobody is paying it this moment."""
        return self.status == "requires_payment_method"

    @property
    def declined(self):
        """The last card was declined (Stripe's message in last_error); the same intent takes another card."""
        return self.untouched and bool(self.last_error)

    @property
    def abandonable(self):
        """Not paid and not being paid by the bank: canceling it now loses nothing (3-D Secure included)."""
        return self.status in ("requires_payment_method", "requires_confirmation", "requires_action")

    @property
    def open(self):
        """Could still be paid: everything but paid and canceled."""
        return not self.closed


@dataclass
class Reader:
    """The parts of a Stripe Terminal Reader the kiosk uses, with its current action (or none)."""

    id: str
    label: str
    status: str  # online or offline
    device_type: str = ""
    location: str = ""
    action: dict = field(default_factory=dict)

    @property
    def online(self):
        """True while Stripe can reach the reader."""
        return self.status == "online"

    def waiting_for(self, intent_id):
        """The state of the reader's action for this PaymentIntent: in_progress, succeeded, failed, or None."""
        handed = self.action.get("process_payment_intent") or {}
        return self.action.get("status") if handed.get("payment_intent") == intent_id else None

    def collecting(self, intent_id):
        """The reader waits for a card for this PaymentIntent (or has just read one)."""
        return self.waiting_for(intent_id) in ("in_progress", "succeeded")

    def waiting_only(self, intent_id):
        """The reader shows this PaymentIntent's amount and no card has been read yet."""
        return self.waiting_for(intent_id) == "in_progress"

    def failed(self, intent_id):
        """The reader read a card for this PaymentIntent and it was declined (failure_message says why)."""
        return self.waiting_for(intent_id) == "failed"


@dataclass
class Refund:
    """The parts of a Stripe Refund the kiosk uses."""

    id: str
    amount: int
    status: str
    payment_intent: str = ""
    metadata: dict = field(default_factory=dict)
    created: int = 0

    @property
    def made(self):
        """True unless Stripe reports the refund as failed or canceled."""
        return self.status not in ("failed", "canceled")


def _refund(obj):
    data = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    intent = data.get("payment_intent")
    return Refund(id=data["id"], amount=int(data["amount"]), status=str(data.get("status") or ""),
                  payment_intent=(intent.get("id") if isinstance(intent, dict) else intent) or "",
                  metadata=dict(data.get("metadata") or {}), created=int(data.get("created") or 0))


def _card_present(charge):
    """What card networks require on an in-person receipt, from Charge.payment_method_details.card_present."""
    details = ((charge.get("payment_method_details") or {}).get("card_present") or {}) if charge else {}
    if not details:
        return {}
    receipt = details.get("receipt") or {}
    return {"brand": details.get("brand") or "", "last4": details.get("last4") or "",
            "application": receipt.get("application_preferred_name") or "",
            "aid": receipt.get("dedicated_file_name") or "",
            "response_code": receipt.get("authorization_response_code") or "",
            "verification": receipt.get("cardholder_verification_method") or "",
            "read_method": details.get("read_method") or ""}


def _card_of(charge):
    """The paying card's brand and last four digits, from Charge.payment_method_details (card or card_present)."""
    details = (charge or {}).get("payment_method_details") or {}
    card = details.get("card") or details.get("card_present") or {}
    return {"card_brand": str(card.get("brand") or ""), "card_last4": str(card.get("last4") or "")}


def _intent(obj):
    data = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    error = data.get("last_payment_error") or {}
    charge = data.get("latest_charge")
    charge = charge if isinstance(charge, dict) else {}
    return Intent(id=data["id"], status=data["status"], amount=int(data["amount"]),
                  currency=str(data["currency"]).upper(), client_secret=data.get("client_secret") or "",
                  metadata=dict(data.get("metadata") or {}), created=int(data.get("created") or 0),
                  last_error=error.get("message") or "",
                  last_error_code=error.get("decline_code") or error.get("code") or "",
                  receipt_url=charge.get("receipt_url") or "",
                  amount_received=int(data.get("amount_received") or 0),
                  payment_method_types=tuple(data.get("payment_method_types") or ("card",)),
                  card_present=_card_present(charge), **_card_of(charge))


def _reader(obj):
    data = obj.to_dict() if hasattr(obj, "to_dict") else dict(obj)
    location = data.get("location")
    return Reader(id=data["id"], label=str(data.get("label") or data["id"]), status=str(data.get("status") or ""),
                  device_type=str(data.get("device_type") or ""),
                  location=(location.get("id") if isinstance(location, dict) else location) or "",
                  action=dict(data.get("action") or {}))


# Stripe's Terminal error codes ("Collect card payments", server-driven: handle errors), as a person reads them.
READER_ERRORS = {
    "terminal_reader_offline": ("reader_offline", "The card reader is offline. Staff: check that it is switched "
                                "on and connected to the internet. You can type your card instead."),
    "terminal_reader_busy": ("reader_busy", "The card reader is busy with another payment. Try again in a moment, "
                             "or type your card instead."),
    "terminal_reader_timeout": ("reader_offline", "The card reader did not answer in time. Try again in a moment, "
                                "or type your card instead."),
}


def _translate(exc):
    """Turn a stripe-python exception into a PaymentError with a message a person can act on."""
    stripe = _sdk()
    status = getattr(exc, "http_status", None)
    code = getattr(exc, "code", None)
    if isinstance(exc, stripe.CardError):
        return PaymentError(exc.user_message or "The card was declined. Try another card.", "card", False, code, status,
                            decline=getattr(getattr(exc, "error", None), "decline_code", None))
    if isinstance(exc, stripe.RateLimitError):
        return PaymentError(UNAVAILABLE, "rate_limit", True, code, status)
    if isinstance(exc, stripe.APIConnectionError):
        return PaymentError(UNAVAILABLE, "network", True, code, status)
    if isinstance(exc, stripe.AuthenticationError):
        return PaymentError("Payments are not set up correctly: Stripe refused the kiosk's secret key. "
                            "Staff: check STRIPE_SECRET_KEY in .env.", "auth", False, code, status)
    if isinstance(exc, stripe.IdempotencyError):
        return PaymentError("This checkout changed while it was being paid. Please start the payment again.",
                            "idempotency", False, code, status)
    if (status is not None and status >= 500) or isinstance(exc, stripe.APIError):
        return PaymentError(UNAVAILABLE, "server", True, code, status)
    if code in READER_ERRORS:
        kind, message = READER_ERRORS[code]
        return PaymentError(message, kind, True, code, status)
    if isinstance(exc, stripe.InvalidRequestError) and status == 404:
        return PaymentError("Stripe does not know this payment.", "not_found", False, code, status)
    return PaymentError("Stripe could not take this payment request. Staff: see the kiosk log.",
                        "invalid", False, code, status)


class Gateway:
    """Talks to Stripe (or any server at `api_base`) with explicit timeouts and a few safe retries."""

    def __init__(self, secret_key, api_base=None, timeout=20.0, retries=2):
        if secret_key.startswith(LIVE_KEYS) and api_base and api_base.rstrip("/") != STRIPE_API:
            # Settings refuse this already (config._check_api_base); the one place that sends the key makes sure.
            raise PaymentError(f"A live secret key goes only to Stripe's own API ({STRIPE_API}), not to {api_base}. "
                               "Staff: remove STRIPE_API_BASE from .env.", "config",
                               params={"api": STRIPE_API, "base": api_base})
        stripe = _sdk()
        # Retries are safe: stripe-python sends an idempotency key with every POST it retries.
        self._client: StripeClient = stripe.StripeClient(
            secret_key,
            stripe_version=STRIPE_API_VERSION,
            base_addresses={"api": api_base} if api_base else None,
            max_network_retries=retries,
            http_client=stripe.RequestsClient(timeout=timeout),
        )

    def _call(self, fn: Callable[_P, _R], *args: _P.args, **kwargs: _P.kwargs) -> _R:
        """fn(*args, **kwargs), with Stripe's errors as PaymentError; typed so that mypy checks the arguments
        against the SDK method's own params type."""
        try:
            return fn(*args, **kwargs)
        except _sdk().StripeError as exc:
            raise _translate(exc) from exc

    def create_intent(self, *, amount, currency, allowed_types, metadata, description, idempotency_key,
                      receipt_email=None):
        """Create a PaymentIntent; the same idempotency key always yields the same intent.

        `allowed_types` are the payment method types the kiosk offers for it: card on the screen, card_present on
        the reader. Stripe's API reference, "Create a PaymentIntent" at 2026-10-28.endive: Endive removed the
        writable `payment_method_types` (400 payment_method_types_no_longer_supported) in favour of
        `allowed_payment_method_types`, which takes card_present too. Stripe returns the types it kept, read-only,
        as the intent's `payment_method_types`."""
        params: PaymentIntentCreateParams = {
            "amount": amount, "currency": currency.lower(), "allowed_payment_method_types": list(allowed_types),
            "metadata": metadata, "description": description}
        if receipt_email:
            params["receipt_email"] = receipt_email
        obj = self._call(self._client.v1.payment_intents.create, params, {"idempotency_key": idempotency_key})
        return _intent(obj)

    def retrieve(self, intent_id):
        """Fetch a PaymentIntent with its latest charge, for status and receipt."""
        return _intent(self._call(self._client.v1.payment_intents.retrieve, intent_id,
                                  {"expand": ["latest_charge"]}))

    def update_receipt_email(self, intent_id, email):
        """Ask Stripe to email its receipt for this payment."""
        return _intent(self._call(self._client.v1.payment_intents.update, intent_id, {"receipt_email": email}))

    def cancel(self, intent_id):
        """Cancel a PaymentIntent that has not been paid."""
        return _intent(self._call(self._client.v1.payment_intents.cancel, intent_id))

    def cancel_or_retrieve(self, intent_id):
        """Cancel an unpaid PaymentIntent; if Stripe refuses (paid or canceled a moment ago), its current state."""
        try:
            return self.cancel(intent_id)
        except PaymentError:
            return self.retrieve(intent_id)

    def _pages(self, method, params):
        """Every object of a list call, following pagination."""
        page = self._call(method, params)
        while True:
            yield from page.data
            if not page.has_more or not page.data:
                return
            params = {**params, "starting_after": page.data[-1].id}
            page = self._call(method, params)

    def list_since(self, created_gte, limit=100):
        """Every PaymentIntent created at or after a Unix time, newest first, following pagination."""
        params: PaymentIntentListParams = {"limit": limit, "created": {"gte": int(created_gte)}}
        return (_intent(obj) for obj in self._pages(self._client.v1.payment_intents.list, params))

    def find_intent(self, metadata_key, value, since):
        """The newest PaymentIntent created since `since` whose metadata[key] is `value`, or None.

        A listing, not Stripe's search: search is eventually consistent, and this asks about an intent
        that may have been created a second ago."""
        for intent in self.list_since(since):
            if intent.created >= since and intent.metadata.get(metadata_key) == value:
                return intent
        return None

    def refund(self, intent_id, amount, idempotency_key, metadata=None):
        """Refund part or all of a payment."""
        params: RefundCreateParams = {"payment_intent": intent_id, "amount": amount}
        if metadata:
            params["metadata"] = metadata
        return _refund(self._call(self._client.v1.refunds.create, params, {"idempotency_key": idempotency_key}))

    def refunds_for(self, intent_id):
        """Every refund of a payment, newest first."""
        params: RefundListParams = {"payment_intent": intent_id, "limit": 100}
        return [_refund(obj) for obj in self._pages(self._client.v1.refunds.list, params)]

    def refunds_since(self, created_gte):
        """Every refund in the account created at or after a Unix time (the Dashboard's included), newest first."""
        params: RefundListParams = {"limit": 100, "created": {"gte": int(created_gte)}}
        return (_refund(obj) for obj in self._pages(self._client.v1.refunds.list, params))

    # Stripe Terminal, server-driven ("Collect card payments", terminal-sdk-platform=server-driven).

    def reader(self, reader_id):
        """A Terminal reader with its status and current action."""
        return _reader(self._call(self._client.v1.terminal.readers.retrieve, reader_id))

    def readers(self):
        """Every reader registered in the account."""
        params: ReaderListParams = {"limit": 100}
        return [_reader(obj) for obj in self._pages(self._client.v1.terminal.readers.list, params)]

    def locations(self):
        """Every Terminal location as (id, display name)."""
        params: LocationListParams = {"limit": 100}
        return [(obj.id, obj.display_name) for obj in self._pages(self._client.v1.terminal.locations.list, params)]

    def create_location(self, display_name, address, idempotency_key):
        """Create a Terminal location (the shop's address); returns its id."""
        obj = self._call(self._client.v1.terminal.locations.create,
                         {"display_name": display_name, "address": address}, {"idempotency_key": idempotency_key})
        return obj.id

    def register_reader(self, registration_code, label, location, idempotency_key):
        """Register a reader from the code it shows (or simulated-wpe in test mode) at a location."""
        return _reader(self._call(self._client.v1.terminal.readers.create,
                                  {"registration_code": registration_code, "label": label, "location": location},
                                  {"idempotency_key": idempotency_key}))

    def process_on_reader(self, reader_id, intent_id):
        """Hand a card_present PaymentIntent to the reader, which then waits for a tap, insert or swipe."""
        return _reader(self._call(self._client.v1.terminal.readers.process_payment_intent, reader_id,
                                  {"payment_intent": intent_id}))

    def cancel_reader_action(self, reader_id):
        """Stop the reader waiting for a card (its PaymentIntent is left as it was)."""
        return _reader(self._call(self._client.v1.terminal.readers.cancel_action, reader_id))

    def ping(self):
        """Raise PaymentError unless Stripe answers an authenticated request."""
        self._call(self._client.v1.payment_intents.list, {"limit": 1})


def verify_webhook(payload, signature, secret):
    """The event of a signed webhook, or PaymentError if the signature does not match."""
    stripe = _sdk()
    try:
        return stripe.Webhook.construct_event(payload, signature, secret).to_dict()
    except (ValueError, stripe.SignatureVerificationError):
        raise PaymentError("The webhook signature does not match.", "signature", False, status=400) from None
