"""The system admins' console (blueprint ``admin_console``): agreements, apps
(clients), upstream providers and signing keys, for the people who run the
service.

- ``GET /admin``: the console's home, with a link to each page.
- ``GET /admin/agreements`` (``?q=``: search by name, organisation number,
  id or domain): the agreements and the form to create one;
  ``POST /admin/agreements``: create one (``agreements.service.create``).
- ``GET /admin/agreements/<public_id>``: one agreement, its admins and a link
  to its members page; ``POST .../settings``: its required level and email
  domains; ``POST .../status``: close or reopen it (``agreements/service.py``);
  ``POST .../admins``: make an existing account an agreement admin
  (``agreements.service.add_member`` with the role ``admin``).
- ``GET /admin/clients``: the apps and the form to register one;
  ``POST /admin/clients``: register one (``oidc.registration.create_client``);
  a generated secret is shown in the answer, once.
- ``GET /admin/clients/<client_id>``: one app; ``POST`` the same address with
  ``action=save`` (its name, redirect URIs, post-logout redirect URIs,
  back-channel logout URI: ``registration.update_client``) or
  ``action=rotate`` (a new secret, shown in the answer, once:
  ``registration.rotate_secret``).
- ``GET /admin/upstreams``: the upstream providers (never a secret);
  ``POST /admin/upstreams/<name>/remove``: remove one
  (``federation.upstreams.remove``). Adding one stays with ``visma-idp
  upstreams add`` and the admin API.
- ``GET /admin/keys``: the signing keys; ``POST /admin/keys/rotate``: new
  active keys now (``KeyStore.rotate_audited``).
- ``GET /admin/logout``: back-channel logout deliveries, the newest first
  (app, why, state, tries, the last error; never a token), and how many
  failed; ``POST /admin/logout/retry``: send every failed one again
  (``oidc.backchannel.retry``; the worker sends them on its next round).

Rules:
- who: a signed-in system admin (``rights.is_system_admin``: an active
  account holding ``system_admin``). Not signed in: the sign-in page (after a
  GET it comes back here). Anyone else signed in (an agreement admin, an
  admin with rights for email domains, anyone) gets the 404 page, and a
  refused post changes nothing, not even an audit row;
- the session must have reached ``ADMIN_CONSOLE_ACR`` (default: two
  factors): below it, a 403 page saying to sign in again with the second step;
- every post needs the admin's password entered within
  ``RECENT_PASSWORD_SECONDS`` (``factors.views.require_recent_password``:
  the confirmation comes back to the page, where the admin posts again);
- every change is audited by the service that makes it, and every audit row
  written while a system admin's post runs carries ``by`` (the admin's user
  id) and ``via: admin_console`` (:func:`_stamped`);
- after a post the page is shown again (303) with a one-time confirmation
  kept in the signed session, never taken from the URL; a refused post shows
  the page again with 400 and the translated message next to its field;
- a secret (a new app's, a rotated one) is shown only in the answer to the
  post that made it (``Cache-Control: no-store``), never kept in the session
  or put in a URL; it is stored only as its keyed digest;
- every form carries the CSRF token; the pages have no script (CSP).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

from flask import Blueprint, make_response, redirect, render_template, request, session
from flask_babel import gettext as _
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response

from .. import addresses, audit
from ..account import activity
from ..addresses import domain_name
from ..agreements import service as agreements
from ..agreements.invitations import ADMIN_ROLE
from ..agreements.orgnr import InvalidOrgNumber
from ..agreements.orgnr import parse as parse_org_number
from ..assurance import ACR_PHISHING_RESISTANT, at_least
from ..browser import signin
from ..browser.sso import current_session
from ..context import current_idp
from ..errors import InvalidInput
from ..federation import upstreams
from ..oidc import registration
from ..storage import Agreement, Client, SsoSession, User, db, queries
from . import rights

bp = Blueprint("admin_console", __name__)

DONE_KEY = "admin_console_done"  # the confirmation of the last post, for the next view of its page
MAX_LISTED = 200  # agreements on the list page at once (search for the others)
MAX_TEXT = 4000  # characters of a text field we look at
MAX_URIS = 50  # URIs in one field
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
_SEPARATORS = re.compile(r"[\s,;]+")
_SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]{1,64}")  # RFC 6749 §3.3

Page = tuple[str, int] | Response


class Admin(NamedTuple):
    """The signed-in system admin's session and account."""

    sess: SsoSession
    user: User


