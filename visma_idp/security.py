"""Headers every response carries, and the Origin check on form posts.

- CSP: only our own resources, no inline script except with the per-response
  nonce, ``frame-ancestors 'none'`` (no framing, against clickjacking), and
  ``form-action`` limited to us plus the places a form of the page may
  legitimately end up: Chromium and WebKit apply ``form-action`` to every
  redirect that follows a form post too (CSP3; Firefox has not), so a page
  of a sign-in in progress names the redirect origins of this browser's
  pending sign-ins (the password post, consent, the second step, a passkey
  and enrolment all end in a redirect to the app), the logout confirmation
  names the validated ``post_logout_redirect_uri``, and a form_post response
  names its target. Those are registered, exactly matched redirect URIs
  (``oidc/checks/redirect_uri.py``), never a value from the request alone.
- ``X-Frame-Options: DENY`` for old browsers, ``nosniff``, no referrer,
  HSTS on https issuers.
- Cookies: every one is named and set in ``browser/cookies.py``.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import urlsplit

from flask import abort, request

from .browser import cookies
from .browser.interaction import pending_redirect_uris
from .context import request_state
from .urls import URI_SCHEME


def install_security(app, idp) -> None:
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.jinja_env.globals["idp_url"] = idp.url

    @app.context_processor
    def _signed_in_user():
        from flask import has_request_context

        from .browser.sso import current_session

        sess = current_session() if has_request_context() else None
        return {"nav_user": sess.user if sess is not None else None}

    @app.before_request
    def _check_origin():
        # A browser form post must come from our own origin; protocol
        # endpoints (token, introspection, authorize by POST) are exempt.
        if (request.method != "POST" or request.endpoint in _CROSS_ORIGIN_POST
                or request.blueprint in _BEARER_ONLY_BLUEPRINTS):
            return None
        origin = request.headers.get("Origin")
        if origin and origin != "null" and origin != idp.issuer_origin:
            abort(403)
        return None

    fixed = fixed_headers(idp)
    plain_csp = PLAIN_CSP

    @app.after_request
    def _headers(response):
        cookies.apply(response)
        state = request_state()
        nonce = state.csp_nonce
        targets = list(state.form_action_targets)
        if response.mimetype == "text/html":
            targets += pending_redirect_uris()
        if nonce or targets or state.frame_targets:
            sources = sorted({s for s in map(csp_source, targets) if s})
            frames = sorted({s for s in map(csp_source, state.frame_targets) if s})
            csp = _csp(f"'nonce-{nonce}'" if nonce else "'none'", " ".join(["'self'", *sources]),
                       " ".join(frames) or None)
        else:
            csp = plain_csp
        csp = state.csp_override or csp  # a view that serves foreign HTML (the dev outbox) sandboxes it
        headers = response.headers
        headers["Content-Security-Policy"] = csp
        for name, value in fixed:
            headers[name] = value
        if response.mimetype == "text/html":
            headers.setdefault("Cache-Control", "no-store")
        return response


def fixed_headers(idp) -> list[tuple[str, str]]:
    """The headers every response gets (the CSP aside)."""
    fixed = [("X-Frame-Options", "DENY"), ("X-Content-Type-Options", "nosniff"), ("Referrer-Policy", "no-referrer")]
    if idp.secure_cookies:
        fixed.append(("Strict-Transport-Security", "max-age=31536000"))
    return fixed


def json_headers(idp) -> list[tuple[str, str]]:
    """The security headers of a JSON response (no form, no frame, no script): what
    the ``after_request`` hook gives the token endpoint's answers, for ``oidc/fastlane.py``."""
    return [("Content-Security-Policy", PLAIN_CSP), *fixed_headers(idp)]


def allow_frames(uri: str) -> None:
    """Let this page load ``uri`` in an iframe (a registered front-channel logout URI)."""
    request_state().frame_targets.append(uri)


def allow_form_action(uri: str) -> None:
    """Let this response's forms end up at ``uri``'s origin (a checked redirect URI)."""
    request_state().form_action_targets.append(uri)


def csp_nonce() -> str:
    """This response's script nonce (made on first use; templates call it)."""
    state = request_state()
    if state.csp_nonce is None:
        state.csp_nonce = secrets.token_urlsafe(16)
    return state.csp_nonce


_HOST = re.compile(r"[a-z0-9.-]+|\[[0-9a-f:.]+\]")


def csp_source(uri: str) -> str | None:
    """The CSP source expression for a redirect URI's origin: ``https://host:port``,
    or ``scheme:`` for a native app's private-use scheme; None for anything that
    does not parse cleanly (it is then left out, never passed through)."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if not URI_SCHEME.fullmatch(scheme):
        return None
    if scheme not in ("http", "https"):
        return f"{scheme}:"
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    if not _HOST.fullmatch(host):
        return None
    return f"{scheme}://{host}" + (f":{port}" if port else "")


def _csp(script: str, form_action: str, frames: str | None = None) -> str:
    frame_src = f"frame-src {frames}; " if frames else ""
    return (
        f"default-src 'none'; script-src {script}; style-src 'self'; img-src 'self' data:; "
        f"connect-src 'self'; {frame_src}form-action {form_action}; frame-ancestors 'none'; base-uri 'none'"
    )


PLAIN_CSP = _csp("'none'", "'self'")  # built once: most responses (all JSON ones) use it

_CROSS_ORIGIN_POST = {
    "oidc.authorize", "oidc.token", "oidc.introspect", "oidc.revoke", "oidc.userinfo", "oidc.end_session",
}
# the admin REST API: bearer tokens only, no cookies (admin/bearer.py)
_BEARER_ONLY_BLUEPRINTS = {"admin_api", "admin_agreements_api", "admin_system_api"}
