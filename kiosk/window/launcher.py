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

from kiosk.window.serving import serve_https

log = logging.getLogger("kiosk.window")
LINUX = sys.platform.startswith("linux")
# The backend glue below (certificate handling, permissions, clearing the window) replaces methods of
# pywebview's backends as they are in this version; start-up fails loudly if one is missing.
PYWEBVIEW_WRITTEN_FOR = "6.2.1"


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
            import webview.platforms.qt
    except Exception as exc:  # noqa: BLE001 - ImportError, OSError (a missing Qt library), or Qt's own
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
        # run(): Kiosk.screen_path, the address that gives the window this launch's screen key (staff/screen.py);
        # `rekey` is set by the idle reset, which clears that cookie with the rest.
        self.screen_path = None
        self.rekey = False

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
        if not self.loaded_once:  # the log records when the shop came up, and how long start-up took
            self.loaded_once = True
            log.info("window loaded %s (%.2f s after the window was asked for)", url, time.monotonic() - self.started)
        if url and not self.allows(url) and not url.startswith(("about:", "chrome-error:")):
            self.refuse(url, "page")
            self.window.load_url(self.origin + "/")
        elif self.rekey and self.allows(url) and self.screen_path is not None:
            self.rekey = False
            # The same page again, through the address that gives the key back.
            self.window.load_url(self.origin + self.screen_path(urlsplit(url).path))

    def forgot(self):
        """The idle reset cleared the window's cookies: the next page loaded gets the screen key back."""
        self.rekey = True


def _replaced(owner, name):
    """Check that pywebview still has the backend method the kiosk replaces, or refuse to open the window."""
    if not callable(getattr(owner, name, None)):
        raise WindowUnavailable(
            f"this pywebview has no {owner.__name__}.{name}, which the kiosk replaces so that the window trusts only "
            f"its own certificate (written against pywebview {PYWEBVIEW_WRITTEN_FOR}). "
            "Install the pinned version: pip install -r requirements.txt")


def edge_certificate_handler(origin, kiosk_der, actions):
    """WebView2's ServerCertificateErrorDetected handler: allow only the kiosk's own certificate on its own origin.

    pywebview's own handler answers AlwaysAllow to every host. WebView2 asks only about certificates that
    failed its validation, so anything but the kiosk's own is canceled (never its "continue anyway" page)."""
    from kiosk.window import tls

    def on_certificate_error(browser, sender, args):
        presented = tls.der_of_pem(args.ServerCertificate.ToPemEncoding())
        if tls.trust_decision(origin, args.RequestUri, presented, kiosk_der) == tls.ALLOW:
            args.Action = actions.AlwaysAllow
        else:
            log.warning("certificate refused for %s (%s)", str(args.RequestUri)[:200], args.ErrorStatus)
            args.Action = actions.Cancel
    return on_certificate_error


def cocoa_challenge_handler(origin, kiosk_der, leaf_der, credential_for, server_trust_method):
    """WKWebView's authentication-challenge handler: the kiosk's own certificate on its origin is trusted, the
    system validates every other host, and other kinds of challenge are left to the system.

    pywebview's own handler trusts any server for every challenge. `leaf_der(trust)` and `credential_for(trust)`
    come from the Security and Foundation frameworks (macOS only), so this stays testable elsewhere."""
    from kiosk.window import tls
    use_credential, default_handling, cancel = 0, 1, 2  # NSURLSessionAuthChallengeDisposition

    def on_challenge(delegate, webview, challenge, completion):
        space = challenge.protectionSpace()
        if space.authenticationMethod() != server_trust_method:
            completion(default_handling, None)
            return
        trust = space.serverTrust()
        url = f"{space.protocol()}://{space.host()}:{space.port()}"
        decision = tls.trust_decision(origin, url, leaf_der(trust), kiosk_der)
        if decision == tls.ALLOW:
            completion(use_credential, credential_for(trust))
        elif decision == tls.SYSTEM:
            completion(default_handling, None)
        else:
            log.warning("certificate refused for %s", url[:200])
            completion(cancel, None)
    return on_challenge


def _harden_edge(origin, kiosk_der):
    """Windows: install the certificate handler on pywebview's EdgeChromium backend."""
    from webview.platforms import winforms
    if not winforms.is_chromium:
        raise WindowUnavailable("the kiosk window needs Microsoft Edge WebView2, which Windows 10 and 11 include; "
                                "install the WebView2 Runtime from Microsoft")
    from webview.platforms import edgechromium
    _replaced(edgechromium.EdgeChrome, "on_certificate_error")
    edgechromium.EdgeChrome.on_certificate_error = edge_certificate_handler(
        origin, kiosk_der, edgechromium.CoreWebView2ServerCertificateErrorAction)


