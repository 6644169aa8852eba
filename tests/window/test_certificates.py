"""Which server certificates the window accepts, on every backend: the kiosk's own certificate on its own origin,
and nothing else. WebView2's and WKWebView's classes cannot be imported on Linux, so their handlers are
driven with stand-ins of the event arguments each backend passes (pywebview 6.2.1's shapes). WebKitGTK's is
tested for real in test_window.py (another certificate on the kiosk's address, its own under another name, a
forged one for Stripe)."""
import base64
from types import SimpleNamespace

import pytest

from kiosk.payments.gateway import STRIPE_JS_URL
from kiosk.window import launcher, tls

ORIGIN = "https://127.0.0.1:40123"


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """The kiosk's certificate and a forged one (same subject, another key), as DER."""
    own = tls.certificate_der(tls.write_certificate(tmp_path_factory.mktemp("own"))[0])
    forged = tls.certificate_der(tls.write_certificate(tmp_path_factory.mktemp("forged"))[0])
    return own, forged


def pem(der):
    body = base64.b64encode(der).decode()
    return "-----BEGIN CERTIFICATE-----\n" + "\n".join(body[i:i + 64] for i in range(0, len(body), 64)) + \
        "\n-----END CERTIFICATE-----\n"


def test_the_decision(certs):
    own, forged = certs
    assert tls.trust_decision(ORIGIN, ORIGIN + "/checkout/", own, own) == tls.ALLOW
    assert tls.trust_decision(ORIGIN, ORIGIN + "/", forged, own) == tls.REFUSE
    assert tls.trust_decision(ORIGIN, ORIGIN + "/", None, own) == tls.REFUSE
    assert tls.trust_decision(ORIGIN, ORIGIN + "/", b"", own) == tls.REFUSE
    # Every other host, the kiosk's certificate included, is for the system's validation to judge.
    for url in (STRIPE_JS_URL, "https://api.stripe.com/v1/payment_intents",
                "https://127.0.0.1:40124/", "http://127.0.0.1:40123/", "https://localhost:40123/"):
        assert tls.trust_decision(ORIGIN, url, own, own) == tls.SYSTEM
        assert tls.trust_decision(ORIGIN, url, forged, own) == tls.SYSTEM
    assert tls.der_of_pem(pem(own)) == own and tls.der_of_pem("not a certificate") is None


class EdgeArgs:
    """CoreWebView2ServerCertificateErrorDetectedEventArgs, as pywebview's EdgeChrome handler receives it."""

    def __init__(self, uri, der):
        self.RequestUri = uri
        self.ErrorStatus = "CertificateIsInvalid"
        self.ServerCertificate = SimpleNamespace(ToPemEncoding=lambda: pem(der))
        self.Action = "Default"


ACTIONS = SimpleNamespace(AlwaysAllow="AlwaysAllow", Cancel="Cancel", Default="Default")


@pytest.mark.parametrize("uri,which,action", [
    (ORIGIN + "/", "own", "AlwaysAllow"),
    (ORIGIN + "/static/css/kiosk.css", "own", "AlwaysAllow"),
    (ORIGIN + "/", "forged", "Cancel"),               # someone else's server on the kiosk's port
    (STRIPE_JS_URL, "forged", "Cancel"),              # a forged Stripe.js on a hostile network
    ("https://api.stripe.com/v1/tokens", "forged", "Cancel"),
    (STRIPE_JS_URL, "own", "Cancel"),                 # the kiosk's key is good for its own origin only
])
def test_webview2_accepts_only_the_kiosks_own_certificate(certs, uri, which, action):
    own, forged = certs
    handler = launcher.edge_certificate_handler(ORIGIN, own, ACTIONS)
    args = EdgeArgs(uri, own if which == "own" else forged)
    handler(object(), object(), args)
    assert args.Action == action


