"""The SQLite ledger: one connection per request, WAL mode, forward-only migrations."""
import sqlite3
from pathlib import Path

import click
from flask import current_app, g

SCHEMA_VERSION = 1
# Forward migrations, applied in order to a database older than SCHEMA_VERSION.
# Each is a list of statements that only add: never DROP or rewrite the order log.
MIGRATIONS = {}


def connect(path):
    """A connection with the pragmas every user of the ledger needs."""
    db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.execute("PRAGMA foreign_keys = ON")
    db.execute("PRAGMA busy_timeout = 10000")
    return db


def get_db():
    """The request's connection, opened on first use."""
    if "db" not in g:
        g.db = connect(current_app.config["DATABASE"])
    return g.db


def close_db(e=None):
    """Close the request's connection, if one was opened."""
    db = g.pop("db", None)
    if db is not None:
        db.close()


def init_db(path):
    """Create missing tables and apply pending migrations; existing data is kept."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = connect(path)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.executescript((Path(__file__).parent / "schema.sql").read_text())
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        version = int(row["value"]) if row else SCHEMA_VERSION
        for target in range(version + 1, SCHEMA_VERSION + 1):
            with transaction(db):
                for statement in MIGRATIONS[target]:
                    db.execute(statement)
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
    finally:
        db.close()


class transaction:
    """`with transaction(db):` runs the block in BEGIN IMMEDIATE … COMMIT, rolling back on error."""

    def __init__(self, db):
        self.db = db

    def __enter__(self):
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb):
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
        return False


@click.command("init-db")
def init_db_command():
    """Create the ledger tables if they are missing."""
    init_db(current_app.config["DATABASE"])
    click.echo("Initialized the ledger.")


def init_app(app):
    """Register teardown and the CLI command."""
    app.teardown_appcontext(close_db)
    app.cli.add_command(init_db_command)
