"""The kiosk window: pywebview on the embedded Flask app, over HTTPS on 127.0.0.1. The only module importing webview."""
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
import webbrowser
from urllib.parse import urlsplit


log = logging.getLogger("kiosk.window")
LINUX = sys.platform.startswith("linux")


class WindowUnavailable(Exception):
    """pywebview or its web view backend cannot be loaded; the message says what to install."""


def close_splash():
    """Close PyInstaller's start-up splash, if this is the executable and it shows one."""
    if "_PYI_SPLASH_IPC" not in os.environ:
        return
    try:
        import pyi_splash
        pyi_splash.close()
    except (ImportError, RuntimeError):  # not built with a splash, or already closed
        pass


def prepare_environment():
    """Environment the web view reads at start-up; must run before webview or Qt is imported."""
    if LINUX:
        # pywebview tries GTK first and prints a `gi` traceback; the kiosk ships Qt (PySide6, LGPL).
        os.environ["PYWEBVIEW_GUI"] = "qt"
        os.environ["QT_API"] = "pyside6"
        # Touch screens: no pinch zoom, and no swipe-back that would leave the page.
        flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
        for flag in ("--disable-pinch", "--overscroll-history-navigation=0"):
            if flag not in flags:
                flags = f"{flags} {flag}".strip()
        os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = flags
        if os.geteuid() == 0 and not os.environ.get("QTWEBENGINE_DISABLE_SANDBOX"):
            # Chromium refuses to start as root with its sandbox on ("Running as root without
            # --no-sandbox is not supported") and the window would never open.
            log.warning("running as root: the web view's sandbox is off; run the kiosk as an ordinary user")
            os.environ["QTWEBENGINE_DISABLE_SANDBOX"] = "1"


