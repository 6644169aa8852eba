"""Every visible word goes through gettext: every page rendered under a pseudo-locale shows no word of its own.

The test extracts the code's messages, builds a catalog for Esperanto (a locale Babel knows and the kiosk never
ships) whose every translation is the English text accented and wrapped in ⟦…⟧, and renders every customer and
staff page, the receipt and the day report with it. Whatever letters are left outside the markers, once the
catalog's own data (titles, authors, the shop's name, references, money, dates) is taken away, never passed
through translation.
"""
import io
import re
from html.parser import HTMLParser

import pytest
from babel import Locale
from babel.messages.frontend import CommandLineInterface
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import get_currency_symbol
from flask import Response

from kiosk import create_app
from kiosk.core import i18n
from kiosk.ledger import orders
from kiosk.ledger.db import LedgerUnavailable
from tests.support.client import KioskClient
from tests.support.ledger import books, buy, ledger
from tests.support.refunds import review_url
from tests.support.settings import ROOT, make_settings

LOCALE = "eo"
PIN = "2468"
# What a translation must keep as it is: placeholders, markup and entities.
KEEP = re.compile(r"%\(\w+\)[sd]|%%|%[sd]|<[^>]*>|&#?\w+;")
ACCENTS = str.maketrans("aeiouyAEIOUYcnCN", "áéíóúýÁÉÍÓÚÝçñÇÑ")


_eo = Locale.parse(LOCALE)
MONTHS = re.compile(r"\b(?:{})\b".format("|".join(name for name in sorted(
    {name.rstrip(".") for context in _eo.months.values() for width in context.values() for name in width.values()}
    | {name.rstrip(".") for context in _eo.days.values() for width in context.values() for name in width.values()},
    key=len, reverse=True) if len(name) > 2)), re.IGNORECASE)


def pseudo(text):
    """The English text with its letters accented (placeholders, tags and entities kept) inside ⟦…⟧."""
    kept = KEEP.findall(text)
    pieces = [piece.translate(ACCENTS) for piece in KEEP.split(text)]
    return "⟦" + "".join(p + k for p, k in zip(pieces, [*kept, ""], strict=True)) + "⟧"


def test_pseudo_keeps_placeholders_and_markup():
    assert pseudo("Added %(count)s <b>books</b> &amp; more") == "⟦Áddéd %(count)s <b>bóóks</b> &amp; móré⟧"


@pytest.fixture(scope="module")
def translations(tmp_path_factory):
    """A folder holding the pseudo-locale's compiled catalog of every message in the code, extracted now."""
    root = tmp_path_factory.mktemp("pseudo")
    pot = root / "messages.pot"
    CommandLineInterface().run(["pybabel", "-q", "extract", "-F", str(ROOT / "translations" / "babel.cfg"),
                                "-k", "lazy_gettext", "-k", "_l", "--no-location", "-o", str(pot), str(ROOT)])
    with open(pot, "rb") as f:
        catalog = read_po(f, locale=LOCALE)
    for message in catalog:
        if message.id:
            message.string = tuple(pseudo(p) for p in message.id) if message.pluralizable else pseudo(message.id)
    folder = root / "translations" / LOCALE / "LC_MESSAGES"
    folder.mkdir(parents=True)
    with open(folder / "messages.mo", "wb") as f:
        write_mo(f, catalog)
    return root / "translations"


class VisibleText(HTMLParser):
    """What a person reads: text nodes and the attributes read out or shown, less scripts and styles."""

    SKIP = frozenset({"script", "style", "template"})
    LABELS = ("aria-label", "placeholder", "alt", "title")
    # Tags inside one message (its markup); any other tag ends a run of text.
    INLINE = frozenset({"a", "b", "strong", "em", "i", "span", "code", "kbd", "abbr", "small", "time", "bdi", "q"})
    # Pickers whose choices are Babel's own names (currencies, languages, time zones), not the kiosk's words.
    DATA_PICKERS = frozenset({"f-currency", "f-locale", "f-timezone"})

    def __init__(self):
        super().__init__()
        self.chunks, self._skip, self._text, self._select = [], [], [], None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.chunks += [attrs[a] for a in self.LABELS if attrs.get(a)]
        if tag == "input" and attrs.get("type") in ("submit", "button") and attrs.get("value"):
            self.chunks.append(attrs["value"])
        if tag == "select":
            self._select = attrs.get("id")
        data_choice = tag == "option" and self._select in self.DATA_PICKERS and attrs.get("value")
        if tag in self.SKIP or "data-key" in attrs or data_choice:  # the keyboard's keys are letters, not words
            self._skip.append(tag)
        if tag not in self.INLINE:
            self._text.append("\n")

    def handle_endtag(self, tag):
        if self._skip and self._skip[-1] == tag:
            self._skip.pop()
        if tag not in self.INLINE:
            self._text.append("\n")

    def handle_data(self, data):
        if not self._skip:
            self._text.append(data)  # a message may hold markup: its pieces join up again

    def visible(self):
        return [*self.chunks, "".join(self._text)]


