"""Setting the kiosk up from its own screen: the first run (no PIN, no keys), Settings behind the PIN, the .env
written safely, the PIN kept as a salted hash, and every bad input answered next to its field with nothing saved."""
import http.server
import io
import json
import os
import re
import stat
import threading
import zipfile

import pytest
from dotenv import dotenv_values

from kiosk import create_app
from kiosk.admin import envfile, pin
from kiosk.core.config import load_settings
from tests.support.client import KioskClient
from tests.support.ledger import ledger
from tests.support.settings import SAMPLE

NEW_PIN = "480152"
CATALOG = "isbn,title,author,price,stock\n9780306406157,Good Book,Ann Author,23.00,4\n"


def fresh_settings(tmp_path, stripe_server, **env):
    """A kiosk as a new user has it: no .env, no PIN, no keys; only where Stripe is (the fake) and the data folder."""
    values = {"KIOSK_DATA_DIR": str(tmp_path / "data"), "STRIPE_API_BASE": stripe_server.url, **env}
    settings = load_settings(environ=values, env_file=tmp_path / "kiosk" / ".env")
    settings.stripe_retries, settings.stripe_timeout = 0, 5
    return settings


@pytest.fixture
def fresh(tmp_path, stripe_server):
    (tmp_path / "kiosk").mkdir()
    return create_app(fresh_settings(tmp_path, stripe_server), testing=True)


def env_of(app):
    return app.extensions["kiosk"].settings.env_file


def setup_form(stripe_server, **fields):
    form = {"shop_name": "Corner Books", "currency": "usd", "locale": "en_US", "secret_key": stripe_server.sk,
            "publishable_key": stripe_server.pk, "pin": NEW_PIN, "pin_again": NEW_PIN}
    form.update(fields)
    return form


def screen(client):
    """Headers a page of the kiosk's own sends with a form (the test client sends none by itself)."""
    return {"Origin": "http://localhost", "X-CSRFToken": client.token()}


def with_key(client):
    """Open the address the kiosk gives its own window (or prints in the terminal): it sets the setup cookie."""
    assert client.get(client.app.extensions["kiosk"].screen_path()).status_code == 303
    return client


def post_setup(client, form, **kwargs):
    with_key(client)
    page = client.get("/staff/setup").get_data(as_text=True)
    revision = re.search(r'name="revision" value="([0-9a-f]*)"', page)
    form = {"revision": revision.group(1) if revision else "", **form}
    return client.post("/staff/setup", data=form, headers=screen(client), **kwargs)


def body(reply):
    text = reply.get_data(as_text=True)
    assert "Traceback" not in text
    return text


def field_error(text, name):
    found = re.search(rf'id="err-{name}"[^>]*>([^<]+)<', text)
    return found.group(1) if found else None


def test_a_new_kiosk_opens_the_setup_form_from_the_staff_corner(fresh):
    client = with_key(KioskClient(fresh))
    reply = client.get("/staff/")
    assert reply.status_code == 302 and reply.headers["Location"].endswith("/staff/setup")
    page = body(client.get("/staff/setup"))
    assert "Set up this kiosk" in page
    for name in ("shop_name", "currency", "locale", "pin", "pin_again", "secret_key", "publishable_key", "catalog",
                 "covers"):
        assert f'id="f-{name}"' in page and f'for="f-{name}"' in page, name


