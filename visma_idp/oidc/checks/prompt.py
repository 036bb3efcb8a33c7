"""The ``prompt`` parameter (OIDC Core §3.1.2.1).

Rules:
- Values are space separated from {none, login, consent, select_account};
  an unknown value, or ``none`` combined with any other, is ``invalid_request``.
- ``none`` never shows a page: with no session ``login_required``; when
  consent is missing ``consent_required``; when an account must be chosen
  ``account_selection_required``; when re-authentication is required by
  max_age, id_token_hint, a requested ``sub`` or acr ``login_required``.
- ``login`` forces a fresh authentication: the login must happen after this
  authorization request started.
- ``consent`` shows the consent page even when consent was remembered.
- ``select_account`` shows the account chooser.
- The unknown value is named in ``error_description`` only when it is made
  of the characters RFC 6749 §4.1.2.1 allows there.
"""

from __future__ import annotations

from authlib.oauth2.base import invalid_error_characters
from authlib.oauth2.rfc6749 import InvalidRequestError

PROMPTS = {"none", "login", "consent", "select_account"}


def parse_prompt(value: str | None, redirect_uri: str) -> set[str]:
    prompts = set((value or "").split())
    unknown = prompts - PROMPTS
    if unknown:
        value = sorted(unknown)[0]
        named = f": {value}" if len(value) <= 32 and not invalid_error_characters(value) else ""
        raise InvalidRequestError(f"Unsupported prompt value{named}.", redirect_uri=redirect_uri)
    if "none" in prompts and len(prompts) > 1:
        raise InvalidRequestError("prompt=none cannot be combined with other values.", redirect_uri=redirect_uri)
    return prompts
