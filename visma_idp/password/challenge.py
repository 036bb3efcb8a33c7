"""The human check on the forgot-password form, pluggable.

``CAPTCHA_VERIFIER`` names a class (``module:Class``) built once per app with
the :class:`~visma_idp.IdentityProvider` as its only argument. It has two
methods (see :class:`HumanCheck`):

- ``challenge()`` returns the template context of one fresh challenge. The
  form includes ``templates/_human_check.html``, which renders the default
  proof-of-work fields, or includes ``context["template"]`` when the
  verifier names a template of its own;
- ``verify(form)`` says whether the posted form passed the check. It is
  called once per post and must refuse a solution it has seen before.

The default, :class:`ProofOfWork`, needs no third party: the server signs a
random nonce, a difficulty and an expiry (itsdangerous, key derived from
SECRET_KEY); the browser (``static/pow.js``, Web Crypto SHA-256) searches a
counter such that ``SHA-256(challenge + ":" + counter)`` starts with
``POW_DIFFICULTY`` zero bits; the server checks the signature, the expiry,
the work, and that the nonce was not used before (``seen_jtis`` table, by the
nonce's digest). Checking costs one HMAC and one SHA-256; solving costs the
browser about ``2 ** POW_DIFFICULTY`` hashes, which makes a mass of reset
requests (mail flooding, enumeration by timing) expensive for a script.

A hosted CAPTCHA (hCaptcha, Turnstile) is plugged in the same way: a class
whose ``challenge()`` returns ``{"template": "my_captcha.html", "sitekey":
...}`` and whose ``verify(form)`` posts the widget's response field to the
provider's siteverify endpoint and returns its ``success``. Its script and
frame come from the provider's host, so that deployment must also allow that
host in the Content-Security-Policy.
"""

from __future__ import annotations

import hashlib
import importlib
import secrets
from collections.abc import Mapping
from typing import Any, Protocol

from flask import current_app
from itsdangerous import BadData, URLSafeSerializer

from ..crypto import derive_key, digest
from ..storage import queries

POW_LIFETIME = 600  # seconds a challenge may be solved and posted in
MAX_CHALLENGE = 400  # characters of a signed challenge we are willing to look at
MAX_COUNTER = 20  # digits of the counter


class HumanCheck(Protocol):
    """What the forgot-password form needs from a human check."""

    def challenge(self) -> dict[str, Any]:
        """Template context for one new challenge."""
        ...  # pragma: no cover

    def verify(self, form: Mapping[str, str]) -> bool:
        """True when the posted form passed the check (once per solution)."""
        ...  # pragma: no cover


def leading_zero_bits(value: bytes) -> int:
    """How many zero bits ``value`` starts with (all of them for zero bytes)."""
    return len(value) * 8 - int.from_bytes(value, "big").bit_length()


def work_of(challenge: str, counter: str) -> int:
    """Leading zero bits of SHA-256(challenge + ":" + counter): what pow.js computes."""
    return leading_zero_bits(hashlib.sha256(f"{challenge}:{counter}".encode()).digest())


class ProofOfWork:
    """The self-hosted proof-of-work (the default ``CAPTCHA_VERIFIER``).

    The form posts ``pow_challenge`` (the signed challenge, as issued) and
    ``pow`` (the counter the browser found, in decimal).
    """

    def __init__(self, idp) -> None:
        self.idp = idp
        key = derive_key(idp.settings["SECRET_KEY"], "proof-of-work").hex()
        self._signer = URLSafeSerializer(key, salt="visma_idp.pow")

    @property
    def difficulty(self) -> int:
        return int(self.idp.settings["POW_DIFFICULTY"])

    def challenge(self) -> dict[str, Any]:
        expires = self.idp.clock.now() + POW_LIFETIME
        signed = self._signer.dumps({"n": secrets.token_urlsafe(16), "d": self.difficulty, "x": expires})
        return {"kind": "pow", "challenge": signed, "difficulty": self.difficulty}

    def verify(self, form: Mapping[str, str]) -> bool:
        raw = form.get("pow_challenge") or ""
        counter = form.get("pow") or ""
        if not (0 < len(raw) <= MAX_CHALLENGE) or not (0 < len(counter) <= MAX_COUNTER) or not counter.isdigit():
            return False
        try:
            payload = self._signer.loads(raw)
        except BadData:
            return False
        if not isinstance(payload, dict):
            return False
        nonce, bits, expires = payload.get("n"), payload.get("d"), payload.get("x")
        if not isinstance(nonce, str) or not isinstance(bits, int) or not isinstance(expires, int):
            return False
        now = self.idp.clock.now()
        # a challenge issued before the difficulty was raised no longer counts
        if expires <= now or bits < self.difficulty:
            return False
        if work_of(raw, counter) < bits:
            return False
        # single use: the caller commits this row with whatever the form does
        return queries.remember_jti(digest("pow:" + nonce), expires, now)


def human_check() -> HumanCheck:
    """The app's verifier (``CAPTCHA_VERIFIER``), built on first use."""
    app = current_app
    found = app.extensions.get("visma_idp_human_check")
    if found is None:
        idp = app.extensions["visma_idp"]
        module_name, _sep, class_name = idp.settings["CAPTCHA_VERIFIER"].partition(":")
        cls = getattr(importlib.import_module(module_name), class_name)
        found = cls(idp)
        app.extensions["visma_idp_human_check"] = found
    return found
