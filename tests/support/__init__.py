"""The tests' shared parts, loaded as a pytest plugin (pyproject.toml: -p tests.support) by the tests and bench/.

Fixtures here: the in-process fake Stripe, an app on a temporary data folder, and its client; the browser
fixtures come from tests/support/browser.py. Helpers live in the modules beside this one: settings, client,
ledger (purchases and what the ledger and Stripe hold), live (a real HTTP server), process (the kiosk as its
own process), fakestripe, stripe_contract, pgcluster.

Every test also runs under `_stripe_contract`: a request the fake refused for breaking Stripe's contract at the
pinned API version (tests/support/stripe_contract.py) fails the test that made it, whether the request came from
this process or from a kiosk running as its own process against the same fake.
"""
import pytest

from kiosk import create_app
from kiosk.ledger.db import close_ledgers
from tests.support import fakestripe, stripe_contract
from tests.support.client import KioskClient
from tests.support.fakestripe import FakeStripe
from tests.support.settings import make_settings

pytest_plugins = ["tests.support.browser"]


@pytest.fixture(scope="session")
def fake_stripe():
    """One localstripe for the whole run; each test starts from an empty store."""
    server = FakeStripe()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _close_ledgers():
    """Close the ledger pools a test's kiosks opened once it is done: kept, their SQLite files (three descriptors
    each) would pile up over a run, past the 1,024 a select() loop takes."""
    yield
    close_ledgers()


@pytest.fixture(autouse=True)
def _stripe_contract():
    """Fail the test when any running fake refused one of its requests as Stripe would (a contract violation).

    A test that sends such a request on purpose takes it with `fake.expect_violations()`. Checked at teardown, so
    requests from the test's own fixtures (a kiosk subprocess, say) count too; it does not start a fake."""
    yield
    found = [violation for fake in fakestripe.RUNNING for violation in fake.expect_violations()]
    assert not found, "Stripe would refuse these requests (API {}):\n{}".format(
        stripe_contract.API_VERSION,
        "\n".join(f"  {v.method} {v.path}: {v.code or 'invalid_request_error'} {v.param or ''} - {v.message}"
                  for v in found))


def pytest_terminal_summary(terminalreporter):
    """One line: how many requests the fake checked against Stripe's contract, refused, and trimmed."""
    totals = stripe_contract.TOTALS
    terminalreporter.write_line(stripe_contract.summary_line(
        totals["checked"], totals["violations"], totals["dropped"]))


@pytest.fixture
def stripe_server(fake_stripe):
    """localstripe, emptied for this test."""
    fake_stripe.reset()
    return fake_stripe


@pytest.fixture
def stripe_client(stripe_server):
    """stripe-python on the emptied localstripe, as the kiosk's server code uses it."""
    return stripe_server.client()


@pytest.fixture(scope="session")
def pg_cluster():
    """A throw-away PostgreSQL server for the whole run (Debian's postgresql, started by the test command)."""
    from tests.support.pgcluster import PgCluster
    cluster = PgCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture
def pg_url(pg_cluster):
    """An empty PostgreSQL database for this test (one database for the run, emptied each time)."""
    url = pg_cluster.url("kiosk_tests") if getattr(pg_cluster, "_kiosk_db", False) else \
        pg_cluster.create_database("kiosk_tests")
    pg_cluster._kiosk_db = True
    empty_database(url)
    return url


def empty_database(url):
    """Drop every table of a PostgreSQL database (the kiosk makes its own again)."""
    from kiosk.ledger.db import connect
    with connect(url) as db:
        db.execute("DROP SCHEMA public CASCADE")
        db.execute("CREATE SCHEMA public")


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request, tmp_path):
    """A new, empty ledger database: SQLite in the data folder, and PostgreSQL (each test runs on both)."""
    if request.param == "sqlite":
        return str(tmp_path / "ledger.sqlite3")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def app(tmp_path, stripe_server):
    """The kiosk app on a temporary data folder, talking to localstripe."""
    return create_app(make_settings(tmp_path, stripe_server), testing=True)


@pytest.fixture
def client(app):
    """A test client that sends the kiosk's CSRF token like its pages do."""
    return KioskClient(app)
