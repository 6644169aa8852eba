"""Resident memory of `python -m kiosk --headless` with a 100k-title catalog, loaded and warm.

The kiosk runs as it would in a shop (its own process, waitress, test keys). "Warm" means after the
home page, a few catalog pages and categories, a book page, the cart and 40 typed searches over HTTP,
so the search index and the page caches exist. RSS and its peak come from /proc/<pid>/status.
"""
import http.client
import shutil
import subprocess
import time
from urllib.parse import quote

from bench.bench_search import queries
from bench.common import LOCAL, PYTHON, ROOT, Figure, free_port, kiosk_env, scratch_dir
from bench.make_catalog import catalog_path

GOAL_MB = 150


def _status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024  # kB -> MiB
    return fields


def run(size=100_000):
    from kiosk.core.catalog import load_catalog

    path = catalog_path(size)
    sample = load_catalog(path, "USD")
    searches = queries(sample.books)[:40]
    book = sample.books[len(sample.books) // 2].isbn13
    del sample
    tmp = scratch_dir("memory")
    port = free_port()
    proc = subprocess.Popen([PYTHON, "-m", "kiosk", "--headless", "--port", str(port)], cwd=ROOT,
                            env=kiosk_env(path, tmp / "data"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        conn = None
        deadline = time.monotonic() + 120
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                conn.request("GET", "/", headers=LOCAL)
                break
            except ConnectionRefusedError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the kiosk did not start") from None
                time.sleep(0.05)
        cookie = {}

        def get(target):
            if target is not None:
                conn.request("GET", target, headers={**LOCAL, **cookie})
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {target} answered {response.status}")
            if response.getheader("Set-Cookie"):
                cookie["Cookie"] = response.getheader("Set-Cookie").split(";")[0]

        get(None)  # the home page requested above
        started = _status(proc.pid)
        for target in ["/?page=2", "/?page=400", "/?category=Poetry", "/?category=History&page=3",
                       f"/book/{book}", "/cart"] + [f"/search?partial=1&q={quote(q)}" for q in searches]:
            get(target)
        warm = _status(proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)
    return [Figure(f"RSS, {size // 1000}k titles loaded and warm", warm["VmRSS"], "MiB", GOAL_MB,
                   f"peak {warm['VmHWM']:.0f} MiB; {started['VmRSS']:.0f} MiB after the first page, "
                   f"before any search")]


if __name__ == "__main__":
    from bench.common import print_table
    print_table(run())