def leftovers(page, data):
    """The lines of `page` (HTML, or plain text for CSV) holding letters that no translation wrapped, each with
    only the untranslated text left on it."""
    if page.lstrip().startswith("<"):
        parser = VisibleText()
        parser.feed(page)
        chunks = parser.visible()
    else:
        chunks = [page]
    found = []
    for chunk in chunks:
        while True:  # a message may hold another (a placeholder's translated value): unwrap from the inside out
            unwrapped = re.sub(r"⟦[^⟦⟧]*⟧", " ", chunk)
            if unwrapped == chunk:
                break
            chunk = unwrapped
        for value in data:
            chunk = chunk.replace(value, " ")
        chunk = re.sub(r"\d{4}-[^\W\d_]+\.?-\d{2}", " ", chunk)  # a date as Esperanto writes it (2026-Jan-05)
        chunk = re.sub(r"\b(?:pi|re|tmr|ch|pm|tml|evt)_\w+", " ", chunk)  # Stripe's ids
        chunk = re.sub(r"https?://\S+", " ", chunk)
        chunk = re.sub(r"\b[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+\b", " ", chunk)  # a setting's name, shown to say which
        chunk = MONTHS.sub(" ", chunk)
        found += [" ".join(line.split()) for line in chunk.splitlines() if re.search(r"[^\W\d_]", line)]
    return found


def data_words(app, *extra):
    """Text that is the shop's data, not the kiosk's words: its catalog, name, counter and currency."""
    k = app.extensions["kiosk"]
    catalog = books(app)
    values = ({b.title for b in catalog} | {b.author for b in catalog} | {b.category for b in catalog}
              | {b.description for b in catalog} | {b.publisher for b in catalog if getattr(b, "publisher", "")}
              | {k.settings.shop_name, k.settings.counter_name, k.settings.currency.upper(), k.settings.zone.key,
                 get_currency_symbol(k.settings.currency.upper(), LOCALE), str(k.settings.catalog_path),
                 str(k.settings.env_file), *extra})
    return sorted((v for v in values if v), key=len, reverse=True)


def make_app(tmp_path, stripe_server, translations, monkeypatch, name, **env):
    monkeypatch.setattr(i18n, "TRANSLATIONS", translations)  # the pseudo-locale's catalog, not the shop's
    settings = make_settings(tmp_path / name, stripe_server, KIOSK_LOCALE=LOCALE, **env)
    return create_app(settings, testing=True)


def check(pages, data):
    """Every page answered without a trace, in the pseudo-locale; returns {page: untranslated words}."""
    found = {}
    for name, reply in pages.items():
        body = reply.get_data(as_text=True)
        assert "Traceback" not in body, name
        lines = leftovers(body, data)
        if lines:
            found[name] = lines
    return found


def report(found):
    return "\n".join(f"  {name}: {line}" for name, lines in found.items() for line in dict.fromkeys(lines))


