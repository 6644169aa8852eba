"""Every page: the shop's blueprints and the staff area's, replies, security headers and CSRF, receipts, and the Kiosk
object the requests share."""
