"""localstripe, run in-process on 127.0.0.1 with a random port, with its gaps against real Stripe closed here.

Product code never contains a fake: it talks to this server through stripe-python because
STRIPE_API_BASE points at it. Every patch below names the real-Stripe behaviour it restores.
"""
import asyncio
import json
import random
import re
import string
import threading
import warnings

from tests.support import fakestripe_terminal, stripe_contract
from tests.support.stripe_contract import ContractChecker

with warnings.catch_warnings():
    # localstripe imports an aiohttp API that warns as deprecated.
    warnings.simplefilter("ignore", DeprecationWarning)
    import localstripe.errors as ls_errors
    import localstripe.resources as ls_resources
    import localstripe.server as ls_server
    import localstripe.webhooks as ls_webhooks
    from aiohttp import web

# Gap: localstripe pickles its whole state to /tmp/localstripe.pickle on every write. Keep it in memory.
ls_resources.store.dump_to_disk = lambda *a, **k: None
ls_resources.store.try_load_from_disk = lambda *a, **k: None

# Gap: localstripe draws ids from the global `random`, which Hypothesis seeds alike for every example of a fuzz
# test, so an example drew the id of an earlier example's PaymentIntent and got 409 Conflict. Stripe's ids never
# repeat: draw them from the system's randomness.
_IDS = random.SystemRandom()
_ID_ALPHABET = string.ascii_letters + string.digits
ls_resources.random_id = lambda n: "".join(_IDS.choice(_ID_ALPHABET) for _ in range(n))


class _WebhookRegistry(dict):
    """localstripe's webhook endpoints, iterated over a copy."""

    def values(self):
        return list(super().values())


# Gap (a race, not an API difference): localstripe delivers an event by iterating its live registry of webhook
# endpoints, awaiting each POST inside the loop, on its own thread. A test that removes its endpoint while an
# earlier event is mid-delivery then crashes the delivery with "dictionary changed size during iteration" (seen
# under load). Real Stripe's endpoints are not a dict shared with the test: iterate over a snapshot.
ls_webhooks._webhooks = _WebhookRegistry(ls_webhooks._webhooks)

# Gap: localstripe rejects `description` and `receipt_email` on PaymentIntents with
# "400 Unexpected ...". Real Stripe accepts and returns both, so accept and keep them here.
_pi_init = ls_resources.PaymentIntent.__init__


def _pi_init_with_extras(self, description=None, receipt_email=None, **kwargs):
    _pi_init(self, **kwargs)
    self.description = description
    self.receipt_email = receipt_email


ls_resources.PaymentIntent.__init__ = _pi_init_with_extras

# Gap: card 4000 0000 0000 0002 is Stripe's generic decline on any charge; localstripe declines it
# only when attached to a customer.
_declined = ls_resources.PaymentMethod._charging_is_declined


def _charging_is_declined(self):
    return _declined(self) or (self.type == "card" and self._card_number == "4000000000000002")


ls_resources.PaymentMethod._charging_is_declined = _charging_is_declined

# Gap: real charges carry a hosted `receipt_url`; localstripe's have none.
_charge_init = ls_resources.Charge.__init__


def _charge_init_with_receipt(self, *args, **kwargs):
    _charge_init(self, *args, **kwargs)
    self.receipt_url = f"https://pay.stripe.com/receipts/test/{self.id}"


ls_resources.Charge.__init__ = _charge_init_with_receipt


# Gap: after a decline, real Stripe takes a new payment method and goes back to requires_confirmation;
# localstripe keeps the failed charge as latest_charge, so a retry on the same intent is refused.
_pi_update = ls_resources.PaymentIntent._update


def _pi_update_after_decline(self, **data):
    _pi_update(self, **data)
    if data.get("payment_method") and self.latest_charge is not None and self.latest_charge.status == "failed":
        self.latest_charge = None


ls_resources.PaymentIntent._update = _pi_update_after_decline


