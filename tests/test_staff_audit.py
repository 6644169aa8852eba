"""The audit list names every change staff make on the Stock page and every catalog reload, as README says."""
import html

import pytest

from kiosk import create_app
from tests.support.client import signed_in
from tests.support.settings import make_settings

PIN = "2468"


@pytest.fixture
def app(tmp_path, stripe_server):
    return create_app(make_settings(tmp_path, stripe_server, KIOSK_STAFF_PIN=PIN), testing=True)


def audit_page(client):
    return html.unescape(client.get("/staff/audit").get_data(as_text=True))


def test_a_count_on_the_stock_page_is_in_the_audit_list(app):
    client = signed_in(app, PIN)
    book = app.extensions["kiosk"].catalog.books[0]
    reply = client.post("/staff/stock", data={"isbn": book.isbn13, "count": str(book.stock + 2),
                                              "note": "delivery from the wholesaler"})
    assert reply.status_code == 302
    page = audit_page(client)
    assert "stock" in page and "delivery from the wholesaler: " f"{book.stock + 2} on hand (+2)" in page
    # Refused counts change nothing and are not listed.
    assert client.post("/staff/stock", data={"isbn": book.isbn13, "count": "3", "note": " "}).status_code == 302
    assert "Say why" in client.get("/staff/stock").get_data(as_text=True)
    assert audit_page(client).count(" on hand (") == 1


def test_reloading_the_catalog_is_in_the_audit_list(app):
    client = signed_in(app, PIN)
    assert client.post("/staff/catalog/reload").status_code == 302
    books = len(app.extensions["kiosk"].catalog.books)
    assert f"reloaded the catalog file books.csv: {books} books, 0 warnings" in audit_page(client)
