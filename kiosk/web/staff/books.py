"""The catalog on screen: add a book by its ISBN, edit a price or a count, hide a book, upload a CSV (preview,
then apply) or covers, and the audit list of every change staff made."""
import re
import secrets
import time
from pathlib import Path

from flask import abort, flash, redirect, render_template, request, url_for

from kiosk.admin import catalog_edits
from kiosk.core.catalog import MAX_UPLOAD, CatalogError
from kiosk.core.datadir import make_private, write_private
from kiosk.core.i18n import gettext as _
from kiosk.ledger import audit as audit_log
from kiosk.ledger import catalog_entries
from kiosk.ledger import stock as shelves
from kiosk.ledger.db import get_db
from kiosk.web import words
from kiosk.web.staff.base import PAGE_SIZE, bp, or_404, page_number
from kiosk.web.state import current_kiosk
from kiosk.web.views import whole_number

UPLOAD_DAYS = 1  # a previewed CSV nobody applied is removed after a day


def _uploads():
    return current_kiosk().settings.data_dir / "uploads"


def _forget_old_uploads():
    """Remove previews never applied, so the data folder does not fill with them."""
    cutoff = time.time() - UPLOAD_DAYS * 86400
    for old in _uploads().glob("*.csv"):
        if old.stat().st_mtime < cutoff:
            old.unlink(missing_ok=True)


def _catalog_page(status=200, **extra):
    k = current_kiosk()
    query = request.values.get("q", "")[:100].strip()
    books = k.catalog.search(query, limit=PAGE_SIZE) if query else k.catalog.page(page_number(), PAGE_SIZE)[0]
    hidden = [e for e in catalog_entries.catalog_entries(get_db()) if e["hidden"]]
    return render_template("staff/catalog.html", catalog=k.catalog, books=books, query=query, hidden=hidden,
                           levels=shelves.stock_list(get_db(), [b.isbn13 for b in books]),
                           new=extra.pop("new", {}), errors=extra.pop("errors", {}), **extra), status


@bp.get("/catalog")
def catalog_page():
    """The catalog: add a book, the books with their edit links, hidden books, upload, and the load warnings."""
    return _catalog_page()


@bp.post("/catalog/add")
def catalog_add():
    """Add a book scanned or typed by its ISBN, with its title, author, price and count."""
    k = current_kiosk()
    fields = {name: request.form.get(name, "")[:4000] for name in ("isbn", "title", "author", "price", "stock",
                                                                    "category", "description", "tax")}
    book, problems = catalog_edits.add_book(k, get_db(), fields)
    if book is None:
        return _catalog_page(422, new=fields, errors=problems)
    flash(_("Added “%(title)s”: %(count)s copies at %(price)s.", title=book.title, count=book.stock,
            price=k.money(book.price)), "info")
    return redirect(url_for("staff.catalog_page"))


def _upload(field, missing):
    """The file a staff form sent as `field`; without one, says `missing` back on the catalog page."""
    upload = request.files.get(field)
    if upload is None or not upload.filename:
        flash(missing, "error")
        abort(redirect(url_for("staff.catalog_page")))
    return upload


def _book_or_404(isbn):
    return or_404(current_kiosk().catalog.get(isbn))


@bp.get("/catalog/book/<isbn>")
def catalog_book(isbn):
    """One book's edit form: details and price, the count on the shelf, and hiding it."""
    k, book = current_kiosk(), _book_or_404(isbn)
    return render_template("staff/book.html", book=book, fields=catalog_edits.form_fields(book, k.settings.currency),
                           errors={}, on_hand=shelves.on_hand(get_db(), book.isbn13))


@bp.post("/catalog/book/<isbn>")
def catalog_edit(isbn):
    """Save a book's details and price."""
    k, book = current_kiosk(), _book_or_404(isbn)
    fields = {name: request.form.get(name, "")[:4000] for name in ("title", "author", "price", "category",
                                                                    "description", "tax", "cover")}
    new, problems = catalog_edits.edit_book(k, get_db(), book, fields)
    if new is None:
        return render_template("staff/book.html", book=book, fields={**fields, "isbn": book.isbn13}, errors=problems,
                               on_hand=shelves.on_hand(get_db(), book.isbn13)), 422
    flash(_("Saved “%(title)s” at %(price)s.", title=new.title, price=k.money(new.price)), "info")
    return redirect(url_for("staff.catalog_book", isbn=book.isbn13))


