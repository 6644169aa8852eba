"""The catalog on the staff screen: add a book by ISBN, edit a price or a count, hide a book, upload a CSV with a
preview; every change kept in the ledger (it survives a restart and reaches the other counters) and in the audit
list; stock another counter sold from is never reset."""
import io
import os
import re
import time

import pytest

from kiosk import create_app
from tests.support.client import KioskClient
from tests.support.ledger import buy, ledger, on_hand, order
from tests.support.settings import make_settings

PIN = "2468"
NEW = "9780140449136"  # not in the sample catalog
CATALOG = ("isbn,title,author,price,stock\n"
           "9780306406157,Good Book,Ann Author,23.00,4\n"
           "9783434922599,Poems,Bea Poet,12.50,2\n")


def kiosk_app(tmp_path, stripe_server, name="Front", **env):
    catalog = tmp_path / "books.csv"
    if not catalog.exists():
        catalog.write_text(CATALOG, encoding="utf-8")
    env.setdefault("KIOSK_DATABASE_URL", "")
    settings = make_settings(tmp_path / name, stripe_server, KIOSK_STAFF_PIN=PIN, KIOSK_CATALOG=str(catalog),
                             KIOSK_COUNTER_NAME=name, **env)
    return create_app(settings, testing=True)


@pytest.fixture
def app(tmp_path, stripe_server):
    return kiosk_app(tmp_path, stripe_server)


def staff(app):
    client = KioskClient(app)
    client.token()
    assert client.post("/staff/login", data={"pin": PIN}).status_code == 302
    return client


def text(reply):
    body = reply.get_data(as_text=True)
    assert "Traceback" not in body
    return body


def catalog_of(app):
    return app.extensions["kiosk"].catalog


def audit(app):
    with ledger(app) as db:
        return [(r["area"], r["counter"], r["what"]) for r in db.execute("SELECT * FROM audit_log ORDER BY id")]


def add(client, **fields):
    form = {"isbn": "978-0-14-044913-6", "title": "The Odyssey", "author": "Homer", "price": "15.99", "stock": "3"}
    return client.post("/staff/catalog/add", data={**form, **fields})


def test_a_book_added_by_its_isbn_is_on_sale_with_its_stock(app):
    client = staff(app)
    assert add(client).status_code == 302
    book = catalog_of(app).get(NEW)
    assert (book.title, book.price, book.stock) == ("The Odyssey", 1599, 3)
    assert on_hand(app, NEW) == 3
    assert "The Odyssey" in text(KioskClient(app).get(f"/book/{NEW}"))
    [(area, counter, what)] = audit(app)
    assert area == "catalog" and counter == "Front" and "added “The Odyssey” (9780140449136)" in what


@pytest.mark.parametrize("fields, column, words", [
    ({"isbn": "9780140449137"}, "isbn", "check digit"),
    ({"isbn": "hello"}, "isbn", "not an ISBN"),
    ({"price": "12.345"}, "price", "decimal places"),
    ({"price": "-1"}, "price", "negative"),
    ({"stock": "lots"}, "stock", "whole number"),
    ({"title": ""}, "title", "empty"),
    ({"isbn": "9780306406157"}, "isbn", "already in the catalog"),
])
def test_a_bad_book_is_refused_next_to_its_field(app, fields, column, words):
    client = staff(app)
    reply = add(client, **fields)
    assert reply.status_code == 422
    message = re.search(rf'id="add-err-{column}"[^>]*>([^<]+)<', text(reply))
    assert message and words in message.group(1), message
    assert catalog_of(app).get(NEW) is None and audit(app) == []


def test_a_new_price_is_what_the_next_customer_pays(app, stripe_server):
    client = staff(app)
    reply = client.post("/staff/catalog/book/9780306406157", data={"title": "Good Book", "author": "Ann Author",
                                                                    "price": "19.50", "category": "", "tax": "",
                                                                    "description": "", "cover": ""})
    assert reply.status_code == 302
    purchase = buy(app, stripe_server, {"9780306406157": 2})
    intent = stripe_server.client().v1.payment_intents.retrieve(purchase.intent)
    assert intent.amount == 3900 and order(app, purchase.reference)["amount"] == 3900
    assert on_hand(app, "9780306406157") == 2
    assert any("price $23.00 → $19.50" in what for _, _, what in audit(app))


def test_counting_the_shelf_sets_the_count_and_is_audited(app):
    client = staff(app)
    assert client.post("/staff/catalog/book/9780306406157/count", data={"count": "9", "note": "delivery"}) \
        .status_code == 302
    assert on_hand(app, "9780306406157") == 9
    assert ("stock", "Front", "delivery: 9 on hand (+5)") in audit(app)
    bad = client.post("/staff/catalog/book/9780306406157/count", data={"count": "-2"}, follow_redirects=True)
    assert "whole number" in text(bad) and on_hand(app, "9780306406157") == 9


