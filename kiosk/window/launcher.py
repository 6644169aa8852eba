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

from kiosk.web.security import CSP
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
    """Environment the web view reads at start-up; must run before webview or GTK is imported."""
    if not LINUX:
        return
    # pywebview tries its backends in turn and prints the traceback of each that fails: name the one the kiosk uses.
    os.environ["PYWEBVIEW_GUI"] = "gtk"
    # The shop's pages are drawn without accelerated compositing: the window's memory falls from about 400 MB to
    # about 300 MB (the web process halves; bench/bench_executable.py) and nothing on them needs a GPU. Set it to 0
    # in the environment to let WebKit composite on the GPU.
    os.environ.setdefault("WEBKIT_DISABLE_COMPOSITING_MODE", "1")
    if getattr(sys, "frozen", False):
        # PyInstaller's bootloader points LD_LIBRARY_PATH at the bundle so that Python finds its libraries. WebKit
        # starts its web and network processes with this environment: they are the system's programs and must load
        # only the system's libraries, never the bundle's copies of what they link.
        original = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
        if original:
            os.environ["LD_LIBRARY_PATH"] = original
        else:
            os.environ.pop("LD_LIBRARY_PATH", None)


# WebKitGTK's response policy says which load is the main frame's (is_main_frame_main_resource) since 2.40, and its
# settings turn single features off (set_feature_enabled) since 2.42.
WEBKITGTK_NEEDED = (2, 42)
# Connections WebKit would open on a hint, before any navigation is decided (a target=_blank link's host is
# connected to as it is clicked): the window opens none but those its pages load from.
FEATURES_OFF = ("LinkPreconnect", "LinkDNSPrefetch")
SYSTEM_PACKAGES = "gir1.2-webkit2-4.1 glib-networking"


def load_webview():
    """Import pywebview and its backend, or raise WindowUnavailable saying what is missing."""
    prepare_environment()
    if LINUX and not any(os.environ.get(v) for v in ("DISPLAY", "WAYLAND_DISPLAY")):
        # GTK cannot open a window without a screen.
        raise WindowUnavailable("the kiosk window cannot open: no display (DISPLAY and WAYLAND_DISPLAY are unset). "
                                "Start it from the desktop session, or use --headless")
    try:
        import webview
        if LINUX:
            from webview.platforms import gtk
    except Exception as exc:  # noqa: BLE001 - ImportError, or gi's ValueError when WebKitGTK is not installed
        need = (f"apt-get install {SYSTEM_PACKAGES} (the system's WebKitGTK; scripts/setup.sh installs it)"
                if LINUX else "pip install -r requirements.txt")
        raise WindowUnavailable(f"the kiosk window cannot open ({type(exc).__name__}: {exc}). "
                                f"Install it with: {need}") from None
    if LINUX:
        found = (gtk.webkit.get_major_version(), gtk.webkit.get_minor_version(), gtk.webkit.get_micro_version())
        if found[:2] < WEBKITGTK_NEEDED:
            raise WindowUnavailable("the kiosk window needs WebKitGTK {}.{} or newer; this computer has {}.{}.{}. "
                                    "Update the system's packages".format(*WEBKITGTK_NEEDED, *found))
    return webview


def _frame_origins(csp):
    """The origins a Content-Security-Policy's frame-src allows, lower-case."""
    directive = next((d.split() for d in csp.split(";") if d.split()[:1] == ["frame-src"]), ["frame-src"])
    return frozenset(source.lower() for source in directive[1:] if "://" in source)


