"""The secret key goes only to Stripe: STRIPE_API_BASE is taken with test keys alone (and said at start), a live key
is never sent anywhere but Stripe's own API, and a headless kiosk does not take live keys it cannot use."""
import http.server
import threading

import pytest

from kiosk import create_app
from kiosk.admin import configure
from kiosk.check import run_check
from kiosk.core.config import STRIPE_API_BASE
from kiosk.payments.gateway import Gateway, PaymentError
from tests.support.client import KioskClient
from tests.support.settings import make_settings
from tests.test_setup import body, env_of, field_error, fresh_settings, post_setup, setup_form

LIVE = {"STRIPE_SECRET_KEY": "sk_live_" + "a" * 24, "STRIPE_PUBLISHABLE_KEY": "pk_live_" + "b" * 24}


class Listener(http.server.BaseHTTPRequestHandler):
    """A local server posing as Stripe: it keeps every Authorization header it is sent, and answers nothing."""

    heard: list

    def do_GET(self):
        self.heard.append(self.headers.get("Authorization", ""))
        self.send_response(500)
        self.end_headers()

    do_POST = do_GET  # noqa: N815

    def log_message(self, *args):
        pass


@pytest.fixture
def listener():
    """(URL, what it heard) of a plain-HTTP server on 127.0.0.1."""
    heard = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("Heard", (Listener,), {"heard": heard}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}", heard
    server.shutdown()
    server.server_close()


def test_a_live_key_with_stripe_api_base_is_refused_and_never_sent(tmp_path, listener):
    url, heard = listener
    settings = make_settings(tmp_path, None, STRIPE_API_BASE=url, **LIVE)
    assert settings.api_base == STRIPE_API_BASE and not settings.payments_ready
    [problem] = [p for p in settings.problems if p.setting == "STRIPE_API_BASE"]
    assert "goes only to Stripe's own API" in problem.message and not problem.warning
    lines = []
    assert run_check(settings, out=lines.append) == 1  # --check says so, and asks nothing of the listener
    assert "STRIPE_API_BASE" in "\n".join(lines) and "(live mode)" not in "\n".join(lines)
    with pytest.raises(PaymentError) as refused:
        Gateway(LIVE["STRIPE_SECRET_KEY"], url, timeout=2, retries=0)  # the gateway makes sure too
    assert "only to Stripe's own API" in refused.value.message
    assert heard == []


def test_a_test_key_may_use_stripe_api_base_and_the_kiosk_says_so(tmp_path, stripe_server):
    settings = make_settings(tmp_path, stripe_server)
    assert settings.api_base == stripe_server.url and settings.payments_ready
    [problem] = [p for p in settings.problems if p.setting == "STRIPE_API_BASE"]
    assert problem.warning and stripe_server.url in problem.message and "tests only" in problem.fix


def test_the_setup_screen_sends_no_live_key_to_stripe_api_base(tmp_path, stripe_server, listener):
    url, heard = listener
    settings = fresh_settings(tmp_path, stripe_server, STRIPE_API_BASE=url)
    form = setup_form(stripe_server, secret_key=LIVE["STRIPE_SECRET_KEY"],
                      publishable_key=LIVE["STRIPE_PUBLISHABLE_KEY"])
    # The form's own check, as the window (HTTPS) sends it: a test key would be tried at STRIPE_API_BASE.
    proposal = configure.check(form, {}, settings, first_run=True, secure=True)
    assert "goes only to Stripe" in str(proposal.errors["secret_key"]) and "STRIPE_SECRET_KEY" not in proposal.changes
    assert heard == []
    proposal = configure.check(setup_form(stripe_server), {}, settings, first_run=True, secure=True)
    assert len(heard) == 1 and heard[0] == f"Bearer {stripe_server.sk}"


def test_a_headless_kiosk_does_not_take_live_keys_it_cannot_use(fresh_app, stripe_server):
    form = setup_form(stripe_server, secret_key=LIVE["STRIPE_SECRET_KEY"],
                      publishable_key=LIVE["STRIPE_PUBLISHABLE_KEY"])
    before = len(stripe_server.requests)
    reply = post_setup(KioskClient(fresh_app), form)  # plain HTTP, as a headless kiosk serves
    assert reply.status_code == 422 and "(headless, plain HTTP)" in field_error(body(reply), "secret_key")
    assert len(stripe_server.requests) == before and not env_of(fresh_app).exists()


@pytest.fixture
def fresh_app(tmp_path, stripe_server):
    (tmp_path / "kiosk").mkdir()
    return create_app(fresh_settings(tmp_path, stripe_server), testing=True)
