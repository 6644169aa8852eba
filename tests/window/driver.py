"""Runs ONE kiosk window (pywebview + WebKitGTK, on the X screen in DISPLAY) and one scenario in it; prints
`RESULT {json}` and exits.

Two webview.start() calls in one process crash at exit, so every window test runs this in its own subprocess:
    python tests/window/driver.py SCENARIO DATA_DIR
"""
import http.server
import json
import os
import socket
import ssl
import sys
import tempfile
import threading
import time
import typing
import webbrowser
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from kiosk import create_app  # noqa: E402 (after sys.path)
from kiosk.core.config import load_settings  # noqa: E402 (after sys.path)
from kiosk.core.logs import setup_logging  # noqa: E402 (after sys.path)
from kiosk.window import launcher, serving, tls  # noqa: E402 (after sys.path)

SHOP = "Window Test Books"
# 3-D Secure stand-in: Stripe.js shows the challenge in an iframe from hooks.stripe.com. That host is unreachable
# here, so the window reaches the internet through this local proxy, which answers for hooks.stripe.com itself
# with a page that talks to its parent as the real challenge frame does, and records every host asked for.
CHALLENGE = b"<!doctype html><p>3DS challenge</p><script>parent.postMessage('challenge-done', '*')</script>"
PROXIED = []      # every CONNECT the proxy was asked for ("host:443")
DECRYPTED = []    # every request the proxy read inside a TLS connection it answered ("host /path")
PROBE, PROBED = "proxy-probe.stripe.com", threading.Event()  # use_proxy's sign that the window uses the proxy


def view_of(window):
    """pywebview's GTK BrowserView of `window` (its WebKitWebView is `.webview`)."""
    from webview.platforms import gtk
    return gtk.BrowserView.instances[window.uid]


def on_gui(fn):
    """Run fn() on the GTK main thread and return what it returns (WebKit's objects live there)."""
    from webview.platforms import gtk
    done, out = threading.Event(), {}

    def call():
        try:
            out["value"] = fn()
        except Exception as exc:  # noqa: BLE001 - re-raised in the caller's thread
            out["error"] = exc
        done.set()
        return False

    gtk.glib.idle_add(call)
    assert done.wait(10), "the GTK main loop did not run the call"
    if "error" in out:
        raise out["error"]
    return out.get("value")


class Proxy(http.server.BaseHTTPRequestHandler):
    """A CONNECT proxy that answers the hosts in `answers` itself, over TLS with `context`, and refuses the rest."""

    context = None
    answers: typing.ClassVar[dict] = {}  # host -> an Inside class answering for that host inside the tunnel

    def do_CONNECT(self):
        if self.path == f"{PROBE}:443":
            PROBED.set()  # use_proxy's probe: not one of the scenario's requests
            self.send_error(403)
            return
        PROXIED.append(self.path)
        host = self.path.rsplit(":", 1)[0]
        if self.path.rsplit(":", 1)[-1] != "443" or host not in self.answers:
            self.send_error(403)
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        try:
            tunnel = self.context.wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError):
            return  # the window refused this certificate: nothing was sent inside
        with tunnel:
            self.answers[host](tunnel, self.client_address, self.server)
        self.close_connection = True

    def log_message(self, *args):
        pass