# The frames the kiosk's pages may hold are the ones their CSP allows: the window lets no other origin in a frame.
FRAME_ORIGINS = _frame_origins(CSP)


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

    def allows_frame(self, url):
        """True for a URL a frame of the kiosk's pages may show: its own origin, the frame origins its
        Content-Security-Policy names (Stripe's Payment Element and 3-D Secure), and a srcdoc frame's document.

        Not about:blank: a frame starts on it without asking, and the page navigated there would be a blank kiosk."""
        parts = urlsplit(url)
        return self.allows(url) or url == "about:srcdoc" or f"{parts.scheme}://{parts.netloc}".lower() in FRAME_ORIGINS

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
            parts = urlsplit(url)  # without its query, which may carry the screen key
            log.info("window loaded %s://%s%s (%.2f s after the window was asked for)", parts.scheme, parts.netloc,
                     parts.path, time.monotonic() - self.started)
        if url and not self.allows(url) and not url.startswith("about:"):
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


def _harden_gtk(guard):
    """WebKitGTK: the kiosk's own pages on top, Stripe's frames inside them, nothing else; no permission granted."""
    from webview.platforms import gtk
    view_class = gtk.BrowserView
    _replaced(view_class, "on_navigation")
    webkit = gtk.webkit
    kind = webkit.PolicyDecisionType
    pywebview_init = view_class.__init__

    def open_inside(webview, url):
        """window.open and target=_blank: a page of the kiosk opens in the kiosk window, any other nowhere."""
        if guard.allows(url):
            webview.load_uri(url)
        else:
            guard.refuse(url, "new window")

    def on_navigation(self, webview, decision, decision_type):
        if decision_type == kind.RESPONSE:
            url = decision.get_response().get_uri()
            # The one place WebKitGTK (before 2.54) says whether a load is the main frame's: a page of another
            # origin never becomes the kiosk's page, even on an origin its frames may show.
            if decision.is_main_frame_main_resource() and not guard.allows(url):
                guard.refuse(url, "navigation")
                decision.ignore()
            elif decision.is_mime_type_supported():
                decision.use()
            else:
                decision.ignore()  # a download: the kiosk saves nothing (pywebview would start one)
            return True
        url = decision.get_navigation_action().get_request().get_uri()
        if decision_type == kind.NEW_WINDOW_ACTION:
            decision.ignore()
            open_inside(webview, url)
        elif guard.allows_frame(url):
            # The main frame's navigation or a frame's (WebKitGTK does not say): only the kiosk's origin and its
            # frames' origins go on, and the response above stops the main frame on any but the kiosk's own.
            decision.use()
        else:
            guard.refuse(url, "navigation")
            decision.ignore()
        return True

    def on_create(webview, action):
        # window.open: no new web view, ever (returning None makes none).
        open_inside(webview, action.get_request().get_uri())

    def on_permission(webview, request):
        # Camera, microphone, location, notifications, clipboard...: the kiosk needs none and asks no one.
        log.warning("refused a %s", type(request).__name__)
        request.deny()
        return True

    def on_tls_error(webview, url, certificate, errors):
        # WebKit has already refused it (policy FAIL); the log says so, as on the other backends.
        parts = urlsplit(url)  # without its query: the kiosk's own first address carries the screen key
        log.warning("certificate refused for %s://%s%s (%s)", parts.scheme, parts.netloc, parts.path[:200],
                    ", ".join(nick for nick in errors.value_nicks if nick != "no-flags"))
        return False  # WebKit's own error page

    def __init__(self, window):
        pywebview_init(self, window)
        context = self.webview.get_context()
        # Only the system's validation, plus the kiosk's certificate on its own host (add_tls_cert, in run()):
        # never pywebview's IGNORE_SSL_ERRORS, which would accept any certificate on every host.
        context.set_tls_errors_policy(webkit.TLSErrorsPolicy.FAIL)
        settings = self.webview.get_settings().props
        # pywebview's private mode turns localStorage off; its ephemeral context keeps it in memory only, and the
        # idle reset clears it (forget_browsing).
        settings.enable_html5_local_storage = True
        settings.enable_media_stream = False
        settings.enable_webgl = False  # pywebview turns it on; the kiosk's pages and Stripe's draw without it
        settings.javascript_can_access_clipboard = False
        # window.open always reaches on_create, which opens nothing, rather than depending on a user gesture.
        settings.javascript_can_open_windows_automatically = True
        settings.enable_developer_extras = False
        features = webkit.Settings.get_all_features()
        for feature in (features.get(i) for i in range(features.get_length())):
            if feature.get_identifier() in FEATURES_OFF:
                self.webview.get_settings().set_feature_enabled(feature, False)
        self.webview.connect("create", on_create)
        self.webview.connect("permission-request", on_permission)
        self.webview.connect("load-failed-with-tls-errors", on_tls_error)

    view_class.__init__ = __init__
    view_class.on_navigation = on_navigation


