"""Stock: copies on hand per book, and setting a count after checking the shelf."""
from flask import abort, flash, redirect, render_template, request, url_for

from kiosk.admin import catalog_edits
from kiosk.core.i18n import gettext as _
from kiosk.ledger import orders
from kiosk.ledger import stock as shelves
from kiosk.ledger.db import get_db
from kiosk.web import words
from kiosk.web.staff.base import PAGE_SIZE, bp, page_number
from kiosk.web.state import current_kiosk
from kiosk.web.views import whole_number


@bp.get("/stock")
def stock():
    """Copies on hand per book, with a count form."""
    catalog = current_kiosk().catalog
    query = request.args.get("q", "")[:100].strip()
    page = page_number()
    if query:
        books, pages = catalog.search(query, limit=PAGE_SIZE), 1
    else:
        books, pages = catalog.page(page, size=PAGE_SIZE)
    levels = shelves.stock_list(get_db(), [b.isbn13 for b in books])
    return render_template("staff/stock.html", books=books, levels=levels, query=query, page=min(page, pages),
                           pages=pages)


@bp.post("/stock")
def adjust_stock():
    """Set a book's copies on hand after counting the shelf, with a reason."""
    k = current_kiosk()
    book = k.catalog.get(request.form.get("isbn", ""))
    count = whole_number(request.form.get("count", "").strip(), 6)
    note = request.form.get("note", "").strip()[:200]
    query = request.form.get("q", "")[:100]
    if book is None:
        abort(404)
    if count is None or not note:
        flash(_("Write the number of copies on the shelf as a whole number.") if count is None else
              _("Say why the stock changes (for example: shelf count, damaged copy)."), "error")
        return redirect(url_for("staff.stock", q=query))
    try:
        # count_shelf writes the audit line in the same transaction as the count (README: the audit list).
        delta = shelves.count_shelf(get_db(), book.isbn13, count, note, catalog_edits.who(k))
    except orders.LedgerError as exc:
        flash(words.say(exc), "error")
        return redirect(url_for("staff.stock", q=query))
    flash(_("“%(title)s”: %(count)s on hand (%(delta)s).", title=book.title, count=count, delta=f"{delta:+d}")
          if delta else _("“%(title)s”: no change.", title=book.title), "info")
    return redirect(url_for("staff.stock", q=query))