def test_setting_up_saves_a_private_env_and_payments_work_at_once(fresh, stripe_server):
    env = env_of(fresh)
    env.write_text("# the shop's own notes\nKIOSK_COUNTER_NAME=Front\nKIOSK_SHOP_NAME=Old name\n")
    client = KioskClient(fresh)
    reply = post_setup(client, setup_form(stripe_server))
    assert reply.status_code == 302, field_error(body(reply), "secret_key") or body(reply)[:3000]
    assert stat.S_IMODE(os.stat(env).st_mode) == 0o600
    text = env.read_text()
    assert text.startswith("# the shop's own notes\nKIOSK_COUNTER_NAME=Front\nKIOSK_SHOP_NAME='Corner Books'\n")
    values = dotenv_values(env)
    assert values["STRIPE_SECRET_KEY"] == stripe_server.sk and values["STRIPE_PUBLISHABLE_KEY"] == stripe_server.pk
    assert NEW_PIN not in text and pin.verify(NEW_PIN, values["KIOSK_STAFF_PIN_HASH"])
    assert not list(env.parent.glob(".env.*")), "the temporary file was left behind"
    kiosk = fresh.extensions["kiosk"]
    # No restart: the running kiosk has the keys, a gateway, a reconciler and the new name.
    assert kiosk.settings.payments_ready and kiosk.gateway is not None and kiosk.reconciler is not None
    assert "Corner Books" in body(client.get("/"))
    isbn = kiosk.catalog.books[0].isbn13
    client.add(isbn)
    attempt = client.start_checkout()
    intent = client.post("/checkout/intent", json={"attempt": attempt}, headers={"Accept": "application/json"})
    assert intent.status_code == 200, body(intent)
    # From now on the form is gone and the staff area wants the new PIN.
    assert client.get("/staff/setup").status_code == 302
    assert post_setup(client, setup_form(stripe_server, pin="999999")).status_code == 403
    assert "Unlock" in body(client.get("/staff/"))
    assert client.post("/staff/login", data={"pin": "111111"}).status_code == 401
    assert client.post("/staff/login", data={"pin": NEW_PIN}).status_code == 302
    with ledger(fresh) as db:
        [line] = db.execute("SELECT * FROM audit_log").fetchall()
    assert line["area"] == "setup" and "Stripe keys (test)" in line["what"] and "staff PIN" in line["what"]
    assert stripe_server.sk not in line["what"] and line["counter"] == "Front"


def test_a_restart_keeps_the_setup_and_asks_for_the_pin(fresh, tmp_path, stripe_server):
    assert post_setup(KioskClient(fresh), setup_form(stripe_server)).status_code == 302
    again = create_app(fresh_settings(tmp_path, stripe_server), testing=True)
    assert again.extensions["kiosk"].settings.payments_ready
    client = KioskClient(again)
    assert "Unlock" in body(client.get("/staff/"))
    assert client.post("/staff/login", data={"pin": NEW_PIN}).status_code == 302


@pytest.mark.parametrize("fields, name, words", [
    ({"secret_key": "pk_test_abc"}, "secret_key", "publishable key"),
    ({"publishable_key": "sk_test_abc"}, "publishable_key", "secret key"),
    ({"publishable_key": "pk_live_abc"}, "secret_key", "live key"),
    ({"secret_key": ""}, "secret_key", "Paste the key"),
    ({"pin": "1234", "pin_again": "1234"}, "pin", "at least 6 digits"),
    ({"pin": "123456", "pin_again": "123456"}, "pin", "harder to guess"),
    ({"pin_again": "480153"}, "pin_again", "differ"),
    ({"pin": "48015a", "pin_again": "48015a"}, "pin", "digits only"),
    ({"shop_name": ""}, "shop_name", "name"),
    ({"currency": "xyz"}, "currency", "currency code"),
    ({"locale": "zz_QQ"}, "locale", "language"),
    ({"currency": "jpy"}, "currency", "no valid book rows"),
])
def test_each_mistake_is_said_next_to_its_field_and_nothing_is_saved(fresh, stripe_server, fields, name, words):
    reply = post_setup(KioskClient(fresh), setup_form(stripe_server, **fields))
    assert reply.status_code == 422
    message = field_error(body(reply), name)
    assert message and words in message, (name, message)
    assert not env_of(fresh).exists()
    assert not fresh.extensions["kiosk"].settings.payments_ready


def test_a_key_stripe_refuses_is_caught_before_saving(fresh, stripe_server):
    stripe_server.refuse_key("sk_test_revoked000000000000")
    reply = post_setup(KioskClient(fresh), setup_form(stripe_server, secret_key="sk_test_revoked000000000000"))
    assert reply.status_code == 422
    assert "Stripe refused this secret key" in field_error(body(reply), "secret_key")
    assert not env_of(fresh).exists()


