"""The audit list: what staff changed (set-up, settings, catalog, stock), when, at which counter; never a key or PIN."""
from kiosk.core.stamps import now
from kiosk.ledger.db import transaction


def write(db, who, area, what, isbn=None):
    """One line of the audit list, in the caller's transaction; `who` is (kiosk_id, counter name)."""
    db.execute("INSERT INTO audit_log (at, kiosk_id, counter, area, what, isbn) VALUES (?, ?, ?, ?, ?, ?)",
               (now(), who[0], who[1], area, what[:2000], isbn))


def record_audit(db, who, area, what):
    """Add a line to the audit list on its own (a change kept outside the ledger, such as the settings file)."""
    with transaction(db):
        write(db, who, area, what)


def audit_list(db, page=1, size=25):
    """The audit list, newest first, one page of it, and how many lines there are."""
    total = db.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]
    rows = db.execute("SELECT * FROM audit_log ORDER BY id DESC LIMIT ? OFFSET ?",
                      (size, (max(1, page) - 1) * size)).fetchall()
    return rows, total
