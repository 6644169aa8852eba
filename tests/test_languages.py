"""The shop's language and the customer's (issue #26), through the Flask app and localstripe: KIOSK_LANGUAGES, the
language buttons, a visit in French or Japanese (words, money, Stripe's Payment Element), the staff area in the
shop's language, and the idle reset back to it."""
import json
import re

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo

from kiosk import create_app
from kiosk.core import i18n
from kiosk.core.config import parse_languages
from kiosk.web.checkout import stripe_locale
from tests.support.client import KioskClient, stored_session
from tests.support.ledger import books, order
from tests.support.settings import make_settings

LANGUAGES = "en_US,fr_FR,ja_JP"
PIN = "2468"


def lang_of(page):
    return re.search(r'<html lang="([^"]+)"', page).group(1)


def language_buttons(page):
    """{code: label} of the attract screen's language buttons."""
    form = re.search(r'<form class="attract-languages".*?</form>', page, re.S)
    return dict(re.findall(r'value="(\w+)"[^>]*>([^<]+)</button>', form.group(0))) if form else {}


def stripe_config(client):
    return json.loads(re.search(r'id="stripe-config">([^<]+)<', client.get("/checkout/").get_data(as_text=True))
                      .group(1))


def price_on_home(client, isbn):
    """The price the home page's grid shows for a book."""
    page = client.get("/").get_data(as_text=True)
    card = page[page.index(f"/book/{isbn}"):]
    return re.search(r'class="price">([^<]+)<', card).group(1)


@pytest.fixture
def french_words(tmp_path, monkeypatch):
    """A tiny French catalog of this test's own: two shop words and one staff word, to see them switch."""
    catalog = Catalog(locale="fr")
    catalog.add("Search", "Rechercher")
    catalog.add("Touch to start", "Touchez pour commencer")
    catalog.add("Lock", "Verrouiller")
    folder = tmp_path / "translations" / "fr" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with open(folder / "messages.mo", "wb") as f:
        write_mo(f, catalog)
    monkeypatch.setattr(i18n, "TRANSLATIONS", tmp_path / "translations")


def make_app(tmp_path, stripe_server, **env):
    env = {"KIOSK_LANGUAGES": LANGUAGES, "KIOSK_CURRENCY": "eur", "KIOSK_STAFF_PIN": PIN, **env}
    return create_app(make_settings(tmp_path, stripe_server, **env), testing=True)


def choose(client, code, **form):
    return client.post("/language", data={"language": code, **form})


# ---- settings


def test_kiosk_languages_are_checked_and_the_shops_own_comes_first(tmp_path):
    assert parse_languages("fr_FR, ja-JP,,fr_FR,de") == (("fr_FR", "ja_JP", "de"), [])
    assert parse_languages("fr_FR,klingon_XX") == (("fr_FR",), ["klingon_XX"])
    settings = make_settings(tmp_path, KIOSK_LOCALE="en_GB", KIOSK_LANGUAGES="fr_FR,en_GB,xx_YY,ja_JP")
    assert settings.languages == ("en_GB", "fr_FR", "ja_JP")
    problem = next(p for p in settings.problems if p.setting == "KIOSK_LANGUAGES")
    assert "'xx_YY' is not a known locale" in problem.message and "en_US,fr_FR" in problem.fix and problem.warning
    assert make_settings(tmp_path, KIOSK_LOCALE="de_DE").languages == ("de_DE",)  # the default: the shop's only


# ---- the language buttons


def test_attract_screen_offers_each_language_by_its_own_name(tmp_path, stripe_server):
    client = KioskClient(make_app(tmp_path, stripe_server))
    page = client.get("/attract").get_data(as_text=True)
    assert language_buttons(page) == {"en_US": "English", "fr_FR": "Français", "ja_JP": "日本語"}
    assert 'lang="fr-FR"' in page and 'lang="ja-JP"' in page  # each name is read in its own language
    # Every customer page has the compact control in its header.
    assert 'id="language-menu"' in client.get("/").get_data(as_text=True)


def test_a_one_language_shop_shows_no_language_button(tmp_path, stripe_server):
    client = KioskClient(make_app(tmp_path, stripe_server, KIOSK_LANGUAGES=""))
    assert language_buttons(client.get("/attract").get_data(as_text=True)) == {}
    assert "language-menu" not in client.get("/").get_data(as_text=True)


def test_two_variants_of_one_language_are_told_apart_by_country(tmp_path, stripe_server):
    client = KioskClient(make_app(tmp_path, stripe_server, KIOSK_LANGUAGES="en_GB,fr_FR"))
    assert language_buttons(client.get("/attract").get_data(as_text=True)) == {
        "en_US": "English (United States)", "en_GB": "English (United Kingdom)", "fr_FR": "Français"}


# ---- a visit in the customer's language


def test_one_tap_on_francais_serves_the_shop_in_french(tmp_path, stripe_server, french_words):
    app = make_app(tmp_path, stripe_server)
    client = KioskClient(app)
    book = books(app)[0]
    assert lang_of(client.get("/attract").get_data(as_text=True)) == "en"
    assert price_on_home(client, book.isbn13) == f"€{book.price / 100:.2f}"
    answer = choose(client, "fr_FR")
    assert answer.status_code == 303 and answer.headers["Location"] == "/"  # lands on the shop's home
    home = client.get("/").get_data(as_text=True)
    assert lang_of(home) == "fr" and ">Rechercher</button>" in home
    assert price_on_home(client, book.isbn13) == f"{book.price / 100:.2f}".replace(".", ",") + "\u00a0€"
    assert lang_of(client.get(f"/book/{book.isbn13}").get_data(as_text=True)) == "fr"


