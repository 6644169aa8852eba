"""The kiosk's create-intent request against a plain stripe-python create, same localstripe, same run.

Both talk to one in-process localstripe (tests/support/fakestripe.py) through stripe-python's RequestsClient
with a kept-alive connection. The two are interleaved, one of each per round, so both see the same
machine. Kiosk: POST /checkout/intent through the WSGI app (session, CSRF, cart priced from the
catalog and stock, the pending order and its lines committed to SQLite, the create call, the intent id
written back, session saved). Plain: `client.v1.payment_intents.create` with the same parameters.
Each round uses a new cart and checkout attempt, set up outside the timed part.
"""
import re
import shutil
import time
import uuid

from bench.common import LOCAL, Figure, make_app, median, percentile, scratch_dir
from bench.make_catalog import catalog_path
from bench.stripe_sample import make_sample


class _Shopper:
    """One browser session: a cart with two books and an open checkout page."""

    def __init__(self, app, isbns):
        self.http = app.test_client()
        page = self.http.get("/", headers=LOCAL).get_data(as_text=True)
        self.headers = {**LOCAL, "X-CSRFToken": re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)}
        for isbn in isbns:
            response = self.http.post("/cart/add", data={"isbn": isbn, "quantity": "1"}, headers=self.headers)
            assert response.status_code in (200, 302), response.status_code
        page = self.http.get("/checkout/", headers=LOCAL).get_data(as_text=True)
        self.attempt = re.search(r'"attempt": ?"([0-9a-f]+)"', page).group(1)

    def create_intent(self):
        response = self.http.post("/checkout/intent", json={"attempt": self.attempt}, headers=self.headers)
        if response.status_code != 200 or "clientSecret" not in response.get_json():
            raise RuntimeError(f"POST /checkout/intent answered {response.status_code}: {response.get_data()[:300]}")

    def change_the_cart(self):
        """Cancel the payment ("Change the cart"), as a customer who walks away at the screen does: a counter holds
        copies for at most three unpaid payments (visit/purchase.py), so each round gives its copies back."""
        response = self.http.post("/checkout/cancel", data={"csrf_token": self.headers["X-CSRFToken"]},
                                  headers=self.headers)
        if response.status_code != 302:
            raise RuntimeError(f"POST /checkout/cancel answered {response.status_code}")


def _measure(server, app, rounds, warmup, sample=None):
    """Interleaved rounds of the kiosk's create-intent, a plain create and (given its test client) the Stripe
    sample's; (kiosk, plain, kiosk CPU, plain CPU, sample's overhead) ms."""
    import stripe

    books = [b for b in app.extensions["kiosk"].catalog.books if b.stock >= 5][:200]
    plain = stripe.StripeClient(server.sk, base_addresses={"api": server.url}, max_network_retries=0,
                                http_client=stripe.RequestsClient(timeout=20))

    def plain_create(n):
        plain.v1.payment_intents.create(
            {"amount": books[n].price + books[n + 1].price, "currency": "usd",
             "allowed_payment_method_types": ["card"],
             "metadata": {"kiosk_id": "kiosk_0123456789abcdef", "order_ref": "BK-ABCD-EFGH",
                          "items": f"{books[n].isbn13}x1,{books[n + 1].isbn13}x1"},
             "description": "Book Counter order BK-ABCD-EFGH"},
            {"idempotency_key": f"kiosk_0123456789abcdef-{uuid.uuid4().hex}"})

    kiosk_ms, plain_ms, kiosk_cpu, plain_cpu, sample_ms = [], [], [], [], []
    for n in range(warmup + rounds):
        shopper = _Shopper(app, [books[n % 100].isbn13, books[n % 100 + 1].isbn13])
        start, start_cpu = time.perf_counter(), time.thread_time()
        shopper.create_intent()
        middle, middle_cpu = time.perf_counter(), time.thread_time()
        plain_create(n % 100)
        end, end_cpu = time.perf_counter(), time.thread_time()
        shopper.change_the_cart()  # outside the timed part
        if sample is not None:
            reply = sample.post("/create-payment-intent", headers=LOCAL)
            if reply.status_code != 200:
                raise RuntimeError(f"the sample answered {reply.status_code}: {reply.get_data()[:300]}")
            after_sample = time.perf_counter()
            # The sample's own call made plainly, so its overhead is over the same request to Stripe.
            plain.v1.payment_intents.create({"amount": 1999, "currency": "usd",
                                             "allowed_payment_method_types": ["card"]})
            if n >= warmup:
                sample_ms.append(((after_sample - end) - (time.perf_counter() - after_sample)) * 1000)
        if n >= warmup:
            kiosk_ms.append((middle - start) * 1000)
            plain_ms.append((end - middle) * 1000)
            kiosk_cpu.append((middle_cpu - start_cpu) * 1000)
            plain_cpu.append((end_cpu - middle_cpu) * 1000)
    return kiosk_ms, plain_ms, kiosk_cpu, plain_cpu, sample_ms


