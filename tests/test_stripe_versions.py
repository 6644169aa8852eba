"""The one place that says which Stripe the kiosk speaks (kiosk/payments/gateway.py) holds against what is installed."""
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import stripe
from stripe._api_version import _ApiVersion

from kiosk.check import run_check
from kiosk.payments import gateway as payments
from kiosk.payments.gateway import Gateway
from tests.support.settings import ROOT, make_settings

NODE = ROOT / "tests" / "node"


def test_the_pinned_sdk_is_the_one_installed_and_speaks_the_named_api_version():
    assert stripe.VERSION == payments.STRIPE_SDK_VERSION
    assert _ApiVersion.CURRENT == payments.STRIPE_API_VERSION
    assert f"stripe=={payments.STRIPE_SDK_VERSION}\n" in (ROOT / "requirements.txt").read_text()


def test_the_page_loads_the_stripe_js_train_named_by_the_api_version():
    assert payments.STRIPE_JS_RELEASE == _ApiVersion.CURRENT_MAJOR == "endive"
    assert payments.STRIPE_JS_URL == "https://js.stripe.com/endive/stripe.js"
    # The Stripe.js types the front end is checked with (scripts/test.sh) are of that same train.
    package = json.loads((NODE / "package.json").read_text())
    pinned = {**package.get("dependencies", {}), **package.get("devDependencies", {})}["@stripe/stripe-js"]
    installed = json.loads((NODE / "node_modules" / "@stripe" / "stripe-js" / "package.json").read_text())
    assert installed["version"] == pinned
    loader = (NODE / "node_modules" / "@stripe" / "stripe-js" / "dist" / "index.mjs").read_text()
    assert re.search(r"RELEASE_TRAIN = '(\w+)'", loader).group(1) == payments.STRIPE_JS_RELEASE


class _Recorder(BaseHTTPRequestHandler):
    """Answers every request with an empty list, keeping the Stripe-Version header it came with."""

    seen: ClassVar[list] = []

    def do_GET(self):
        self.seen.append(self.headers.get("Stripe-Version"))
        body = json.dumps({"object": "list", "data": [], "has_more": False, "url": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_every_request_carries_the_named_api_version():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        _Recorder.seen = []
        Gateway("sk_test_versions", f"http://127.0.0.1:{server.server_port}", timeout=5, retries=0).ping()
    finally:
        server.shutdown()
        server.server_close()
    assert _Recorder.seen == [payments.STRIPE_API_VERSION]


def test_check_names_the_api_version_in_use(tmp_path, stripe_server):
    lines = []
    run_check(make_settings(tmp_path, stripe_server), out=lines.append)
    said = "\n".join(lines)
    assert f"Stripe API version {payments.STRIPE_API_VERSION} (stripe-python {payments.STRIPE_SDK_VERSION})" in said
    assert payments.STRIPE_JS_URL in said