class Refused(Exception):
    """A post that cannot be done: ``form`` is the form the message belongs
    to, ``field`` the input it is about (or None), ``message`` translated."""

    def __init__(self, form: str, message: str, field: str | None = None):
        super().__init__(message)
        self.form, self.field, self.message = form, field, message


# -- who may use the console -------------------------------------------------------------


def _not_found() -> tuple[str, int]:
    """The one page of everyone who may not use the console (and of what does not exist)."""
    if request.method == "POST":
        db.session.rollback()  # nothing of a refused post stays
    return render_template("error.html", title=_("Page not found"),
                           message=_("There is no such page, or you cannot use it.")), 404


def _path(endpoint: str, **values: str) -> str:
    """Our path of a page, as our routes declare it (without the issuer's path)."""
    idp = current_idp()
    return idp.url(endpoint, **values).removeprefix(idp.issuer_origin + idp.issuer_path)


def _gate(page: str, values: dict[str, str]) -> Admin | Page:
    """The signed-in system admin, or the answer that refuses this request.
    ``page``/``values``: the page to come back to after signing in or
    confirming the password."""
    idp = current_idp()
    sess = current_session()
    post = request.method == "POST"
    if sess is None:
        if not post:  # the sign-in comes back here (when no app waits)
            signin.current().next = _path(page, **values)
        return redirect(idp.url("login.email"), 303 if post else 302)
    if not rights.is_system_admin(sess.user):
        return _not_found()
    wanted = idp.settings["ADMIN_CONSOLE_ACR"]
    if not at_least(sess.acr, wanted):  # a system admin below the level: told so, not a 404
        if post:
            db.session.rollback()
        message = _("The system admins' console needs a sign-in with a security key or passkey. Sign out, and "
                    "sign in again with your security key or passkey.") if wanted == ACR_PHISHING_RESISTANT else _(
            "The system admins' console needs a sign-in with two-step verification. Sign out, and sign in again "
            "with your second step.")
        return render_template("error.html", title=_("Two-step verification is required"), message=message), 403
    if post:
        from ..factors.views import require_recent_password

        confirm = require_recent_password(sess, _path(page, **values))
        if confirm is not None:
            db.session.rollback()
            confirm.status_code = 303
            return confirm
    return Admin(sess, sess.user)


def _as_admin(page: str, *kept: str) -> Callable[[Callable[..., Page]], Callable[..., Page]]:
    """The view runs for a signed-in system admin only (``admin`` as its first
    argument); ``page`` is the endpoint of the page the view belongs to, built
    with the URL values named in ``kept``."""

    def decorate(view: Callable[..., Page]) -> Callable[..., Page]:
        @functools.wraps(view)
        def wrapper(**kwargs: str) -> Page:
            found = _gate(page, {name: kwargs[name] for name in kept})
            if not isinstance(found, Admin):
                return found
            return view(found, **kwargs)

        return wrapper

    return decorate


@contextmanager
def _stamped(admin: Admin) -> Iterator[None]:
    """Every audit row recorded inside, by this request, gets ``by`` (the
    admin's user id) and ``via: admin_console`` (a row that names ``by``
    itself keeps its own): ``audit.acting``."""
    with audit.acting(by=admin.user.id, via="admin_console"):
        yield


# -- confirmations and pages ------------------------------------------------------------------


def _done(page: str, key: str, anchor: str = "", **values: str) -> Response:
    """PRG: remember the confirmation for the next view of ``page`` (a path), go back to it."""
    session[DONE_KEY] = {"key": key, "page": page, **values}
    idp = current_idp()
    return redirect(idp.issuer_origin + idp.issuer_path + page + ("#" + anchor if anchor else ""), 303)


