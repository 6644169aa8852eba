"""Lighthouse (bench/node, Debian's Chromium) on the customer's home, book, cart and checkout pages: performance,
accessibility and best practices, each against a goal of 100 (issue #25).

The kiosk is served by waitress over HTTP on 127.0.0.1, paying through localstripe, with Lighthouse's desktop
preset (a kiosk screen, not a phone). The cart and checkout are measured with a cart holding a book (the session's
cookie is handed to Lighthouse). There is no internet here: the checkout's Stripe.js (js.stripe.com) and the
calls it makes (api.stripe.com) are answered on this machine by the tests' Stripe.js double and its api.stripe.com
layer (tests/stripejs, tests/support/stripe_api.py), through Chromium's host resolver rules, so the figures cover
the kiosk's own page and not Stripe's real script."""
import json
import os
import re
import shutil
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import requests

from bench.common import Figure, make_app, scratch_dir

NODE = Path(__file__).resolve().parent / "node"
LIGHTHOUSE = NODE / "node_modules" / ".bin" / "lighthouse"
CATEGORIES = ("performance", "accessibility", "best-practices")
GOAL = 100


def _lighthouse():
    """The pinned Lighthouse, installed with npm ci on first use."""
    if not LIGHTHOUSE.exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--silent"], cwd=NODE, check=True)
    return LIGHTHOUSE


class _StripeHosts(BaseHTTPRequestHandler):
    """js.stripe.com (the Stripe.js double) and api.stripe.com (stripe_api.StripeApi) on one local HTTPS port."""

    api = None

    def log_message(self, *args):
        pass

    def _answer(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        from tests.support.browser import stripe_js_double
        if self.headers.get("Host", "").startswith("js.stripe.com"):
            self._answer(200, stripe_js_double(), "application/javascript; charset=utf-8")
            return
        self._api("GET")

    def do_POST(self):
        self._api("POST")

    def _api(self, method):
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        if method == "POST":
            length = int(self.headers.get("Content-Length") or 0)
            params.update(parse_qsl(self.rfile.read(length).decode(), keep_blank_values=True))
        status, body = self.api.dispatch(method, url.path, url.query, params)
        self._answer(status, json.dumps(body))


def _stripe_hosts(stripe, folder):
    """Serve the Stripe hosts over TLS on a free port; (server, port)."""
    from kiosk.window.tls import server_context, write_certificate
    from tests.support.stripe_api import StripeApi

    handler = type("Handler", (_StripeHosts,), {"api": StripeApi(stripe)})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    context: ssl.SSLContext = server_context(*write_certificate(folder))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def _cart_cookie(url, isbn):
    """A customer session holding one copy of `isbn`, as the Cookie header Lighthouse should send."""
    http = requests.Session()
    page = http.get(url + "/").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    http.post(url + "/cart/add", data={"csrf_token": token, "isbn": isbn, "quantity": "1", "next": "/"})
    return "; ".join(f"{c.name}={c.value}" for c in http.cookies)


def _audit(url, cookie, stripe_port, home):
    """Lighthouse's category scores (0-100) for one page."""
    flags = (f"--headless=new --no-sandbox --ignore-certificate-errors "
             f'--host-resolver-rules="MAP js.stripe.com:443 127.0.0.1:{stripe_port},'
             f'MAP api.stripe.com:443 127.0.0.1:{stripe_port}"')  # quoted: Lighthouse splits its flags at spaces
    command = [str(_lighthouse()), url, "--output=json", "--quiet", "--preset=desktop", f"--chrome-flags={flags}",
               f"--only-categories={','.join(CATEGORIES)}"]
    if cookie:
        command.append(f"--extra-headers={json.dumps({'Cookie': cookie})}")
    env = {**os.environ, "CHROME_PATH": shutil.which("chromium") or "/usr/bin/chromium", "HOME": str(home)}
    for _ in range(2):  # Lighthouse's own advice when its trace missed the page's start (NO_NAVSTART)
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=240, check=False)
        if done.returncode == 0 or "run Lighthouse again" not in done.stderr:
            break
    if done.returncode:
        raise RuntimeError(f"lighthouse failed on {url}: {done.stderr.strip()[-800:]}")
    report = json.loads(done.stdout)
    failing = [k for k, a in report["audits"].items()
               if a.get("score") is not None and a["score"] < 1 and a.get("scoreDisplayMode") == "binary"]
    console = report["audits"]["errors-in-console"].get("details", {}).get("items", [])
    failing += [f"console: {item.get('description', '')[:120]} ({item.get('url', '')[:100]})" for item in console]
    return {name: round(report["categories"][name]["score"] * 100) for name in CATEGORIES}, failing


def run():
    from tests.support.fakestripe import FakeStripe
    from tests.support.live import LiveServer
    from tests.support.settings import SAMPLE

    stripe = FakeStripe()
    tmp = scratch_dir("lighthouse")
    figures = []
    try:
        app = make_app(SAMPLE, tmp, stripe=stripe)
        book = app.extensions["kiosk"].catalog.books[0]
        hosts, port = _stripe_hosts(stripe, tmp)
        with LiveServer(app) as live:
            cookie = _cart_cookie(live.url, book.isbn13)
            pages = {"home": ("/", ""), "book": (f"/book/{book.isbn13}", ""), "cart": ("/cart", cookie),
                     "checkout": ("/checkout/", cookie)}
            for name, (path, page_cookie) in pages.items():
                scores, failing = _audit(live.url + path, page_cookie, port, tmp)
                for category, score in scores.items():
                    figures.append(Figure(f"lighthouse {name}: {category}, points below 100", GOAL - score, "pts",
                                          0, f"score {score}" + (f"; failing: {', '.join(failing)}"
                                                                 if failing and score < GOAL else "")))
        hosts.shutdown()
    finally:
        stripe.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return figures