def test_the_header_control_goes_back_to_the_page_it_was_on(tmp_path, stripe_server):
    app = make_app(tmp_path, stripe_server)
    client = KioskClient(app)
    path = f"/book/{books(app)[0].isbn13}"
    page = client.get(path).get_data(as_text=True)
    assert f'name="next" value="{path}"' in page
    answer = choose(client, "ja_JP", next=path)
    assert answer.headers["Location"] == path and lang_of(client.get(path).get_data(as_text=True)) == "ja"
    # Never another site.
    assert choose(client, "fr_FR", next="//evil.example/").headers["Location"] == "/"


@pytest.mark.parametrize("code", ["de_DE", "fr", "../../etc", "", "fr_FR" * 10])
def test_a_language_not_offered_is_refused_without_an_error_page(tmp_path, stripe_server, code):
    app = make_app(tmp_path, stripe_server)
    client = KioskClient(app)
    answer = choose(client, code)
    assert answer.status_code == 400 and "That language is not offered on this kiosk." in answer.get_data(True)
    assert lang_of(client.get("/").get_data(as_text=True)) == "en"


def test_the_language_switch_needs_the_csrf_token(tmp_path, stripe_server):
    http = make_app(tmp_path, stripe_server).test_client()
    http.get("/attract")
    assert http.post("/language", data={"language": "fr_FR"}).status_code == 400
    assert lang_of(http.get("/").get_data(as_text=True)) == "en"


def test_the_staff_area_stays_in_the_shops_language(tmp_path, stripe_server, french_words):
    app = make_app(tmp_path, stripe_server)
    client = KioskClient(app)
    choose(client, "fr_FR")
    assert client.post("/staff/login", data={"pin": PIN}).status_code == 302  # the session (and its language) moves
    for path in ("/staff/", "/staff/day"):
        page = client.get(path).get_data(as_text=True)
        assert lang_of(page) == "en" and ">Lock</button>" in page, path
    # …and money on the staff pages is written the shop's way, while the customer's pages stay French.
    assert 'id="takings-sales">€0.00<' in client.get("/staff/").get_data(as_text=True)
    assert lang_of(client.get("/").get_data(as_text=True)) == "fr"


def test_the_idle_reset_brings_back_the_shops_language(tmp_path, stripe_server, french_words):
    app = make_app(tmp_path, stripe_server)
    client = KioskClient(app)
    choose(client, "fr_FR")
    assert "Touchez pour commencer" in client.get("/attract").get_data(as_text=True)
    sid = client.sid()
    answer = client.post("/session/reset", json={}, headers={"Accept": "application/json"})
    assert answer.json == {"next": "/attract"} and stored_session(app, sid)["revoked"]
    page = client.get("/attract").get_data(as_text=True)
    assert lang_of(page) == "en" and "Touch to start" in page and "data-leftover" not in page


def test_an_attract_screen_after_a_reset_that_did_not_arrive_finishes_it(tmp_path, stripe_server):
    # The reset's own request lost: the language still kept counts as something to forget, like a cart.
    client = KioskClient(make_app(tmp_path, stripe_server))
    choose(client, "fr_FR")
    assert "data-leftover" in client.get("/attract").get_data(as_text=True)


def test_the_payment_element_and_the_receipt_speak_the_customers_language(tmp_path, stripe_server):
    app = make_app(tmp_path, stripe_server)
    client = KioskClient(app)
    first, second = books(app)[:2]
    client.add(first.isbn13)
    assert stripe_config(client)["locale"] == "en"
    choose(client, "fr_FR")
    client.add(second.isbn13)
    config = stripe_config(client)
    total = first.price + second.price
    assert (config["locale"], config["amount"], config["currency"]) == ("fr", total, "eur")
    reply = client.post("/checkout/intent", json={"attempt": client.start_checkout()}).json
    intent = reply["clientSecret"].split("_secret_")[0]
    stripe_server.pay(intent)
    page = client.get(reply["returnUrl"].split("localhost", 1)[1]).get_data(as_text=True)
    charged = re.search(r'id="amount-charged">([^<]+)', page).group(1)
    assert lang_of(page) == "fr" and charged == f"{total / 100:.2f}".replace(".", ",") + "\u00a0€"
    assert order(app, intent=intent)["amount"] == total == stripe_server.client().v1.payment_intents.retrieve(
        intent).amount


def test_a_japanese_visit_at_a_yen_shop(tmp_path, stripe_server):
    catalog = tmp_path / "books.csv"
    catalog.write_text("isbn,title,author,price,stock\n9780306406157,Kokoro,Natsume Soseki,1500,4\n", encoding="utf-8")
    app = make_app(tmp_path, stripe_server, KIOSK_CURRENCY="jpy", KIOSK_CATALOG=str(catalog))
    client = KioskClient(app)
    book = books(app)[0]
    assert price_on_home(client, book.isbn13) == f"¥{book.price:,}"
    choose(client, "ja_JP")
    assert price_on_home(client, book.isbn13) == f"￥{book.price:,}"  # Japanese writes the full-width yen sign
    client.add(book.isbn13, 2)
    config = stripe_config(client)
    assert (config["locale"], config["amount"], config["currency"]) == ("ja", 2 * book.price, "jpy")


@pytest.mark.parametrize("code, expected", [("fr_FR", "fr"), ("ja_JP", "ja"), ("pt_PT", "pt"), ("sv_SE", "sv"),
                                            ("nl_NL", "nl"), ("en_GB", "en-GB"), ("en_US", "en"), ("pt_BR", "pt-BR"),
                                            ("de_CH", "de"), ("cy_GB", "auto")])
def test_stripe_js_gets_a_locale_it_speaks(code, expected):
    assert stripe_locale(code) == expected