def load_webview():
    """Import pywebview and its backend, or raise WindowUnavailable saying what is missing."""
    prepare_environment()
    if LINUX and not any(os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")):
        # Without a screen Qt aborts the whole process (exit 134) instead of raising.
        raise WindowUnavailable("the kiosk window cannot open: no display (DISPLAY and WAYLAND_DISPLAY are unset). "
                                "Start it from the desktop session, or use --headless")
    try:
        import webview
        if LINUX:
            import webview.platforms.qt  # noqa: F401  (loads PySide6 and Qt WebEngine now, not mid-start)
    except Exception as exc:  # ImportError, or a Qt library missing from the system (OSError)
        need = ("pip install -r requirements.txt, and the system libraries in scripts/setup.sh"
                if LINUX else "pip install -r requirements.txt")
        raise WindowUnavailable(f"the kiosk window cannot open ({type(exc).__name__}: {exc}). "
                                f"Install it with: {need}") from None
    return webview


class Guard:
    """What the window allows: pages of the kiosk's own origin, and closing only once staff confirmed."""

    def __init__(self):
        self.origin = None
        self.window = None
        self.exit_allowed = threading.Event()
        self.started = time.monotonic()
        self.loaded_once = False

    def allows(self, url):
        """True for a URL on the kiosk's own origin (scheme, host and port)."""
        parts = urlsplit(url)
        return self.origin is not None and f"{parts.scheme}://{parts.netloc}".lower() == self.origin

    def refuse(self, url, how):
        """Log a blocked attempt to leave the kiosk."""
        log.warning("blocked %s to %s: the kiosk stays on its own pages", how, url[:200])

    def on_closing(self):
        """pywebview's `closing` hook: False cancels the close."""
        if self.exit_allowed.is_set():
            return True
        log.warning("window close refused: staff must confirm exit in the staff area")
        return False

    def exit(self):
        """Staff confirmed (Kiosk.request_exit) or the system asked to stop: close the window for real."""
        log.info("exit confirmed: closing the kiosk window")
        self.exit_allowed.set()
        if self.window is not None:
            self.window.destroy()

    def on_loaded(self):
        """Every backend: if the page somehow left the kiosk's origin, go back to the shop."""
        url = self.window.get_current_url() or ""
        if not self.loaded_once:  # staff, the tests and the benchmark read this line: the kiosk is up
            self.loaded_once = True
            log.info("window loaded %s (%.2f s after the window was asked for)", url, time.monotonic() - self.started)
        if url and not self.allows(url) and not url.startswith(("about:", "chrome-error:")):
            self.refuse(url, "page")
            self.window.load_url(self.origin + "/")


def _refuse_outside_browser(url, *args, **kwargs):
    log.warning("blocked opening an outside browser on %s", str(url)[:200])
    return False


def serve_https(app, certfile, keyfile):
    """Serve `app` over TLS on 127.0.0.1 (any free port) in a thread; returns the server."""
    from werkzeug.serving import make_server

    from . import tls

    # A threaded server: pywebview's own TLS server (ssl=True with the app as url) answers one request at a time.
    httpd = make_server(tls.HOST, 0, app, threaded=True)
    context = tls.server_context(certfile, keyfile)
    # Handshake in each connection's own thread, not in accept(): a stalled client cannot block the server.
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
    httpd.ssl_context = context
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request in the kiosk log
    threading.Thread(target=httpd.serve_forever, name="kiosk-https", daemon=True).start()
    return httpd


def _pin_key(pin):
    """Add a key to Chromium's SPKI pin list (kept as one switch: Chromium reads only the last copy)."""
    flags = os.environ.get("QTWEBENGINE_CHROMIUM_FLAGS", "")
    switch = "--ignore-certificate-errors-spki-list="
    flags = flags.replace(switch, f"{switch}{pin},", 1) if switch in flags else f"{flags} {switch}{pin}".strip()
    os.environ["QTWEBENGINE_CHROMIUM_FLAGS"] = flags


def _harden_qt(guard):
    """Qt WebEngine: keep every top-level page on the kiosk's origin, and log refused certificates."""
    from webview.platforms import qt

    class NewWindowPage(qt.QWebPage):
        """Where window.open and target=_blank land: same-origin pages open in the kiosk, others nowhere."""

        def __init__(self, page):
            super().__init__(page.profile())

        def acceptNavigationRequest(self, url, nav_type, is_main_frame):
            target = url.toString()
            if guard.allows(target):
                guard.window.load_url(target)
            else:
                guard.refuse(target, "new window")
            return False

    # Patched in place, not subclassed: pywebview calls super(BrowserView.WebPage, self) by name.
    page_class = qt.BrowserView.WebPage
    pywebview_init = page_class.__init__

    def __init__(self, parent=None, profile=None):
        pywebview_init(self, parent, profile)
        self.nav_handler = NewWindowPage(self)
        self.certificateError.connect(lambda error: on_certificate_error(error))

    def acceptNavigationRequest(self, url, nav_type, is_main_frame):
        # Frames may go elsewhere: Stripe's Payment Element and its 3-D Secure challenge are iframes.
        if is_main_frame and not guard.allows(url.toString()):
            guard.refuse(url.toString(), "navigation")
            return False
        return True

    def on_certificate_error(error):
        # The kiosk's own key is pinned by flag and never gets here; anything else is refused, and said so.
        log.warning("certificate refused for %s: %s", error.url().toString(), error.description())
        error.rejectCertificate()

    page_class.__init__ = __init__
    page_class.acceptNavigationRequest = acceptNavigationRequest
    # Ctrl+C in a developer's terminal: pywebview's handler calls QApplication.quit(), which the guard refuses.
    qt._sigint_handler = lambda signum, frame: guard.exit()


def window_options(settings):
    """create_window() options: full screen unless KIOSK_WINDOWED, no zoom, no text selection."""
    return {"title": settings.shop_name, "fullscreen": not settings.windowed, "zoomable": False,
            "text_select": False, "confirm_close": False, "width": 1280, "height": 800,
            "min_size": (800, 600), "background_color": "#FFFFFF"}


def run(app, on_started=None):
    """Open the kiosk window on `app` and run until staff exit; returns the exit code.

    `on_started(window)` runs in its own thread once the GUI loop starts (tests drive the window with it).
    """
    from . import tls  # here, not at import: cryptography takes ~0.3 s and 11 MB that headless never needs

    webview = load_webview()
    kiosk = app.extensions["kiosk"]
    guard = Guard()
    # No escape: target=_blank and window.open never hand a URL to the system browser, on any backend.
    webview.settings["OPEN_EXTERNAL_LINKS_IN_BROWSER"] = False
    webview.settings["ALLOW_DOWNLOADS"] = False
    webview.settings["ALLOW_FILE_URLS"] = False
    for name in ("open", "open_new", "open_new_tab"):
        setattr(webbrowser, name, _refuse_outside_browser)

    folder = tempfile.mkdtemp(prefix="kiosk-tls-")
    httpd = None
    try:
        certfile, keyfile = tls.write_certificate(folder)
        httpd = serve_https(app, certfile, keyfile)
        guard.origin = f"https://{tls.HOST}:{httpd.server_port}"
        log.info("serving %s over HTTPS", guard.origin)
        if LINUX:
            # Qt WebEngine ignores pywebview's ssl=True (QSslConfiguration is not Chromium's verifier; the page
            # fails with ERR_CERT_AUTHORITY_INVALID). Chromium's SPKI pin trusts this one key and nothing else.
            os.unlink(keyfile)
            _pin_key(tls.spki_pin(certfile))
            _harden_qt(guard)
            ssl_args = {}
        else:
            # WebView2 and WKWebView: pywebview's ssl=True accepts the kiosk's self-signed certificate.
            ssl_args = {"ssl": True, "server_args": {"keyfile": keyfile, "certfile": certfile}}

        window = webview.create_window(url=guard.origin + "/", **window_options(kiosk.settings))
        guard.window = window
        window.events.closing += guard.on_closing
        window.events.shown += close_splash
        window.events.loaded += guard.on_loaded
        kiosk.on_exit = guard.exit
        signal.signal(signal.SIGTERM, lambda signum, frame: guard.exit())
        # Never debug=True: it opens DevTools, the context menu and a remote-debugging port.
        webview.start(on_started, window, gui="qt" if LINUX else None, debug=False, private_mode=True, **ssl_args)
    finally:
        kiosk.on_exit = None
        if httpd is not None:
            httpd.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
    log.info("kiosk window closed")
    return 0