class Inside(http.server.BaseHTTPRequestHandler):
    """What a proxied host answers inside its tunnel; subclasses set `routes` {path prefix: handler(self)}."""

    protocol_version = "HTTP/1.1"
    host = ""

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except (ssl.SSLError, ConnectionError):
            self.close_connection = True

    def reply(self, status, body, content_type="text/html", headers=None):
        self.send_response(status)
        for name, value in {"Content-Type": content_type, "Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        DECRYPTED.append(f"{self.host} {self.path.split('?')[0]}")
        self.answer("GET")

    def do_POST(self):
        DECRYPTED.append(f"{self.host} {self.path.split('?')[0]}")
        self.answer("POST")

    def do_OPTIONS(self):
        self.answer("OPTIONS")

    def answer(self, method):
        self.reply(404, b"not here")

    def log_message(self, *args):
        pass


class Hooks(Inside):
    """hooks.stripe.com: the 3-D Secure challenge frame."""

    host = "hooks.stripe.com"

    def answer(self, method):
        self.reply(200, CHALLENGE)


def start_proxy(answers, trusted=True):
    """Start the proxy for `answers` ({host: Inside subclass}) with one throw-away certificate for them all.

    Returns (proxy URL, certificate file): the window reaches every host but the kiosk's through the proxy, and
    trusts that certificate for those hosts only when the scenario says so (trusted=True; see use_proxy)."""
    folder = tempfile.mkdtemp(prefix="fake-stripe-")
    certfile, keyfile = tls.write_certificate(folder)
    Proxy.context = tls.server_context(certfile, keyfile)
    Proxy.answers = answers
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{httpd.server_port}", certfile if trusted else None


def use_proxy(window, proxy_url, certfile, hosts):
    """Send the window's traffic (but the kiosk's own) through the proxy. With `certfile`, the TEST trusts the
    proxy's certificate for `hosts`, through the same WebKit call the kiosk uses for its own host: the kiosk
    itself trusts nothing there but the system's authorities."""
    from gi.repository import Gio
    from webview.platforms import gtk

    def apply():
        webkit = gtk.webkit
        webview = view_of(window).webview
        settings = webkit.NetworkProxySettings.new(proxy_url, ["127.0.0.1", "localhost"])
        webview.get_website_data_manager().set_network_proxy_settings(webkit.NetworkProxyMode.CUSTOM, settings)
        if certfile:
            certificate = Gio.TlsCertificate.new_from_file(certfile)
            for host in hosts:
                webview.get_context().allow_tls_certificate_for_host(certificate, host)

    on_gui(apply)
    # WebKit's network process takes the setting in its own time: until the proxy sees a request (an image from a
    # host the page's CSP allows, which the proxy refuses), a request could still go out directly.
    seen = wait_for(lambda: js(window, f"new Image().src = 'https://{PROBE}/' + Date.now()") or PROBED.is_set())
    assert seen, "the window never used the proxy"


def wait_for(check, timeout=30.0):
    """Poll `check` until it returns something truthy; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def js(window, script):
    """Run a statement in the page for its effect (a promise it makes is not waited for)."""
    window.run_js(f"(function () {{ {script} }})(); 0")


def shop(window, app, out):
    """The window opens on the catalog, over HTTPS, full screen, with the kiosk's restrictions."""
    from gi.repository import GObject
    from webview.platforms import gtk
    out["title"] = window.title
    out["protocol"] = window.run_js("location.protocol")
    out["text"] = wait_for(lambda: window.run_js("document.body ? document.body.innerText : ''"))
    out["user_select"] = window.run_js("getComputedStyle(document.body).userSelect || "
                                       "getComputedStyle(document.body).webkitUserSelect")
    # pywebview's zoomable=False cancels Ctrl+wheel; dispatchEvent returns false when a listener cancelled it.
    out["ctrl_wheel_allowed"] = window.run_js(
        "document.body.dispatchEvent(new WheelEvent('wheel', "
        "{ctrlKey: true, deltaY: -100, bubbles: true, cancelable: true}))")
    out["local_storage"] = window.run_js(
        "(function () { localStorage.setItem('probe', 'kept'); return localStorage.getItem('probe'); })()")
    with socket.socket() as sock:  # debug=True would open a remote inspector; the kiosk never asks for one
        out["debug_port_open"] = sock.connect_ex(("127.0.0.1", 8228)) == 0

    def native():
        view = view_of(window)
        webview, settings = view.webview, view.webview.get_settings().props
        menu = GObject.signal_lookup("context-menu", gtk.webkit.WebView)
        return {"fullscreen_asked": view.is_fullscreen,
                "context_menu_off": GObject.signal_has_handler_pending(webview, menu, 0, False),
                "tls_policy": webview.get_context().get_tls_errors_policy().value_nick,
                "ephemeral": webview.get_context().is_ephemeral(),
                "developer_extras": settings.enable_developer_extras,
                "media_stream": settings.enable_media_stream,
                "clipboard": settings.javascript_can_access_clipboard,
                "swipe_back": settings.enable_back_forward_navigation_gestures,
                "webkit": f"{gtk.webkit.get_major_version()}.{gtk.webkit.get_minor_version()}"}

    out.update(on_gui(native))


def placement(window, app, out):
    """Where the window really is on the X screen (xwininfo asks the X server), and what the page sees."""
    import gi
    gi.require_version("GdkX11", "3.0")
    from gi.repository import GdkX11  # noqa: F401 - gives Gdk windows their X id (get_xid)
    out["screen"] = xwininfo("-root")
    out["window_id"] = on_gui(lambda: window.native.get_window().get_xid())
    # The window is mapped and placed once shown; a window manager (if any) may move it a moment later.
    time.sleep(1.0)
    out["window"] = xwininfo("-id", str(out["window_id"]))
    out["page"] = json.loads(window.run_js(
        "JSON.stringify({x: window.screenX, y: window.screenY, width: window.outerWidth, height: window.outerHeight,"
        " innerWidth: window.innerWidth, innerHeight: window.innerHeight})"))
    out["colours"] = on_gui(screen_colours)


def screen_colours():
    """How many colours the X screen shows, every 8th pixel: a painted shop has dozens, a blank window one."""
    from gi.repository import Gdk
    root = Gdk.get_default_root_window()
    pixels = Gdk.pixbuf_get_from_window(root, 0, 0, root.get_width(), root.get_height())
    data, stride, step = pixels.get_pixels(), pixels.get_rowstride(), pixels.get_n_channels()
    return len({bytes(data[y * stride + x * step:y * stride + x * step + 3])
                for y in range(0, pixels.get_height(), 8) for x in range(0, pixels.get_width(), 8)})


def xwininfo(*args):
    """The absolute position and size of an X window, as the X server reports them."""
    import re
    import subprocess
    text = subprocess.run(["xwininfo", *args], capture_output=True, text=True, timeout=10, check=True).stdout
    fields = {"x": "Absolute upper-left X", "y": "Absolute upper-left Y", "width": "Width", "height": "Height",
              "map_state": "Map State"}
    found = {name: re.search(rf"^\s*{label}:\s*(\S+)", text, re.M).group(1) for name, label in fields.items()}
    return {name: value if name == "map_state" else int(value) for name, value in found.items()}


def escape(window, app, out):
    """Links and window.open to other origins go nowhere; the 3-D Secure iframe loads and talks to the page; a
    Stripe origin the page may frame never becomes the page itself."""
    use_proxy(window, *start_proxy({"hooks.stripe.com": Hooks}), ["hooks.stripe.com"])
    requested, opened = [], []
    window.events.request_sent += lambda request: requested.append(request.url)
    refuse = webbrowser.open
    webbrowser.open = lambda url, *a, **k: opened.append(url) or refuse(url, *a, **k)
    home = window.get_current_url()
    js(window, "location.href = 'https://example.com/away'")
    time.sleep(0.5)
    js(window, "window.open('https://example.com/popup')")
    js(window, "var a = document.createElement('a'); a.href = 'https://example.com/blank'; a.target = '_blank';"
               "document.body.appendChild(a); a.click();")
    time.sleep(1.0)
    out["after_foreign"] = window.get_current_url()
    out["home"] = home
    js(window, "window.__messages = []; window.addEventListener('message', function (e) {"
               " window.__messages.push(e.origin + ' ' + e.data); });"
               "var f = document.createElement('iframe'); f.src = 'https://hooks.stripe.com/3d_secure_2/challenge';"
               "document.body.appendChild(f);")
    out["frame_messages"] = json.loads(wait_for(lambda: window.run_js(
        "window.__messages.length ? JSON.stringify(window.__messages) : ''")) or "[]")
    # The frame's origin as the page itself: refused at its response, the page stays the kiosk's.
    js(window, "location.href = 'https://hooks.stripe.com/3d_secure_2/whole-page'")
    time.sleep(1.5)
    out["after_stripe_top"] = window.get_current_url()
    out["stripe_top_text"] = window.run_js("document.body.innerText.indexOf('3DS challenge') >= 0")
    js(window, "window.open('/cart')")
    out["after_same_origin_open"] = wait_for(lambda: (window.get_current_url() or "").endswith("/cart") and
                                             window.get_current_url())
    js(window, "var a = document.createElement('a'); a.href = '/'; a.target = '_blank';"
               "document.body.appendChild(a); a.click();")
    out["after_same_origin_blank"] = wait_for(lambda: (window.get_current_url() or "").endswith(
        urlsplit(home).netloc + "/") and window.get_current_url())
    out["requested"] = requested
    out["proxied"] = PROXIED
    out["decrypted"] = DECRYPTED
    out["outside_browser"] = opened


def permissions(window, app, out):
    """Camera and microphone, location, notifications: refused without a prompt (or not offered at all)."""
    js(window, "var asked = window.__asked = {};"
               "if (!navigator.mediaDevices) asked.media = 'unavailable'; else navigator.mediaDevices.getUserMedia("
               " {video: true, audio: true}).then(function () { asked.media = 'granted'; },"
               " function (e) { asked.media = e.name; });"
               "navigator.geolocation.getCurrentPosition(function () { asked.geo = 'granted'; },"
               " function (e) { asked.geo = e.code === e.PERMISSION_DENIED ? 'denied' : 'code ' + e.code; });"
               "Notification.requestPermission().then(function (p) { asked.notify = p; });")
    out["asked"] = json.loads(wait_for(lambda: window.run_js(
        "Object.keys(window.__asked).length === 3 ? JSON.stringify(window.__asked) : ''")) or "{}")


def reset(window, app, out):
    """The idle reset clears the window too: a cookie and a localStorage value a page set are gone after it."""
    js(window, "document.cookie = 'tracker=1; path=/'; localStorage.setItem('left', 'behind');"
               "sessionStorage.setItem('kiosk-last-input', '1');")
    state = "document.cookie + ' | ' + String(localStorage.getItem('left'))"
    out["before"] = window.run_js(state)
    started = time.monotonic()
    js(window, "window.kiosk.post('/session/reset', {}).then(function (r) { window.__reset = r.status; })")
    out["reset_status"] = wait_for(lambda: window.run_js("window.__reset || 0"))
    out["reset_seconds"] = time.monotonic() - started
    # The clearing runs on the GUI thread after the answer: wait until it shows, or give up.
    out["after"] = wait_for(lambda: window.run_js(state) == " | null" and " | null") or window.run_js(state)
    out["session_after"] = window.run_js("String(sessionStorage.getItem('kiosk-last-input'))")


def setup(window, app, out):
    """The first-run form opens in the window, which alone was given the setup key; again after an idle reset,
    which clears the window's cookies (that key's among them)."""
    loads = []
    window.events.loaded += lambda: loads.append(window.get_current_url())
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(window.get_current_url()))
    out["first_page"] = window.get_current_url()
    form = ("document.getElementById('f-secret_key') ? 'form' : "
            "document.getElementById('setup-elsewhere') ? 'elsewhere' : ''")
    window.load_url(origin + "/staff/setup")
    out["before_reset"] = wait_for(lambda: window.run_js(form))
    window.load_url(origin + "/")
    wait_for(lambda: loads and loads[-1] == origin + "/" and window.run_js("!!window.kiosk"))
    # pywebview may report an earlier page's `loaded` late: let those arrive before counting the reset's.
    time.sleep(1.0)
    seen = len(loads)
    js(window, "window.kiosk.post('/session/reset', {}).then(function () { location.href = '/attract'; })")
    # The attract screen loads, then loads again through the setup address (the launcher gives the key back).
    wait_for(lambda: len(loads) >= seen + 2)
    out["after_reset_loads"] = len(loads) - seen
    out["after_reset_urls"] = [url.split("?")[0] for url in loads[seen:]]
    window.load_url(origin + "/staff/setup")
    out["after_reset"] = wait_for(lambda: (window.get_current_url() or "").endswith("/staff/setup") and
                                  window.run_js(form))


