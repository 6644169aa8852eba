"""The shop: catalog grid, search, book pages and the cart."""
from pathlib import Path

from flask import Blueprint, abort, flash, jsonify, render_template, request, send_file, url_for

from kiosk.core import cart as cartlib
from kiosk.core import isbn as isbnlib
from kiosk.core.i18n import gettext as _
from kiosk.ledger import stock as shelves
from kiosk.ledger.db import LedgerUnavailable, get_db
from kiosk.visit import customer
from kiosk.web import words
from kiosk.web.state import current_kiosk
from kiosk.web.views import reply, safe_next, whole_number

bp = Blueprint("shop", __name__)
# Cover files the kiosk serves, by extension, and a policy that makes one opened on its own (an SVG is a
# document) a sandboxed page that runs nothing, away from the kiosk's origin.
COVER_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".webp": "image/webp",
               ".gif": "image/gif", ".avif": "image/avif", ".svg": "image/svg+xml"}
COVER_CSP = "sandbox; default-src 'none'; img-src data:; style-src 'unsafe-inline'"
FAVICON = Path(__file__).resolve().parents[2] / "webui" / "static" / "favicon.svg"
SOLD_OUT_ASKED = 60  # ISBNs one availability question may name: a page of the grid and then some


def find_book(code):
    """The book for an ISBN in the URL or form, or a 404."""
    if not isbnlib.normalize(code):
        abort(404)
    book = current_kiosk().catalog.get(code)
    if book is None:
        abort(404)
    return book


def sold_out(isbns):
    """Which of these books have no copy left to sell, from the stock all counters share (on hand less the
    copies payments under way hold); none while the ledger is not answering (the holds at checkout still decide)."""
    isbns = list(isbns)
    try:
        levels = shelves.stock_levels(get_db(), isbns)
    except LedgerUnavailable:
        return set()
    return {isbn for isbn in isbns if levels.get(isbn, 0) == 0}


def _grid(books, **page):
    """What _grid.html needs: the books, and which of them are sold out."""
    return {"books": books, "sold_out": sold_out(b.isbn13 for b in books), **page}


def _page_number():
    return whole_number(request.args.get("page"), 6, default=1)


@bp.get("/")
def home():
    """The catalog grid, a page at a time."""
    catalog = current_kiosk().catalog
    category = request.args.get("category", "")[:80]
    page = _page_number()
    books, pages = catalog.page(page, category=category)
    return render_template("home.html", **_grid(books, page=min(page, pages), pages=pages, category=category,
                                                categories=catalog.categories, query=""))


@bp.get("/search")
def search():
    """Search by title, author or ISBN; `partial=1` returns just the result grid for search-as-you-type."""
    query = request.args.get("q", "")[:100].strip()
    books = current_kiosk().catalog.search(query) if query else current_kiosk().catalog.page(1)[0]
    if request.args.get("partial"):
        return render_template("_grid.html", **_grid(books, query=query))
    return render_template("home.html", **_grid(books, page=1, pages=1, category="",
                                                categories=current_kiosk().catalog.categories, query=query))


@bp.get("/sold-out")
def sold_out_now():
    """Of the books a page shows (`isbn`, repeated), those sold out now: the page polls this so a sale at
    another counter shows within seconds."""
    asked = {isbnlib.normalize(code[:20]) for code in request.args.getlist("isbn")[:SOLD_OUT_ASKED]}
    return jsonify(soldOut=sorted(sold_out(code for code in asked if len(code) == 13)))


@bp.get("/favicon.ico")
def favicon():
    """The kiosk's icon, where browsers and audits look for it."""
    return send_file(FAVICON, mimetype="image/svg+xml", max_age=86400)