# Gap: localstripe embeds the whole latest charge in every PaymentIntent, plus the `charges` list that
# Stripe removed in API version 2022-11-15. Real Stripe sends `latest_charge` as an id unless it is
# expanded, and no `charges`. (Without this, a list of paid intents is several times heavier than
# Stripe's, which shows in the soak's memory figures.)
_pi_export = ls_resources.PaymentIntent._export


def _pi_export_like_stripe(self, expand=None):
    obj = _pi_export(self, expand=expand)
    obj.pop("charges", None)
    expanded = any(path == "latest_charge" or path.startswith("latest_charge.") for path in expand or [])
    if isinstance(obj.get("latest_charge"), dict) and not expanded:
        obj["latest_charge"] = obj["latest_charge"]["id"]
    return obj


ls_resources.PaymentIntent._export = _pi_export_like_stripe


# Gap: localstripe answers 400 to `created[gte]` (and the other range filters) on list calls, and lists
# in store order. Real Stripe filters by creation time and lists newest first.
def _listed_by_created(resource):
    original = resource._api_list_all.__func__

    def list_all(cls, url, limit=None, starting_after=None, created=None, **kwargs):
        bounds = created if isinstance(created, dict) else ({"gte": created} if created is not None else {})
        tests = {"gte": int.__ge__, "gt": int.__gt__, "lte": int.__le__, "lt": int.__lt__}
        li = original(cls, url, limit=limit, starting_after=starting_after, **kwargs)
        li._list = sorted((obj for obj in li._list
                           if all(tests[op](int(obj.created), int(value)) for op, value in bounds.items())),
                          key=lambda obj: obj.created, reverse=True)
        return li

    resource._api_list_all = classmethod(list_all)


_listed_by_created(ls_resources.PaymentIntent)
_listed_by_created(ls_resources.Refund)


# Gap: localstripe refunds more than a charge has left, and a refund made from a charge id does not name its
# PaymentIntent. Real Stripe refuses the excess (400, charge_already_refunded when nothing is left) and every
# refund of a PaymentIntent's charge carries `payment_intent` (the kiosk's reconciler matches on it).
_refund_init = ls_resources.Refund.__init__


def _refund_init_like_stripe(self, charge=None, payment_intent=None, amount=None, metadata=None, **kwargs):
    if payment_intent is not None and charge is None and isinstance(payment_intent, str):
        intent = ls_resources.PaymentIntent._api_retrieve(payment_intent)
        charge_obj = intent.latest_charge
    else:
        charge_obj = ls_resources.Charge._api_retrieve(charge) if isinstance(charge, str) else None
    if charge_obj is not None and charge_obj.status == "succeeded":
        left = charge_obj.amount - charge_obj.amount_refunded
        wanted = ls_resources.try_convert_to_int(amount) if amount is not None else left
        if left <= 0:
            raise ls_errors.UserError(400, f"Charge {charge_obj.id} has already been refunded.",
                                      {"code": "charge_already_refunded"})
        if isinstance(wanted, int) and wanted > left:
            raise ls_errors.UserError(400, f"Refund amount ({wanted}) is greater than unrefunded amount on "
                                           f"charge ({left})", {"code": "amount_too_large"})
    _refund_init(self, charge=charge, payment_intent=payment_intent, amount=amount, metadata=metadata, **kwargs)
    if self.payment_intent is None and charge_obj is not None:
        self.payment_intent = charge_obj.payment_intent


ls_resources.Refund.__init__ = _refund_init_like_stripe


# Gap: localstripe's webhook events carry each object as it exports it (a PaymentIntent's `invoice`, a refund's
# `date`). Real Stripe sends the object as the API version defines it, as in its answers (stripe_contract.prune).
_event_init = ls_resources.Event.__init__


def _event_init_like_stripe(self, *args, **kwargs):
    _event_init(self, *args, **kwargs)
    stripe_contract.prune_event_object(self.data["object"])