def close(window, app, out):
    """Closing is refused until staff confirm; then the window closes and the process ends."""
    window.destroy()
    time.sleep(1.0)
    out["closed_after_destroy"] = window.events.closed.is_set()
    out["alive_after_destroy"] = window.run_js("1 + 1")
    out["exit_accepted"] = app.extensions["kiosk"].request_exit()
    out["closed_after_exit"] = window.events.closed.wait(10)


def interrupt(window, app, out):
    """Ctrl+C in the terminal that started the kiosk (SIGINT): the window closes through the guard, as on Exit."""
    import signal
    os.kill(os.getpid(), signal.SIGINT)
    out["closed"] = window.events.closed.wait(10)


def busy_exit(window, app, out):
    """Staff exit while calls to the window are still under way (as pywebview's own are after every page load):
    the process still ends."""
    def keep_asking():
        for i in range(200):
            window.run_js(f"1 + {i}")

    for _ in range(4):
        threading.Thread(target=keep_asking, name="asking").start()
    time.sleep(0.05)
    out["asking"] = len([t for t in threading.enumerate() if t.name == "asking"])


# ---- certificates: the window's origin is served with a certificate other than the kiosk's own

class Hostile:
    """An HTTPS server on 127.0.0.1 with a certificate of its own; `requests` counts what reached it in clear."""

    def __init__(self):
        folder = tempfile.mkdtemp(prefix="hostile-")
        certfile, keyfile = tls.write_certificate(folder)  # same subject and names as the kiosk's, another key
        self.requests = []
        seen = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                seen.append(self.path)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"<!doctype html><p>hostile page</p>")

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.socket = tls.server_context(certfile, keyfile).wrap_socket(self.httpd.socket, server_side=True)
        self.server_port = self.httpd.server_port
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def shutdown(self):
        self.httpd.shutdown()