@bp.post("/catalog/book/<isbn>/count")
def catalog_count(isbn):
    """Set the copies on the shelf after counting them."""
    k, book = current_kiosk(), _book_or_404(isbn)
    count = whole_number(request.form.get("count", "").strip(), 6)
    if count is None:
        flash(_("Write the number of copies on the shelf as a whole number."), "error")
        return redirect(url_for("staff.catalog_book", isbn=book.isbn13))
    note = request.form.get("note", "").strip()[:200] or "counted on the Catalog page"
    delta = shelves.count_shelf(get_db(), book.isbn13, count, note, catalog_edits.who(k))
    flash(_("“%(title)s”: %(count)s on hand (%(delta)s).", title=book.title, count=count, delta=f"{delta:+d}"),
          "info")
    return redirect(url_for("staff.catalog_book", isbn=book.isbn13))


@bp.post("/catalog/book/<isbn>/hide")
def catalog_hide(isbn):
    """Take a book off sale (its orders and stock stay; it can be put back)."""
    title = catalog_edits.set_hidden(current_kiosk(), get_db(), _book_or_404(isbn).isbn13, True)
    flash(_("“%(title)s” is hidden: customers no longer see it.", title=title), "info")
    return redirect(url_for("staff.catalog_page"))


@bp.post("/catalog/show")
def catalog_show():
    """Put a hidden book back on sale."""
    title = catalog_edits.set_hidden(current_kiosk(), get_db(), request.form.get("isbn", "")[:13], False)
    if title is None:
        abort(404)
    flash(_("“%(title)s” is on sale again.", title=title), "info")
    return redirect(url_for("staff.catalog_page"))


@bp.post("/catalog/upload")
def catalog_upload():
    """Check an uploaded CSV and show what it would change, and which rows it refuses and why."""
    k, upload = current_kiosk(), _upload("catalog", _("Choose a CSV file to upload."))
    data, name = upload.read(), Path(upload.filename).name[:100] or "upload.csv"
    try:
        preview = catalog_edits.preview_upload(k, name, data)
    except CatalogError as exc:
        flash(_("Nothing was changed: %(why)s", why=words.say(exc)), "error")
        return _catalog_page(422)
    token = secrets.token_hex(16)
    make_private(_uploads())
    _forget_old_uploads()
    write_private(_uploads() / f"{token}.csv", data)  # kept until applied, in the data folder, owner-only
    return render_template("staff/catalog_preview.html", preview=preview, token=token, name=name)


catalog_upload.max_upload = MAX_UPLOAD + 64 * 1024  # the CSV and the form around it


@bp.post("/catalog/upload/apply")
def catalog_apply():
    """Apply a previewed CSV: its new and changed books, in one transaction, checked again against the catalog."""
    k = current_kiosk()
    token, name = request.form.get("token", ""), request.form.get("name", "upload.csv")[:100]
    path = _uploads() / f"{token}.csv"
    if not re.fullmatch(r"[0-9a-f]{32}", token) or not path.is_file():
        flash(_("That upload is no longer here (it was applied or the kiosk restarted). Upload the file again."),
              "error")
        return redirect(url_for("staff.catalog_page"))
    try:
        preview = catalog_edits.preview_upload(k, name, path.read_bytes())  # the catalog may have changed since
    except CatalogError as exc:
        flash(_("Nothing was changed: %(why)s", why=words.say(exc)), "error")
        return redirect(url_for("staff.catalog_page"))
    count = catalog_edits.apply_upload(k, get_db(), preview)
    path.unlink(missing_ok=True)
    flash(_("%(name)s applied: %(count)s books added or changed, %(refused)s rows refused.", name=name, count=count,
            refused=len(preview.refused)), "info")
    return redirect(url_for("staff.catalog_page"))


@bp.post("/catalog/covers")
def catalog_covers():
    """Add cover images from a zip into the covers folder beside the catalog file."""
    k, upload = current_kiosk(), _upload("covers", _("Choose a zip file of cover images."))
    folder = k.catalog.path
    try:
        folder = catalog_edits.covers_folder(k.catalog.path)
        count = catalog_edits.save_covers(folder, upload.read())
    except CatalogError as exc:
        flash(words.say(exc), "error")
    except OSError as exc:
        flash(_("Could not save the covers in %(folder)s: %(why)s. Nothing was changed.", folder=str(folder),
                why=exc.strerror or str(exc)), "error")
    else:
        audit_log.record_audit(get_db(), catalog_edits.who(k), "catalog",
                               f"added {count} covers from {upload.filename}")
        flash(_("%(count)s covers saved.", count=count), "info")
    return redirect(url_for("staff.catalog_page"))


catalog_covers.max_upload = catalog_edits.MAX_COVERS_ZIP


@bp.get("/audit")
def audit():
    """Every change made from the staff screen: what, when, at which counter."""
    page = page_number()
    rows, total = audit_log.audit_list(get_db(), page, PAGE_SIZE)
    pages = max(1, -(-total // PAGE_SIZE))
    return render_template("staff/audit.html", rows=rows, total=total, page=min(page, pages), pages=pages)
