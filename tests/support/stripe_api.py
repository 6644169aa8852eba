"""What the browser sees at https://api.stripe.com: Stripe.js's publishable-key calls, answered from localstripe.

A Playwright route hands every browser request for api.stripe.com to `StripeApi`, which checks it the way
Stripe would (publishable key, client secret), replays it on localstripe with the secret key, and answers
with Stripe's shapes and CORS headers. Each place where localstripe differs from Stripe is commented "Gap:".
"""
import json
import re
from urllib.parse import parse_qsl, urlsplit

import requests

from kiosk.payments.gateway import STRIPE_JS_URL  # noqa: F401 - re-exported: where the checkout page loads Stripe.js from

# The PaymentIntent fields Stripe returns to a publishable key (Stripe API reference, "The PaymentIntent
# object": fields marked retrievable with a publishable key). Metadata and charges stay server-side.
PUBLIC_INTENT_FIELDS = (
    "id", "object", "amount", "canceled_at", "cancellation_reason", "capture_method", "client_secret",
    "confirmation_method", "created", "currency", "description", "last_payment_error", "livemode",
    "next_action", "payment_method", "payment_method_types", "processing", "receipt_email", "status",
)

# Stripe's API answers browsers from any origin; these are the headers it sends. (Playwright adds an
# Access-Control-Allow-Origin of its own to fulfilled responses that lack one, so Chromium cannot catch a
# missing header here; they are sent for fidelity.)
CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, PUT, PATCH, POST, DELETE",
    "Access-Control-Expose-Headers": "Request-Id, Stripe-Should-Retry",
    "Access-Control-Max-Age": "300",
}


def error_body(message, type_="invalid_request_error", **extra):
    """Stripe's error envelope."""
    return {"error": {"type": type_, "message": message, **extra}}


