"""The kiosk itself: reloading the catalog file, a check with Stripe now, and closing the kiosk."""
from flask import flash, redirect, render_template, session, url_for

from kiosk.admin import catalog_edits
from kiosk.core.catalog import CatalogError
from kiosk.core.i18n import gettext as _
from kiosk.core.i18n import ngettext
from kiosk.ledger import audit as audit_log
from kiosk.ledger.db import get_db
from kiosk.payments.reconcile import last_check
from kiosk.visit.sessions import store
from kiosk.web import words
from kiosk.web.staff.base import bp, log
from kiosk.web.state import current_kiosk


@bp.post("/catalog/reload")
def catalog_reload():
    """Read the catalog file again; a file with no valid rows leaves the current catalog in place."""
    k = current_kiosk()
    try:
        fresh = catalog_edits.reload_file(k, get_db())
    except CatalogError as exc:
        flash(ngettext("The catalog was not reloaded, and the kiosk keeps selling the %(num)d book it had. %(why)s",
                       "The catalog was not reloaded, and the kiosk keeps selling the %(num)d books it had. %(why)s",
                       len(k.catalog.books), why=words.say(exc)), "error")
        return redirect(url_for("staff.catalog_page"))
    for warning in fresh.warnings:
        log.warning("catalog: %s", warning)
    audit_log.record_audit(get_db(), catalog_edits.who(k), "catalog", f"reloaded the catalog file "
                           f"{k.settings.catalog_path.name}: {len(fresh.books)} books, {len(fresh.warnings)} warnings")
    flash(_("Catalog reloaded: %(books)s, %(warnings)s.",
            books=ngettext("%(num)d book", "%(num)d books", len(fresh.books)),
            warnings=ngettext("%(num)d warning", "%(num)d warnings", len(fresh.warnings))), "info")
    return redirect(url_for("staff.catalog_page"))


@bp.post("/reconcile")
def reconcile_now():
    """Ask Stripe now instead of waiting for the next sweep."""
    reconciler = getattr(current_kiosk(), "reconciler", None)
    if reconciler is None:
        flash(_("Payments are not set up on this kiosk, so there is nothing to check."), "error")
    else:
        report = reconciler.run_once()
        if report is not None:
            flash(_("Checked with Stripe: %(result)s.", result=words.sweep(report.summary())), "info")
        else:
            flash(_("Could not check with Stripe: %(why)s", why=words.sweep(last_check(get_db(), current_kiosk())[1])),
                  "error")
    return redirect(url_for("staff.index"))


@bp.get("/exit")
def exit_confirm():
    """Ask before closing the kiosk."""
    return render_template("staff/exit.html", closing=None)


@bp.post("/exit")
def exit_kiosk():
    """Close the kiosk window; headless, say there is none."""
    store().staff_sign_out(session.key)
    closing = current_kiosk().request_exit()
    log.info("staff asked the kiosk to exit (%s)", "closing the window" if closing else "headless: no window")
    return render_template("staff/exit.html", closing=closing)
