"""The launcher's rules without a window: origin guard, window options, the certificate, the command line."""
import ipaddress
import os
import socket
import ssl
import subprocess
import sys
import time
from http.cookiejar import CookieJar
from pathlib import Path
from types import SimpleNamespace
from urllib.request import HTTPCookieProcessor, build_opener, urlopen

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kiosk.window import launcher, tls
from tests.support.settings import make_settings

ROOT = Path(__file__).resolve().parents[2]


def test_guard_allows_only_the_kiosk_origin():
    guard = launcher.Guard()
    assert not guard.allows("https://127.0.0.1:5000/")  # no origin yet: fail closed
    guard.origin = "https://127.0.0.1:5000"
    assert guard.allows("https://127.0.0.1:5000/cart?x=1")
    for url in ("http://127.0.0.1:5000/", "https://127.0.0.1:5001/", "https://localhost:5000/",
                "https://127.0.0.1:5000.evil.com/", "https://example.com/", "data:text/html,hi", "about:blank",
                "javascript:alert(1)", "file:///etc/passwd"):
        assert not guard.allows(url), url


def test_guard_refuses_close_until_exit_confirmed():
    guard = launcher.Guard()
    destroyed = []
    guard.window = type("W", (), {"destroy": lambda self: destroyed.append(True)})()
    assert guard.on_closing() is False
    guard.exit()
    assert destroyed == [True]
    assert guard.on_closing() is True


def _guard_on(url):
    """A Guard for https://127.0.0.1:5000 over a stand-in window showing `url`; the window lists what it loads."""
    class Window:
        def __init__(self):
            self.url, self.loads = url, []

        def get_current_url(self):
            return self.url

        def load_url(self, url):
            self.loads.append(url)

    guard = launcher.Guard()
    guard.origin, guard.window = "https://127.0.0.1:5000", Window()
    return guard, guard.window


def test_a_page_that_left_the_origin_is_sent_back_home():
    guard, window = _guard_on("https://example.com/elsewhere")
    guard.on_loaded()
    assert window.loads == ["https://127.0.0.1:5000/"]
    window.url = "https://127.0.0.1:5000/cart"
    guard.on_loaded()
    assert window.loads == ["https://127.0.0.1:5000/"]


def test_after_an_idle_reset_the_next_page_gets_the_screen_key_back(tmp_path):
    guard, window = _guard_on("https://127.0.0.1:5000/attract")
    guard.screen_path = lambda then: f"/staff/screen?key=K&next={then}"
    guard.on_loaded()
    assert window.loads == []  # no reset yet: the cookie from the first page is still there
    guard.forgot()
    guard.on_loaded()
    guard.on_loaded()  # that page again, now with the key: loaded once only
    assert window.loads == ["https://127.0.0.1:5000/staff/screen?key=K&next=/attract"]
    window.url = "https://127.0.0.1:5000/"
    guard.forgot()  # every reset: the key comes back each time
    guard.on_loaded()
    assert window.loads[1:] == ["https://127.0.0.1:5000/staff/screen?key=K&next=/"]


def test_window_options_full_screen_unless_windowed(tmp_path):
    options = launcher.window_options(make_settings(tmp_path, KIOSK_SHOP_NAME="Corner Books"))
    assert options["title"] == "Corner Books"
    assert options["fullscreen"] is True
    assert options["zoomable"] is False and options["text_select"] is False and options["confirm_close"] is False
    windowed = launcher.window_options(make_settings(tmp_path, KIOSK_WINDOWED="1"))
    assert windowed["fullscreen"] is False


def test_full_screen_is_made_at_the_screens_origin_and_size(tmp_path):
    screen = SimpleNamespace(x=0, y=0, width=1080, height=1920)
    options = launcher.window_options(make_settings(tmp_path), screen)
    assert (options["screen"], options["x"], options["y"], options["width"], options["height"]) == \
        (screen, 0, 0, 1080, 1920)
    small = launcher.window_options(make_settings(tmp_path), SimpleNamespace(x=0, y=0, width=800, height=480))
    assert small["min_size"] == (800, 480)  # never a window bigger than the glass
    windowed = launcher.window_options(make_settings(tmp_path, KIOSK_WINDOWED="1"), screen)
    assert "x" not in windowed and windowed["width"] == 1280  # a normal window, placed by the system


