"""The staff screens on a year of sales (issue #28), on SQLite and PostgreSQL, at 10k orders and at N (default
1,000,000) over 365 days: the ledgers of bench/staff_ledger.py, the kiosk signed in as staff.

- Pages, WSGI (Flask's test client calls the app in this process, as bench_pages does): today's dashboard, order
  searches (exact reference, its first half, pi_ id, the best-selling ISBN, status filters, over-sold) and close the
  day; median of REPEAT after a warm-up, each answer checked (200, and the order searched for is listed).
- Exports, HTTP: `python -m kiosk --headless` as a shop runs it, in its own process (the test client would buffer a
  streamed answer): the CSV of the last 30 days and of the year, read as a spreadsheet download would: total time and
  time to the first byte of the body (median of REPEAT after a warm-up), and the most the process grew above what it
  held idle in any of those runs (VmHWM from /proc, reset before each export through /proc/<pid>/clear_refs, and
  VmRSS sampled every 20 ms).
- Customers while staff export: the home page p50 over HTTP (300 requests, one keep-alive connection of a customer's
  own), idle and while a year export runs on another connection.

`python -m bench staff`, or `python -m bench.bench_staff [--orders N] [--db sqlite|postgresql] [--repeat R]`
(environment: KIOSK_BENCH_ORDERS, KIOSK_BENCH_DATABASES=sqlite,postgresql, KIOSK_BENCH_REPEAT,
KIOSK_BENCH_YEAR_REPEAT for the year's export alone). KIOSK_BENCH_CODE=<a checkout> measures that tree's kiosk
(bench/staff_ledger.py use_code): the code before #28 opens the generated version-10 ledger as it is.
"""
import contextlib
import http.client
import os
import re
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from urllib.parse import urlencode

from bench.common import LOCAL, PYTHON, Figure, free_port, kiosk_env, load_note, make_app, median, percentile, timed
from bench.make_catalog import catalog_path
from bench.staff_ledger import PIN, TITLES, app_env, check, cluster, ledger, use_code

SMALL = 10_000
PAGE_GOAL_MS = 50.0
SEARCH_GOAL_MS = 20.0
FIRST_BYTE_GOAL_S = 1.0
MEMORY_GOAL_MB = 100.0
YEAR_GOAL_S = 170 / 3  # at least 3x faster than the 170 s measured before (issue #28)
HOME_REQUESTS = 300
# (figure, path, goal in ms, text the answer must hold): {reference} and the rest come from the ledger's plan.
PAGES = (
    ("today's dashboard", "/staff/", PAGE_GOAL_MS, ""),
    ("order search: exact reference", "/staff/orders?q={reference}", SEARCH_GOAL_MS, "/staff/orders/{reference}"),
    ("order search: reference prefix", "/staff/orders?q={prefix}", SEARCH_GOAL_MS, "/staff/orders/{reference}"),
    ("order search: pi_ id", "/staff/orders?q={intent}", SEARCH_GOAL_MS, "/staff/orders/{reference}"),
    ("order search: ISBN of the best seller", "/staff/orders?q={isbn}", SEARCH_GOAL_MS, "/staff/orders/BK-"),
    ("order filter: status refunded", "/staff/orders?status=refunded", SEARCH_GOAL_MS, "/staff/orders/BK-"),
    ("order filter: status paid", "/staff/orders?status=paid", SEARCH_GOAL_MS, "/staff/orders/BK-"),
    ("order filter: over-sold", "/staff/orders?oversold=1", SEARCH_GOAL_MS, "/staff/orders/BK-"),
    ("close the day", "/staff/day", PAGE_GOAL_MS, ""),
)
NAMES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def _say(text):
    print(f"[staff] {text}", file=sys.stderr, flush=True)


def _size(n):
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n / 1000:g}k"


def _keys(led):
    s = led.summary
    return {"reference": s["reference"], "prefix": s["reference"][:7], "intent": s["intent"], "isbn": s["isbn"]}