def _done_message(page: str) -> str | None:
    kept = session.pop(DONE_KEY, None)
    if not isinstance(kept, dict) or kept.get("page") != page:
        return None
    key = kept.get("key")
    values = {k: str(v) for k, v in kept.items() if k not in ("key", "page")}
    messages = {
        "agreement_created": lambda: _("%(name)s is created.", **values),
        "agreement_saved": lambda: _("The settings of %(name)s are saved.", **values),
        "agreement_same": lambda: _("Nothing to save: the settings of %(name)s are as they were.", **values),
        "agreement_closed": lambda: _("%(name)s is closed: its members can no longer work in it.", **values),
        "agreement_reopened": lambda: _("%(name)s is open again.", **values),
        "admin_added": lambda: _("%(email)s is now an admin of %(name)s.", **values),
        "admin_already": lambda: _("%(email)s is an admin of %(name)s already.", **values),
        "client_saved": lambda: _("The changes to %(client)s are saved.", **values),
        "client_same": lambda: _("Nothing to save: %(client)s is as it was.", **values),
        "upstream_removed": lambda: _("The upstream provider %(name)s is removed.", **values),
        "keys_rotated": lambda: _("New signing keys are active. The old ones stay published until the tokens "
                                  "they signed have expired."),
        "logout_retried": lambda: _("%(count)s failed logout messages will be sent again.", **values),
    }
    try:
        return messages[key]() if key in messages else None
    except KeyError:  # a confirmation without its values
        return None


def _render(template: str, admin: Admin, page: str, *, status: int = 200, refused: Refused | None = None,
            values: dict[str, str] | None = None, headers: dict[str, str] | None = None, **context: Any) -> Page:
    done = _done_message(page) if status == 200 and request.method == "GET" else None
    html = render_template(template, admin=admin.user, done=done, refused=refused, values=values or {}, **context)
    return make_response(html, status, headers or {})


def _refused(refused: Refused, values: dict[str, str], show: Callable[..., Page]) -> Page:
    db.session.rollback()  # nothing of a refused post stays
    return show(status=400, refused=refused, values=values)


def _typed(*names: str) -> dict[str, str]:
    """What was typed in the form's fields (cut), to show it again after a refusal."""
    return {name: (request.form.get(name) or "")[:MAX_TEXT] for name in names}


def _lines(text: str, form: str, field: str) -> list[str]:
    """The URIs of a text area, one a line (empty lines skipped, repeats dropped)."""
    uris = list(dict.fromkeys(line.strip() for line in (text or "").splitlines() if line.strip()))
    if len(uris) > MAX_URIS:
        raise Refused(form, _("Too many URIs: at most %(count)d.", count=MAX_URIS), field)
    return uris


def _level_labels() -> dict[str | None, str]:
    return {None: _("None: the password is enough"), "mfa": _("Two-step verification"),
            "phr": _("Security key or passkey")}


# -- home -------------------------------------------------------------------------------------


@bp.get("/admin")
@_as_admin("admin_console.home")
def home(admin: Admin) -> Page:
    return _render("admin/home.html", admin, _path("admin_console.home"))


# -- agreements -------------------------------------------------------------------------------


def _agreements_page(admin: Admin, *, status: int = 200, refused: Refused | None = None,
                     values: dict[str, str] | None = None) -> Page:
    q = (request.args.get("q") or "").strip()[:200]
    counts = agreements.member_counts()
    found, total = agreements.search(q, limit=MAX_LISTED)
    labels = _level_labels()
    rows = [{"name": a.name, "org_number": a.org_number, "domains": list(a.domains or []),
             "active": a.status == "active", "members": counts.get(a.id, 0),
             "level": labels.get(agreements.require_of(a), labels[None]),
             "url": current_idp().url("admin_console.agreement", public_id=a.public_id)}
            for a in found]
    return _render("admin/agreements.html", admin, _path("admin_console.agreements_list"), status=status, refused=refused,
                   values=values, rows=rows, q=q, total=total, shown=len(rows), levels=labels)