def test_every_customer_and_staff_page_is_translated(tmp_path, stripe_server, translations, monkeypatch):
    app = make_app(tmp_path, stripe_server, translations, monkeypatch, "keys", KIOSK_STAFF_PIN=PIN)
    catalog = books(app)
    book = catalog[0]
    shopper = KioskClient(app)
    pages = {"attract": shopper.get("/attract"), "home": shopper.get("/"),
             "category": shopper.get("/", query_string={"category": book.category}),
             "search, nothing found": shopper.get("/search?q=zzzz"),
             "search, found": shopper.get("/search", query_string={"q": book.title.split()[0]}),
             "book": shopper.get(f"/book/{book.isbn13}"), "cart, empty": shopper.get("/cart"),
             "no such page": shopper.get("/no-such-page")}
    shopper.add(book.isbn13, 2)
    pages["cart"] = shopper.get("/cart")
    pages["checkout"] = shopper.get("/checkout/")
    with monkeypatch.context() as m:
        m.setattr(orders, "ping", lambda db: (_ for _ in ()).throw(LedgerUnavailable("down")))
        pages["paused"] = shopper.get("/checkout/")
    purchase = buy(app, stripe_server, {book.isbn13: 2, catalog[1].isbn13: 1})
    pages["confirmation"] = purchase.confirm()
    unpaid = buy(app, stripe_server, {catalog[2].isbn13: 1}, pay=False)
    with app.test_request_context("/checkout/complete"):
        from flask import render_template
        with ledger(app) as db:
            pending = orders.get(db, reference=unpaid.reference)
        pages["processing"] = app.response_class(render_template("processing.html", order=pending,
                                                                 unreachable=False))

    staff = KioskClient(app)
    staff.token()
    pages["staff sign-in"] = staff.get("/staff/")
    pages["staff wrong pin"] = staff.post("/staff/login", data={"pin": "0000"})
    assert staff.post("/staff/login", data={"pin": PIN}).status_code == 302
    ref = purchase.reference
    for name, url in {"today": "/staff/", "day report": "/staff/day", "day csv": "/staff/day.csv",
                      "orders": "/staff/orders", "order": f"/staff/orders/{ref}",
                      "refund review": review_url(ref, {book.isbn13: 1}),
                      "refund review, amount": review_url(ref, amount="1.00"),
                      "stock": "/staff/stock", "catalog": "/staff/catalog",
                      "book edit": f"/staff/catalog/book/{book.isbn13}", "settings": "/staff/settings",
                      "audit": "/staff/audit", "card reader": "/staff/reader", "exit": "/staff/exit"}.items():
        pages[name] = staff.get(url)
    staff.post("/staff/stock", data={"isbn": book.isbn13, "count": "7"})
    pages["stock, adjusted"] = staff.get("/staff/stock")
    staff.post("/staff/reconcile")
    pages["reconciled"] = staff.get("/staff/")
    staff.post("/staff/catalog/reload")
    pages["catalog reloaded"] = staff.get("/staff/catalog")

    bare = make_app(tmp_path, None, translations, monkeypatch, "bare")
    customer = KioskClient(bare)
    customer.add(book.isbn13)
    pages["pay at the counter"] = customer.get("/checkout/")
    pinless = make_app(tmp_path, stripe_server, translations, monkeypatch, "pinless")
    pages["no pin"] = KioskClient(pinless).get("/staff/")
    pages["first-run setup"] = KioskClient(bare).get("/staff/setup")

    assert all(200 <= reply.status_code < 300 or name in ("paused", "staff wrong pin", "no such page", "no pin")
               for name, reply in pages.items()), \
        {name: reply.status_code for name, reply in pages.items()}
    found = check(pages, data_words(app, ref, unpaid.reference, purchase.intent, str(pinless.extensions[
        "kiosk"].settings.env_file), str(bare.extensions["kiosk"].settings.env_file)))
    print(f"untranslated visible strings: {len({line for lines in found.values() for line in lines})} distinct, "
          f"on {len(found)} of {len(pages)} pages")
    assert not found, "text outside gettext:\n" + report(found)


def _message(reply):
    """A JSON reply's message (what the page shows), as a page of its own for check()."""
    return Response(reply.get_json()["message"], mimetype="text/plain")


