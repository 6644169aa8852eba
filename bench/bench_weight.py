"""Checkout page weight: every byte the kiosk serves when Chromium opens the checkout, Stripe.js aside.

Real Debian Chromium (Playwright) opens the kiosk on the sample catalog, puts a book in the cart and
opens /checkout/. Every response from the kiosk's own origin while that page loads (HTML, CSS, JS,
images, fonts, anything its scripts fetch) is counted at its body size; requests to Stripe are blocked
and not counted. KB here is 1,000 bytes.
"""
import shutil
from urllib.parse import urlsplit

from bench.common import ROOT, Figure, make_app, scratch_dir

GOAL_KB = 60
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]


def run():
    from playwright.sync_api import sync_playwright

    from tests.support.live import LiveServer

    tmp = scratch_dir("weight")
    try:
        app = make_app(ROOT / "sample_catalog" / "books.csv", tmp)
        with LiveServer(app) as live, sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            try:
                page = browser.new_page()
                page.route("https://*.stripe.com/**", lambda route: route.abort())
                page.goto(live.url + "/")
                page.locator("form.quick-add button").first.click()
                page.wait_for_load_state("networkidle")
                page.goto("about:blank")  # nothing from the shop page is still loading while we count
                served = []

                def record(response):
                    if urlsplit(response.url).netloc != urlsplit(live.url).netloc:
                        return
                    try:
                        size = len(response.body())
                    except Exception:  # noqa: BLE001 - a redirect has no body; its headers say how long it was
                        size = int(response.headers.get("content-length", 0))
                    served.append((urlsplit(response.url).path, response.status, size))

                page.on("response", record)
                page.goto(live.url + "/checkout/", wait_until="networkidle")
                if not page.locator("#payment-form").count():
                    raise RuntimeError(f"the checkout page did not open: {page.url}")
                page.remove_listener("response", record)
            finally:
                browser.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    total = sum(size for _, _, size in served)
    parts = ", ".join(f"{path} {size / 1000:.1f}" for path, _, size in served)
    return [Figure("checkout page weight (kiosk-served, Stripe.js aside)", total / 1000, "KB", GOAL_KB,
                   f"{len(served)} responses: {parts}")]


if __name__ == "__main__":
    from bench.common import print_table
    print_table(run())
