"""One Playwright driver per test process, shared by every suite that drives Debian's Chromium.

Playwright's sync API runs one instance per thread: a second `sync_playwright()` while another is alive
fails with "using Playwright Sync API inside the asyncio loop". So suites do not start their own; they
take `shared_browser()`, or `launch(extra_args)` when they need Chromium flags of their own.
"""
import atexit

from playwright.sync_api import sync_playwright

CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright's own browser downloads are never used
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]

_running = {}


def playwright():
    """This process's Playwright, started on first use and stopped when the process exits."""
    if "playwright" not in _running:
        _running["playwright"] = sync_playwright().start()
        atexit.register(_stop)
    return _running["playwright"]


def launch(extra_args=()):
    """A new headless Chromium with the house flags plus `extra_args`; the caller closes it."""
    return playwright().chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + list(extra_args),
                                        headless=True)


def shared_browser():
    """The one plain Chromium every browser test in this process shares (a new context per test)."""
    if "browser" not in _running:
        _running["browser"] = launch()
    return _running["browser"]


def _stop():
    browser = _running.pop("browser", None)
    if browser is not None:
        browser.close()
    _running.pop("playwright").stop()
