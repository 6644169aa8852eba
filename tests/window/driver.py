"""Runs ONE kiosk window (pywebview + Qt, offscreen) and one scenario in it; prints `RESULT {json}` and exits.

Two webview.start() calls in one process crash at exit, so every window test runs this in its own subprocess:
    python tests/window/driver.py SCENARIO DATA_DIR
"""
import http.server
import json
import os
import socket
import sys
import tempfile
import threading
import time
import webbrowser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from kiosk import create_app  # noqa: E402 (after sys.path)
from kiosk.core.config import load_settings  # noqa: E402 (after sys.path)
from kiosk.core.logs import setup_logging  # noqa: E402 (after sys.path)
from kiosk.window import launcher, tls  # noqa: E402 (after sys.path)

SHOP = "Window Test Books"
# 3-D Secure stand-in: Stripe.js shows the challenge in an iframe from hooks.stripe.com. That host is unreachable
# here, so the window reaches the internet through this local proxy, which answers for hooks.stripe.com itself
# with a page that talks to its parent as the real challenge frame does, and records every host asked for.
CHALLENGE = b"<!doctype html><p>3DS challenge</p><script>parent.postMessage('challenge-done', '*')</script>"
PROXIED = []


class Proxy(http.server.BaseHTTPRequestHandler):
    context = None

    def do_CONNECT(self):
        PROXIED.append(self.path)
        if self.path != "hooks.stripe.com:443":
            self.send_error(403)
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        with self.context.wrap_socket(self.connection, server_side=True) as tls_socket:
            tls_socket.recv(65536)  # the GET for the challenge page
            tls_socket.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
                               b"Content-Length: %d\r\n\r\n%s" % (len(CHALLENGE), CHALLENGE))
        self.close_connection = True

    def log_message(self, *args):
        pass


def start_proxy():
    """Start the proxy; returns the Chromium flags that route through it and trust its hooks.stripe.com key."""
    folder = tempfile.mkdtemp(prefix="fake-hooks-")
    certfile, keyfile = tls.write_certificate(folder)
    Proxy.context = tls.server_context(certfile, keyfile)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    # Chromium never proxies loopback, so the kiosk's own origin is still reached directly.
    return (f"--proxy-server=http://127.0.0.1:{httpd.server_port} "
            f"--ignore-certificate-errors-spki-list={tls.spki_pin(certfile)}")


def wait_for(check, timeout=10.0):
    """Poll `check` until it returns something truthy; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def shop(window, app, out):
    """The window opens on the catalog, over HTTPS, full screen, with the kiosk's restrictions."""
    from qtpy.QtCore import Qt
    out["title"] = window.title
    out["protocol"] = window.run_js("location.protocol")
    out["text"] = wait_for(lambda: window.run_js("document.body ? document.body.innerText : ''"))
    out["user_select"] = window.run_js("getComputedStyle(document.body).userSelect")
    # pywebview's zoomable=False cancels Ctrl+wheel; dispatchEvent returns false when a listener cancelled it.
    out["ctrl_wheel_allowed"] = window.run_js(
        "document.body.dispatchEvent(new WheelEvent('wheel', "
        "{ctrlKey: true, deltaY: -100, bubbles: true, cancelable: true}))")
    out["fullscreen"] = bool(window.native.windowState() & Qt.WindowState.WindowFullScreen)
    out["context_menu_off"] = window.native.webview.contextMenuPolicy() == Qt.ContextMenuPolicy.NoContextMenu
    with socket.socket() as sock:  # debug=True would open Chromium's remote-debugging port here
        out["debug_port_open"] = sock.connect_ex(("127.0.0.1", 8228)) == 0
    out["chromium_flags"] = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "")