def test_stripe_not_answering_saves_nothing_and_says_so(fresh, stripe_server):
    from tests.support.fakestripe import LIST_INTENTS
    stripe_server.inject("drop", LIST_INTENTS)
    reply = post_setup(KioskClient(fresh), setup_form(stripe_server))
    assert reply.status_code == 422
    assert "Could not reach Stripe" in field_error(body(reply), "secret_key")
    assert not env_of(fresh).exists()


class RestrictedKeyStripe(http.server.BaseHTTPRequestHandler):
    """Stripe's answer to a restricted key without a permission (the fake Stripe has no restricted keys)."""

    def do_GET(self):
        body = json.dumps({"error": {"type": "invalid_request_error", "message": (
            "The provided key 'rk_test_***' does not have the required permissions for this endpoint on account "
            "'acct_1'. Having the 'rak_payment_intent_read' permission would allow this request to continue.")}})
        self.send_response(403)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args):
        pass


def test_a_key_without_permission_is_not_called_an_internet_problem(tmp_path, stripe_server):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RestrictedKeyStripe)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        (tmp_path / "kiosk").mkdir()
        settings = fresh_settings(tmp_path, stripe_server, STRIPE_API_BASE=f"http://127.0.0.1:{server.server_port}")
        app = create_app(settings, testing=True)
        reply = post_setup(KioskClient(app), setup_form(stripe_server, secret_key="rk_test_" + "r" * 24))
    finally:
        server.shutdown()
    assert reply.status_code == 422
    message = field_error(body(reply), "secret_key")
    assert "lacks permission" in message and "standard secret key" in message and "internet" not in message
    assert not env_of(app).exists()


def test_stripe_busy_is_said_as_stripe_out_of_reach(fresh, stripe_server):
    from tests.support.fakestripe import LIST_INTENTS
    stripe_server.inject("429", LIST_INTENTS)
    reply = post_setup(KioskClient(fresh), setup_form(stripe_server))
    assert reply.status_code == 422 and "Could not reach Stripe" in field_error(body(reply), "secret_key")


def test_the_currency_and_language_disagreeing_is_a_warning_not_a_refusal(fresh, stripe_server):
    reply = post_setup(KioskClient(fresh), setup_form(stripe_server, locale="en_GB"))
    assert reply.status_code == 302
    assert dotenv_values(env_of(fresh))["KIOSK_LOCALE"] == "en_GB"
    assert fresh.extensions["kiosk"].money(2300) == "US$23.00"  # the new language writes the money at once


def test_the_warning_is_shown_on_the_form(tmp_path, stripe_server, fresh):
    reply = post_setup(KioskClient(fresh), setup_form(stripe_server, locale="en_GB", pin="1"))
    text = body(reply)
    assert re.search(r'id="warn-currency"[^>]*>[^<]*GB uses GBP', text)


def refused_without_the_key(client, app, form):
    """Every way a client without this launch's setup key tries to save: refused, nothing written."""
    for headers in ({"Origin": "http://localhost"}, {"Referer": "http://localhost/staff/setup"}, {}):
        reply = client.post("/staff/setup", data={**form, "revision": envfile.revision(env_of(app))},
                            headers=headers)
        assert reply.status_code == 403 and "printed in the terminal" in body(reply), headers
    return not env_of(app).exists()