@bp.get("/admin/agreements")
@_as_admin("admin_console.agreements_list")
def agreements_list(admin: Admin) -> Page:
    return _agreements_page(admin)


def _org_number(form: str) -> str:
    try:
        number = parse_org_number(request.form.get("org_number") or "")
    except InvalidOrgNumber:
        raise Refused(form, _("This is not an organisation number: nine digits, starting with 8 or 9, the last "
                              "a check digit (like 974760673). Check it for a typing error."), "org_number") from None
    other = agreements.find(number)
    if other is not None:
        raise Refused(form, _("An agreement with the organisation number %(number)s exists already: %(name)s.",
                              number=number, name=other.name), "org_number")
    return number


def _domains(form: str) -> list[str]:
    text = (request.form.get("domains") or "")[:MAX_TEXT]
    out = []
    for value in (v for v in _SEPARATORS.split(text) if v):
        try:
            out.append(domain_name(value))
        except InvalidInput:
            raise Refused(form, _("%(domain)s is not an email domain. Write domains like example.no, separated by "
                                  "spaces or commas.", domain=value[:100]), "domains") from None
    return sorted(set(out))


def _require(form: str) -> str | None:
    value = request.form.get("require") or ""
    if value not in ("", *agreements.REQUIRE):
        raise Refused(form, _("Choose one of the levels."), "require")
    return value or None


@bp.post("/admin/agreements")
@_as_admin("admin_console.agreements_list")
def agreement_create(admin: Admin) -> Page:
    typed = _typed("name", "org_number", "domains", "require")
    try:
        name = " ".join((request.form.get("name") or "").split())
        if not 0 < len(name) <= 200:
            raise Refused("create", _("Enter the company's name (at most 200 characters)."), "name")
        number = _org_number("create")
        domains = _domains("create")
        require = _require("create")
        try:
            with _stamped(admin):
                row = agreements.create(name, number, domains=domains, require=require, by=admin.user)
                db.session.commit()
        except IntegrityError:
            raise Refused("create", _("An agreement with the organisation number %(number)s was created at the "
                                      "same time.", number=number), "org_number") from None
        except InvalidInput:
            raise Refused("create", _("The agreement could not be created. Check the fields."), None) from None
    except Refused as refused:
        return _refused(refused, typed, functools.partial(_agreements_page, admin))
    return _done(_path("admin_console.agreement", public_id=row.public_id), "agreement_created", name=row.name)


def _agreement_or_none(public_id: str) -> Agreement | None:
    row = agreements.find(public_id) if isinstance(public_id, str) and len(public_id) <= 36 else None
    return row if row is not None and row.public_id == public_id else None


def _agreement_page(admin: Admin, agreement: Agreement, *, status: int = 200, refused: Refused | None = None,
                    values: dict[str, str] | None = None) -> Page:
    members = agreements.members(agreement)
    admins = [{"email": user.email, "name": user.name, "active": user.status == "active"}
              for user, row in members
              if any(r["role"] == ADMIN_ROLE and r.get("client") is None for r in row.roles or [])]
    idp = current_idp()
    return _render(
        "admin/agreement.html", admin, _path("admin_console.agreement", public_id=agreement.public_id),
        status=status, refused=refused, values=values, agreement=agreement, admins=admins, members=len(members),
        require=agreements.require_of(agreement) or "", levels=_level_labels(),
        members_url=idp.url("agreement_console.members", public_id=agreement.public_id),
        admin_role=ADMIN_ROLE,
    )


@bp.get("/admin/agreements/<public_id>")
@_as_admin("admin_console.agreement", "public_id")
def agreement(admin: Admin, public_id: str) -> Page:
    row = _agreement_or_none(public_id)
    if row is None:
        return _not_found()
    return _agreement_page(admin, row)


