"""Server-side sessions in the ledger database: the browser holds only a random id."""
import json
import secrets
import time

from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from .db import get_db

COOKIE = "kiosk_sid"
MAX_AGE = 24 * 3600


class ServerSession(CallbackDict, SessionMixin):
    """A dict that knows whether it changed."""

    def __init__(self, initial=None, sid=None, new=False):
        def on_update(self):
            self.modified = True

        super().__init__(initial, on_update)
        self.sid = sid
        self.new = new
        self.modified = False
        self.discarded = None

    def reset(self):
        """Forget everything and take a new id, so an old cookie leads nowhere."""
        self.clear()
        self.discarded = self.sid
        self.sid = secrets.token_urlsafe(32)
        self.modified = True


class SqliteSessionInterface(SessionInterface):
    """Keeps session data in the `sessions` table, keyed by an unguessable cookie."""

    def open_session(self, app, request):
        sid = request.cookies.get(COOKIE, "")
        if 20 <= len(sid) <= 64:
            # The request's own ledger connection (closed at teardown): one connection a request instead
            # of three, each of which paid for opening the file and reading the schema.
            row = get_db().execute("SELECT data, updated FROM sessions WHERE sid = ?", (sid,)).fetchone()
            if row and time.time() - row["updated"] < MAX_AGE:
                return ServerSession(json.loads(row["data"]), sid=sid)
        return ServerSession(sid=secrets.token_urlsafe(32), new=True)

    def save_session(self, app, session, response):
        name_kwargs = dict(domain=self.get_cookie_domain(app), path=self.get_cookie_path(app))
        if not session.modified and not session.new:
            return
        db = get_db()
        if session.discarded:
            db.execute("DELETE FROM sessions WHERE sid = ?", (session.discarded,))
        if not session:
            db.execute("DELETE FROM sessions WHERE sid = ?", (session.sid,))
            if not session.new:
                response.delete_cookie(COOKIE, **name_kwargs)
            return
        db.execute("INSERT OR REPLACE INTO sessions (sid, data, updated) VALUES (?, ?, ?)",
                   (session.sid, json.dumps(dict(session)), time.time()))
        if session.new or session.modified:
            db.execute("DELETE FROM sessions WHERE updated < ?", (time.time() - MAX_AGE,))
        response.set_cookie(COOKIE, session.sid, httponly=True, samesite="Strict",
                            secure=self.get_cookie_secure(app), **name_kwargs)