def test_only_the_kiosks_own_screen_may_set_it_up(fresh, tmp_path, stripe_server):
    client = KioskClient(fresh)
    form = setup_form(stripe_server)
    # Another program on the computer reads the form for a cookie and a CSRF token, and forges the headers a
    # page of the kiosk's own sends: without this launch's setup key it sees the way there, and saves nothing.
    page = body(client.get("/staff/setup"))
    assert refused_without_the_key(client, fresh, form)
    assert 'id="f-secret_key"' not in page
    assert "from the kiosk's own window" in page and "printed in the terminal" in page
    # A made-up key gives no cookie; nor does the key of another launch of the same kiosk.
    assert client.get("/staff/screen?key=" + "A" * 43).status_code == 303 and not client.http.get_cookie(
        "kiosk_screen", path="/staff/")
    other = create_app(fresh_settings(tmp_path, stripe_server), testing=True)
    client.http.set_cookie("kiosk_screen", other.extensions["kiosk"].screen_token, path="/staff/")
    assert refused_without_the_key(client, fresh, form)
    # Without the CSRF token, even with the key: refused.
    with_key(client)
    assert client.http.post("/staff/setup", data=form, headers={"Origin": "http://localhost"}).status_code == 400
    assert not env_of(fresh).exists()
    # With the key (the kiosk's window, or the terminal's address): the form, and it saves.
    assert 'id="f-secret_key"' in body(client.get("/staff/setup"))
    reply = client.post("/staff/setup", data={**form, "revision": envfile.revision(env_of(fresh))})
    assert reply.status_code == 302, body(reply)[:2000]


def test_the_setup_address_sets_a_strict_cookie_and_leaves_the_address_bar(fresh):
    client = KioskClient(fresh)
    key = fresh.extensions["kiosk"].screen_token
    reply = client.get(f"/staff/screen?key={key}&next=/staff/setup")
    assert reply.status_code == 303 and reply.headers["Location"] == "/staff/setup"  # the key is not kept there
    [cookie] = [c for c in reply.headers.getlist("Set-Cookie") if c.startswith("kiosk_screen=")]
    assert f"kiosk_screen={key};" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Path=/staff/" in cookie and "Max-Age" not in cookie and "Expires" not in cookie
    assert key not in body(client.get("/staff/setup")) and key not in body(client.get("/"))
    # The window opens the shop through it; nowhere but this kiosk.
    assert client.get(f"/staff/screen?key={key}&next=/").headers["Location"] == "/"
    for away in ("//evil.example/", "/\\evil.example/", "https://evil.example/"):
        assert client.get(f"/staff/screen?key={key}&next={away}").headers["Location"] == "/staff/", away


def test_a_kiosk_with_keys_but_no_pin_never_offers_the_form(tmp_path, stripe_server):
    settings = fresh_settings(tmp_path, stripe_server, STRIPE_SECRET_KEY=stripe_server.sk,
                              STRIPE_PUBLISHABLE_KEY=stripe_server.pk)
    client = KioskClient(create_app(settings, testing=True))
    assert client.get("/staff/").status_code == 403  # the "set a PIN in the file" page
    assert post_setup(client, setup_form(stripe_server)).status_code == 403


def test_two_saves_at_once_keep_the_first_and_tell_the_second(fresh, stripe_server):
    first, second = KioskClient(fresh), KioskClient(fresh)
    revision = envfile.revision(env_of(fresh))
    for c in (first, second):
        with_key(c).get("/staff/setup")
    ok = first.post("/staff/setup", data={**setup_form(stripe_server), "revision": revision}, headers=screen(first))
    assert ok.status_code == 302
    saved = env_of(fresh).read_text()
    late = second.post("/staff/setup", data={**setup_form(stripe_server, shop_name="Other"), "revision": revision},
                       headers=screen(second))
    assert late.status_code in (302, 403)  # set up by then: the form is closed
    assert env_of(fresh).read_text() == saved


def test_a_stale_form_on_settings_is_refused(fresh, stripe_server):
    client = KioskClient(fresh)
    assert post_setup(client, setup_form(stripe_server)).status_code == 302
    assert client.post("/staff/login", data={"pin": NEW_PIN}).status_code == 302
    page = body(client.get("/staff/settings"))
    revision = re.search(r'name="revision" value="([0-9a-f]+)"', page).group(1)
    form = {"shop_name": "First", "currency": "usd", "locale": "en_US", "publishable_key": stripe_server.pk,
            "idle_seconds": "90", "tax_rates": "", "revision": revision}
    assert client.post("/staff/settings", data=form).status_code == 302
    stale = client.post("/staff/settings", data={**form, "shop_name": "Second"})
    assert stale.status_code == 409 and "Someone else saved" in body(stale)
    assert dotenv_values(env_of(fresh))["KIOSK_SHOP_NAME"] == "First"