class Space:
    """NSURLProtectionSpace, as WKWebView passes it with an authentication challenge."""

    def __init__(self, protocol, host, port, method="NSURLAuthenticationMethodServerTrust", trust="trust"):
        self._values = {"protocol": protocol, "host": host, "port": port, "authenticationMethod": method,
                        "serverTrust": trust}

    def __getattr__(self, name):
        return lambda: self._values[name]


def challenge(*args, **kwargs):
    return SimpleNamespace(protectionSpace=lambda: Space(*args, **kwargs))


@pytest.mark.parametrize("space,which,disposition", [
    (("https", "127.0.0.1", 40123), "own", 0),       # UseCredential: the kiosk's own server
    (("https", "127.0.0.1", 40123), "forged", 2),    # Cancel: another key on the kiosk's origin
    (("https", "js.stripe.com", 443), "forged", 1),  # PerformDefaultHandling: the system refuses a forgery
    (("https", "js.stripe.com", 443), "own", 1),
    (("https", "127.0.0.1", 40999), "own", 1),
])
def test_wkwebview_trusts_only_the_kiosks_own_certificate(certs, space, which, disposition):
    own, forged = certs
    presented = own if which == "own" else forged
    handler = launcher.cocoa_challenge_handler(ORIGIN, own, leaf_der=lambda trust: presented,
                                               credential_for=lambda trust: ("credential", trust),
                                               server_trust_method="NSURLAuthenticationMethodServerTrust")
    answers = []
    handler(object(), object(), challenge(*space), lambda *answer: answers.append(answer))
    assert answers == [(disposition, ("credential", "trust") if disposition == 0 else None)]


def test_wkwebview_leaves_other_challenges_to_the_system(certs):
    own, _ = certs
    handler = launcher.cocoa_challenge_handler(ORIGIN, own, leaf_der=lambda trust: own,
                                               credential_for=lambda trust: "credential",
                                               server_trust_method="NSURLAuthenticationMethodServerTrust")
    answers = []
    # pywebview's own handler answered a password prompt (HTTP Basic) with a server-trust credential too.
    handler(object(), object(), challenge("https", "127.0.0.1", 40123, method="NSURLAuthenticationMethodHTTPBasic"),
            lambda *answer: answers.append(answer))
    assert answers == [(1, None)]


def test_start_fails_loudly_when_pywebview_lacks_the_method_the_kiosk_replaces():
    class Backend:
        def on_certificate_error(self, sender, args):
            pass

    launcher._replaced(Backend, "on_certificate_error")
    with pytest.raises(launcher.WindowUnavailable, match=r"no Backend\.on_navigation.*pywebview 6\.2\.1"):
        launcher._replaced(Backend, "on_navigation")


def test_the_glue_is_for_the_pywebview_the_kiosk_pins():
    """The methods the glue replaces exist in the pinned pywebview's backends (read as text: they import
    Windows and macOS libraries), and still trust every certificate there: what the kiosk replaces."""
    from importlib.metadata import version
    from pathlib import Path

    import webview
    assert version("pywebview") == launcher.PYWEBVIEW_WRITTEN_FOR
    platforms = Path(webview.__file__).parent / "platforms"
    edge = (platforms / "edgechromium.py").read_text()
    assert "def on_certificate_error(self, _, args):" in edge and "AlwaysAllow" in edge
    assert "class EdgeChrome" in edge and "CoreWebView2ServerCertificateErrorAction" in edge
    cocoa = (platforms / "cocoa.py").read_text()
    assert "def webView_didReceiveAuthenticationChallenge_completionHandler_(" in cocoa
    assert "class BrowserDelegate" in cocoa and "credentialForTrust_" in cocoa
    # WebKitGTK: the certificate given to add_tls_cert is trusted for 127.0.0.1 only, the kiosk's host.
    gtk = (platforms / "gtk.py").read_text()
    assert "web_context.allow_tls_certificate_for_host(cert, '127.0.0.1')" in gtk and tls.HOST == "127.0.0.1"
    assert "def add_tls_cert(certfile):" in gtk and "self.webview.connect('decide-policy', self.on_navigation)" in gtk
