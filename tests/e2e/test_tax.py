"""Tax in Chromium: US sales tax added on top, UK VAT included in the prices, and JPY in whole yen. The page,
the amount Stripe charged, the ledger and the receipt all agree, to the minor unit."""
from playwright.sync_api import expect

from tests.e2e.shopper import CARD_OK, add_to_cart, expect_confirmation, open_checkout, pay

CATALOG = ("isbn,title,author,price,stock,tax\n"
           "9780306406157,Good Book,Ann Author,47.10,4,\n"
           "9783434922599,Poems,Bea Poet,23.10,4,zero\n")


def shop(tmp_path, start_kiosk, text=CATALOG, **env):
    catalog = tmp_path / "books.csv"
    catalog.write_text(text, encoding="utf-8")
    return start_kiosk(KIOSK_CATALOG=str(catalog), KIOSK_SHOP_ADDRESS="12 Market Street|Springfield",
                       KIOSK_TAX_ID="TAX-42", **env)


def buy_both(page, kiosk, stripe_server):
    add_to_cart(page, "9780306406157")
    add_to_cart(page, "9783434922599")
    page.goto("/cart", wait_until="domcontentloaded")
    cart = {"subtotal": page.locator("#cart-subtotal").inner_text(), "total": page.locator("#cart-total").inner_text(),
            "tax": page.locator("#cart-tax .tax-line").all_inner_texts()}
    open_checkout(page)
    checkout = {"subtotal": page.locator("#checkout-subtotal").inner_text(),
                "total": page.locator("#checkout-total").inner_text(),
                "tax": page.locator("#checkout-tax .tax-line").all_inner_texts()}
    assert checkout == cart
    pay(page, CARD_OK)
    amount, intent_id = expect_confirmation(page)
    receipt = {"subtotal": page.locator("#receipt-subtotal").inner_text(), "total": amount,
               "tax": page.locator("#receipt-tax .tax-line").all_inner_texts()}
    assert receipt == cart  # what the page asked is what the receipt says was charged
    expect(page.locator("#shop-address")).to_contain_text("12 Market Street")
    expect(page.locator("#tax-id")).to_contain_text("TAX-42")  # after "Tax number", in the shop's language
    intent = stripe_server.client().v1.payment_intents.retrieve(intent_id)
    [order] = kiosk.orders()
    assert intent.amount == order["amount"] and order["status"] == "paid"
    return cart, intent, order


def clean(texts):
    return [" ".join(t.split()) for t in texts]


def test_us_sales_tax_is_added_on_top(tmp_path, start_kiosk, open_page, stripe_server):
    kiosk = shop(tmp_path, start_kiosk, KIOSK_TAX_RATES="standard:8.875,zero:0")
    cart, intent, order = buy_both(open_page(kiosk), kiosk, stripe_server)
    # $47.10 at 8.875% is $4.18; the poems are zero-rated: $70.20 + $4.18 = $74.38 (the case).
    assert cart["subtotal"] == "$70.20" and cart["total"] == "$74.38"
    assert clean(cart["tax"]) == ["Sales tax 8.875% $4.18", "Sales tax 0% $0.00"]
    assert (intent.amount, order["subtotal"], order["tax"]) == (7438, 7020, 418)


def test_uk_vat_is_included_in_the_prices(tmp_path, start_kiosk, open_page, stripe_server):
    kiosk = shop(tmp_path, start_kiosk, KIOSK_CURRENCY="gbp", KIOSK_LOCALE="en_GB",
                 KIOSK_TAX_RATES="standard:20,zero:0", KIOSK_PRICES_INCLUDE_TAX="true")
    cart, intent, order = buy_both(open_page(kiosk), kiosk, stripe_server)
    # £47.10 includes 20% VAT of £7.85; the total is the prices added up.
    assert cart["subtotal"] == cart["total"] == "£70.20"
    assert clean(cart["tax"]) == ["incl. VAT 20% £7.85", "incl. VAT 0% £0.00"]
    assert (intent.amount, order["tax"], order["tax_inclusive"]) == (7020, 785, 1)


def test_jpy_tax_rounds_to_whole_yen(tmp_path, start_kiosk, open_page, stripe_server):
    kiosk = shop(tmp_path, start_kiosk, text=("isbn,title,author,price,stock,tax\n"
                                              "9780306406157,Kokoro,Natsume Soseki,1505,4,\n"
                                              "9783434922599,Haiku,Basho,980,4,zero\n"),
                 KIOSK_CURRENCY="jpy", KIOSK_LOCALE="ja_JP", KIOSK_TAX_RATES="standard:10,zero:0")
    cart, intent, order = buy_both(open_page(kiosk), kiosk, stripe_server)
    # 10% of ¥1,505 is ¥150.5: ¥151, half up; ¥2,485 + ¥151 = ¥2,636.
    assert (cart["subtotal"], cart["total"]) == ("￥2,485", "￥2,636")
    assert (intent.amount, intent.currency, order["tax"]) == (2636, "jpy", 151)