def test_a_hidden_book_leaves_the_shop_and_can_come_back(app):
    client = staff(app)
    assert client.post("/staff/catalog/book/9783434922599/hide").status_code == 302
    assert catalog_of(app).get("9783434922599") is None
    shopper = KioskClient(app)
    assert shopper.get("/book/9783434922599").status_code == 404
    assert shopper.add("9783434922599").status_code >= 400
    page = text(client.get("/staff/catalog"))
    assert 'id="hidden-books"' in page and "Poems" in page
    assert client.post("/staff/catalog/show", data={"isbn": "9783434922599"}).status_code == 302
    assert catalog_of(app).get("9783434922599").title == "Poems"
    assert [what.split(" ")[0] for _, _, what in audit(app)] == ["hid", "put"]


def test_edits_survive_a_restart(tmp_path, stripe_server, app):
    client = staff(app)
    add(client)
    client.post("/staff/catalog/book/9783434922599/hide")
    again = kiosk_app(tmp_path, stripe_server)
    assert catalog_of(again).get(NEW).price == 1599 and catalog_of(again).get("9783434922599") is None
    assert on_hand(again, NEW) == 3  # a restart takes the count once, not again



def test_an_edited_book_of_a_tax_class_no_longer_in_the_rates_is_set_aside_not_a_broken_cart(tmp_path,
                                                                                             stripe_server):
    app = kiosk_app(tmp_path, stripe_server, KIOSK_TAX_RATES="standard:8,reduced:5")
    assert add(staff(app), tax="reduced").status_code == 302
    assert catalog_of(app).get(NEW).tax_class == "reduced"
    again = kiosk_app(tmp_path, stripe_server, KIOSK_TAX_RATES="standard:8")  # 'reduced' taken out of the rates
    assert catalog_of(again).get(NEW) is None
    said = [w for w in catalog_of(again).warnings if w.column == "tax"]
    assert len(said) == 1 and NEW in str(said[0].file) and "'reduced' is not a tax class" in said[0].message
    customer = KioskClient(again)
    customer.add("9780306406157")
    cart = customer.get("/cart")
    assert cart.status_code == 200 and "$24.84" in text(cart)  # 23.00 + 8% of it, the file's book still sold

UPLOAD = ("isbn,title,author,price,stock\n"
          "9780306406157,Good Book,Ann Author,25.00,6\n"    # price and count change
          "9783434922599,Poems,Bea Poet,12.50,2\n"          # unchanged
          "9780140449136,The Odyssey,Homer,15.99,3\n"       # new
          "9780140449137,Bad Digit,Someone,1.00,1\n"        # refused: check digit
          "9781861972712,No Price,Someone,,1\n")            # refused: price


def upload(client, data, name="new.csv"):
    return client.post("/staff/catalog/upload", data={"catalog": (io.BytesIO(data), name)},
                       content_type="multipart/form-data")


def test_an_uploaded_csv_is_previewed_then_applied(app, stripe_server):
    buy(app, stripe_server, {"9780306406157": 1})  # 4 - 1 = 3 on the shelf before the upload
    client = staff(app)
    preview = text(upload(client, UPLOAD.encode()))
    assert re.search(r'id="preview-added">1<', preview) and re.search(r'id="preview-changed">1<', preview)
    assert re.search(r'id="preview-refused">2<', preview)
    assert "new.csv, line 5, column isbn" in preview and "new.csv, line 6, column price" in preview
    assert "$23.00 → $25.00" in preview
    assert catalog_of(app).get(NEW) is None  # nothing applied yet
    token = re.search(r'name="token" value="([0-9a-f]+)"', preview).group(1)
    assert client.post("/staff/catalog/upload/apply", data={"token": token, "name": "new.csv"}).status_code == 302
    assert catalog_of(app).get("9780306406157").price == 2500 and catalog_of(app).get(NEW).stock == 3
    # The sheet went from 4 to 6: two more copies on top of what is left after the sale (never reset to 6).
    assert on_hand(app, "9780306406157") == 5 and on_hand(app, NEW) == 3
    assert any("uploaded new.csv: 1 new, 1 changed, 2 rows refused" in what for _, _, what in audit(app))
    # The same token cannot be applied twice.
    again = client.post("/staff/catalog/upload/apply", data={"token": token, "name": "new.csv"}, follow_redirects=True)
    assert "no longer here" in text(again) and on_hand(app, "9780306406157") == 5


def test_a_preview_never_applied_is_removed_after_a_day(app):
    client = staff(app)
    folder = app.extensions["kiosk"].settings.data_dir / "uploads"
    first = re.search(r'name="token" value="([0-9a-f]+)"', text(upload(client, UPLOAD.encode()))).group(1)
    stale = folder / f"{first}.csv"
    os.utime(stale, (time.time() - 2 * 86400,) * 2)
    second = re.search(r'name="token" value="([0-9a-f]+)"', text(upload(client, UPLOAD.encode()))).group(1)
    assert not stale.exists() and (folder / f"{second}.csv").is_file()


