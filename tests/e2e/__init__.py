"""End-to-end tests: the kiosk in Debian's Chromium, driven by Playwright, with a Stripe.js test double."""