@bp.get("/book/<code>")
def book(code):
    """One book, with add-to-cart."""
    item = find_book(code)
    on_hand = shelves.on_hand(get_db(), item.isbn13, unknown=-1)  # -1: the shop's records are not answering
    in_cart = customer.cart().get(item.isbn13, 0)
    limit = cartlib.MAX_QUANTITY if on_hand < 0 else min(on_hand, cartlib.MAX_QUANTITY)
    return render_template("book.html", book=item, on_hand=on_hand, in_cart=in_cart,
                           can_add=max(0, limit - in_cart))


@bp.get("/covers/<path:name>")
def cover(name):
    """A cover image from the catalog's covers folder: an image, a regular file, and inside that folder."""
    folder = (Path(current_kiosk().catalog.path).parent / "covers").resolve()
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
    return reply(status, message, back=safe_next(request.form.get("next"), url_for("shop.cart")),
                 cart_count=customer.cart_count())


def _form_book_and_quantity():
    data = request.get_json(silent=True) if request.is_json else request.form
    if not hasattr(data, "get"):
        data = {}
    item = find_book(str(data.get("isbn", "")))
    return item, cartlib.parse_quantity(data.get("quantity", 1))


def add_or_update():
    """Add copies of a book (/cart/add) or set a line's quantity (/cart/update), limited by stock."""
    adding = request.endpoint == "shop.cart_add"
    try:
        item, quantity = _form_book_and_quantity()
        (customer.add if adding else customer.set_quantity)(current_kiosk(), get_db(), item, quantity)
    except cartlib.CartError as exc:  # refused, with the reason (no stock, a payment under way, ...)
        return _cart_reply(words.say(exc), 409)
    return _cart_reply(_("Added “%(title)s” to your cart.", title=item.title) if adding
                       else _("Updated “%(title)s”.", title=item.title))


bp.add_url_rule("/cart/add", "cart_add", add_or_update, methods=["POST"])
bp.add_url_rule("/cart/update", "cart_update", add_or_update, methods=["POST"])


@bp.post("/cart/remove")
def cart_remove():
    """Take a book out of the cart."""
    item = find_book(request.form.get("isbn", ""))
    try:
        customer.remove(current_kiosk(), get_db(), item)
    except cartlib.CartError as exc:
        return _cart_reply(words.say(exc), 409)
    return _cart_reply(_("Removed “%(title)s”.", title=item.title))


@bp.get("/cart")
def cart():
    """The cart with a server-computed total."""
    k, db = current_kiosk(), get_db()
    priced = customer.priced(k, db)
    for note in priced.notes:
        flash(note, "error")
    return render_template("cart.html", cart=priced, paying=customer.in_flight(k, db) is not None,
                           staff_discounts=k.settings.staff_discount_max > 0)


# A refused code: 429 while codes are refused unread (too many wrong ones), 409 while the cart is being paid for.
CODE_STATUS = {"code_guessing": 429, "paying": 409, "visit_ended": 409}


@bp.post("/cart/code")
def cart_code():
    """Put a promotion code on the cart (checked and priced on the server), or take it off (`remove`)."""
    k, db = current_kiosk(), get_db()
    try:
        if request.form.get("remove"):
            customer.drop_code(k, db)
            return _cart_reply(_("The code was taken off your cart."))
        promotion = customer.give_code(k, db, request.form.get("code", "")[:60])
    except cartlib.CartError as exc:
        return _cart_reply(words.say(exc), CODE_STATUS.get(exc.code, 422))
    return _cart_reply(_("Code %(code)s added: %(name)s.", code=promotion.code, name=promotion.name))


@bp.app_context_processor
def cart_bar():
    """The portrait screens' bottom bar asks for the cart's total only when it shows (a cart with books)."""
    return {"cart_total": lambda: customer.priced(current_kiosk(), get_db()).total}


@bp.get("/cart/summary")
def cart_summary():
    """The cart total as JSON, for scripts that update the header."""
    priced = customer.priced(current_kiosk(), get_db())
    return jsonify(count=priced.count, total=priced.total, total_text=current_kiosk().money(priced.total))

