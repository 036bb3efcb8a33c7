"""App sessions kept on the server (in Expense's database).

The browser's cookie holds only a random session key; the row (found by the
key's SHA-256) holds the data, and the provider's ``sid`` and the person's
``sub`` so that a back-channel logout can end it. A session ended meanwhile
is never written back.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from flask.json.tag import TaggedJSONSerializer
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from . import db


class StoredSession(CallbackDict, SessionMixin):
    def __init__(self, initial=None, key: str | None = None):
        def on_update(_self):
            self.modified = True

        super().__init__(initial, on_update)
        self.key = key
        self.modified = False
        self.rotate = False  # set at sign-in and sign-out: a new key (no session fixation)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ServerSideSessions(SessionInterface):
    serializer = TaggedJSONSerializer()

    def open_session(self, app, request):
        key = request.cookies.get(self.get_cookie_name(app))
        if key:
            row = db.load_session(_digest(key))
            if row is not None:
                return StoredSession(self.serializer.loads(row["data"]), key)
        return StoredSession()

    def save_session(self, app, session, response):
        name = self.get_cookie_name(app)
        options = {"domain": self.get_cookie_domain(app), "path": self.get_cookie_path(app),
                   "secure": self.get_cookie_secure(app), "httponly": True, "samesite": "Lax"}
        if session.key and (session.rotate or not session):
            db.delete_session(_digest(session.key))
            if not session:
                response.delete_cookie(name, **options)
                return
            session.key = None
        if not session or not (session.modified or session.key is None):
            return
        expires = int(time.time() + app.permanent_session_lifetime.total_seconds())
        data = self.serializer.dumps(dict(session))
        sid, sub = session.get("sid"), (session.get("user") or {}).get("sub")
        if session.key is None:
            session.key = secrets.token_urlsafe(32)
            db.insert_session(_digest(session.key), data, sid, sub, expires)
        elif not db.update_session(_digest(session.key), data, sid, sub, expires):
            response.delete_cookie(name, **options)  # ended meanwhile: stays ended
            return
        response.set_cookie(name, session.key, max_age=app.permanent_session_lifetime, **options)
        response.vary.add("Cookie")