@bp.post("/admin/agreements/<public_id>/settings")
@_as_admin("admin_console.agreement", "public_id")
def agreement_settings(admin: Admin, public_id: str) -> Page:
    row = _agreement_or_none(public_id)
    if row is None:
        return _not_found()
    typed = _typed("domains", "require")
    try:
        domains = _domains("settings")
        require = _require("settings")
        with _stamped(admin):
            changed = agreements.update_agreement(row, require=require, domains=domains, by=admin.user)
        db.session.commit()
    except Refused as refused:
        return _refused(refused, typed, functools.partial(_agreement_page, admin, row))
    page = _path("admin_console.agreement", public_id=row.public_id)
    return _done(page, "agreement_saved" if changed else "agreement_same", "settings", name=row.name)


@bp.post("/admin/agreements/<public_id>/status")
@_as_admin("admin_console.agreement", "public_id")
def agreement_status(admin: Admin, public_id: str) -> Page:
    row = _agreement_or_none(public_id)
    if row is None:
        return _not_found()
    action = request.form.get("action")
    if action not in ("close", "reopen"):
        return _refused(Refused("status", _("Choose to close or to reopen the agreement.")), {},
                        functools.partial(_agreement_page, admin, row))
    with _stamped(admin):
        agreements.set_status(row, "closed" if action == "close" else "active", by=admin.user)
    db.session.commit()
    page = _path("admin_console.agreement", public_id=row.public_id)
    return _done(page, "agreement_closed" if row.status == "closed" else "agreement_reopened", "status",
                 name=row.name)


@bp.post("/admin/agreements/<public_id>/admins")
@_as_admin("admin_console.agreement", "public_id")
def agreement_add_admin(admin: Admin, public_id: str) -> Page:
    row = _agreement_or_none(public_id)
    if row is None:
        return _not_found()
    typed = {"email": (request.form.get("email") or "")[:addresses.MAX_TYPED]}
    try:
        try:
            address = addresses.parse(request.form.get("email") or "").email
        except addresses.AddressError as exc:
            raise Refused("admins", exc.message, "email") from None
        account = queries.user_by_email(address)
        if account is None:
            raise Refused("admins", _("There is no account with the address %(email)s. Only someone who has an "
                                      "account can be made an admin: invite them to the agreement first, or ask "
                                      "them to create their account.", email=address), "email")
        membership = agreements.membership(account.id, row.id)
        if membership is not None and any(r["role"] == ADMIN_ROLE and r.get("client") is None
                                          for r in membership.roles or []):
            return _done(_path("admin_console.agreement", public_id=row.public_id), "admin_already", "admins",
                         email=account.email, name=row.name)
        try:
            with _stamped(admin):
                agreements.add_member(row, account, [ADMIN_ROLE], by=admin.user)
                db.session.commit()
        except IntegrityError:
            raise Refused("admins", _("%(email)s was added to %(name)s at the same time. Reload the page.",
                                      email=address, name=row.name), "email") from None
    except Refused as refused:
        return _refused(refused, typed, functools.partial(_agreement_page, admin, row))
    return _done(_path("admin_console.agreement", public_id=row.public_id), "admin_added", "admins",
                 email=account.email, name=row.name)


# -- apps (clients) ---------------------------------------------------------------------------


def _kind(client: Client) -> str:
    if client.token_endpoint_auth_method == "none":
        return _("Public (no secret, PKCE)")
    if client.token_endpoint_auth_method == "private_key_jwt":
        return _("Confidential (its own keys: private_key_jwt)")
    return _("Confidential (client secret)")


def _client_row(client: Client) -> dict[str, Any]:
    return {"client_id": client.client_id, "name": client.name, "kind": _kind(client),
            "redirect_uris": list(client.redirect_uris or []),
            "post_logout_redirect_uris": list(client.post_logout_redirect_uris or []),
            "backchannel_logout_uri": client.backchannel_logout_uri,
            "backchannel_logout_session_required": bool(client.backchannel_logout_session_required),
            "grant_types": list(client.grant_types or []), "scope": client.scope,
            "has_secret": registration.has_secret(client),
            "url": current_idp().url("admin_console.client", client_id=client.client_id)}


