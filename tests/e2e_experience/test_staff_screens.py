"""The staff area on a touch screen, in Chromium at the three sizes a shop buys: every staff page with nothing off
the glass, nothing clipped, targets of at least 48 px and no serious axe-core finding; and the Settings form's
choices (currency, language, tax classes, address lines) saved and shown back."""
import re

import pytest
from dotenv import dotenv_values
from playwright.sync_api import expect

from tests.e2e.test_setup import new_kiosk  # noqa: F401 (a fixture: the kiosk in an empty folder)
from tests.support.ledger import buy
from tests.support.screens import SIZES, problems

PIN = "24681357"


def sign_in(page):
    """Open the staff area and unlock it with the PIN."""
    page.goto("/staff/", wait_until="domcontentloaded")
    page.get_by_label("PIN").fill(PIN)
    page.get_by_role("button", name="Unlock").click()
    expect(page.get_by_role("button", name="Lock")).to_be_visible()


def staff_pages(page, sold):
    """Walk the staff area and yield each page's name once it is shown; `sold` is a paid order (ledger.Purchase)
    of two copies of a book, for the order page and a refund's review."""
    page.goto("/staff/", wait_until="domcontentloaded")
    yield "sign-in"
    sign_in(page)
    yield "today"
    for name, path in (("close the day", "/staff/day"), ("orders", "/staff/orders"),
                       ("orders filtered", "/staff/orders?q=zz&status=paid&oversold=1"), ("stock", "/staff/stock"),
                       ("catalog", "/staff/catalog"), ("promotions", "/staff/promotions"),
                       ("settings", "/staff/settings"), ("audit", "/staff/audit"),
                       ("card reader", "/staff/reader"), ("exit", "/staff/exit")):
        page.goto(path, wait_until="domcontentloaded")
        yield name
    page.goto(f"/staff/orders/{sold.reference}", wait_until="domcontentloaded")
    yield "order"
    page.get_by_role("group", name=re.compile("^Copies of")).get_by_text("2", exact=True).click()
    page.get_by_role("button", name="Review the refund").click()
    expect(page.get_by_role("button", name=re.compile(r"^Refund \$"))).to_be_visible()
    yield "refund review"
    page.goto("/staff/catalog", wait_until="domcontentloaded")
    page.get_by_role("link", name=re.compile("^Edit ")).first.click()
    expect(page.get_by_role("button", name="Save the book")).to_be_visible()
    yield "book edit"
    page.goto("/staff/promotions", wait_until="domcontentloaded")
    page.get_by_role("button", name="Add the promotion").click()  # nothing typed: every problem said
    expect(page.locator("#p-err-percent")).to_be_visible()
    yield "promotion refused"
    page.locator("#p-name").fill("Ten off")
    page.get_by_label("Percent off", exact=True).fill("10")
    page.get_by_role("button", name="Add the promotion").click()
    expect(page.get_by_role("link", name="Change Ten off")).to_be_visible()
    yield "promotions listed"
    page.get_by_role("link", name="Change Ten off").click()
    expect(page.get_by_role("button", name="Save the promotion")).to_be_visible()
    yield "promotion edit"


@pytest.mark.parametrize("size", SIZES)
def test_every_staff_page_fits_a_touch_screen(size, axe, start_kiosk, open_page, new_kiosk,  # noqa: F811
                                              stripe_server, record_property):
    kiosk = start_kiosk(KIOSK_STAFF_PIN=PIN)
    sold = buy(kiosk.app, stripe_server, {kiosk.app.extensions["kiosk"].catalog.books[0].isbn13: 2})
    page = open_page(kiosk, viewport=SIZES[size])
    found = {name: problems(page) for name in staff_pages(page, sold)}
    fresh = new_kiosk()  # no keys, no PIN: the first-run form, from the kiosk's own screen
    first = open_page(fresh, viewport=SIZES[size])
    first.goto(fresh.app.extensions["kiosk"].screen_path("/staff/setup"), wait_until="domcontentloaded")
    expect(first.get_by_role("heading", name="Set up this kiosk")).to_be_visible()
    found["first-run setup"] = problems(first)
    wrong = {name: p for name, p in found.items() if p}
    record_property(f"kiosk staff screens checked at {size}", f"{len(found)} pages, "
                                                              f"{sum(map(len, wrong.values()))} problems")
    assert wrong == {}, "\n".join(f"{name}: {p}" for name, ps in wrong.items() for p in ps)


def test_settings_save_the_choices_and_show_them_back(start_kiosk, open_page):
    kiosk = start_kiosk(KIOSK_STAFF_PIN=PIN)
    page = open_page(kiosk, viewport=SIZES["tablet 1280x800"])
    sign_in(page)
    page.goto("/staff/settings", wait_until="domcontentloaded")
    currency, language = page.get_by_label("Currency"), page.get_by_label("Language")
    expect(currency.locator("option:checked")).to_have_text("US Dollar (USD)")
    expect(language.locator("option:checked")).to_have_text("English (United States)")
    rows, lines = page.locator(".tax-row"), page.locator(".address-lines input")
    expect(rows).to_have_count(2)  # no tax yet: two empty rows to fill (without JS too)
    for row, (name, rate) in zip((rows.nth(0), rows.nth(1)), (("standard", "8.875"), ("zero", "0")), strict=True):
        row.get_by_label("Tax class").fill(name)
        row.get_by_label("Percent").fill(rate)
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#messages")).to_contain_text("Settings saved")
    assert dotenv_values(kiosk.settings.env_file)["KIOSK_TAX_RATES"] == "standard:8.875,zero:0"

    expect(rows).to_have_count(4)  # the two classes, and two empty rows
    expect(rows.nth(1).get_by_label("Percent")).to_have_value("0")
    rows.nth(1).get_by_role("button", name="Remove this tax class").click()
    expect(rows).to_have_count(3)
    page.get_by_role("button", name="Add a tax class").click()
    expect(rows).to_have_count(4)
    rows.nth(1).get_by_label("Tax class").fill("books")
    rows.nth(1).get_by_label("Percent").fill("5")
    language.select_option("en_CA")
    currency.select_option("cad")
    lines.nth(0).fill("12 Main Street")
    lines.nth(1).fill("Springfield")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#messages")).to_contain_text("Settings saved")

    env = dotenv_values(kiosk.settings.env_file)
    assert (env["KIOSK_CURRENCY"], env["KIOSK_LOCALE"]) == ("cad", "en_CA")
    assert env["KIOSK_TAX_RATES"] == "standard:8.875,books:5"
    assert env["KIOSK_SHOP_ADDRESS"] == "12 Main Street|Springfield"
    expect(currency.locator("option:checked")).to_have_text("Canadian Dollar (CAD)")
    expect(language.locator("option:checked")).to_have_text("English (Canada)")
    expect(rows.nth(1).get_by_label("Tax class")).to_have_value("books")
    expect(rows.nth(1).get_by_label("Percent")).to_have_value("5")
    expect(lines.nth(0)).to_have_value("12 Main Street")
    expect(lines.nth(1)).to_have_value("Springfield")