def test_certificate_is_for_127_0_0_1_with_a_private_key(tmp_path):
    certfile, keyfile = tls.write_certificate(tmp_path)
    cert = x509.load_pem_x509_certificate(Path(certfile).read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("127.0.0.1") in names.get_values_for_type(x509.IPAddress)
    assert os.stat(keyfile).st_mode & 0o077 == 0
    (tmp_path / "next").mkdir()
    other, _ = tls.write_certificate(tmp_path / "next")

    def key_of(path):
        return x509.load_pem_x509_certificate(Path(path).read_bytes()).public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    assert key_of(other) != key_of(certfile)  # each launch makes a new key


def test_https_server_serves_the_app_with_that_certificate(app, tmp_path):
    certfile, keyfile = tls.write_certificate(tmp_path)
    httpd = launcher.serve_https(app, certfile, keyfile)
    try:
        # A client that trusts exactly this certificate reaches the shop; TLS 1.2 at least.
        context = ssl.create_default_context(cafile=certfile)
        context.check_hostname = False  # the certificate names 127.0.0.1 by IP; the pin is what matters here
        with urlopen(f"https://127.0.0.1:{httpd.server_port}/", context=context, timeout=10) as reply:
            assert reply.status == 200
            assert b"Pride and Prejudice" in reply.read()
        # A stalled client that never finishes its handshake does not block the next one.
        stalled = socket.create_connection(("127.0.0.1", httpd.server_port))
        with urlopen(f"https://127.0.0.1:{httpd.server_port}/cart", context=context, timeout=10) as reply:
            assert reply.status == 200
        stalled.close()
    finally:
        httpd.shutdown()


def test_frames_only_from_the_origins_the_pages_csp_allows():
    assert sorted(launcher.FRAME_ORIGINS) == ["https://hooks.stripe.com", "https://js.stripe.com"]
    assert launcher._frame_origins("default-src 'self'; frame-src 'self' https://A.example") == {"https://a.example"}
    assert launcher._frame_origins("default-src 'self'") == frozenset()  # no frame-src: no frame origin
    guard = launcher.Guard()
    guard.origin = "https://127.0.0.1:5000"
    for url in ("https://127.0.0.1:5000/checkout/", "https://js.stripe.com/v3/elements-inner.html",
                "https://hooks.stripe.com/3d_secure_2/challenge", "about:srcdoc"):
        assert guard.allows_frame(url), url
    for url in ("https://example.com/", "http://js.stripe.com/", "https://js.stripe.com.evil.com/", "about:blank",
                "data:text/html,hi", "https://api.stripe.com/v1/tokens"):
        assert not guard.allows_frame(url), url
    assert not guard.allows("https://js.stripe.com/v3/")  # a frame's origin is never the page's


def test_the_executable_gives_webkits_helpers_the_systems_library_path(monkeypatch):
    """PyInstaller's bootloader points LD_LIBRARY_PATH at the bundle; WebKit's web and network processes, started
    with the kiosk's environment, get the user's own value back (or none)."""
    monkeypatch.setattr(launcher, "LINUX", True)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.delenv("WEBKIT_DISABLE_COMPOSITING_MODE", raising=False)
    monkeypatch.delenv("PYWEBVIEW_GUI", raising=False)
    monkeypatch.setenv("LD_LIBRARY_PATH", "/cache/book-counter-kiosk/abc/_internal:/opt/lib")
    monkeypatch.setenv("LD_LIBRARY_PATH_ORIG", "/opt/lib")
    launcher.prepare_environment()
    assert os.environ["LD_LIBRARY_PATH"] == "/opt/lib" and "LD_LIBRARY_PATH_ORIG" not in os.environ
    assert os.environ["PYWEBVIEW_GUI"] == "gtk"
    assert os.environ["WEBKIT_DISABLE_COMPOSITING_MODE"] == "1"  # drawn without the GPU unless the computer says 0
    monkeypatch.setenv("LD_LIBRARY_PATH", "/cache/book-counter-kiosk/abc/_internal")
    launcher.prepare_environment()
    assert "LD_LIBRARY_PATH" not in os.environ
    monkeypatch.setattr(sys, "frozen", False)
    monkeypatch.setenv("LD_LIBRARY_PATH", "/opt/lib")  # from source, the developer's own value stays
    launcher.prepare_environment()
    assert os.environ["LD_LIBRARY_PATH"] == "/opt/lib"


def cli_env(tmp_path, **extra):
    """`python -m kiosk` in a clean environment on a temporary data folder."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("KIOSK_", "STRIPE_", "DISPLAY", "WAYLAND_DISPLAY", "PYWEBVIEW_"))}
    env.update(KIOSK_DATA_DIR=str(tmp_path / "data"), KIOSK_ENV_FILE=str(tmp_path / "none.env"), **extra)
    return env


def test_headless_refuses_live_keys(tmp_path):
    env = cli_env(tmp_path, STRIPE_SECRET_KEY="sk_live_" + "a" * 24, STRIPE_PUBLISHABLE_KEY="pk_live_" + "b" * 24)
    proc = subprocess.run([sys.executable, "-m", "kiosk", "--headless", "--port", "0"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "live Stripe keys need HTTPS" in proc.stderr
    assert "sk_live_aaaa" not in proc.stderr


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def running_kiosk(tmp_path, env, args=(), while_up=None):
    """Run `python -m kiosk` until it answers on plain HTTP, call while_up(address, stdout so far), stop it;
    returns (stdout, stderr)."""
    port = free_port()
    printed = tmp_path / "stdout.txt"
    with printed.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "kiosk", "--port", str(port), *args], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.PIPE, text=True)
    address = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urlopen(address, timeout=5) as reply:
                    assert reply.status == 200
                    break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
                time.sleep(0.2)
        if while_up is not None:
            while_up(address, printed.read_text())
    finally:
        proc.terminate()
        _out, err = proc.communicate(timeout=30)
    return printed.read_text(), err


def serves_headless_instead(tmp_path, env):
    """Run `python -m kiosk` (window wanted) until it answers on plain HTTP; returns its stderr."""
    _out, err = running_kiosk(tmp_path, env)
    assert "serving headless instead" in err
    return err


def test_without_a_display_it_says_so_and_serves_headless(tmp_path):
    err = serves_headless_instead(tmp_path, cli_env(tmp_path))
    assert "the kiosk window cannot open: no display" in err


def test_without_pywebview_it_says_so_and_serves_headless(tmp_path):
    broken = tmp_path / "broken"
    (broken / "webview").mkdir(parents=True)
    (broken / "webview" / "__init__.py").write_text("raise ImportError('No module named gi')\n")
    # A display that is never opened: the window gives up before it would connect.
    err = serves_headless_instead(tmp_path, cli_env(tmp_path, DISPLAY=":4999", PYTHONPATH=str(broken)))
    assert "the kiosk window cannot open (ImportError: No module named gi)" in err
    assert "apt-get install gir1.2-webkit2-4.1 glib-networking" in err


def fake_pywebview(tmp_path, webkit=(2, 50, 6), browser_view="    def on_navigation(self, *args):\n        pass\n"):
    """A pywebview whose GTK backend reports WebKitGTK `webkit` and has the BrowserView `browser_view` body."""
    stub = tmp_path / "stub"
    (stub / "webview" / "platforms").mkdir(parents=True)
    (stub / "webview" / "__init__.py").write_text("settings = {}\n")
    (stub / "webview" / "platforms" / "__init__.py").write_text("")
    major, minor, micro = webkit
    (stub / "webview" / "platforms" / "gtk.py").write_text(
        f"class webkit:\n    get_major_version = staticmethod(lambda: {major})\n"
        f"    get_minor_version = staticmethod(lambda: {minor})\n    get_micro_version = staticmethod(lambda: {micro})"
        f"\n\n\ndef add_tls_cert(certfile):\n    pass\n\n\nclass BrowserView:\n{browser_view}")
    return str(stub)


def pywebview_without(tmp_path):
    """A pywebview that loads, but lacks a method the kiosk replaces: launcher.run() raises WindowUnavailable."""
    return fake_pywebview(tmp_path, browser_view="    pass\n")


def test_without_webkitgtk_it_says_which_packages_and_serves_headless(tmp_path):
    stub = fake_pywebview(tmp_path)
    Path(stub, "webview", "platforms", "gtk.py").write_text("raise ValueError('Namespace WebKit2 not available')\n")
    err = serves_headless_instead(tmp_path, cli_env(tmp_path, DISPLAY=":4999", PYTHONPATH=stub))
    assert "(ValueError: Namespace WebKit2 not available)" in err
    assert "apt-get install gir1.2-webkit2-4.1 glib-networking" in err and "Traceback" not in err


def test_an_old_webkitgtk_is_refused_and_it_serves_headless(tmp_path):
    err = serves_headless_instead(tmp_path, cli_env(tmp_path, DISPLAY=":4999",
                                                    PYTHONPATH=fake_pywebview(tmp_path, webkit=(2, 38, 6))))
    assert "needs WebKitGTK 2.42 or newer; this computer has 2.38.6" in err


def test_a_window_that_cannot_be_made_safe_says_so_and_serves_headless(tmp_path):
    env = cli_env(tmp_path, DISPLAY=":4999", PYTHONPATH=pywebview_without(tmp_path))
    err = serves_headless_instead(tmp_path, env)
    assert "this pywebview has no BrowserView.on_navigation" in err and "Traceback" not in err
    assert "no window, serving headless" in (tmp_path / "data" / "logs" / "kiosk.log").read_text()


def test_a_window_that_cannot_be_made_safe_with_live_keys_stops_cleanly(tmp_path):
    env = cli_env(tmp_path, DISPLAY=":4999", PYTHONPATH=pywebview_without(tmp_path),
                  STRIPE_SECRET_KEY="sk_live_" + "a" * 24, STRIPE_PUBLISHABLE_KEY="pk_live_" + "b" * 24)
    proc = subprocess.run([sys.executable, "-m", "kiosk", "--port", str(free_port())], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "cannot start: this pywebview has no" in proc.stderr and "live Stripe keys need HTTPS" in proc.stderr


def test_headless_prints_the_setup_address_to_whoever_started_it(tmp_path):
    pages = {}

    def visit(address, printed):
        [line] = [line for line in printed.splitlines() if "to set it up, open" in line]
        pages["address"] = line.split("open ", 1)[1].split()[0]
        for who, path in (("other program", address + "staff/setup"), ("terminal", pages["address"])):
            with build_opener(HTTPCookieProcessor(CookieJar())).open(path, timeout=10) as reply:
                pages[who] = reply.read().decode()

    running_kiosk(tmp_path, cli_env(tmp_path), ["--headless"], visit)
    assert pages["address"].startswith("http://127.0.0.1:") and "/staff/screen?key=" in pages["address"]
    assert 'id="f-secret_key"' in pages["terminal"]  # the address's cookie opens the form
    assert 'id="f-secret_key"' not in pages["other program"] and "printed in the terminal" in pages["other program"]
    assert pages["address"].split("key=")[1] not in (tmp_path / "data" / "logs" / "kiosk.log").read_text()


def test_only_the_launcher_imports_webview():
    """The window's library stays in one module: the rest of the kiosk runs (and is tested) without it."""
    import ast

    package = Path(__file__).resolve().parents[2] / "kiosk"
    importers = set()
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            if any(name == "webview" or name.startswith("webview.") for name in names):
                importers.add(str(path.relative_to(package)))
    assert importers == {"window/launcher.py"}
