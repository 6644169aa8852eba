"""Migrations mean the same on SQLite and PostgreSQL: a ledger made by every earlier version, migrated, has the
shape of a new one and works like one (add a book, count a shelf, sell, refund), its old orders kept.

The ledgers come as each release made a new one: versions 1-4 (SQLite only) were schema_v1.sql plus the forward
migrations; versions 5-7 were kiosk/schema.py's create_all, kept in tests/support/ledgers/ as the DDL SQLAlchemy
compiles from `git show <release>:kiosk/schema.py` for each database."""
import sqlite3
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import create_engine, inspect

from kiosk.ledger import audit as audit_log
from kiosk.ledger import catalog_entries, migrations, orders
from kiosk.ledger import db as dblib
from kiosk.ledger import refunds as refund_ledger
from kiosk.ledger import stock as shelves

SUPPORT = Path(__file__).parent / "support"
WHO = ("kiosk_old", "Front")
BOOK = {"isbn": "9780000000002", "title": "Aardvarks at Dawn", "unit_price": 1200, "quantity": 2}
CASES = [("sqlite", v) for v in range(1, 8)] + [("postgresql", v) for v in (5, 6, 7)] + [("postgresql", "8-serialless")]


def _script(dialect, db_url, sql):
    """Run a DDL script on the empty database."""
    if dialect == "sqlite":
        with sqlite3.connect(db_url) as conn:
            conn.executescript(sql)
    else:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(sql)


def make_old_ledger(dialect, version, db_url):
    """A ledger as release `version` made it new, with one paid order and a book on the shelf in it."""
    if version == "8-serialless":
        # A PostgreSQL ledger that took migration 8 as SQLite spells it, as the kiosk did before version 9: its
        # audit_log.id has no default, and every audit line failed.
        make_old_ledger(dialect, 7, db_url)
        _script(dialect, db_url, ";\n".join([*migrations.statements(8, "sqlite"),
                                              "UPDATE meta SET value = '8' WHERE key = 'schema_version'"]))
        return
    if version <= 4:
        steps = [(SUPPORT / "schema_v1.sql").read_text(), "INSERT INTO meta VALUES ('schema_version', '1');"]
        for target in range(2, version + 1):
            steps += [s + ";" for s in migrations.statements(target, dialect)]
            steps.append(f"UPDATE meta SET value = '{target}' WHERE key = 'schema_version';")
        _script(dialect, db_url, "\n".join(steps))
    else:
        _script(dialect, db_url, (SUPPORT / "ledgers" / f"v{version}.{dialect}.sql").read_text())
    _script(dialect, db_url, f"""
        INSERT INTO stock (isbn, on_hand, catalog_qty) VALUES ('{BOOK["isbn"]}', 10, 10);
        INSERT INTO orders (reference, status, amount, currency, created_at, updated_at, paid_at)
            VALUES ('BK-OLD1-OLD1', 'paid', 2400, 'USD', '2025-01-01 10:00:00', '2025-01-01 10:00:00',
                    '2025-01-01 10:00:00');
        INSERT INTO order_lines (order_id, isbn, title, unit_price, quantity)
            SELECT id, '{BOOK["isbn"]}', '{BOOK["title"]}', 1200, 2 FROM orders WHERE reference = 'BK-OLD1-OLD1';
    """)


def shape(url):
    """Tables, and per table each column's name, type, NOT NULL and whether the database fills it in itself;
    the primary keys and the index names."""
    engine = create_engine(url.replace("postgresql:", "postgresql+psycopg:", 1) if url.startswith("postgresql")
                           else f"sqlite:///{url}")
    try:
        found = inspect(engine)
        tables = {}
        for table in sorted(found.get_table_names()):
            columns = {c["name"]: (str(c["type"]), c["nullable"], c["default"] is not None or
                                   bool(c.get("autoincrement") is True)) for c in found.get_columns(table)}
            tables[table] = (columns, found.get_pk_constraint(table)["constrained_columns"],
                             sorted(i["name"] for i in found.get_indexes(table)))
        return tables
    finally:
        engine.dispose()


def _urls(dialect, tmp_path, request):
    if dialect == "sqlite":
        return str(tmp_path / "old.sqlite3"), str(tmp_path / "new.sqlite3")
    cluster = request.getfixturevalue("pg_cluster")  # each made afresh, empty
    return cluster.create_database("kiosk_migrate_old"), cluster.create_database("kiosk_migrate_new")


@pytest.mark.parametrize("dialect, version", CASES, ids=[f"{d}-v{v}" for d, v in CASES])
def test_every_old_ledger_migrates_to_the_shape_of_a_new_one_and_works(dialect, version, tmp_path, request):
    old_url, new_url = _urls(dialect, tmp_path, request)
    make_old_ledger(dialect, version, old_url)
    for _ in range(2):  # a second start changes nothing
        migrations.init_db(old_url)
    migrations.init_db(new_url)
    migrated, new = shape(old_url), shape(new_url)
    if dialect == "sqlite":
        # SQLite keeps types and defaults as each statement wrote them, and lets a TEXT PRIMARY KEY be NULL unless
        # it says NOT NULL: what a column is called, whether any other is required, and the keys must match.
        def names(tables):
            return {t: ({c: v[1] for c, v in cols.items() if c not in pk}, pk) for t, (cols, pk, _) in tables.items()}
        migrated, new = names(migrated), names(new)
    assert migrated == new

    with dblib.connect(old_url) as db:
        assert dblib.get_meta(db, "schema_version") == str(migrations.SCHEMA_VERSION)
        assert orders.get(db, reference="BK-OLD1-OLD1")["amount"] == 2400  # the old order is kept
        # Add a book on screen, count a shelf: each writes its audit line.
        book = {"isbn": "9780000000019", "title": "Zebras at Dusk", "author": "A. Writer", "price": 900, "stock": 3,
                "cover": "", "description": "", "category": "", "tax_class": "standard", "currency": "USD",
                "hidden": 0}
        catalog_entries.save_catalog_entries(db, [book], WHO, "added “Zebras at Dusk”")
        assert shelves.count_shelf(db, BOOK["isbn"], 12, "shelf count", WHO) == 2
        # Sell two copies and refund one.
        order = orders.open_checkout(db, attempt="a-1", lines=[BOOK], currency="USD", who=WHO)
        assert orders.mark_paid(db, order["id"])
        assert refund_ledger.record_refund(db, order["id"], stripe_refund="re_1", amount=1200, request_key="r-1",
                                           returned={BOOK["isbn"]: 1})
        assert orders.get(db, order_id=order["id"])["status"] == "partially_refunded"
        assert db.execute("SELECT on_hand, held FROM stock WHERE isbn = ?", (BOOK["isbn"],)).fetchone() == (11, 0)
        audit, total = audit_log.audit_list(db)
        assert total == 2 and len({row["id"] for row in audit}) == 2