class StripeApi:
    """A Playwright route handler for https://api.stripe.com/**, backed by a tests.fakestripe.FakeStripe."""

    def __init__(self, fake):
        self.fake = fake
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {fake.sk}"
        self.calls = []     # (method, path) of every browser request, in order
        self.problems = []  # requests Stripe would refuse or that this layer does not know: each fails the test
        self.elements_sessions = []  # the parameters of every elements session the Payment Element asked for
        self.routes = [
            ("GET", re.compile(r"/v1/elements/sessions"), self.elements_session),
            ("POST", re.compile(r"/v1/payment_intents/(pi_\w+)/confirm"), self.confirm),
            ("GET", re.compile(r"/v1/payment_intents/(pi_\w+)"), self.retrieve),
            ("POST", re.compile(r"/v1/payment_intents/(pi_\w+)/_authenticate"), self.authenticate),
        ]

    # ---- plumbing

    def __call__(self, route, request):
        url = urlsplit(request.url)
        self.calls.append((request.method, url.path))
        if request.method == "OPTIONS":
            # A CORS preflight: Stripe.js sends only simple requests, but answer one the way Stripe does.
            wanted = request.headers.get("access-control-request-headers", "")
            route.fulfill(status=204, headers={**CORS, "Access-Control-Allow-Headers": wanted}, body="")
            return
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        if request.method == "POST":
            params.update(parse_qsl(request.post_data or "", keep_blank_values=True))
        status, body = self.dispatch(request.method, url.path, url.query, params)
        route.fulfill(status=status, headers={**CORS, "Request-Id": "req_test"}, content_type="application/json",
                      body=json.dumps(body))

    def dispatch(self, method, path, query, params):
        """(status, JSON body) for one browser request."""
        key = params.get("key", "")
        if not key.startswith("pk_"):
            # Stripe.js only ever sends the publishable key; anything else reaching the browser is a leak.
            self.problems.append(f"{method} {path}: key {key[:8]!r} is not a publishable key")
            return 401, error_body("You did not provide an API key.")
        if key != self.fake.pk:
            self.problems.append(f"{method} {path}: unknown publishable key")
            return 401, error_body(f"Invalid API Key provided: {key[:12]}****")
        for verb, pattern, handler in self.routes:
            match = pattern.fullmatch(path)
            if verb == method and match:
                return handler(*match.groups(), params=params, query=query)
        self.problems.append(f"{method} {path}: not a call the Payment Element makes")
        return 404, error_body(f"Unrecognized request URL ({method}: {path}).")

    def _ls(self, method, path, **kwargs):
        """A call to localstripe with the secret key: (status, JSON)."""
        r = self.http.request(method, self.fake.url + path, timeout=10, **kwargs)
        return r.status_code, r.json()

    @staticmethod
    def public_intent(intent):
        """The PaymentIntent as Stripe shows it to a publishable key."""
        view = {k: intent.get(k) for k in PUBLIC_INTENT_FIELDS}
        error = view.get("last_payment_error")
        if error:
            # Gap: localstripe's last_payment_error has no `type`; Stripe's says what kind of error it was.
            kind = "card_error" if error.get("code") == "card_declined" else "invalid_request_error"
            view["last_payment_error"] = {"type": kind, **error}
        return view

    def _intent_for(self, intent_id, params):
        """(intent, None) when the client secret matches, else (None, (status, error))."""
        # Gap: localstripe takes only secret keys for PaymentIntents; Stripe takes the publishable key with
        # the intent's client secret. Check the secret here, then read the intent with the secret key.
        status, intent = self._ls("GET", f"/v1/payment_intents/{intent_id}")
        if status != 200:
            return None, (404, error_body(f"No such payment_intent: '{intent_id}'", code="resource_missing"))
        if params.get("client_secret") != intent["client_secret"]:
            self.problems.append(f"{intent_id}: client secret does not match")
            return None, (400, error_body("The client_secret provided does not match the client_secret "
                                          "associated with the PaymentIntent."))
        return intent, None

    # ---- the calls

    def elements_session(self, params, query):
        """What Stripe.js fetches when the Payment Element loads in deferred mode."""
        self.elements_sessions.append(dict(params))
        # Gap: localstripe has no elements sessions; answer the few fields the element needs.
        if any(k.startswith("deferred_intent[payment_method_types]") for k in params):
            # Endive replaced it with allowed_payment_method_types (allowedPaymentMethodTypes in Stripe.js).
            self.problems.append("GET /v1/elements/sessions: deferred_intent[payment_method_types] is not a "
                                 "parameter of the Endive release train")
        prefix = "deferred_intent[allowed_payment_method_types]["
        types = [v for _, v in sorted((int(k[len(prefix):-1]), v) for k, v in params.items()
                                      if k.startswith(prefix) and k.endswith("]") and k[len(prefix):-1].isdigit())]
        return 200, {"object": "elements_session", "livemode": False, "payment_method_types": types or ["card"],
                     "deferred_intent": {"mode": params.get("deferred_intent[mode]"),
                                         "amount": params.get("deferred_intent[amount]"),
                                         "currency": params.get("deferred_intent[currency]")}}

    def retrieve(self, intent_id, params, query):
        """stripe.retrievePaymentIntent() and Stripe.js's own re-check after 3-D Secure."""
        intent, refused = self._intent_for(intent_id, params)
        return refused or (200, self.public_intent(intent))

    def confirm(self, intent_id, params, query):
        """stripe.confirmPayment(): the card from payment_method_data, confirmed on the intent."""
        intent, refused = self._intent_for(intent_id, params)
        if refused:
            return refused
        if intent["status"] not in ("requires_payment_method", "requires_confirmation"):
            return 400, error_body(
                f"You cannot confirm this PaymentIntent because it has a status of {intent['status']}.",
                code="payment_intent_unexpected_state", payment_intent=self.public_intent(intent))
        card = {k[len("payment_method_data[card]["):-1]: v for k, v in params.items()
                if k.startswith("payment_method_data[card][")}
        status, pm = self._ls("POST", "/v1/payment_methods",
                              data={"type": params.get("payment_method_data[type]", ""),
                                    **{f"card[{k}]": v for k, v in card.items()}})
        if status != 200:
            return status, pm
        # Gap: localstripe answers 500 "Not implemented" to confirm(payment_method=...), and refuses
        # payment_method_data and return_url there. Set the method on the intent, then confirm with no
        # parameters. (return_url only matters for redirect methods, which the kiosk does not offer.)
        status, body = self._ls("POST", f"/v1/payment_intents/{intent_id}", data={"payment_method": pm["id"]})
        if status != 200:
            return status, body
        status, body = self._ls("POST", f"/v1/payment_intents/{intent_id}/confirm")
        if status == 402:
            # Gap: localstripe reports a declined card as invalid_request_error with only code and charge.
            # Stripe answers type card_error with decline_code, the intent and the payment method.
            _, after = self._ls("GET", f"/v1/payment_intents/{intent_id}")
            error = body["error"]
            return 402, error_body(error.get("message", "Your card was declined."), "card_error",
                                   code=error.get("code", "card_declined"), decline_code="generic_decline",
                                   charge=error.get("charge"), payment_intent=self.public_intent(after),
                                   payment_method={"id": pm["id"], "object": "payment_method", "type": "card"})
        if status != 200:
            return status, body
        return 200, self.public_intent(body)

    def authenticate(self, intent_id, params, query):
        """The 3-D Secure challenge's answer, posted by the double's challenge dialog."""
        # Gap: real Stripe completes 3-D Secure on the issuer's page (hooks.stripe.com); localstripe stands
        # in with this route, which takes the publishable key and client secret itself.
        r = requests.post(f"{self.fake.url}/v1/payment_intents/{intent_id}/_authenticate?{query}",
                          data={"key": params["key"], "client_secret": params.get("client_secret", "")}, timeout=10)
        body = r.json()
        return r.status_code, self.public_intent(body) if r.status_code == 200 else body