def _clients_page(admin: Admin, *, status: int = 200, refused: Refused | None = None,
                  values: dict[str, str] | None = None, created: dict[str, Any] | None = None) -> Page:
    rows = [_client_row(c) for c in registration.list_clients()]
    return _render("admin/clients.html", admin, _path("admin_console.clients"), status=status, refused=refused,
                   values=values, rows=rows, created=created, headers=NO_STORE if created else None)


@bp.get("/admin/clients")
@_as_admin("admin_console.clients")
def clients(admin: Admin) -> Page:
    return _clients_page(admin)


def _checked_uris(form: str, field: str, application_type: str) -> list[str]:
    uris = _lines(request.form.get(field) or "", form, field)
    for uri in uris:
        try:
            registration.check_redirect_uris([uri], application_type)
        except InvalidInput:
            raise Refused(form, _("Not a redirect URI: %(uri)s. Each one is an absolute https URL without a "
                                  "fragment (http only on 127.0.0.1 or localhost).", uri=uri[:200]), field) from None
    return uris


def _backchannel(form: str) -> str | None:
    value = (request.form.get("backchannel_logout_uri") or "").strip()
    try:
        return registration.check_backchannel_logout_uri(value)
    except InvalidInput:
        raise Refused(form, _("Not a back-channel logout URI: %(uri)s. It is an absolute https URL without a "
                              "fragment (http only on 127.0.0.1 or localhost).", uri=value[:200]),
                      "backchannel_logout_uri") from None


def _client_name(form: str, default: str | None = None) -> str | None:
    value = request.form.get("name") or ""
    if not value.strip():
        return default
    try:
        return registration.check_name(value)
    except InvalidInput:
        raise Refused(form, _("A name is at most %(count)d characters.", count=registration.MAX_NAME),
                      "name") from None


@bp.post("/admin/clients")
@_as_admin("admin_console.clients")
def client_create(admin: Admin) -> Page:
    typed = _typed("client_id", "name", "redirect_uris", "kind", "scope", "backchannel_logout_uri")
    try:
        client_id = (request.form.get("client_id") or "").strip()
        if not client_id or len(client_id) > 128 or any(not ch.isprintable() or ch.isspace() for ch in client_id):
            raise Refused("create", _("Enter the app's id: 1 to 128 characters, without spaces."), "client_id")
        try:
            registration.check_client_id(client_id)
        except InvalidInput:
            raise Refused("create", _("An app with the id %(client)s exists already.", client=client_id),
                          "client_id") from None
        name = _client_name("create")
        kind = request.form.get("kind") or ""
        if kind not in ("confidential", "public"):
            raise Refused("create", _("Choose whether the app keeps a secret or is public."), "kind")
        uris = _checked_uris("create", "redirect_uris", "web")
        if not uris:
            raise Refused("create", _("Enter at least one redirect URI: the app signs people in."), "redirect_uris")
        scopes = (request.form.get("scope") or "").split()
        if not scopes or len(scopes) > 50 or not all(_SCOPE_TOKEN.fullmatch(s) for s in scopes):
            raise Refused("create", _("Enter the scopes the app may ask for, separated by spaces, like: openid "
                                      "profile email."), "scope")
        backchannel = _backchannel("create")
        try:
            with _stamped(admin):
                created = registration.create_client(
                    client_id, redirect_uris=uris, scope=" ".join(scopes), public=kind == "public", name=name,
                    backchannel_logout_uri=backchannel)
                db.session.commit()
        except IntegrityError:
            raise Refused("create", _("An app with the id %(client)s exists already.", client=client_id),
                          "client_id") from None
        except InvalidInput:
            raise Refused("create", _("The app could not be registered. Check the fields."), None) from None
    except Refused as refused:
        return _refused(refused, typed, functools.partial(_clients_page, admin))
    shown = {**_client_row(created.client), "secret": created.secret}
    return _clients_page(admin, created=shown)


