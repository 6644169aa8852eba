"""Fixtures for the kiosk-experience browser tests: the e2e suite's Chromium, live kiosk and Stripe doubles
(tests/support/browser.py), plus a touch screen, the axe-core audit, and figures in pytest's summary."""
from pathlib import Path

import pytest

AXE = Path(__file__).resolve().parent.parent / "node" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def touch(browser, monkeypatch):
    """Pages from open_page() in this test get a touch screen, so the test can tap like a customer."""
    new_context = browser.new_context
    monkeypatch.setattr(browser, "new_context", lambda **options: new_context(has_touch=True, **options))


@pytest.fixture
def axe(browser, monkeypatch):
    """Pages from open_page() in this test load axe-core (from tests/node, see scripts/setup.sh) into every
    document, as an init script, so the kiosk's Content-Security-Policy stays as it is."""
    assert AXE.is_file(), f"{AXE} is missing: run scripts/setup.sh --dev (npm ci in tests/node)"
    new_context = browser.new_context

    def with_axe(**options):
        context = new_context(**options)
        context.add_init_script(path=str(AXE))
        return context

    monkeypatch.setattr(browser, "new_context", with_axe)


def pytest_terminal_summary(terminalreporter):
    """Print the figures the experience tests measured (e.g. taps from the attract screen to paid)."""
    lines = [f"{name}: {value}" for reports in terminalreporter.stats.values() for report in reports
             if getattr(report, "when", None) == "call"
             for name, value in getattr(report, "user_properties", ()) if name.startswith("kiosk ")]
    if lines:
        terminalreporter.write_sep("-", "kiosk experience figures")
        for line in lines:
            terminalreporter.write_line(line)
