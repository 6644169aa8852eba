"""The catalog as edited on the staff screen, kept in the ledger and applied on top of the catalog file at every
counter sharing it."""
import secrets

from kiosk.core.stamps import now
from kiosk.ledger import audit
from kiosk.ledger.db import get_meta, set_meta, transaction

ENTRY_FIELDS = ("isbn", "title", "author", "price", "stock", "cover", "description", "category", "tax_class",
                "currency", "hidden")


def catalog_entries(db):
    """Every book added, edited or hidden on the staff screen (applied on top of the catalog file)."""
    return db.execute("SELECT * FROM catalog_entries ORDER BY isbn").fetchall()


def catalog_version(db):
    """A token that changes with every catalog edit, so each counter knows when to load the entries again."""
    return get_meta(db, "catalog_version", "")


def save_catalog_entries(db, entries, who, what):
    """Write entries (dicts of ENTRY_FIELDS) and their audit line in one transaction; returns the new version.

    Stock is not touched here: sync_stock takes each entry's count as the catalog file's count would be taken,
    once, at whichever counter loads it first (so a crash between the two is made good at the next load)."""
    version = secrets.token_hex(8)
    stamp = now()
    columns = ", ".join(ENTRY_FIELDS)
    updates = ", ".join(f"{f} = excluded.{f}" for f in ENTRY_FIELDS[1:])
    with transaction(db):
        for entry in entries:
            db.execute(f"INSERT INTO catalog_entries ({columns}, updated_at) VALUES ({', '.join('?' * 12)}) "
                       f"ON CONFLICT (isbn) DO UPDATE SET {updates}, updated_at = excluded.updated_at",
                       (*(entry[f] for f in ENTRY_FIELDS), stamp))
        audit.write(db, who, "catalog", what, entries[0]["isbn"] if len(entries) == 1 else None)
        set_meta(db, "catalog_version", version)
    return version