def run(rounds=80, warmup=5, size=10_000, postgresql=True):
    from tests.support.fakestripe import FakeStripe

    server = FakeStripe()
    tmp = scratch_dir("intent")
    try:
        sample = make_sample(server.sk, server.url, server.pk, tmp / "sample").test_client()
        kiosk_ms, plain_ms, kiosk_cpu, plain_cpu, sample_ms = _measure(
            server, make_app(catalog_path(size), tmp, stripe=server), rounds, warmup, sample)
        pg = _on_postgresql(server, size, rounds, warmup, tmp) if postgresql else None
    finally:
        server.close()
        shutil.rmtree(tmp, ignore_errors=True)
    diffs = [k - p for k, p in zip(kiosk_ms, plain_ms, strict=True)]
    sample_overhead = median(sample_ms)
    figures = [
        Figure("create intent: the Stripe sample's overhead over plain stripe-python, p50", sample_overhead, "ms",
               None, "bench/stripe_sample.py (accept-a-payment, payment-element/server/python) against a plain "
                     "create with its own parameters, same rounds, median of paired differences; it records "
                     "nothing"),
        Figure("create intent: kiosk overhead over plain stripe-python, p50", median(kiosk_ms) - median(plain_ms),
               "ms", max(sample_overhead, 0.0),
               f"SQLite ledger; kiosk p50 {median(kiosk_ms):.2f} ms, plain p50 {median(plain_ms):.2f} ms, "
               f"median of paired differences {median(diffs):.2f} ms, {rounds} interleaved rounds; this thread's "
               f"CPU p50 {median(kiosk_cpu):.2f} vs {median(plain_cpu):.2f} ms (localstripe's own not included); "
               "goal: no more than the sample's, the pending-order commit included"),
        Figure("create intent: kiosk POST /checkout/intent p95", percentile(kiosk_ms, 95), "ms", None,
               f"plain create p95 {percentile(plain_ms, 95):.2f} ms"),
    ]
    if pg is not None:
        pg_kiosk, pg_plain = pg
        figures.append(Figure("create intent on PostgreSQL: kiosk overhead over plain stripe-python, p50",
                              median(pg_kiosk) - median(pg_plain), "ms", None,
                              f"KIOSK_DATABASE_URL on a local throw-away cluster; kiosk p50 {median(pg_kiosk):.2f} ms,"
                              f" plain p50 {median(pg_plain):.2f} ms, {rounds} interleaved rounds"))
    return figures


def _on_postgresql(server, size, rounds, warmup, tmp):
    """The same measurement with the ledger in PostgreSQL (tests/support/pgcluster.py), or None without it."""
    from tests.support.pgcluster import PgCluster
    try:
        cluster = PgCluster().start()
    except RuntimeError as exc:
        print(f"[bench] intent on PostgreSQL skipped: {exc}")
        return None
    try:
        url = cluster.create_database("bench_intent")
        app = make_app(catalog_path(size), f"{tmp}/pg", stripe=server, KIOSK_DATABASE_URL=url)
        kiosk_ms, plain_ms, _, _, _ = _measure(server, app, rounds, warmup)
        app.extensions["kiosk"].ledger.dispose()
        return kiosk_ms, plain_ms
    finally:
        cluster.stop()


if __name__ == "__main__":
    from bench.common import print_table
    print_table(run())
