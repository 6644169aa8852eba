"""Home page latency on a 4-title and a 10k-title catalog, through the real app, beside the Stripe sample's
static index page, and again with 100k orders and 100k sessions stored.

Measured two ways, each after a few warm-up requests, one browser session (cookie) throughout:
- WSGI: Flask's test client calls the app exactly as a server would (session from SQLite, CSRF token,
  context processors, security headers), without sockets;
- HTTP: the same app served by waitress (what `python -m kiosk --headless` runs) on 127.0.0.1, one
  keep-alive connection, timed from sending the request to reading the last byte.
"""
import http.client
import shutil
import time

from bench.common import LOCAL, Figure, make_app, median, percentile, scratch_dir, timed
from bench.make_catalog import catalog_path

GOAL_P50_MS = 5.0  # 10k titles
GOAL_SMALL_MS = 3.0  # 4 titles
PATHS = ["/", "/?page=200", "/?category=Poetry", "/cart"]


def _over_http(app, paths, repeat):
    """Per path, ms from sending a GET to reading its last byte, over one keep-alive connection to waitress."""
    from tests.support.live import LiveServer

    with LiveServer(app, threads=8) as live:
        conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=10)
        cookie = {}

        def get(path):
            conn.request("GET", path, headers={**LOCAL, **cookie})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {path} answered {response.status}")
            sid = response.getheader("Set-Cookie")
            if sid:
                cookie["Cookie"] = sid.split(";")[0]

        try:
            return {path: timed(lambda path=path: get(path), repeat, warmup=5) for path in paths}
        finally:
            conn.close()


def _fill(app, count):
    """`count` paid orders in the ledger and `count` sessions (each with a cart line) in the session store."""
    import sqlite3
    books = app.extensions["kiosk"].catalog.books
    with sqlite3.connect(app.extensions["kiosk"].ledger.url) as db:
        db.executemany("INSERT INTO orders (reference, status, amount, currency, created_at, updated_at, paid_at, "
                       "kiosk_id, counter, subtotal) VALUES (?, 'paid', 1299, 'USD', ?, ?, ?, 'bench', 'Main', 1299)",
                       ((f"BK-B{n:07d}", "2026-01-01 10:00:00", "2026-01-01 10:00:00", "2026-01-01 10:00:00")
                        for n in range(count)))
        db.executemany("INSERT INTO order_lines (order_id, isbn, title, unit_price, quantity) "
                       "VALUES (?, ?, 'x', 1299, 1)", ((n + 1, books[n % len(books)].isbn13) for n in range(count)))
    store = app.extensions["sessions"]
    now = time.time()
    with sqlite3.connect(store.path) as db:
        db.executemany("INSERT INTO sessions (id, created, updated) VALUES (?, ?, ?)",
                       ((f"{n:064x}", now, now) for n in range(count)))
        db.executemany("INSERT INTO cart_lines (session, isbn, quantity) VALUES (?, ?, 1)",
                       ((f"{n:064x}", books[n % len(books)].isbn13) for n in range(count)))


def _side_by_side(first, second, path, repeat):
    """GET `path` from two kiosks in turn, one session each: (first's ms, second's ms)."""
    clients = [first.test_client(), second.test_client()]
    times = ([], [])
    for n in range(repeat + 5):
        for which, client in enumerate(clients):
            start = time.perf_counter()
            if client.get(path, headers=LOCAL).status_code != 200:
                raise RuntimeError(f"GET {path} failed")
            if n >= 5:
                times[which].append((time.perf_counter() - start) * 1000)
    return times


def _pages(app, paths, repeat):
    """(WSGI ms, WSGI CPU ms, HTTP ms) per path, one browser session."""
    client = app.test_client()

    def get(path):
        response = client.get(path, headers=LOCAL)
        if response.status_code != 200:
            raise RuntimeError(f"GET {path} answered {response.status_code}")

    cpu = {path: [] for path in paths}
    wsgi = {path: timed(lambda path=path: get(path), repeat, warmup=5, cpu=cpu[path]) for path in paths}
    return wsgi, cpu, _over_http(app, paths, repeat)


def run(size=10_000, repeat=300, stored=100_000):
    from bench.stripe_sample import make_sample

    tmp = scratch_dir("pages")
    try:
        sample = make_sample("sk_test_bench", "http://127.0.0.1:9", "pk_test_bench", tmp / "sample")
        sample_http = _over_http(sample, ["/"], repeat)["/"]
        small_wsgi, small_cpu, small_http = _pages(make_app(catalog_path(4), tmp / "small"), ["/"], repeat)
        app = make_app(catalog_path(size), tmp)
        wsgi, cpu, http = _pages(app, PATHS, repeat)
        full = make_app(catalog_path(size), tmp / "full")
        _fill(full, stored)
        growth = {path: _side_by_side(app, full, path, repeat) for path in ("/", "/cart")}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    where = f"{size // 1000}k titles, {repeat} requests"
    figures = [
        Figure("the Stripe sample's static index p50 (HTTP, waitress, keep-alive)", median(sample_http), "ms", None,
               "bench/stripe_sample.py served the same way as the kiosk below"),
        Figure("home page p50, 4 titles (WSGI, Flask test client)", median(small_wsgi["/"]), "ms", GOAL_SMALL_MS,
               f"p95 {percentile(small_wsgi['/'], 95):.2f} ms; CPU p50 {median(small_cpu['/']):.2f} ms"),
        Figure("home page p50, 4 titles (HTTP, waitress, keep-alive)", median(small_http["/"]), "ms", None,
               f"p95 {percentile(small_http['/'], 95):.2f} ms"),
        Figure("home page p50 (WSGI, Flask test client)", median(wsgi["/"]), "ms", GOAL_P50_MS,
               f"{where}; p95 {percentile(wsgi['/'], 95):.2f} ms; CPU p50 {median(cpu['/']):.2f} ms"),
        Figure("home page p50 (HTTP, waitress, keep-alive)", median(http["/"]), "ms", None,
               f"{where}; p95 {percentile(http['/'], 95):.2f} ms"),
    ]
    for path in PATHS[1:]:
        figures.append(Figure(f"GET {path} p50 (WSGI)", median(wsgi[path]), "ms", None,
                              f"HTTP p50 {median(http[path]):.2f} ms; CPU p50 {median(cpu[path]):.2f} ms"))
    for path, (empty, filled) in growth.items():
        # Goal: no growth. Both kiosks are asked in turn, so both see the same machine; 10% is within the noise.
        figures.append(Figure(f"GET {path} p50 with {stored // 1000}k orders and sessions stored (WSGI)",
                              median(filled), "ms", median(empty) * 1.1,
                              f"{median(empty):.2f} ms on a kiosk with none, asked in turn, {repeat} each"))
    return figures


if __name__ == "__main__":
    from bench.common import print_table
    print_table(run())