ls_resources.Event.__init__ = _event_init_like_stripe


class IdempotencyCache:
    """Gap: localstripe ignores Idempotency-Key. Real Stripe replays the first response for 24 h, a 500
    included ("Subsequent requests with the same key return the same result, including 500 errors"), and
    answers 400 idempotency_error when the same key comes with different parameters. A 429 is not kept:
    the rate limiter answers before anything runs."""

    def __init__(self):
        self.responses = {}
        self.replays = 0

    @staticmethod
    def slot(request):
        """Where a request's response is kept: its key under its API key, or None when it has none."""
        key = request.headers.get("Idempotency-Key")
        return (request.headers.get("Authorization", ""), key) if request.method == "POST" and key else None

    def remember(self, request, body, status, text, replace=False):
        """Keep a response for a request's key (an injected 500 is kept like Stripe keeps its own, even over
        the answer to work it did before failing)."""
        slot = self.slot(request)
        if slot is not None and (replace or slot not in self.responses):
            self.responses[slot] = (request.path, body, status, text)

    @web.middleware
    async def middleware(self, request, handler):
        slot = self.slot(request)
        if slot is None:
            return await handler(request)
        body = await request.read()
        if slot in self.responses:
            path, sent, status, text = self.responses[slot]
            if (path, sent) != (request.path, body):
                return web.json_response({"error": {
                    "type": "idempotency_error",
                    "message": "Keys for idempotent requests can only be used with the same parameters "
                               "they were first used with."}}, status=400)
            self.replays += 1
            return web.Response(status=status, text=text, content_type="application/json",
                                headers={"Idempotent-Replayed": "true"})
        response = await handler(request)
        if response.status < 500 and response.status != 429:
            self.remember(request, body, response.status, response.text)
        return response


# Routes the fault layer aims at: creating a PaymentIntent, retrieving one, and listing them.
CREATE_INTENT = ("POST", r"/v1/payment_intents")
RETRIEVE_INTENT = ("GET", r"/v1/payment_intents/pi_\w+")
LIST_INTENTS = ("GET", r"/v1/payment_intents")


class Fault:
    """One injected Stripe failure on matching requests: "500", "429", "stall" or "drop".

    `after=True` (500, stall and drop) lets Stripe do the work first and then loses the answer, the
    worst case for a client: the intent exists but the kiosk never hears of it. `times` limits how many
    requests it hits (None: every one). A stall holds the connection for `seconds` (30 by default, so the
    kiosk's own timeout must fire first); clearing the fault releases it and drops the connection, so a
    stalled request never reaches the next test's store. A "500" to a POST with an Idempotency-Key is kept
    for that key, as Stripe keeps its own: the same key gets the same 500 again."""

    KINDS = ("500", "429", "stall", "drop")

    def __init__(self, kind, route, *, after=False, times=None, seconds=30.0, idempotency=None):
        if kind not in self.KINDS or (after and kind not in ("500", "stall", "drop")):
            raise ValueError(f"no such fault: {kind} after={after}")
        self.kind, self.method, self.path = kind, route[0], re.compile(route[1])
        self.after, self.remaining, self.seconds = after, times, seconds
        self.hits = 0
        self.idempotency = idempotency
        self._released = asyncio.Event()

    def matches(self, request):
        """True when this fault should hit the request."""
        return self.remaining != 0 and request.method == self.method and bool(self.path.fullmatch(request.path))

    def release(self):
        """End every stall now (called in the server's loop)."""
        self._released.set()

    async def apply(self, request, handler):
        """The failed answer; for a dropped connection, an answer that is never sent."""
        self.hits += 1
        if self.remaining is not None:
            self.remaining -= 1
        if self.kind == "500":
            if self.after:
                await handler(request)  # Stripe did the work, then failed to answer it
            error = {"error": {"type": "api_error", "message": "An unknown error occurred."}}
            if self.idempotency is not None:
                self.idempotency.remember(request, await request.read(), 500, json.dumps(error), replace=True)
            return web.json_response(error, status=500)
        if self.kind == "429":
            # Stripe's rate limiter answers before any work is done, with code rate_limit.
            return web.json_response({"error": {"type": "invalid_request_error", "code": "rate_limit",
                                                "message": "Too many requests hit the API too quickly."}},
                                     status=429)
        response = await handler(request) if self.after else None
        if self.kind == "stall":
            try:
                await asyncio.wait_for(self._released.wait(), self.seconds)
            except TimeoutError:
                return response or await handler(request)  # a slow Stripe answers in the end
        if request.transport is not None:  # None: the client already hung up
            request.transport.close()
        return web.Response(status=599)  # never reaches the client: the connection is gone