HOSTILE = []


def serve_hostile(app, certfile, keyfile):
    """launcher.serve_https for the hostile_origin scenario: the kiosk's server starts, but the port the window
    is given is another program's, with another certificate (a neighbour that took the kiosk's place)."""
    real = serving.serve_https(app, certfile, keyfile)
    hostile = Hostile()
    HOSTILE.append((real, hostile))
    return hostile


def serve_as_localhost(app, certfile, keyfile):
    """launcher.serve_https for the other_name scenario: the kiosk's own server and certificate, which the window
    is then told to reach as https://localhost:PORT (its certificate names localhost too)."""
    httpd = serving.serve_https(app, certfile, keyfile)
    tls.HOST = "localhost"  # read by run() for the window's origin, after the certificate was made for 127.0.0.1
    return httpd


def refused(window, app, out):
    """The window's first page never loads: what the page shows and what the kiosk's log says."""
    time.sleep(3.0)
    out["loaded"] = window.events.loaded.is_set()
    out["text"] = window.run_js("document.body ? document.body.innerText : ''")
    out["url"] = window.get_current_url()


def hostile_origin(window, app, out):
    """Another certificate on the kiosk's own host and port: refused, and its server reads no request."""
    refused(window, app, out)
    out["hostile_requests"] = HOSTILE[0][1].requests