def test_concurrent_writes_of_the_env_file_lose_no_key(tmp_path):
    path = tmp_path / ".env"
    threads = [threading.Thread(target=envfile.save, args=(path, {f"KEY_{i}": str(i)})) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert dotenv_values(path) == {f"KEY_{i}": str(i) for i in range(20)}


def test_an_env_file_that_cannot_be_written_loses_nothing(tmp_path, stripe_server):
    settings = fresh_settings(tmp_path, stripe_server)
    settings.env_file = tmp_path / "no-such-folder" / ".env"
    app = create_app(settings, testing=True)
    reply = post_setup(KioskClient(app), setup_form(stripe_server))
    assert reply.status_code == 500
    assert "Could not save the settings" in body(reply) and "Nothing was changed" in body(reply)
    assert not app.extensions["kiosk"].settings.payments_ready


def test_values_survive_the_round_trip_through_dotenv(tmp_path):
    path = tmp_path / ".env"
    tricky = "O'Brien's \"Books\" #1 back\\slash $HOME"
    envfile.save(path, {"KIOSK_SHOP_NAME": tricky, "KIOSK_TAX_ID": "GB 123"})
    assert dotenv_values(path) == {"KIOSK_SHOP_NAME": tricky, "KIOSK_TAX_ID": "GB 123"}


def test_the_pin_hash_is_salted_and_checked_in_constant_time():
    a, b = pin.hash_pin(NEW_PIN), pin.hash_pin(NEW_PIN)
    assert a != b and a.startswith("scrypt:16384:8:1:")
    assert pin.verify(NEW_PIN, a) and pin.verify(NEW_PIN, b)
    assert not pin.verify("480153", a) and not pin.verify(NEW_PIN, "scrypt:3:8:1:" + a.split(":", 4)[4])
    assert not pin.verify(NEW_PIN, "") and not pin.well_formed("plain")


def test_a_plain_pin_in_env_keeps_working(tmp_path, stripe_server):
    settings = fresh_settings(tmp_path, stripe_server, KIOSK_STAFF_PIN="2468")
    client = KioskClient(create_app(settings, testing=True))
    client.token()
    assert client.post("/staff/login", data={"pin": "2468"}).status_code == 302


def covers_zip(names):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        for name in names:
            z.writestr(name, b"\x89PNG fake image")
    return out.getvalue()


def test_a_first_run_catalog_and_covers_are_saved_beside_env(fresh, stripe_server):
    form = {**setup_form(stripe_server), "catalog": (io.BytesIO(CATALOG.encode()), "my books.csv"),
            "covers": (io.BytesIO(covers_zip(["covers/good-book.png", "__MACOSX/._x", "notes.txt"])), "c.zip")}
    reply = post_setup(KioskClient(fresh), form, content_type="multipart/form-data")
    assert reply.status_code == 302, body(reply)[:3000]
    folder = env_of(fresh).parent
    assert dotenv_values(env_of(fresh))["KIOSK_CATALOG"] == "books.csv"
    assert (folder / "books.csv").read_text() == CATALOG and (folder / "covers" / "good-book.png").is_file()
    assert not (folder / "covers" / "notes.txt").exists()
    assert [b.title for b in fresh.extensions["kiosk"].catalog.books] == ["Good Book"]


@pytest.mark.parametrize("upload, name, words", [
    ({"catalog": ("isbn,title,author,price,stock\n9780306406157,Caf\xe9,A,1.00,1\n".encode("cp1252"), "b.csv")},
     "catalog", "not UTF-8"),
    ({"catalog": (b"isbn,title\n1,2\n", "b.csv")}, "catalog", "no column author"),
    ({"catalog": (CATALOG.encode(), "b.csv"), "covers": (covers_zip(["../../evil.png"]), "c.zip")},
     "covers", "outside"),
    ({"catalog": (CATALOG.encode(), "b.csv"), "covers": (covers_zip(["/etc/evil.png"]), "c.zip")},
     "covers", "outside"),
    ({"catalog": (CATALOG.encode(), "b.csv"), "covers": (b"not a zip", "c.zip")}, "covers", "not a zip"),
    ({"covers": (covers_zip(["a.png"]), "c.zip")}, "covers", "sample books"),
])
def test_bad_uploads_are_refused_and_nothing_is_saved(fresh, stripe_server, upload, name, words):
    form = {**setup_form(stripe_server), **{k: (io.BytesIO(data), fn) for k, (data, fn) in upload.items()}}
    reply = post_setup(KioskClient(fresh), form, content_type="multipart/form-data")
    assert reply.status_code == 422
    message = field_error(body(reply), name)
    assert message and words in message, message
    folder = env_of(fresh).parent
    assert sorted(p.name for p in folder.iterdir()) == []
    assert not (folder.parent / "evil.png").exists()


def test_an_upload_too_big_is_refused_with_a_page(fresh, stripe_server):
    big = b"x" * (61 * 1024 * 1024)
    form = {**setup_form(stripe_server), "catalog": (io.BytesIO(big), "big.csv")}
    reply = post_setup(KioskClient(fresh), form, content_type="multipart/form-data")
    assert reply.status_code == 413 and "too large" in body(reply)
    assert not env_of(fresh).exists()


def test_settings_change_the_running_kiosk(fresh, stripe_server):
    client = KioskClient(fresh)
    assert post_setup(client, setup_form(stripe_server)).status_code == 302
    client.post("/staff/login", data={"pin": NEW_PIN})
    page = body(client.get("/staff/settings"))
    assert stripe_server.sk not in page and "Leave empty to keep it" in page
    revision = re.search(r'name="revision" value="([0-9a-f]+)"', page).group(1)
    form = {"shop_name": "Books & Co", "currency": "usd", "locale": "en_US", "publishable_key": stripe_server.pk,
            "idle_seconds": "45", "tax_rates": "standard:8.875,zero:0", "shop_address": "1 Main St|Town",
            "tax_id": "T-1", "pin": "", "pin_again": "", "revision": revision}
    bad = client.post("/staff/settings", data={**form, "idle_seconds": "5", "tax_rates": "standard:abc"})
    assert bad.status_code == 422
    assert field_error(body(bad), "idle_seconds") and field_error(body(bad), "tax_rates")
    reply = client.post("/staff/settings", data=form)
    assert reply.status_code == 302, body(reply)[:2000]
    s = fresh.extensions["kiosk"].settings
    assert (s.shop_name, s.idle_seconds, s.tax_id, s.secret_key) == ("Books & Co", 45, "T-1", stripe_server.sk)
    assert str(s.tax_rates["standard"]) == "8.875"
    home = body(client.get("/"))
    assert "Books &amp; Co" in home and 'data-idle-seconds="45"' in home
    with ledger(fresh) as db:
        whats = [r["what"] for r in db.execute("SELECT what FROM audit_log ORDER BY id")]
    assert whats[-1].startswith("changed shop name") and "tax rates" in whats[-1]


def test_a_setting_from_the_environment_is_not_silently_shadowed(tmp_path, stripe_server):
    (tmp_path / "kiosk").mkdir()
    app = create_app(fresh_settings(tmp_path, stripe_server, KIOSK_SHOP_NAME="From the environment"), testing=True)
    reply = post_setup(KioskClient(app), setup_form(stripe_server))
    assert reply.status_code == 422
    assert "environment" in field_error(body(reply), "shop_name")


def test_the_sample_catalog_stays_when_no_csv_is_given(fresh, stripe_server):
    assert post_setup(KioskClient(fresh), setup_form(stripe_server)).status_code == 302
    assert fresh.extensions["kiosk"].catalog.path == SAMPLE or \
        fresh.extensions["kiosk"].catalog.path.name == SAMPLE.name
    assert "KIOSK_CATALOG" not in dotenv_values(env_of(fresh))
