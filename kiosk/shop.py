"""The shop: catalog grid, search, book pages and the cart."""
from pathlib import Path

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, send_file, url_for

from . import cart as cartlib
from . import customer, kiosk, orders
from . import isbn as isbnlib
from .db import get_db
from .i18n import gettext as _
from .views import wants_json, whole_number

bp = Blueprint("shop", __name__)
# Cover files the kiosk serves, by extension, and a policy that makes one opened on its own (an SVG is a
# document) a sandboxed page that runs nothing, away from the kiosk's origin.
COVER_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
               ".gif": "image/gif", ".avif": "image/avif", ".svg": "image/svg+xml"}
COVER_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def find_book(code):
    """The book for an ISBN in the URL or form, or a 404."""
    if not isbnlib.normalize(code):
        abort(404)
    book = kiosk().catalog.get(code)
    if book is None:
        abort(404)
    return book


def _page_number():
    return whole_number(request.args.get("page"), 6, default=1)


@bp.get("/")
def home():
    """The catalog grid, a page at a time."""
    catalog = kiosk().catalog
    category = request.args.get("category", "")[:80]
    page = _page_number()
    books, pages = catalog.page(page, category=category)
    return render_template("home.html", books=books, page=min(page, pages), pages=pages,
                           category=category, categories=catalog.categories, query="")


@bp.get("/search")
def search():
    """Search by title, author or ISBN; `partial=1` returns just the result grid for search-as-you-type."""
    query = request.args.get("q", "")[:100].strip()
    books = kiosk().catalog.search(query) if query else kiosk().catalog.page(1)[0]
    if request.args.get("partial"):
        return render_template("_grid.html", books=books, query=query)
    return render_template("home.html", books=books, page=1, pages=1, category="",
                           categories=kiosk().catalog.categories, query=query)


@bp.get("/book/<code>")
def book(code):
    """One book, with add-to-cart."""
    item = find_book(code)
    on_hand = orders.stock_levels(get_db(), [item.isbn13]).get(item.isbn13, 0)
    in_cart = customer.cart().get(item.isbn13, 0)
    return render_template("book.html", book=item, on_hand=on_hand, in_cart=in_cart,
                           can_add=max(0, min(on_hand, cartlib.MAX_QUANTITY) - in_cart))


@bp.get("/covers/<path:name>")
def cover(name):
    """A cover image from the catalog's covers folder: an image, a regular file, and inside that folder."""
    folder = (Path(kiosk().catalog.path).parent / "covers").resolve()
    mimetype = COVER_TYPES.get(Path(name).suffix.lower())
    try:
        path = (folder / name).resolve()  # follows symlinks: where the file really is
    except (OSError, RuntimeError, ValueError):
        abort(404)
    # An .html file here would run script under the kiosk's own origin; a link could point anywhere.
    if mimetype is None or not path.is_relative_to(folder) or not path.is_file():
        abort(404)
    response = send_file(path, mimetype=mimetype, max_age=3600)
    response.headers["Content-Security-Policy"] = COVER_CSP
    return response


def _cart_reply(message, status=200):
    if wants_json():
        return jsonify(message=message, cart_count=customer.cart_count()), status
    flash(message, "error" if status >= 400 else "info")
    return redirect(request.form.get("next") if request.form.get("next", "").startswith("/")
                    and not request.form.get("next", "").startswith("//") else url_for("shop.cart"))


def _form_book_and_quantity():
    data = request.get_json(silent=True) if request.is_json else request.form
    if not hasattr(data, "get"):
        data = {}
    item = find_book(str(data.get("isbn", "")))
    return item, cartlib.parse_quantity(data.get("quantity", 1))


def _change(change, done):
    """Apply a cart change (refused while the cart is being paid for) and answer with `done` or the refusal."""
    try:
        change(kiosk(), get_db())
    except cartlib.CartError as exc:
        return _cart_reply(str(exc), 409)
    return _cart_reply(done)


@bp.post("/cart/add")
def cart_add():
    """Add copies of a book, limited by stock."""
    try:
        item, quantity = _form_book_and_quantity()
    except cartlib.CartError as exc:
        return _cart_reply(str(exc), 409)
    return _change(lambda k, db: customer.add(k, db, item, quantity),
                   _("Added “%(title)s” to your cart.", title=item.title))


@bp.post("/cart/update")
def cart_update():
    """Change a line's quantity."""
    try:
        item, quantity = _form_book_and_quantity()
    except cartlib.CartError as exc:
        return _cart_reply(str(exc), 409)
    return _change(lambda k, db: customer.set_quantity(k, db, item, quantity),
                   _("Updated “%(title)s”.", title=item.title))


@bp.post("/cart/remove")
def cart_remove():
    """Take a book out of the cart."""
    item = find_book(request.form.get("isbn", ""))
    return _change(lambda k, db: customer.remove(k, db, item), _("Removed “%(title)s”.", title=item.title))


@bp.get("/cart")
def cart():
    """The cart with a server-computed total."""
    k, db = kiosk(), get_db()
    priced = customer.priced(k, db)
    for note in priced.notes:
        flash(note, "error")
    return render_template("cart.html", cart=priced, paying=customer.in_flight(k, db) is not None)


@bp.get("/cart/summary")
def cart_summary():
    """The cart total as JSON, for scripts that update the header."""
    priced = customer.priced(kiosk(), get_db())
    return jsonify(count=priced.count, total=priced.total, total_text=kiosk().money(priced.total))

