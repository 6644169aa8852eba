"""Promotions on the staff screen: the list with what each does and whether it runs now, adding one, changing or
switching one off, and all of them as a CSV file, both ways (kiosk/admin/promotion_forms.py reads and writes them)."""
import csv
import io
from pathlib import Path

from flask import Response, flash, redirect, render_template, request, url_for

from kiosk.admin import catalog_edits
from kiosk.admin import promotion_forms as forms
from kiosk.core import stamps
from kiosk.core.i18n import gettext as _
from kiosk.core.i18n import lazy_gettext as _l
from kiosk.ledger import promotions
from kiosk.ledger.db import LedgerError, get_db
from kiosk.web import words
from kiosk.web.staff.base import bp, or_404, shop_zone, today
from kiosk.web.staff.export import safe_cell
from kiosk.web.state import current_kiosk

# Where a promotion stands now (promotion_forms.state), as the list says it.
STATES = {"running": _l("running"), "later": _l("starts later"), "ended": _l("ended"), "used_up": _l("used up"),
          "off": _l("switched off")}


def _listed(rows):
    """The list's rows: each promotion with what it does, when, and where it stands now."""
    k, zone, at = current_kiosk(), shop_zone(), stamps.now()
    return [{"row": row, "what": forms.what(row, k.money), "when": forms.when(row, zone), "state": state,
             "state_text": STATES[state]} for row in rows for state in (forms.state(row, at),)]


def _form_context():
    """What the promotion form offers: the catalog's categories, and the shop's currency for its amounts."""
    k = current_kiosk()
    return {"categories": k.catalog.categories, "currency": k.settings.currency.upper()}


def _promotions_page(status=200, fields=None, errors=None, csv_problems=()):
    rows = promotions.all_promotions(get_db())
    return render_template("staff/promotions.html", promotions=_listed(rows), fields=fields or forms.blank(),
                           errors=errors or {}, csv_problems=csv_problems, **_form_context()), status


def _typed():
    """The promotion form's fields as typed."""
    return {name: request.form.get(name, "")[:12000 if name == "isbns" else 200] for name in forms.COLUMNS}


def _saved(fields, promotion_id=None, enabled=1):
    """Check and save a promotion from its form: (values, {}), or (None, {field: what is wrong})."""
    k = current_kiosk()
    values, problems = forms.check(fields, k.settings.currency, shop_zone(), k.catalog.categories)
    if values is None:
        return None, {name: words.say(problem) for name, problem in problems.items()}
    try:
        promotions.save(get_db(), {**values, "enabled": enabled}, catalog_edits.who(k), promotion_id)
    except LedgerError as exc:
        return None, {"code" if exc.code == "promotion_code_taken" else "form": words.say(exc)}
    return values, {}


def _refused():
    flash(_("Nothing was saved. Fix the fields marked below, then save again."), "error")


@bp.get("/promotions")
def promotions_page():
    """Every promotion with what it does and whether it runs now, the form to add one, and the CSV both ways."""
    return _promotions_page()


@bp.post("/promotions")
def promotion_add():
    """Add a promotion from the form; a refused form comes back with what was typed and what is wrong."""
    fields = _typed()
    values, errors = _saved(fields)
    if values is None:
        _refused()
        return _promotions_page(400, fields, errors)
    flash(_("Added “%(name)s”: %(what)s.", name=values["name"], what=forms.describe(values, current_kiosk().money,
                                                                                       shop_zone())), "info")
    return redirect(url_for("staff.promotions_page"))


def _promotion_page(row, status=200, fields=None, errors=None):
    return render_template("staff/promotion.html", promotion=_listed([row])[0],
                           fields=fields or forms.form_fields(row, shop_zone()), errors=errors or {},
                           **_form_context()), status


@bp.get("/promotions/<int:promotion_id>")
def promotion_page(promotion_id):
    """One promotion's form, to change it, and switching it off or on."""
    return _promotion_page(or_404(promotions.get(get_db(), promotion_id)))


@bp.post("/promotions/<int:promotion_id>")
def promotion_edit(promotion_id):
    """Save a changed promotion; it stays switched on or off as it was, and keeps the uses its code has had."""
    row = or_404(promotions.get(get_db(), promotion_id))
    fields = _typed()
    values, errors = _saved(fields, promotion_id, row["enabled"])
    if values is None:
        _refused()
        return _promotion_page(row, 400, fields, errors)
    flash(_("Saved “%(name)s”.", name=values["name"]), "info")
    return redirect(url_for("staff.promotions_page"))


@bp.post("/promotions/<int:promotion_id>/switch")
def promotion_switch(promotion_id):
    """Switch a promotion off (it stops at once, on every counter) or on again."""
    row = or_404(promotions.get(get_db(), promotion_id))
    enabled = request.form.get("enabled") == "1"
    promotions.switch(get_db(), promotion_id, enabled, catalog_edits.who(current_kiosk()))
    flash(_("“%(name)s” is switched on.", name=row["name"]) if enabled else
          _("“%(name)s” is switched off.", name=row["name"]), "info")
    return redirect(url_for("staff.promotions_page"))


@bp.post("/promotions/import")
def promotions_import():
    """Add and change promotions from a CSV file, matched by name: all its rows, or none when any is wrong."""
    k, upload = current_kiosk(), request.files.get("promotions")
    if upload is None or not upload.filename:
        flash(_("Choose a CSV file to upload."), "error")
        return _promotions_page(400)
    name, db = Path(upload.filename).name[:100], get_db()
    try:
        rows = forms.read_csv(upload.read(forms.MAX_FILE + 1), k.settings.currency, shop_zone(),
                              k.catalog.categories, promotions.all_promotions(db))
        added, changed = promotions.save_many(db, rows, catalog_edits.who(k),
                                              f"Promotions uploaded from {name}: {len(rows)} rows")
    except forms.PromotionRowsError as exc:
        flash(_("Nothing was changed: %(why)s", why=words.say(exc)), "error")
        problems = [(line, column, words.say(problem)) for line, column, problem in exc.problems]
        return _promotions_page(400, csv_problems=problems)
    except (forms.PromotionFormError, LedgerError) as exc:
        flash(_("Nothing was changed: %(why)s", why=words.say(exc)), "error")
        return _promotions_page(400)
    flash(_("%(name)s: %(added)s promotions added, %(changed)s changed.", name=name, added=added, changed=changed),
          "info")
    return redirect(url_for("staff.promotions_page"))


promotions_import.max_upload = forms.MAX_FILE + 64 * 1024  # the file and the form around it: a bigger one is said


@bp.get("/promotions.csv")
def promotions_csv():
    """Every promotion as a CSV file in the import's columns (times in the shop's zone): change it, upload it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
    rows = reversed(promotions.all_promotions(get_db()))  # oldest first: uploaded to a new ledger, in that order
    writer.writerows([safe_cell(cell) for cell in cells] for cells in forms.csv_rows(rows, shop_zone()))
    return Response(("\ufeff" + out.getvalue()).encode("utf-8"), mimetype="text/csv",  # the BOM: Excel reads UTF-8
                    headers={"Content-Disposition": f'attachment; filename="promotions-{today().isoformat()}.csv"'})
