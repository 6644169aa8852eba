"""A customer's browser in the Flask test client, and a look into the kiosk's session store."""
import re

from kiosk.visit.sessions import digest


def stored_session(app, sid):
    """What the kiosk's session store keeps for a browser's session id: None when it has no row at all."""
    store = app.extensions["sessions"]
    db = store.db()
    row = db.execute("SELECT revoked FROM sessions WHERE id = ?", (digest(sid),)).fetchone()
    if row is None:
        return None
    return {"revoked": row["revoked"] is not None, "cart": store.cart(digest(sid)),
            "staff": store.staff_signed_in(digest(sid)),
            "attempts": db.execute("SELECT COUNT(*) FROM checkout_attempts WHERE session = ?",
                                   (digest(sid),)).fetchone()[0],
            "plain id stored": db.execute("SELECT COUNT(*) FROM sessions WHERE id = ?", (sid,)).fetchone()[0] > 0}


class KioskClient:
    """Wraps Flask's test client: reads the CSRF token from a page and posts it back."""

    def __init__(self, app):
        self.app = app
        self.http = app.test_client()
        self._token = None
        self._token_sid = None

    def get(self, *args, **kwargs):
        return self.http.get(*args, **kwargs)

    def sid(self):
        cookie = self.http.get_cookie("kiosk_sid")
        return cookie.value if cookie else None

    def token(self):
        """The CSRF token of the current session id (it changes with the id: on sign-in and after a reset)."""
        if self._token is None or self._token_sid != self.sid():
            # A new id after signing in: read it from a staff page, since a shop page ends a staff sign-in.
            page = self.http.get("/" if self._token is None else "/staff/").get_data(as_text=True)
            self._token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
            self._token_sid = self.sid()
        return self._token

    def post(self, url, data=None, json=None, **kwargs):
        headers = kwargs.pop("headers", {})
        headers.setdefault("X-CSRFToken", self.token())
        return self.http.post(url, data=data, json=json, headers=headers, **kwargs)

    def add(self, isbn, quantity=1):
        return self.post("/cart/add", data={"isbn": isbn, "quantity": str(quantity)})

    def start_checkout(self):
        """Open the checkout page and return the attempt id it embeds."""
        page = self.get("/checkout/").get_data(as_text=True)
        return re.search(r'"attempt": ?"([0-9a-f]+)"', page).group(1)


def signed_in(app, pin):
    """A KioskClient signed in to the staff area with `pin`."""
    client = KioskClient(app)
    client.token()  # read from the shop page before signing in: visiting the shop ends a staff session
    assert client.post("/staff/login", data={"pin": pin}).status_code == 302
    return client