def _harden_cocoa(origin, kiosk_der):
    """macOS: swap pywebview's WKWebView delegate for one with the kiosk's challenge handler."""
    import Foundation
    import Security  # pyobjc-framework-Security, a dependency of pywebview on macOS
    from webview.platforms import cocoa

    def leaf_der(trust):
        chain = Security.SecTrustCopyCertificateChain(trust) if hasattr(Security, "SecTrustCopyCertificateChain") \
            else [Security.SecTrustGetCertificateAtIndex(trust, 0)]
        return bytes(Security.SecCertificateCopyData(chain[0])) if chain and chain[0] is not None else None

    base = cocoa.BrowserView.BrowserDelegate
    _replaced(base, "webView_didReceiveAuthenticationChallenge_completionHandler_")
    handler = cocoa_challenge_handler(origin, kiosk_der, leaf_der, Foundation.NSURLCredential.credentialForTrust_,
                                      Foundation.NSURLAuthenticationMethodServerTrust)

    class KioskBrowserDelegate(base):  # an Objective-C class: defined once per process, as run() is called once
        def webView_didReceiveAuthenticationChallenge_completionHandler_(self, webview, challenge, completion):
            handler(self, webview, challenge, completion)

    cocoa.BrowserView.BrowserDelegate = KioskBrowserDelegate


def _refuse_outside_browser(url, *args, **kwargs):
    log.warning("blocked opening an outside browser on %s", str(url)[:200])
    return False


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

    def onFeaturePermissionRequested(self, url, feature):
        # pywebview grants camera and microphone to any page; the kiosk needs neither.
        log.warning("refused %s to %s", feature, url.toString()[:200])
        self.setFeaturePermission(url, feature, qt.QWebPage.PermissionPolicy.PermissionDeniedByUser)

    _replaced(page_class, "onFeaturePermissionRequested")
    page_class.__init__ = __init__
    page_class.acceptNavigationRequest = acceptNavigationRequest
    page_class.onFeaturePermissionRequested = onFeaturePermissionRequested
    # Ctrl+C in a developer's terminal: pywebview's handler calls QApplication.quit(), which the guard refuses.
    qt._sigint_handler = lambda signum, frame: guard.exit()


CLEAR_STORAGE = "try { localStorage.clear(); sessionStorage.clear(); } catch (e) {}"


def forget_browsing(window):
    """The idle reset, in the window: every cookie (Stripe.js's too) and the page's storage go.

    Called from a request thread; the work is handed to the GUI thread and not waited for, so a reset never
    hangs on a page that is busy loading."""
    if LINUX:
        from webview.platforms import qt
        view = qt.BrowserView.instances.get(window.uid)
        if view is None:
            return

        def clear():
            view.profile.cookieStore().deleteAllCookies()
            view.webview.page().runJavaScript(CLEAR_STORAGE)

        view.create_window_trigger.emit(clear)  # pywebview's "run this on the GUI thread" signal
    else:
        # WebView2 and WKWebView marshal these to their UI thread themselves.
        window.clear_cookies()
        window.run_js(CLEAR_STORAGE)


def window_options(settings, screen=None):
    """create_window() options: full screen on `screen` unless KIOSK_WINDOWED, no zoom, no text selection."""
    options = {"title": settings.shop_name, "fullscreen": not settings.windowed, "zoomable": False,
               "text_select": False, "confirm_close": False, "width": 1280, "height": 800,
               "min_size": (800, 600), "background_color": "#FFFFFF"}
    if screen is not None and not settings.windowed:
        # Full screen is the window manager's to grant, and a kiosk often runs with none (a bare X server): the
        # window then stays where it was made, and pywebview makes it 1280x800, centred 16 px above the middle.
        # Made at the screen's origin and size, it covers the glass with or without one.
        options.update(screen=screen, x=0, y=0, width=screen.width, height=screen.height,
                       min_size=(min(800, screen.width), min(600, screen.height)))
    return options


def primary_screen(webview):
    """The screen the kiosk fills (pywebview lists the primary one first), or None when none is reported."""
    try:
        screens = webview.screens
    except Exception as exc:  # noqa: BLE001 - a backend that cannot list screens still opens a window
        log.warning("the screens could not be listed (%s); the window is placed by the system", exc)
        return None
    return screens[0] if screens else None


def run(app, on_started=None):
    """Open the kiosk window on `app` and run until staff exit; returns the exit code.

    `on_started(window)` runs in its own thread once the GUI loop starts (tests drive the window with it).
    """
    from kiosk.window import tls

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
            # WebView2 and WKWebView: pywebview's ssl=True installs its certificate hooks (which trust every
            # host); the kiosk replaces them with its own, which trust this one certificate on its own origin.
            kiosk_der = tls.certificate_der(certfile)
            (_harden_edge if sys.platform == "win32" else _harden_cocoa)(guard.origin, kiosk_der)
            ssl_args = {"ssl": True, "server_args": {"keyfile": keyfile, "certfile": certfile}}

        # The first page comes through the screen key's address: only this window is given it, never a page.
        screen = None if kiosk.settings.windowed else primary_screen(webview)
        window = webview.create_window(url=guard.origin + kiosk.screen_path("/"),
                                       **window_options(kiosk.settings, screen))
        guard.window, guard.screen_path = window, kiosk.screen_path
        window.events.closing += guard.on_closing
        window.events.shown += close_splash
        window.events.loaded += guard.on_loaded
        kiosk.on_exit = guard.exit
        kiosk.on_reset = lambda: (forget_browsing(window), guard.forgot())
        signal.signal(signal.SIGTERM, lambda signum, frame: guard.exit())
        kiosk.start_background()
        # Never debug=True: it opens DevTools, the context menu and a remote-debugging port.
        webview.start(on_started, window, gui="qt" if LINUX else None, debug=False, private_mode=True, **ssl_args)
    finally:
        kiosk.on_exit = kiosk.on_reset = None
        if httpd is not None:
            httpd.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
    log.info("kiosk window closed")
    return 0