def other_name(window, app, out):
    """The kiosk's own server and certificate, reached as https://localhost: refused (trusted for 127.0.0.1 only),
    though the certificate names localhost too."""
    refused(window, app, out)


def forged_stripe(window, app, out):
    """Stripe's hosts are the system's to validate: a certificate no authority signed for api.stripe.com is
    refused, and nothing is sent inside the connection."""
    use_proxy(window, *start_proxy({"api.stripe.com": Inside}, trusted=False), [])
    js(window, "fetch('https://api.stripe.com/v1/tokens', {method: 'POST', body: 'card=x'}).then("
               " function (r) { window.__fetched = 'status ' + r.status; },"
               " function (e) { window.__fetched = e.name; });")
    out["fetched"] = wait_for(lambda: window.run_js("window.__fetched || ''"))
    out["proxied"] = PROXIED
    out["decrypted"] = DECRYPTED


# ---- payments: the Stripe.js double inside the window, Stripe's API answered from localstripe

STATE = {}


class StripeJs(Inside):
    """js.stripe.com: the Stripe.js double of the kiosk's release train (tests/stripejs), and nothing else."""

    host = "js.stripe.com"

    def answer(self, method):
        from tests.support.browser import stripe_js_double
        from tests.support.stripe_api import STRIPE_JS_URL
        if method == "GET" and f"https://{self.host}{self.path}" == STRIPE_JS_URL:
            self.reply(200, stripe_js_double().encode(), "application/javascript; charset=utf-8")
        else:
            self.reply(404, b"not served")


