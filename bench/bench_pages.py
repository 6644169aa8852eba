"""Home page latency on a 10k-title catalog, through the real app.

Measured two ways, each after a few warm-up requests, one browser session (cookie) throughout:
- WSGI: Flask's test client calls the app exactly as a server would (session from SQLite, CSRF token,
  context processors, security headers), without sockets;
- HTTP: the same app served by waitress (what `python -m kiosk --headless` runs) on 127.0.0.1, one
  keep-alive connection, timed from sending the request to reading the last byte.
"""
import http.client
import shutil

from bench.common import LOCAL, Figure, make_app, median, percentile, scratch_dir, timed
from bench.make_catalog import catalog_path

GOAL_P50_MS = 5.0
PATHS = ["/", "/?page=200", "/?category=Poetry", "/cart"]


def _over_http(app, paths, repeat):
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


def run(size=10_000, repeat=300):
    tmp = scratch_dir("pages")
    try:
        app = make_app(catalog_path(size), tmp)
        client = app.test_client()

        def get(path):
            response = client.get(path, headers=LOCAL)
            if response.status_code != 200:
                raise RuntimeError(f"GET {path} answered {response.status_code}")

        cpu = {path: [] for path in PATHS}
        wsgi = {path: timed(lambda path=path: get(path), repeat, warmup=5, cpu=cpu[path]) for path in PATHS}
        http = _over_http(app, PATHS, repeat)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    where = f"{size // 1000}k titles, {repeat} requests"
    figures = [
        Figure("home page p50 (WSGI, Flask test client)", median(wsgi["/"]), "ms", GOAL_P50_MS,
               f"{where}; p95 {percentile(wsgi['/'], 95):.2f} ms; CPU p50 {median(cpu['/']):.2f} ms"),
        Figure("home page p50 (HTTP, waitress, keep-alive)", median(http["/"]), "ms", GOAL_P50_MS,
               f"{where}; p95 {percentile(http['/'], 95):.2f} ms"),
    ]
    for path in PATHS[1:]:
        figures.append(Figure(f"GET {path} p50 (WSGI)", median(wsgi[path]), "ms", None,
                              f"HTTP p50 {median(http[path]):.2f} ms; CPU p50 {median(cpu[path]):.2f} ms"))
    return figures


if __name__ == "__main__":
    from bench.common import print_table
    print_table(run())