def test_error_states_are_translated_too(tmp_path, stripe_server, translations, monkeypatch):
    """The refusals a person meets: the settings form's problems, refund errors, a catalog upload's problems and
    its preview, a failed reader registration, a sold-out book, a declined card as the reader's JSON says it."""
    reader = stripe_server.simulated_reader()
    app = make_app(tmp_path, stripe_server, translations, monkeypatch, "errors", KIOSK_STAFF_PIN=PIN,
                   STRIPE_TERMINAL_READER=reader)
    catalog = books(app)
    book = catalog[0]
    purchase = buy(app, stripe_server, {book.isbn13: 1})
    ref = purchase.reference
    staff = KioskClient(app)
    staff.token()
    assert staff.post("/staff/login", data={"pin": PIN}).status_code == 302
    pages = {}
    bad = {"shop_name": "", "currency": "zzz", "locale": "en_US", "idle_seconds": "5", "secret_key": "pk_test_x",
           "publishable_key": "sk_test_x", "pin": "12", "pin_again": "34", "tax_class": ["standard", "standard"],
           "tax_percent": ["8", "9"], "address_line": ["1 | 2"], "timezone": "Nowhere/Else",
           "revision": ""}
    pages["settings, every field wrong"] = staff.post("/staff/settings", data=bad)
    bad.update(tax_class=["8 percent"], tax_percent=[""], pin="111111", pin_again="111111", shop_name="x" * 99)
    pages["settings, wrong again"] = staff.post("/staff/settings", data=bad)
    pages["settings, a currency elsewhere"] = staff.post("/staff/settings", data={
        **{k: v for k, v in bad.items() if k not in ("tax_class", "tax_percent")}, "currency": "jpy"})
    for name, url in {"refund, nothing chosen": review_url(ref, {}),
                      "refund, amount unreadable": review_url(ref, amount="twelve"),
                      "refund, more than left": review_url(ref, amount="99999")}.items():
        pages[name] = staff.get(url, follow_redirects=True)
    upload = ("isbn,title,author,price,stock\n"
              f"{book.isbn13},{book.title},{book.author},99.00,3\n"
              "9780140449136,The Odyssey,Homer,15.99,3\n")
    pages["catalog preview"] = staff.post("/staff/catalog/upload", content_type="multipart/form-data",
                                          data={"catalog": (io.BytesIO(upload.encode()), "new.csv")})
    for name, data in {"catalog upload, not UTF-8": b"isbn,title\n\xff\xfe,x\n", "catalog upload, empty": b"",
                       "catalog upload, no columns": b"a,b\n1,2\n"}.items():
        pages[name] = staff.post("/staff/catalog/upload", content_type="multipart/form-data",
                                 data={"catalog": (io.BytesIO(data), "new.csv")}, follow_redirects=True)
    pages["covers, sample catalog"] = staff.post("/staff/catalog/covers", content_type="multipart/form-data",
                                            data={"covers": (io.BytesIO(b"not a zip"), "c.zip")},
                                            follow_redirects=True)
    pages["reader registration refused"] = staff.post("/staff/reader/register", data={
        "registration_code": "wrong-code-here", "location": "new", "line1": "1 Main", "city": "Town",
        "country": "US", "state": "CA", "postal_code": "90000"}, follow_redirects=True)

    shopper = KioskClient(app)
    staff.post("/staff/stock", data={"isbn": catalog[1].isbn13, "count": "0", "note": "shelf count"})
    pages["cart, sold out"] = _message(shopper.post("/cart/add", json={"isbn": catalog[1].isbn13, "quantity": 1},
                                                         headers={"Accept": "application/json"}))
    payer = KioskClient(app)
    payer.add(catalog[2].isbn13)
    attempt = payer.start_checkout()
    assert payer.post("/checkout/reader", json={"attempt": attempt}).status_code == 200
    stripe_server.tap(reader, "4000000000009995")  # insufficient funds
    declined = payer.get(f"/checkout/reader/status?attempt={attempt}")
    assert declined.get_json()["state"] == "declined"
    pages["reader, card declined"] = _message(declined)

    found = check(pages, data_words(app, ref, purchase.intent, "new.csv", "c.zip", "Nowhere/Else", "wrong-code-here",
                                    "The Odyssey", "Homer", "jpy", "JPY", "JP", "zzz", "'standard'", "'8 percent:'",
                                    "Counter reader", "Test shop", "simulated_wisepos_e",  # Stripe's own data
                                    str(app.extensions["kiosk"].settings.env_file)))
    texts = {name: reply.get_data(as_text=True) for name, reply in pages.items()}
    assert pseudo("Your card has insufficient funds.") in texts["reader, card declined"], texts["reader, card declined"]
    assert "sóld óút" in texts["cart, sold out"]
    for name, english in {"refund, nothing chosen": "Choose the books coming back, or refund a custom amount.",
                          "refund, amount unreadable": "Write the refund amount as a number in",
                          "refund, more than left": "The refund must be more than zero",
                          "catalog upload, not UTF-8": "is not UTF-8", "catalog upload, empty": "is empty",
                          "catalog upload, no columns": "has no column",
                          "covers, sample catalog": "Covers go beside your own catalog file",
                          "reader registration refused": "The reader was not registered",
                          "settings, wrong again": "is not a tax class and a percent",
                          "settings, a currency elsewhere": "Prices will be in"}.items():
        assert pseudo(english).strip("⟦⟧") in texts[name], name
    assert pseudo("Use at least %(num)s digits.") % {"num": 6} in texts["settings, every field wrong"]
    print(f"untranslated visible strings in error states: {len({line for lines in found.values() for line in lines})}"
          f" distinct, on {len(found)} of {len(pages)} pages")
    assert not found, "text outside gettext:\n" + report(found)
