"""The customer's language in Chromium (issue #26): one tap on the attract screen, a purchase of two books paid
through the Stripe.js double, the receipt in that language with the money Stripe charged, and the idle reset back
to the shop's language. Steps find things by id and role, not by their words: the words are what changes."""
import csv
import re
from pathlib import Path

import pytest
from babel.numbers import format_currency
from babel.support import Translations
from playwright.sync_api import expect

from tests.e2e.shopper import CARD_OK, cart_summary, enter_card, pick_books, put_in_cart
from tests.support.screens import SIZES, problems

ROOT = Path(__file__).resolve().parent.parent.parent
IDLE = 10  # KIOSK_IDLE_SECONDS (its smallest allowed value)
COUNTDOWN = 15  # the warning's countdown, in webui/templates/_idle.html


def html_lang(page):
    return page.locator("html").get_attribute("lang")


def switch_on_the_attract_screen(page, name):
    """From the attract screen, tap the language's own name; returns the taps it took."""
    page.goto("/attract", wait_until="domcontentloaded")
    page.get_by_role("button", name=name, exact=True).tap()
    expect(page).to_have_url(re.compile(r"/$"))
    return 1


def pay_for_the_cart(page):
    """Open the checkout, type a card, press Pay and wait for the confirmation; returns Stripe.js's elements()
    options as the double received them."""
    page.goto("/checkout/", wait_until="domcontentloaded")
    expect(page.locator("#pay")).to_be_enabled()
    calls = page.evaluate("() => window.__stripeDouble.calls")
    [options] = [c["options"] for c in calls if c["method"] == "elements"]
    enter_card(page, CARD_OK)
    page.locator("#pay").tap()
    expect(page).to_have_url(re.compile(r"/checkout/complete\?ref=BK-"))
    expect(page.locator("#amount-charged")).to_be_visible()
    return options


def idle_out(page, kiosk):
    """Leave the kiosk alone until the idle reset has run and the attract screen shows."""
    page.clock.fast_forward((IDLE + COUNTDOWN + 1) * 1000)
    expect(page).to_have_url(kiosk.url + "/attract")


def one_visit(start_kiosk, open_page, stripe_server, name, code, lang, **env):
    """A customer at an English shop switches to `name`, buys two books and walks away: what each step showed."""
    kiosk = start_kiosk(KIOSK_IDLE_SECONDS=str(IDLE), KIOSK_LANGUAGES=f"en_US,{code}", **env)
    page = open_page(kiosk)
    page.clock.install()
    taps = switch_on_the_attract_screen(page, name)
    assert html_lang(page) == lang
    for book in pick_books(2):
        put_in_cart(page, book["isbn"])
    cart = cart_summary(page)
    options = pay_for_the_cart(page)
    seen = {"taps": taps, "cart": cart, "elements": options, "receipt lang": html_lang(page),
            "charged text": page.locator("#amount-charged").inner_text(), "orders": kiosk.orders(),
            "thanks": page.locator("#thanks").inner_text(),
            "intents": stripe_server.intents()}
    idle_out(page, kiosk)
    seen["after reset"] = html_lang(page)
    page.locator("#start").tap()  # the next customer touches the screen
    expect(page).to_have_url(kiosk.url + "/")
    seen["next customer"] = html_lang(page)
    seen["next customer's search"] = page.locator("label[for=q]").inner_text()
    return seen


def in_language(lang, msgid):
    """`msgid` as the shipped catalog of `lang` words it (translations/, compiled by scripts/setup.sh)."""
    words = Translations.load(str(ROOT / "translations"), [lang]).ugettext(msgid)
    assert words != msgid, f"{lang} does not translate {msgid!r}"
    return words


def check_the_words(seen, lang):
    """The receipt speaks the customer's language; the next customer's page the shop's (English)."""
    assert seen["thanks"] == in_language(lang, "Thank you! Payment received.")
    assert seen["next customer's search"] == "Search by title, author or ISBN"


def check_the_money(seen, currency, locale):
    """Stripe charged what the ledger recorded and the cart showed, written the customer's way on the receipt."""
    [order] = seen["orders"]
    [intent] = seen["intents"]
    assert order["status"] == "paid" and intent.status == "succeeded"
    assert intent.amount == order["amount"] == seen["cart"]["total"] == seen["elements"]["amount"]
    assert intent.currency == seen["elements"]["currency"] == currency
    major = seen["cart"]["total"] / (100 if currency != "jpy" else 1)
    assert seen["charged text"] == format_currency(major, currency.upper(), locale=locale)


def test_a_french_customer_at_an_english_shop(start_kiosk, open_page, stripe_server, touch, record_property):
    seen = one_visit(start_kiosk, open_page, stripe_server, "Français", "fr_FR", "fr")
    record_property("kiosk taps to switch language from the attract screen", seen["taps"])
    assert seen["taps"] == 1
    assert seen["elements"]["locale"] == "fr"  # Stripe's Payment Element speaks French too
    check_the_money(seen, "usd", "fr_FR")
    assert seen["charged text"].endswith("\u00a0$US")  # US dollars, written the French way
    assert seen["receipt lang"] == "fr"
    check_the_words(seen, "fr")
    assert (seen["after reset"], seen["next customer"]) == ("en", "en")


def test_a_japanese_customer_at_a_yen_shop(tmp_path, start_kiosk, open_page, stripe_server, touch):
    catalog = tmp_path / "books.csv"
    rows = [(b["isbn"], b["title"], b["author"], 1000 + 480 * n, 5) for n, b in enumerate(pick_books(2))]
    with open(catalog, "w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("isbn", "title", "author", "price", "stock"), *rows])
    seen = one_visit(start_kiosk, open_page, stripe_server, "日本語", "ja_JP", "ja", KIOSK_CURRENCY="jpy",
                     KIOSK_CATALOG=str(catalog))
    assert seen["elements"]["locale"] == "ja"
    assert seen["cart"]["total"] == sum(row[3] for row in rows)  # whole yen, no minor unit
    check_the_money(seen, "jpy", "ja_JP")
    assert seen["charged text"] == f"￥{seen['cart']['total']:,}"
    assert (seen["receipt lang"], seen["after reset"], seen["next customer"]) == ("ja", "en", "en")
    check_the_words(seen, "ja")


NINE = "en_US,fr_FR,de_DE,es_ES,it_IT,nl_NL,pt_PT,sv_SE,ja_JP"


@pytest.mark.parametrize("size", SIZES)
def test_nine_languages_fit_each_screen(size, axe, start_kiosk, open_page, touch, record_property):
    page = open_page(start_kiosk(KIOSK_LANGUAGES=NINE), viewport=SIZES[size])
    page.goto("/attract")
    buttons = page.locator("#attract-languages button")
    expect(buttons).to_have_count(9)
    found = {"attract": problems(page)}
    expect(page.locator("#start")).to_be_in_viewport()  # "Touch to start" still shows beside them
    page.goto("/")
    page.locator("#language-menu summary").tap()  # the header's control opens its list…
    expect(page.locator("#language-menu button")).to_have_count(9)
    found["header list open"] = problems(page)
    page.locator('#language-menu button[value="de_DE"]').tap()  # …and a second tap switches
    expect(page.locator("html")).to_have_attribute("lang", "de")
    found["home in German"] = problems(page)
    wrong = [f"{name}: {item}" for name, items in found.items() for item in items]
    record_property(f"kiosk language controls at {size}", f"{len(found)} screens, {len(wrong)} problems")
    assert not wrong, "\n".join(wrong)