def _pages(led, repeat):
    """{figure: (ms per run, CPU ms per run)} of every page in PAGES, through the app in this process."""
    from kiosk.ledger.db import close_ledgers
    from tests.support.client import signed_in

    app = make_app(catalog_path(TITLES), led.folder, **app_env(led))
    client, keys, found = signed_in(app, PIN), _keys(led), {}
    try:
        for name, path, _, expect in PAGES:
            url, needle = path.format(**keys), expect.format(**keys)

            def get(url=url, needle=needle):
                answer = client.get(url)
                if answer.status_code != 200 or needle not in answer.get_data(as_text=True):
                    raise RuntimeError(f"GET {url} answered {answer.status_code} without {needle!r}")
            cpu = []
            found[name] = (timed(get, repeat, warmup=1, cpu=cpu), cpu)
    finally:
        close_ledgers()
    return found


class Browser:
    """One browser's keep-alive connection to a kiosk on 127.0.0.1, keeping its session cookie."""

    def __init__(self, port):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1800)
        self.cookie = None

    def send(self, method, path, body=None, headers=None):
        """The response, headers read and body not."""
        self.conn.request(method, path, body=body, headers={**LOCAL, **({"Cookie": self.cookie} if self.cookie
                                                                          else {}), **(headers or {})})
        response = self.conn.getresponse()
        if response.getheader("Set-Cookie"):
            self.cookie = response.getheader("Set-Cookie").split(";")[0]
        return response

    def get(self, path):
        response = self.send("GET", path)
        body = response.read()
        if response.status != 200:
            raise RuntimeError(f"GET {path} answered {response.status}")
        return body

    def sign_in(self):
        """Sign in with the PIN as the staff screen does (the CSRF token from the shop's page)."""
        token = re.search(rb'name="csrf-token" content="([^"]+)"', self.get("/")).group(1).decode()
        response = self.send("POST", "/staff/login", urlencode({"pin": PIN}),
                             {"X-CSRFToken": token, "Content-Type": "application/x-www-form-urlencoded"})
        response.read()
        if response.status != 302:
            raise RuntimeError(f"signing in answered {response.status}")
        return self

    def export(self, first, last):
        """Download the orders CSV of local days first..last: (seconds in all, seconds to the first byte, bytes)."""
        for _ in range(50):
            started = time.perf_counter()
            response = self.send("GET", f"/staff/export.csv?from={first}&to={last}")
            if response.status != 302:
                break
            # Sent back to the orders page: the kiosk's exports at once are all taken (the one before is ending).
            response.read()
            time.sleep(0.1)
        if response.status != 200:
            raise RuntimeError(f"the export answered {response.status}: {response.read()[:200]!r}")
        chunk = response.read1(1 << 16)  # what has come: the first byte's time
        first_byte, size = time.perf_counter() - started, len(chunk)
        while chunk:
            chunk = response.read(1 << 20)  # read(), not read1(): it ends the response, so the connection is kept
            size += len(chunk)
        return time.perf_counter() - started, first_byte, size

    def close(self):
        self.conn.close()