def test_a_csv_that_is_not_utf8_is_refused_and_nothing_changes(app):
    client = staff(app)
    reply = upload(client, "isbn,title,author,price,stock\n9780306406157,Café,A,1.00,1\n".encode("cp1252"))
    assert reply.status_code == 422 and "not UTF-8" in text(reply) and "CSV UTF-8" in text(reply)
    assert catalog_of(app).get("9780306406157").title == "Good Book" and audit(app) == []


def test_an_upload_too_big_is_refused(app):
    client = staff(app)
    reply = upload(client, b"x" * (9 * 1024 * 1024))
    assert reply.status_code == 413 and "too large" in text(reply)


def test_a_zip_of_covers_cannot_write_outside_its_folder(app, tmp_path):
    import zipfile
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("good.png", b"png")
        z.writestr("../../escape.png", b"png")
    client = staff(app)
    reply = client.post("/staff/catalog/covers", data={"covers": (io.BytesIO(out.getvalue()), "c.zip")},
                        content_type="multipart/form-data", follow_redirects=True)
    assert "outside its own folder" in text(reply)
    assert not (tmp_path / "covers" / "good.png").exists() and not (tmp_path.parent / "escape.png").exists()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("good.png", b"png")
    reply = client.post("/staff/catalog/covers", data={"covers": (io.BytesIO(out.getvalue()), "c.zip")},
                        content_type="multipart/form-data", follow_redirects=True)
    assert "1 covers saved" in text(reply) and (tmp_path / "covers" / "good.png").read_bytes() == b"png"


def test_the_audit_list_is_readable_by_staff_only(app):
    client = staff(app)
    add(client)
    page = text(client.get("/staff/audit"))
    assert "added “The Odyssey”" in page and "Front" in page
    assert KioskClient(app).get("/staff/audit").status_code == 302


def test_edits_reach_every_counter_on_a_shared_ledger(tmp_path, stripe_server, ledger_url):
    shared = {"KIOSK_DATABASE_URL": ledger_url} if ledger_url.startswith("postgres") else {}
    front = kiosk_app(tmp_path, stripe_server, "Front", **shared)
    back = kiosk_app(tmp_path, stripe_server, "Back", **shared)
    if not shared:
        # One SQLite file stands in for the shared database.
        back.extensions["kiosk"].ledger = front.extensions["kiosk"].ledger
    client = staff(front)
    add(client)
    client.post("/staff/catalog/book/9780306406157", data={"title": "Good Book", "author": "Ann Author",
                                                          "price": "30.00"})
    buy(back, stripe_server, {"9780306406157": 1})  # the back counter sells before it has seen the edits
    back.extensions["kiosk"]._last_tries.pop("catalog", None)  # as 15 s later
    shopper = KioskClient(back)
    assert "The Odyssey" in text(shopper.get(f"/book/{NEW}"))
    assert catalog_of(back).get("9780306406157").price == 3000
    assert on_hand(back, NEW) == 3 and on_hand(back, "9780306406157") == 3
    assert [c for _, c, _ in audit(back)] == ["Front", "Front"]


def _zip_of_covers():
    """A zip of two covers stored as they are (no compression), as bytes."""
    import zipfile
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("good.png", b"P" * 64)
        z.writestr("second.png", b"Q" * 64)
    return bytearray(out.getvalue())


def _patch_headers(data, local_at, central_at, fmt, value):
    """Set one field of the last member's local and central headers (offsets from each header's start)."""
    import struct
    for signature, at in ((b"PK\x03\x04", local_at), (b"PK\x01\x02", central_at)):
        start = data.rfind(signature)
        struct.pack_into(fmt, data, start + at, value)
    return bytes(data)


def _damaged_zips():
    data = _zip_of_covers()
    bad_crc = bytearray(data)
    bad_crc[data.rfind(b"Q" * 64) + 10] ^= 0xFF  # one byte of the second cover changed after it was zipped
    return {
        "bad CRC": bytes(bad_crc),
        "size under-stated": _patch_headers(bytearray(data), 22, 24, "<I", 10),
        "encrypted": _patch_headers(bytearray(data), 6, 8, "<H", 0x1),
        "unknown compression": _patch_headers(bytearray(data), 8, 10, "<H", 99),
        "cut short": bytes(data[:len(data) // 2]),
        "not a zip": b"PNG, not a zip at all",
    }


@pytest.mark.parametrize("kind", list(_damaged_zips()))
def test_a_damaged_covers_zip_is_refused_with_a_message_and_unpacks_nothing(app, tmp_path, kind):
    from kiosk.admin import catalog_edits
    from kiosk.core.catalog import CatalogError
    damaged = _damaged_zips()[kind]
    with pytest.raises(CatalogError):  # the set-up form's check refuses it before anything is saved
        catalog_edits.check_covers(damaged)
    reply = staff(app).post("/staff/catalog/covers", data={"covers": (io.BytesIO(damaged), "covers.zip")},
                            content_type="multipart/form-data", follow_redirects=True)
    page = text(reply)
    assert reply.status_code == 200 and "nothing was saved" in page and "Something went wrong" not in page
    assert not (tmp_path / "covers").exists() or not any((tmp_path / "covers").iterdir())