class StripeApiHost(Inside):
    """api.stripe.com: Stripe.js's calls, answered from localstripe by tests/support/stripe_api.py."""

    host = "api.stripe.com"

    def answer(self, method):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else None
        request = _Request(method, f"https://{self.host}{self.path}", dict(self.headers.items()), body)
        STATE["api"](_Route(self), request)


class _Request:
    """The parts of a Playwright request StripeApi reads."""

    def __init__(self, method, url, headers, post_data):
        self.method, self.url, self.post_data = method, url, post_data
        self.headers = {k.lower(): v for k, v in headers.items()}


class _Route:
    """The part of a Playwright route StripeApi answers through."""

    def __init__(self, handler):
        self.handler = handler

    def fulfill(self, status, body, headers=None, content_type=None):
        extra = dict(headers or {})
        self.handler.reply(status, body.encode() if isinstance(body, str) else body,
                           content_type or "application/json", extra)


FILL = """var set = function (id, value) { var i = document.getElementById(id); i.value = value;
  i.dispatchEvent(new Event('input', {bubbles: true})); };
set('sd-number', '%s'); set('sd-expiry', '12 / 34'); set('sd-cvc', '123');
document.getElementById('pay').click();"""


def settle(window, url):
    """Load `url` and wait until that page is the one showing, whatever the page before still had under way (a
    confirmation page may be loaded a second time by its own script)."""
    js(window, "window.__old = true")
    window.load_url(url)
    return wait_for(lambda: window.get_current_url() == url and
                    window.run_js("!window.__old && document.readyState === 'complete'"), timeout=30)


def checkout(window, origin, isbn):
    """Put one copy of `isbn` in the cart from the page (its own CSRF token), open Checkout, wait for Pay."""
    settle(window, origin + "/cart")
    js(window, "window.__added = 0; fetch('/cart/add', {method: 'POST', body: new URLSearchParams({isbn: "
               + json.dumps(isbn) + ", quantity: '1'}), headers: {'X-CSRFToken': window.kiosk.csrf,"
               " Accept: 'application/json'}}).then(function (r) { window.__added = r.status; },"
               " function (e) { window.__added = String(e); })")
    STATE.setdefault("added", []).append(wait_for(lambda: window.run_js("window.__added || 0")))
    return settle(window, origin + "/checkout/") and wait_for(lambda: window.run_js(
        "!!document.getElementById('sd-number') && !document.getElementById('pay').disabled"), timeout=30)


def pay(window, card, challenge=None):
    """Type `card` into the Payment Element and press Pay; answer 3-D Secure with `challenge` (Complete/Fail)."""
    js(window, FILL % card)
    if challenge:
        shown = wait_for(lambda: window.run_js("!!document.querySelector('[data-stripe-double=\"3ds\"]')"))
        js(window, "Array.prototype.forEach.call(document.querySelectorAll('[data-stripe-double=\"3ds\"] button'),"
                   " function (b) { if (b.textContent === " + json.dumps(challenge) + ") b.click(); });")
        return shown
    return True