class Headless:
    """`python -m kiosk --headless` on a ledger, from the tree being measured, as a shop runs it."""

    def __init__(self, code, led):
        self.port = free_port()
        env = kiosk_env(catalog_path(TITLES), led.folder / "data", **app_env(led))
        self.log = open(led.folder / "headless.log", "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen([PYTHON, "-m", "kiosk", "--headless", "--port", str(self.port)], cwd=code,
                                     env=env, stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 300
        while True:
            try:
                Browser(self.port).get("/")
                return
            except (ConnectionError, OSError, RuntimeError, http.client.HTTPException):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"the kiosk did not start; see {led.folder / 'headless.log'}") from None
                time.sleep(0.2)

    def status(self, key):
        """VmRSS or VmHWM in bytes."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key + ":"))

    def cpu(self):
        """Seconds of CPU the process has used."""
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def reset_peak(self):
        with open(f"/proc/{self.proc.pid}/clear_refs", "w") as f:
            f.write("5")  # VmHWM starts again from VmRSS

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def _export(kiosk, staff, first, last, repeat):
    """Median seconds in all and to the first byte, the most bytes the process grew above idle in any run (the
    warm-up too: a kiosk's first export is the one that takes new memory), the CSV's bytes, median kiosk CPU s."""
    runs, grown = [], 0
    for n in range(repeat + 1):
        idle, cpu = kiosk.status("VmRSS"), kiosk.cpu()
        kiosk.reset_peak()
        peak, done = [idle], threading.Event()

        def sample(peak=peak, done=done):
            while not done.wait(0.02):
                peak[0] = max(peak[0], kiosk.status("VmRSS"))
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            total, first_byte, size = staff.export(first, last)
        finally:
            done.set()
            sampler.join()
        above = max(peak[0], kiosk.status("VmHWM")) - idle
        grown = max(grown, above)
        _say(f"  export {first}..{last} run {n}: {total:.2f} s, first byte {first_byte:.2f} s, "
             f"+{above / 1e6:.0f} MB, {size / 1e6:.1f} MB")
        if n:  # the first is the warm-up
            runs.append((total, first_byte, size, kiosk.cpu() - cpu))
    total, first_byte, size, cpu = (median([r[i] for r in runs]) for i in range(4))
    return total, first_byte, grown, size, cpu


def _home(port, requests=HOME_REQUESTS):
    """ms per GET / of one customer over a keep-alive connection, after 5 warm-ups."""
    customer = Browser(port)
    try:
        return timed(lambda: customer.get("/"), requests, warmup=5)
    finally:
        customer.close()


def _home_while_exporting(kiosk, staff, first, last):
    """The home page's ms while a year's export runs on the staff's connection (another starts if one ends)."""
    stop, exports = threading.Event(), []

    def export():
        while not stop.is_set():
            exports.append(staff.export(first, last))
    worker = threading.Thread(target=export, daemon=True)
    worker.start()
    time.sleep(1)  # the export is under way
    try:
        return _home(kiosk.port), exports
    finally:
        stop.set()
        worker.join()


def _http(code, led, repeat, year_repeat, customers):
    """Exports of 30 days and of the year, and (if `customers`) the home page idle and while a year's export runs."""
    last = date.fromisoformat(led.summary["last_day"])
    kiosk = Headless(code, led)
    staff = Browser(kiosk.port).sign_in()
    try:
        found = {"30 days": _export(kiosk, staff, last - timedelta(days=29), last, repeat),
                 "the year": _export(kiosk, staff, last - timedelta(days=364), last, year_repeat)}
        if customers:
            found["home idle"] = _home(kiosk.port)
            found["home exporting"], exports = _home_while_exporting(kiosk, staff, last - timedelta(days=364), last)
            _say(f"  home page while exporting: {len(exports)} export(s) ran")
    finally:
        staff.close()
        kiosk.close()
    return found


def _ledger_figure(name, led):
    s, made = led.summary["counts"], led.made
    detail = (f"{s['order_lines']:,} lines, {s['stock_movements']:,} stock movements, {s['refunds']:,} refunds over "
              f"365 days; made in {made['generated']:.0f} s ({made['generated_on']})")
    if "migrated" in made:
        detail += f"; the kiosk's migration to version {led.version} took {made['migrated']:.1f} s"
    return Figure(f"{name}: ledger, orders", s["orders"], "orders", None, detail)


def _figures(dialect, small, big, sizes):
    """The rows for one database: each figure at the big ledger, the small one's beside it."""
    name = f"{NAMES[dialect]} {_size(sizes[1])}"
    small_name = _size(sizes[0])
    out = [_ledger_figure(name, big["ledger"])]
    for page, _, goal, _ in PAGES:
        runs, cpu = big["pages"][page]
        out.append(Figure(f"{name}: {page} (WSGI)", median(runs), "ms", goal,
                          f"{small_name}: {median(small['pages'][page][0]):.1f} ms; CPU p50 {median(cpu):.1f} ms"))
    for span, total_goal in (("30 days", None), ("the year", YEAR_GOAL_S)):
        total, first_byte, grown, size, cpu = big["http"][span]
        s_total, s_first, s_grown, _, _ = small["http"][span]
        out += [
            Figure(f"{name}: CSV export, {span} (HTTP), in all", total, "s", total_goal,
                   f"{size / 1e6:.1f} MB of CSV; kiosk CPU {cpu:.1f} s; {small_name}: {s_total:.2f} s"),
            Figure(f"{name}: CSV export, {span}, first byte", first_byte, "s", FIRST_BYTE_GOAL_S,
                   f"{small_name}: {s_first:.2f} s"),
            Figure(f"{name}: CSV export, {span}, peak memory above idle", grown / 1e6, "MB", MEMORY_GOAL_MB,
                   f"the kiosk process's VmHWM, the most of any run; {small_name}: {s_grown / 1e6:.0f} MB"),
        ]
    idle, busy = big["http"]["home idle"], big["http"]["home exporting"]
    out.append(Figure(f"{name}: home page p50 while a year's export runs (HTTP)", median(busy), "ms",
                      median(idle) * 1.1, f"idle p50 {median(idle):.2f} ms; p95 {percentile(busy, 95):.1f} ms "
                      f"exporting, {percentile(idle, 95):.1f} ms idle; {HOME_REQUESTS} requests each"))
    return out


def _one(code, dialect, orders, pg, repeat, year_repeat, big):
    led = ledger(dialect, orders, pg, say=_say)
    _say(f"{NAMES[dialect]} {_size(orders)}: pages")
    found = {"ledger": led, "pages": _pages(led, repeat)}
    _say(f"{NAMES[dialect]} {_size(orders)}: exports over HTTP")
    found["http"] = _http(code, led, repeat, year_repeat, customers=big)
    return found


def _setting(name, default):
    return type(default)(os.environ.get(name) or default)


def run(orders=None, databases=None, repeat=None, year_repeat=None):
    code = use_code()
    orders = orders or _setting("KIOSK_BENCH_ORDERS", 1_000_000)
    databases = databases or _setting("KIOSK_BENCH_DATABASES", "sqlite,postgresql").split(",")
    repeat = repeat or _setting("KIOSK_BENCH_REPEAT", 5)
    year_repeat = year_repeat or _setting("KIOSK_BENCH_YEAR_REPEAT", repeat)
    sizes = (min(SMALL, orders), orders)
    _say(f"kiosk from {code}; {load_note()}")
    figures = []
    for dialect in databases:
        with cluster() if dialect == "postgresql" else contextlib.nullcontext() as pg:
            check(dialect, pg)
            _say(f"{NAMES[dialect]}: the generator writes what the ledger's own functions write (a 300-order day)")
            small = _one(code, dialect, sizes[0], pg, repeat, year_repeat, big=False)
            big = _one(code, dialect, sizes[1], pg, repeat, year_repeat, big=True)
        figures += _figures(dialect, small, big, sizes)
    return figures


def main(argv):
    import argparse

    from bench.common import print_table

    parser = argparse.ArgumentParser(prog="python -m bench.bench_staff")
    parser.add_argument("--orders", type=int)
    parser.add_argument("--db", choices=tuple(NAMES), action="append")
    parser.add_argument("--repeat", type=int)
    parser.add_argument("--year-repeat", type=int)
    args = parser.parse_args(argv)
    figures = run(args.orders, args.db, args.repeat, args.year_repeat)
    print_table(figures)
    print(f"\n{load_note()} (2 cores); kiosk from {use_code()}")
    return 1 if any(f.ok is False for f in figures) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