CLEAR_STORAGE = "try { localStorage.clear(); sessionStorage.clear(); } catch (e) {}"


def forget_browsing(window):
    """The idle reset, in the window: every cookie (Stripe.js's too) and the page's storage go.

    Called from a request thread; the work is handed to the GUI thread and not waited for, so a reset never
    hangs on a page that is busy loading."""
    if LINUX:
        from webview.platforms import gtk
        view = gtk.BrowserView.instances.get(window.uid)
        if view is None:
            return

        def clear():
            # Cookies, localStorage, sessionStorage, IndexedDB and caches, for every origin (Stripe's frames too).
            view.webview.get_website_data_manager().clear(gtk.webkit.WebsiteDataTypes.ALL, 0, None, None, None)
            view.webview.evaluate_javascript(CLEAR_STORAGE, -1, None, None, None, None, None)
            return False  # once

        gtk.glib.idle_add(clear)  # GLib's "run this on the GUI thread"
    else:
        # WebView2 and WKWebView marshal these to their UI thread themselves.
        window.clear_cookies()
        window.run_js(CLEAR_STORAGE)


def _finish_pending_calls(seconds=2.0):
    """GTK: let calls to the closed window still under way finish, so that the process can end.

    pywebview's window calls (run_js, get_current_url: the kiosk's, and its own after every page load) wait on GLib's
    main loop in threads Python waits for at exit. Made just before the window closed, their answer (an error, the
    page being gone) arrives after GTK's loop stopped, and the kiosk never ended after Exit. The loop runs here until
    they have their answer, for `seconds` at most."""
    from webview.platforms import gtk
    context = gtk.glib.MainContext.default()
    me = threading.current_thread()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        while context.pending():
            context.iteration(False)
        if not [t for t in threading.enumerate() if t is not me and not t.daemon]:
            return
        time.sleep(0.01)
    log.warning("window calls still waiting at exit: %s",
                ", ".join(t.name for t in threading.enumerate() if t is not me and not t.daemon))


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
    webview.settings["IGNORE_SSL_ERRORS"] = False  # it would accept any certificate on every host
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
            # WebKitGTK trusts this one certificate for the kiosk's host alone (WebKitWebContext's
            # allow_tls_certificate_for_host, which pywebview's BrowserView applies for 127.0.0.1); every other
            # host, and any other certificate on this one, is the system's to validate (_harden_gtk).
            os.unlink(keyfile)
            from webview.platforms import gtk
            _replaced(gtk, "add_tls_cert")
            gtk.add_tls_cert(certfile)
            _harden_gtk(guard)
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
        # A service manager's stop, or Ctrl+C in a developer's terminal: closed through the guard, never around it
        # (PyGObject's own Ctrl+C handler would quit the GTK application behind its back).
        for number in (signal.SIGTERM, signal.SIGINT) if LINUX else (signal.SIGTERM,):
            signal.signal(number, lambda signum, frame: guard.exit())
        kiosk.start_background()
        # Never debug=True: it opens DevTools, the context menu and a remote-debugging port.
        webview.start(on_started, window, gui="gtk" if LINUX else None, debug=False, private_mode=True, **ssl_args)
        if LINUX:
            _finish_pending_calls()
    finally:
        kiosk.on_exit = kiosk.on_reset = None
        if httpd is not None:
            httpd.shutdown()
        shutil.rmtree(folder, ignore_errors=True)
    log.info("kiosk window closed")
    return 0