def payments(window, app, out):
    """Declined, 3-D Secure failed then completed, and a plain card: inside the WebKitGTK window."""
    from tests.e2e.shopper import CARD_3DS, CARD_DECLINED, CARD_OK, pick_books
    hosts = {"js.stripe.com": StripeJs, "api.stripe.com": StripeApiHost}
    use_proxy(window, *start_proxy(hosts), list(hosts))
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(window.get_current_url()))
    first, second = pick_books(2)
    message = "document.getElementById('payment-message').innerText"
    out["checkout_ready"] = checkout(window, origin, first["isbn"])
    pay(window, CARD_DECLINED.replace(" ", ""))
    out["declined"] = wait_for(lambda: window.run_js(message), timeout=30)
    out["3ds_failed_shown"] = pay(window, CARD_3DS.replace(" ", ""), "Fail")
    out["3ds_failed"] = wait_for(lambda: window.run_js(message) != out["declined"] and window.run_js(message),
                                 timeout=30)
    # What the page did wrong by Stripe.js's rules, read while it is still the checkout page.
    out["double_errors"] = window.run_js("window.__stripeDouble.integrationErrors.length + ' ' +"
                                         " window.__stripeDouble.integrationErrors.join(' | ')")
    out["3ds_shown"] = pay(window, CARD_3DS.replace(" ", ""), "Complete")
    out["3ds_confirmed"] = wait_for(lambda: "/checkout/complete" in (window.get_current_url() or "") and
                                    window.run_js("document.getElementById('payment-intent-id').innerText"),
                                    timeout=30)
    out["second_ready"] = checkout(window, origin, second["isbn"])
    pay(window, CARD_OK.replace(" ", ""))
    out["ok_confirmed"] = wait_for(lambda: "/checkout/complete" in (window.get_current_url() or "") and
                                   window.run_js("document.getElementById('payment-intent-id').innerText") !=
                                   out["3ds_confirmed"] and
                                   window.run_js("document.getElementById('payment-intent-id').innerText"),
                                   timeout=30)
    fake = STATE["fake"]
    out["intents"] = sorted((i.id, i.status, i.amount) for i in fake.intents())
    out["api_problems"] = STATE["api"].problems
    out["violations"] = [f"{v.method} {v.path}: {v.message}" for v in fake.expect_violations()]
    out["added"] = STATE["added"]
    out["decrypted_hosts"] = sorted({entry.split()[0] for entry in DECRYPTED})
    with app.extensions["kiosk"].ledger.connect() as db:
        out["orders"] = [dict(r) for r in db.execute("SELECT payment_intent, status, amount FROM orders ORDER BY id")]


def settings_for(scenario, data_dir):
    """The kiosk's settings for a scenario; the payments scenario gets localstripe's keys."""
    environ = {"KIOSK_DATA_DIR": data_dir, "KIOSK_SHOP_NAME": SHOP,
               "KIOSK_WINDOWED": os.environ.get("KIOSK_WINDOWED", "")}
    if scenario == "payments":
        from tests.support.fakestripe import FakeStripe
        from tests.support.stripe_api import StripeApi
        fake = STATE["fake"] = FakeStripe()
        STATE["api"] = StripeApi(fake)
        environ.update(STRIPE_SECRET_KEY=fake.sk, STRIPE_PUBLISHABLE_KEY=fake.pk, STRIPE_API_BASE=fake.url)
    return load_settings(environ=environ, env_file=Path(data_dir) / "none.env")


def main():
    scenario, data_dir = sys.argv[1], sys.argv[2]
    if scenario == "hostile_origin":
        launcher.serve_https = serve_hostile
    elif scenario == "other_name":
        launcher.serve_https = serve_as_localhost
    settings = settings_for(scenario, data_dir)
    setup_logging(settings.data_dir)
    app = create_app(settings)
    out = {}

    def drive(window):
        try:
            if scenario in ("hostile_origin", "other_name"):
                globals()[scenario](window, app, out)
            elif not window.events.loaded.wait(30):
                out["error"] = "the page never loaded"
            else:
                globals()[scenario](window, app, out)
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            out["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            print("RESULT " + json.dumps(out), flush=True)
            if scenario != "close" or "closed_after_exit" not in out:
                app.extensions["kiosk"].request_exit()

    started = time.monotonic()
    code = launcher.run(app, on_started=drive)
    for real, hostile in HOSTILE:
        real.shutdown()
        hostile.shutdown()
    print(f"EXIT {code} after {time.monotonic() - started:.1f} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