# Every FakeStripe started in this process, so the tests' plugin can look for contract violations without starting one.
RUNNING = []


class FakeStripe:
    """A running localstripe: `url` for STRIPE_API_BASE, `sk` and `pk` test keys, helpers for tests.

    Every request to /v1/ is first checked against the pinned stripe-python's definitions (stripe_contract):
    what Stripe would refuse is refused here too and kept in `violations`, which fail the test that made them
    unless it takes them with expect_violations()."""

    sk = "sk_test_kioskfake0000000000000000"
    pk = "pk_test_kioskfake0000000000000000"

    def __init__(self):
        self.contract = ContractChecker()
        self.idempotency = IdempotencyCache()
        self.faults = []
        self.requests = []
        self.refused_keys = set()
        self._client = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="localstripe", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("localstripe did not start")
        RUNNING.append(self)

    @property
    def violations(self):
        """Requests refused for breaking Stripe's contract since the last reset(): stripe_contract.Violation."""
        return self.contract.violations

    @property
    def checked(self):
        """Requests checked against the contract, over this server's life."""
        return self.contract.checked

    @property
    def dropped(self):
        """Fields dropped from answers because this API version does not define them: "object.field" -> count."""
        return self.contract.dropped

    def expect_violations(self):
        """The violations so far, which a test meant to cause: returned, and no longer held against it."""
        taken, self.contract.violations[:] = list(self.contract.violations), []
        return taken

    @web.middleware
    async def _record_and_fault(self, request, handler):
        self.requests.append((request.method, request.path))
        # Gap: localstripe accepts any key that starts with sk_. Real Stripe answers 401 to a key it did not
        # issue, or one revoked or rolled; a test names such keys with refuse_key().
        if request.headers.get("Authorization", "").removeprefix("Bearer ") in self.refused_keys:
            return web.json_response({"error": {"type": "invalid_request_error", "message":
                                                "Invalid API Key provided: sk_test_****"}}, status=401)
        for fault in list(self.faults):
            if fault.matches(request):
                return await fault.apply(request, handler)
        return await handler(request)

    def _run(self):
        asyncio.set_event_loop(self._loop)
        # The contract check comes before the idempotency cache: Stripe keeps no result for a request that failed
        # validation ("Results are only saved if an API endpoint started executing").
        app = web.Application(middlewares=[self._record_and_fault, self.contract.middleware,
                                           self.idempotency.middleware, *ls_server.app.middlewares])
        for route in ls_server.app.router.routes():
            app.router.add_route(route.method, route.resource.canonical, route.handler)
        # Gap: localstripe has no Terminal; fakestripe_terminal adds locations, simulated readers and their actions.
        fakestripe_terminal.install(app)
        app.on_response_prepare.extend(ls_server.app.on_response_prepare)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        self._loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._ready.set()
        self._loop.run_forever()

    def reset(self):
        """Forget every object, cached idempotent response, fault and contract violation."""
        self.clear_faults()
        self.contract.violations.clear()
        self.refused_keys.clear()
        self._loop.call_soon_threadsafe(ls_resources.store.clear)
        self.idempotency.responses.clear()
        self.requests.clear()

    def inject(self, kind, route, **options):
        """Put a Fault (see its docstring) in front of localstripe; returns it, so a test can read `hits`."""
        fault = Fault(kind, route, idempotency=self.idempotency, **options)
        self.faults.append(fault)
        return fault

    def refuse_key(self, key):
        """Answer 401 to this secret key from now on, as Stripe does to a revoked or made-up key."""
        self.refused_keys.add(key)

    def clear_faults(self):
        """Stripe is healthy again: remove every fault and end any stall still holding a connection."""
        faults, self.faults[:] = list(self.faults), []
        for fault in faults:
            self._loop.call_soon_threadsafe(fault.release)

    def close(self):
        """Stop the server and its thread."""
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        if self in RUNNING:
            RUNNING.remove(self)

    def client(self):
        """A stripe-python client on this server, as a test would use to play the customer's side."""
        if self._client is None:
            import stripe
            # One client for the run: its HTTP session (one per thread inside stripe-python) keeps
            # connections open, which saves a connect per call in the 1,000-purchase soak.
            self._client = stripe.StripeClient(self.sk, base_addresses={"api": self.url}, max_network_retries=0)
        return self._client

    def pay(self, intent_id, card="4242424242424242"):
        """Do what Stripe.js does on confirmPayment: attach a card and confirm. Returns the intent's status."""
        import stripe
        client = self.client()
        pm = client.v1.payment_methods.create({"type": "card", "card": {
            "number": card, "exp_month": 12, "exp_year": 2034, "cvc": "123"}})
        # Gap: localstripe answers 500 "Not implemented" to confirm(payment_method=...); real Stripe takes it
        # in one call. Set the method first, then confirm with no parameters.
        client.v1.payment_intents.update(intent_id, {"payment_method": pm.id})
        try:
            return client.v1.payment_intents.confirm(intent_id).status
        except stripe.CardError:
            return client.v1.payment_intents.retrieve(intent_id).status

    def simulated_reader(self, label="Counter reader"):
        """Register a simulated reader (Stripe's simulated-wpe code) at a new location; returns its tmr_ id."""
        client = self.client()
        location = client.v1.terminal.locations.create({"display_name": "Test shop", "address": {
            "line1": "1 Market Street", "city": "Springfield", "postal_code": "12345", "state": "IL",
            "country": "US"}})
        return client.v1.terminal.readers.create({"registration_code": "simulated-wpe", "label": label,
                                                  "location": location.id}).id

    def tap(self, reader_id, card="4242424242424242"):
        """The customer taps a card on a simulated reader (Stripe's present_payment_method test helper)."""
        return self.client().v1.test_helpers.terminal.readers.present_payment_method(
            reader_id, {"card_present": {"number": card}, "type": "card_present"})

    def set_reader(self, reader_id, **state):
        """Cut a simulated reader off or hold it busy (offline=True, busy=False, ...)."""
        import requests
        r = requests.post(f"{self.url}/_config/terminal/readers/{reader_id}",
                          data={k: "true" if v else "false" for k, v in state.items()}, timeout=10)
        r.raise_for_status()

    def authenticate(self, intent_id, success=True):
        """Finish (or fail) a 3-D Secure challenge, as the customer would in Stripe's modal."""
        import requests
        secret = self.client().v1.payment_intents.retrieve(intent_id).client_secret
        r = requests.post(f"{self.url}/v1/payment_intents/{intent_id}/_authenticate",
                          data={"key": self.pk, "client_secret": secret, "success": json.dumps(success)}, timeout=10)
        r.raise_for_status()
        return r.json()["status"]

    def intents(self):
        """Every PaymentIntent localstripe holds, following pagination."""
        return list(self.client().v1.payment_intents.list({"limit": 100}).auto_paging_iter())

    def charges(self):
        """Every Charge localstripe holds, following pagination: what customers were actually charged."""
        return list(self.client().v1.charges.list({"limit": 100}).auto_paging_iter())