def _client_page(admin: Admin, client: Client, *, status: int = 200, refused: Refused | None = None,
                 values: dict[str, str] | None = None, secret: str | None = None) -> Page:
    zone = activity.user_zone(admin.user)
    return _render(
        "admin/client.html", admin, _path("admin_console.client", client_id=client.client_id), status=status,
        refused=refused, values=values, client=_client_row(client), secret=secret,
        created=activity.format_time(client.created_at, zone), created_iso=activity.iso_time(client.created_at),
        cache_seconds=current_idp().settings["CLIENT_CACHE_SECONDS"], headers=NO_STORE if secret else None,
    )


@bp.get("/admin/clients/<path:client_id>")
@_as_admin("admin_console.client", "client_id")
def client(admin: Admin, client_id: str) -> Page:
    row = registration.find_client(client_id)
    if row is None:
        return _not_found()
    return _client_page(admin, row)


@bp.post("/admin/clients/<path:client_id>")
@_as_admin("admin_console.client", "client_id")
def client_change(admin: Admin, client_id: str) -> Page:
    row = registration.find_client(client_id)
    if row is None:
        return _not_found()
    show = functools.partial(_client_page, admin, row)
    action = request.form.get("action")
    if action == "rotate":
        if not registration.has_secret(row):
            return _refused(Refused("rotate", _("This app has no secret to replace.")), {}, show)
        with _stamped(admin):
            secret = registration.rotate_secret(row)
            db.session.commit()
        return _client_page(admin, row, secret=secret)
    if action != "save":
        return _refused(Refused("save", _("Choose what to do: save the changes or replace the secret.")), {}, show)
    typed = _typed("name", "redirect_uris", "post_logout_redirect_uris", "backchannel_logout_uri")
    typed["backchannel_logout_session_required"] = "on" if request.form.get("backchannel_logout_session_required") \
        else ""
    try:
        name = _client_name("save", row.name)
        uris = _checked_uris("save", "redirect_uris", row.application_type)
        try:
            registration.check_has_redirect_uri(row.grant_types, uris)
        except InvalidInput:
            raise Refused("save", _("Enter at least one redirect URI: the app signs people in."),
                          "redirect_uris") from None
        post_logout = _checked_uris("save", "post_logout_redirect_uris", row.application_type)
        backchannel = _backchannel("save")
        try:
            with _stamped(admin):
                before = registration.client_as_dict(row)
                registration.update_client(
                    row, name=name, redirect_uris=uris, post_logout_redirect_uris=post_logout,
                    backchannel_logout_uri=backchannel,
                    backchannel_logout_session_required=bool(request.form.get("backchannel_logout_session_required")))
                changed = registration.client_as_dict(row) != before
                db.session.commit()
        except InvalidInput:
            raise Refused("save", _("The changes could not be saved. Check the fields."), None) from None
    except Refused as refused:
        return _refused(refused, typed, show)
    page = _path("admin_console.client", client_id=row.client_id)
    return _done(page, "client_saved" if changed else "client_same", "edit", client=row.client_id)


# -- upstream providers -----------------------------------------------------------------------


def _upstreams_page(admin: Admin, *, status: int = 200, refused: Refused | None = None,
                    values: dict[str, str] | None = None) -> Page:
    rows = []
    for row in upstreams.all_upstreams():
        shown = upstreams.as_dict(row)  # never the secret or the private key
        rows.append({**shown, "national": row.national})
    return _render("admin/upstreams.html", admin, _path("admin_console.upstreams_list"), status=status, refused=refused,
                   values=values, rows=rows)


@bp.get("/admin/upstreams")
@_as_admin("admin_console.upstreams_list")
def upstreams_list(admin: Admin) -> Page:
    return _upstreams_page(admin)


