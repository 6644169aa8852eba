"""The throw-away PostgreSQL cluster that database tests run against."""
import gc
import os
import time

import psycopg
import pytest

from tests.support import pgcluster
from tests.support.pgcluster import PgCluster


def rows(url, sql, *params):
    """Run one statement in its own connection and return what it fetched, if anything."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else None


def test_cluster_lifecycle_keeps_data_across_a_restart_and_cleans_up():
    started = time.monotonic()
    pg = PgCluster().start()
    print(f"initdb + first answer: {time.monotonic() - started:.2f} s")
    try:
        shop, other = pg.create_database("shop"), pg.create_database("other")
        assert shop == f"postgresql://postgres@127.0.0.1:{pg.port}/shop"
        rows(shop, "CREATE TABLE orders (id serial PRIMARY KEY, title text NOT NULL)")
        rows(shop, "INSERT INTO orders (title) VALUES (%s), (%s)", "Dune", "Emma")
        assert rows(shop, "SELECT title FROM orders ORDER BY id") == [("Dune",), ("Emma",)]
        assert rows(other, "SELECT count(*) FROM pg_tables WHERE tablename = 'orders'") == [(0,)]
        assert rows(shop, "SHOW fsync") == [("off",)] and rows(shop, "SHOW max_connections") == [("200",)]

        port, pid = pg.port, pg.proc.pid
        pg.stop_server()
        assert pg.proc.poll() is not None and not os.path.exists(f"/proc/{pid}")
        with pytest.raises(psycopg.OperationalError):
            rows(shop, "SELECT 1")
        pg.start_server()
        assert pg.port == port
        assert rows(shop, "SELECT title FROM orders ORDER BY id") == [("Dune",), ("Emma",)]

        assert pg.create_database("shop") == shop  # fresh each call: the old one is dropped
        assert rows(shop, "SELECT count(*) FROM pg_tables WHERE tablename = 'orders'") == [(0,)]
    finally:
        root, pid = pg.root, pg.proc.pid
        pg.stop()
    assert not os.path.exists(root)
    assert not os.path.exists(f"/proc/{pid}")
    pg.stop()  # twice is harmless


def test_killed_server_recovers_committed_rows_and_a_paused_one_hangs():
    with PgCluster() as pg:
        url = pg.create_database("kiosk")
        rows(url, "CREATE TABLE t (n int)")
        rows(url, "INSERT INTO t VALUES (1)")
        held = psycopg.connect(url)  # a connection open when the server dies, as mid-checkout
        pids = pg._pids()
        assert len(pids) > 2
        pg.kill()
        assert all((pgcluster._proc_stat(p) or ("Z",))[0] == "Z" for p in pids)  # gone, or a zombie
        with pytest.raises(psycopg.OperationalError):
            held.execute("SELECT 1")
        held.close()
        pg.start_server()
        assert rows(url, "SELECT n FROM t") == [(1,)]  # committed before the kill: kept (synchronous_commit on)

        pg.pause()
        try:
            with pytest.raises(psycopg.OperationalError):
                psycopg.connect(url, connect_timeout=1)
            gc.collect()  # psycopg keeps the timed-out socket open until collected; the server would wait on it
        finally:
            pg.resume()
        assert rows(url, "SELECT count(*) FROM t") == [(1,)]


def test_missing_binaries_name_the_package_to_install(monkeypatch):
    monkeypatch.setattr(pgcluster.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(pgcluster.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match=r"apt-get install postgresql.*scripts/setup\.sh"):
        PgCluster()