def placement(window, app, out):
    """Where the window really is on the X screen (xwininfo asks the X server), and what the page sees."""
    out["screen"] = xwininfo("-root")
    out["window_id"] = int(window.native.winId())
    # The window is mapped and placed once shown; a window manager (if any) may move it a moment later.
    time.sleep(1.0)
    out["window"] = xwininfo("-id", str(out["window_id"]))
    out["page"] = json.loads(window.run_js(
        "JSON.stringify({x: window.screenX, y: window.screenY, width: window.outerWidth, height: window.outerHeight,"
        " innerWidth: window.innerWidth, innerHeight: window.innerHeight})"))


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
    """Links and window.open to other origins go nowhere; the 3-D Secure iframe loads and talks to the page."""
    requested, opened = [], []
    window.events.request_sent += lambda request: requested.append(request.url)
    refuse = webbrowser.open
    webbrowser.open = lambda url, *a, **k: opened.append(url) or refuse(url, *a, **k)
    home = window.get_current_url()
    window.run_js("location.href = 'https://example.com/away'")
    time.sleep(0.5)
    window.run_js("window.open('https://example.com/popup')")
    window.run_js("var a = document.createElement('a'); a.href = 'https://example.com/blank'; a.target = '_blank';"
                  "document.body.appendChild(a); a.click();")
    time.sleep(1.0)
    out["after_foreign"] = window.get_current_url()
    out["home"] = home
    window.run_js("window.__messages = []; window.addEventListener('message', function (e) {"
                  " window.__messages.push(e.origin + ' ' + e.data); });"
                  "var f = document.createElement('iframe'); f.src = 'https://hooks.stripe.com/3d_secure_2/challenge';"
                  "document.body.appendChild(f);")
    out["frame_messages"] = json.loads(wait_for(lambda: window.run_js(
        "window.__messages.length ? JSON.stringify(window.__messages) : ''")) or "[]")
    window.run_js("window.open('/cart')")
    out["after_same_origin_open"] = wait_for(lambda: (window.get_current_url() or "").endswith("/cart") and
                                             window.get_current_url())
    out["requested"] = requested
    out["proxied"] = PROXIED
    out["outside_browser"] = opened


def reset(window, app, out):
    """The idle reset clears the window too: a cookie and a localStorage value a page set are gone after it."""
    window.run_js("document.cookie = 'tracker=1; path=/'; localStorage.setItem('left', 'behind');")
    state = "document.cookie + ' | ' + String(localStorage.getItem('left'))"
    out["before"] = window.run_js(state)
    started = time.monotonic()
    window.run_js("window.kiosk.post('/session/reset', {}).then(function (r) { window.__reset = r.status; })")
    out["reset_status"] = wait_for(lambda: window.run_js("window.__reset || 0"))
    out["reset_seconds"] = time.monotonic() - started
    # The clearing runs on the GUI thread after the answer: wait until it shows, or give up.
    out["after"] = wait_for(lambda: window.run_js(state) == " | null" and " | null") or window.run_js(state)


def setup(window, app, out):
    """The first-run form opens in the window, which alone was given the setup key; again after an idle reset,
    which clears the window's cookies (that key's among them)."""
    loads = []
    window.events.loaded += lambda: loads.append(window.get_current_url())
    origin = window.get_current_url().rstrip("/")
    out["first_page"] = window.get_current_url()
    form = ("document.getElementById('f-secret_key') ? 'form' : "
            "document.getElementById('setup-elsewhere') ? 'elsewhere' : ''")
    window.load_url(origin + "/staff/setup")
    out["before_reset"] = wait_for(lambda: window.run_js(form))
    window.load_url(origin + "/")
    wait_for(lambda: loads and loads[-1] == origin + "/" and window.run_js("!!window.kiosk"))
    # pywebview may report an earlier page's `loaded` late (it was counted after the shop's, as a third load):
    # let those arrive before counting the reset's.
    time.sleep(1.0)
    seen = len(loads)
    window.run_js("window.kiosk.post('/session/reset', {}).then(function () { location.href = '/attract'; })")
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


def main():
    scenario, data_dir = sys.argv[1], sys.argv[2]
    if scenario == "escape":
        os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = start_proxy()
    settings = load_settings(environ={"KIOSK_DATA_DIR": data_dir, "KIOSK_SHOP_NAME": SHOP,
                                      "KIOSK_WINDOWED": os.environ.get("KIOSK_WINDOWED", "")},
                         env_file=Path(data_dir) / "none.env")
    setup_logging(settings.data_dir)
    app = create_app(settings)
    out = {}

    def drive(window):
        try:
            if not window.events.loaded.wait(30):
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
    print(f"EXIT {code} after {time.monotonic() - started:.1f} s", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