@bp.post("/admin/upstreams/<name>/remove")
@_as_admin("admin_console.upstreams_list")
def upstream_remove(admin: Admin, name: str) -> Page:
    row = upstreams.by_name(name) if len(name) <= 63 else None
    if row is None or row.name != name:
        return _not_found()
    with _stamped(admin):
        upstreams.remove(row.name)
        db.session.commit()
    return _done(_path("admin_console.upstreams_list"), "upstream_removed", name=name)


# -- signing keys -----------------------------------------------------------------------------


def _keys_page(admin: Admin) -> Page:
    idp = current_idp()
    zone = activity.user_zone(admin.user)
    horizon = idp.clock.now() - idp.keys.publish_window()
    rows = []
    for key in reversed(idp.keys.list_all()):  # the newest first
        if key.retired_at is None:
            state = _("Active")
        elif key.retired_at > horizon:
            state = _("Retired, still published")
        else:
            state = _("Retired")
        rows.append({"kid": key.kid, "alg": key.alg, "state": state, "active": key.retired_at is None,
                     "created": activity.format_time(key.created_at, zone),
                     "created_iso": activity.iso_time(key.created_at)})
    return _render("admin/keys.html", admin, _path("admin_console.keys"), rows=rows, zone=activity.zone_name(zone))


@bp.get("/admin/keys")
@_as_admin("admin_console.keys")
def keys(admin: Admin) -> Page:
    return _keys_page(admin)


@bp.post("/admin/keys/rotate")
@_as_admin("admin_console.keys")
def keys_rotate(admin: Admin) -> Page:
    with _stamped(admin):
        current_idp().keys.rotate_audited()  # commits
    return _done(_path("admin_console.keys"), "keys_rotated")


# -- back-channel logout deliveries -------------------------------------------------------------

LOGOUT_LISTED = 100


def _logout_page(admin: Admin) -> Page:
    from ..oidc import backchannel

    zone = activity.user_zone(admin.user)
    states = {"pending": _("Waiting"), "sent": _("Sent"), "failed": _("Failed")}
    rows = [{"id": r.id, "client": r.client_id, "reason": r.reason, "state": states.get(r.status, r.status),
             "failed": r.status == "failed", "tries": r.attempts, "error": r.last_error or "",
             "queued": activity.format_time(r.created_at, zone), "queued_iso": activity.iso_time(r.created_at)}
            for r in backchannel.newest(limit=LOGOUT_LISTED)]
    failed = backchannel.count(status="failed")
    return _render("admin/logout.html", admin, _path("admin_console.logout_deliveries"), rows=rows, failed=failed,
                   zone=activity.zone_name(zone))


@bp.get("/admin/logout")
@_as_admin("admin_console.logout_deliveries")
def logout_deliveries(admin: Admin) -> Page:
    return _logout_page(admin)


@bp.post("/admin/logout/retry")
@_as_admin("admin_console.logout_deliveries")
def logout_retry(admin: Admin) -> Page:
    from ..oidc import backchannel

    with _stamped(admin):
        ids = backchannel.retry(current_idp())
        db.session.commit()
    return _done(_path("admin_console.logout_deliveries"), "logout_retried", count=str(len(ids)))


@bp.errorhandler(CSRFError)
def csrf_error(_error):
    return render_template("error.html", title=_("This page has expired"),
                           message=_("Reload the page and try again.")), 400


# -- My details: the link to the console -------------------------------------------------------


def console_link_context() -> dict[str, Any]:
    """Template values of My details: ``system_admin_console``, the console's
    address when the signed-in user is a system admin."""
    sess = current_session()
    if sess is None or not rights.is_system_admin(sess.user):
        return {}
    return {"system_admin_console": current_idp().url("admin_console.home")}


def system_admin_at_level(sess: SsoSession) -> bool:
    """A system admin whose session reached ``ADMIN_CONSOLE_ACR``: they manage every
    agreement's members page too (``agreements/console.py``)."""
    return rights.is_system_admin(sess.user) and at_least(sess.acr, current_idp().settings["ADMIN_CONSOLE_ACR"])
