"""Email addresses: the one parser for every address the provider takes in
or writes into a mail header.

Every way an address comes in goes through :func:`parse`: the sign-in page
(``login/steps/identify.py``), forgot password (``account/recovery.py``),
resend activation (``account/activation.py``), the change of address
(``account/views.py``), the admin page and the admin API (``admin/views.py``,
``admin/api.py``: invitations, one-time codes through
``admin/one_time_codes.py``), ``admin.service.create_user``, the CLI
(``admin/cli.py``, ``agreements/cli.py``), invitations to an agreement
(``agreements/invitations.py``) and an upstream provider's ``email`` claim
(``federation/linking.py``). :func:`~visma_idp.notify.messages.queue` parses the
recipient again, so the ``To`` header of every message is exactly one address
that passed here.

:func:`domain_name` is the one rule for an email *domain* an operator or
admin names (admin rights, an upstream's domains, an agreement's domains).

It is a top-level module of the package, below everything that takes an address
in: it imports only ``errors`` (and email-validator, Flask-Babel), so the
outbox (``notify/``), the account pages and the admin parse addresses alike
without importing each other.

Rules:
- exactly one address and nothing else: display names (``Kari
  <kari@example.no>``), angle brackets, comments (``(...)``), quoted local
  parts (``"x@evil"@example.no``), lists (``,`` ``;`` or a second ``@``) and
  domain literals (``kari@[127.0.0.1]``) are refused;
- no control or invisible format characters anywhere (CR, LF, NUL, tab,
  U+2028, zero-width spaces...) and no space inside; spaces around the
  address are dropped (browsers do the same for ``type=email``);
- at most ``MAX_TYPED`` (320) characters typed; at most 64 characters before
  the ``@`` and 254 in all (RFC 5321, counted by email-validator on the
  normalised address);
- the syntax check is email-validator's, without DNS
  (``check_deliverability=False``: no network during a request). The domain
  must be deliverable by its syntax: at least one dot, no trailing dot, not a
  special-use name (``.test``, ``.local``, ``.localhost``, ``.invalid``,
  ``.onion``, ``.arpa``), valid IDNA 2008 (UTS 46 mapping: full-width and
  upper-case letters become their plain forms). International local parts
  (which need SMTPUTF8 to deliver) are accepted, as before;
- one spelling per mailbox: :attr:`Address.email`, what is stored and
  compared, is the local part lower-cased (as the project always did) + ``@``
  + the domain's ASCII (``xn--``) form, lower-case. ``KARI@Bølle.NO`` and
  ``kari@xn--blle-hra.no`` are the same account;
- rights by domain (``admin/rights.py``) are compared with
  :attr:`Address.domain`, the parsed ASCII domain, never with text cut out
  of what was typed;
- a refusal is :class:`AddressError` with a ``reason`` (stable code), a
  translated ``message`` for pages and JSON, and a plain English ``detail``
  for the CLI and logs; no reason depends on any account existing. An audit
  row about a refused address records :func:`as_typed` (control characters
  escaped: PostgreSQL refuses NUL in text).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from email_validator import EmailNotValidError, validate_email
from flask_babel import lazy_gettext as _l

from .errors import InvalidInput, VismaIdpError

MAX_TYPED = 320  # characters we look at, at most (RFC 3696 errata: 320 = 64 + 1 + 255)
MAX_LOCAL = 64
MAX_ADDRESS = 254

# reason: (plain English for the CLI and logs, translated text for pages and the API)
REASONS = {
    "missing": ("no address given", _l("Enter an email address.")),
    "too_long": ("the address is too long", _l("The email address is too long.")),
    "one_only": ("give exactly one address", _l("Enter one email address only.")),
    "no_name": ("give the address alone, without a name, quotes, angle brackets or comments",
                _l("Enter the address alone, without a name, quotes, brackets or comments.")),
    "characters": ("the address contains a space, a control character or an invisible character",
                   _l("The email address contains a space or a character that is not allowed.")),
    "domain": ("the part after @ is not a domain that can receive email",
               _l("The part after @ must be a domain that can receive email, like example.no.")),
    "syntax": ("it is not written like name@example.no",
               _l("Write the address like name@example.no.")),
}
_FORBIDDEN_CATEGORIES = {"Cc", "Cf", "Zl", "Zp"}  # control, format (zero-width...), line and paragraph separators


class AddressError(VismaIdpError):
    """An address was refused. ``reason``: a key of :data:`REASONS`;
    ``detail``: plain English (CLI, logs); ``message``: translated (pages, API)."""

    def __init__(self, reason: str):
        self.reason = reason
        self.detail, self._message = REASONS[reason]
        super().__init__(self.detail)

    @property
    def message(self) -> str:
        return str(self._message)


@dataclass(frozen=True)
class Address:
    """One parsed address. ``email`` is the stored and compared form;
    ``domain`` the ASCII (IDNA) domain, lower-case."""

    email: str
    local_part: str
    domain: str

    def __str__(self) -> str:
        return self.email


def parse(value: object) -> Address:
    """Parse what someone typed (or a stored address) into one address.

    Args:
        value: the text as it came in (anything that is not a string is refused).

    Returns:
        The address in its one stored spelling (see the module rules).

    Raises:
        AddressError: not exactly one valid address; ``reason`` says why.
    """
    if not isinstance(value, str):
        raise AddressError("missing")
    if len(value) > MAX_TYPED:
        raise AddressError("too_long")
    if any(unicodedata.category(ch) in _FORBIDDEN_CATEGORIES for ch in value):
        raise AddressError("characters")
    text = value.strip(" ")
    if not text:
        raise AddressError("missing")
    if any(ch in text for ch in "<>\"()"):
        raise AddressError("no_name")
    if any(ch in text for ch in ",;") or text.count("@") > 1:
        raise AddressError("one_only")
    if any(ch.isspace() for ch in text):
        raise AddressError("characters")
    local, at, domain_typed = text.rpartition("@")
    if not at or not local:
        raise AddressError("syntax")
    if domain_typed.endswith("."):
        raise AddressError("domain")  # "example.no." is another name to a resolver than "example.no"
    if len(local) > MAX_LOCAL or len(text) > MAX_ADDRESS:
        raise AddressError("too_long")
    try:
        valid = validate_email(text, check_deliverability=False, allow_smtputf8=True, allow_quoted_local=False,
                               allow_domain_literal=False, allow_display_name=False, allow_empty_local=False)
    except EmailNotValidError as exc:
        # email-validator words every problem of the domain "... after the @-sign ..."
        # (if a later version words it otherwise, the general reason is given)
        said = str(exc)
        reason = "too_long" if "too long" in said else "domain" if "after the @-sign" in said else "syntax"
        raise AddressError(reason) from None
    local_part = valid.local_part.lower()
    domain = (valid.ascii_domain or "").lower()
    email = f"{local_part}@{domain}"
    if len(email) > MAX_ADDRESS:  # the domain's xn-- form can be longer than what was typed
        raise AddressError("too_long")
    return Address(email=email, local_part=local_part, domain=domain)


def explain(error: AddressError, lead: str) -> str:
    """The error text of a form: ``lead`` (the form's own "Enter your email
    address, like ..."), then the reason when it adds something to it."""
    if error.reason in ("missing", "syntax"):
        return lead
    return f"{lead} {error.message}"


def as_typed(value: object) -> str | None:
    """What was typed, for an audit row about a refused address: control and
    invisible characters written as ``\\xNN``/``\\uNNNN`` (a database text
    column refuses NUL, a log reader should see them), cut to ``MAX_TYPED``;
    None for nothing."""
    if not isinstance(value, str) or not value.strip():
        return None
    shown = "".join(ch.encode("unicode_escape").decode("ascii") if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES
                    else ch for ch in value.strip(" "))
    return shown[:MAX_TYPED]


def normalise(value: object) -> str | None:
    """The stored spelling of ``value``, or None when it is not one valid address."""
    try:
        return parse(value).email
    except AddressError:
        return None


_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})+")


def domain_name(value: str) -> str:
    """An email domain as an operator or admin gives it (admin rights, an
    upstream's or an agreement's domains): ``"@Example.NO "`` -> ``"example.no"``.

    Raises:
        InvalidInput: not a plain host name with at least one dot (no
            wildcards, no trailing dot, no ports, ASCII only).
    """
    domain = (value or "").strip().lower().removeprefix("@")
    if len(domain) > 253 or not domain.isascii() or not _DOMAIN.fullmatch(domain):
        raise InvalidInput(f"not a domain name (like example.no, without wildcards): {value!r}")
    return domain
