"""Upstream OpenID providers: adding, listing and removing them, their
discovery document and their keys.

Rules:
- an upstream is added with its issuer (or a discovery URL); the discovery
  document is fetched at once, so a typo fails on the operator's command
  line, not on a person's sign-in; its ``issuer`` must equal the one given
  (for Entra ID's multi-tenant document: the template with ``{tenantid}``,
  which then needs at least one allowed tenant);
- every URL is https, except on a loopback host (development and tests);
- the ID token's algorithm is pinned per upstream (RS256 unless told), never
  ``none``; HS256 only with a client secret;
- ``private_key_jwt``: we make an RSA key for the upstream; its public half
  is published at ``/upstreams/jwks.json`` for the upstream to fetch;
- the document and the keys are kept in the row and fetched again after
  ``UPSTREAM_METADATA_SECONDS`` (the keys also for a token with an unknown
  ``kid``, at most once a minute); an upstream that does not answer then
  keeps the last good copy, and one that never answered gives
  :class:`UpstreamUnavailable` (a clear page for the person, a log line for
  the operator);
- a domain belongs to at most one upstream (home-realm discovery must not
  guess); adding and removing are audited.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from joserfc.jwk import RSAKey
from sqlalchemy import select

from .. import audit
from ..addresses import domain_name
from ..config import is_loopback_issuer
from ..context import current_idp
from ..errors import InvalidInput
from ..storage import Upstream, UpstreamDomain, UpstreamIdentity, db

log = logging.getLogger("visma_idp.federation")

AUTH_METHODS = ("client_secret_basic", "client_secret_post", "private_key_jwt")
ID_TOKEN_ALGS = ("RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA", "HS256")
TENANT_TEMPLATE = "{tenantid}"
JWKS_RETRY_SECONDS = 60
_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_TENANT = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


class UpstreamUnavailable(Exception):
    """An upstream did not answer (or answered nonsense) and we have no good copy."""

    def __init__(self, upstream: str, reason: str):
        super().__init__(f"upstream {upstream!r}: {reason}")
        self.upstream = upstream
        self.reason = reason


@dataclass
class UpstreamSpec:
    """What the operator says about an upstream (the CLI and the admin API fill it)."""

    name: str
    issuer: str | None = None
    discovery_url: str | None = None
    client_id: str = ""
    client_secret: str | None = None
    private_key_jwt: bool = False
    auth_method: str | None = None
    display_name: str = ""
    scopes: tuple[str, ...] = ()
    acr_values: tuple[str, ...] = ()
    claim_map: dict[str, str] | None = None
    domains: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()
    id_token_alg: str = "RS256"
    acr: str | None = None
    trust_amr: bool = False
    create_accounts: bool = False
    link_by_proof: bool = True
    trust_email: bool = False
    national_id_claim: str | None = None
    test_environment: bool = False
    button: bool = True


def _https(url: str, what: str) -> str:
    parts = urlsplit(url or "")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidInput(f"{what} is not an absolute URL: {url!r}")
    if parts.scheme == "http" and not is_loopback_issuer(url):
        raise InvalidInput(f"{what} must use https (http only on a loopback host): {url!r}")
    if parts.fragment or parts.username or parts.password:
        raise InvalidInput(f"{what} may not carry a fragment or credentials: {url!r}")
    return url



def _http(method: str, url: str, **kwargs: Any) -> requests.Response:
    timeout = current_idp().settings["UPSTREAM_HTTP_TIMEOUT"]
    return requests.request(method, url, timeout=timeout, allow_redirects=False, **kwargs)


def _fetch_json(name: str, url: str, what: str) -> dict[str, Any]:
    try:
        resp = _http("GET", url, headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        raise UpstreamUnavailable(name, f"{what} at {url} did not answer: {exc.__class__.__name__}") from None
    if resp.status_code != 200:
        raise UpstreamUnavailable(name, f"{what} at {url} answered {resp.status_code}")
    try:
        doc = resp.json()
    except ValueError:
        raise UpstreamUnavailable(name, f"{what} at {url} is not JSON") from None
    if not isinstance(doc, dict):
        raise UpstreamUnavailable(name, f"{what} at {url} is not a JSON object")
    return doc


def _check_metadata(doc: dict[str, Any], issuer: str, name: str) -> dict[str, Any]:
    if doc.get("issuer") != issuer:
        raise UpstreamUnavailable(name, f"the discovery document names issuer {doc.get('issuer')!r}, not {issuer!r}")
    for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = doc.get(key)
        if not isinstance(value, str):
            raise UpstreamUnavailable(name, f"the discovery document has no {key}")
        try:
            _https(value, key)
        except InvalidInput as exc:
            raise UpstreamUnavailable(name, str(exc)) from None
    methods = doc.get("code_challenge_methods_supported")
    if isinstance(methods, list) and "S256" not in methods:
        raise UpstreamUnavailable(name, "it does not support PKCE with S256")
    return doc


# -- the operator's commands -----------------------------------------------------------


def add(spec: UpstreamSpec) -> Upstream:
    """Add an upstream after fetching its discovery document; the caller commits.

    Raises:
        InvalidInput: a bad value, a taken name or domain, an unreachable discovery document.
    """
    idp = current_idp()
    name = spec.name.strip().lower()
    if not _NAME.fullmatch(name):
        raise InvalidInput("--name: lower-case letters, digits, - and _ (up to 63), like `acme-entra`")
    if by_name(name) is not None:
        raise InvalidInput(f"an upstream named {name!r} exists already")
    if not spec.client_id:
        raise InvalidInput("--client-id is required")
    issuer = (spec.issuer or "").rstrip("/") if spec.issuer else None
    discovery_url = spec.discovery_url
    if not issuer and not discovery_url:
        raise InvalidInput("give --issuer or --discovery-url")
    if discovery_url is None:
        assert issuer is not None
        if TENANT_TEMPLATE in issuer:
            raise InvalidInput("a multi-tenant issuer needs --discovery-url (Entra ID: .../organizations/v2.0/...)")
        discovery_url = issuer + "/.well-known/openid-configuration"
    _https(discovery_url, "the discovery URL")
    method = spec.auth_method or ("private_key_jwt" if spec.private_key_jwt else "client_secret_basic")
    if method not in AUTH_METHODS:
        raise InvalidInput(f"client authentication must be one of {', '.join(AUTH_METHODS)}")
    if method == "private_key_jwt" and spec.client_secret:
        raise InvalidInput("use either --client-secret or --private-key-jwt, not both")
    if method != "private_key_jwt" and not spec.client_secret:
        raise InvalidInput("give --client-secret or --private-key-jwt")
    if spec.id_token_alg not in ID_TOKEN_ALGS:
        raise InvalidInput(f"--id-token-alg must be one of {', '.join(ID_TOKEN_ALGS)} (never none)")
    if spec.id_token_alg == "HS256" and method == "private_key_jwt":
        raise InvalidInput("HS256 ID tokens need a client secret")
    domains = sorted({domain_name(d) for d in spec.domains})
    for domain in domains:
        other = for_domain(domain)
        if other is not None:
            raise InvalidInput(f"the domain {domain} is served by the upstream {other.name!r} already")
    tenants = sorted({t.strip().lower() for t in spec.tenants})
    for tenant in tenants:
        if not _TENANT.fullmatch(tenant):
            raise InvalidInput(f"--tenant must be a tenant id (a GUID): {tenant!r}")
    if spec.create_accounts and not domains:
        raise InvalidInput("--create-accounts needs the --domain values whose accounts it may create")
    if spec.national_id_claim and (spec.create_accounts or domains):
        raise InvalidInput("a national eID upstream links numbers to accounts: no --domain or --create-accounts")
    try:
        doc = _fetch_json(name, discovery_url, "the discovery document")
    except UpstreamUnavailable as exc:
        raise InvalidInput(exc.reason) from None
    if issuer is None:
        issuer = doc.get("issuer") if isinstance(doc.get("issuer"), str) else ""
    assert issuer is not None
    _https(issuer.replace(TENANT_TEMPLATE, "tenant"), "the issuer")
    if TENANT_TEMPLATE in issuer and not tenants:
        raise InvalidInput("a multi-tenant issuer needs the allowed tenants (--tenant TID ...)")
    try:
        _check_metadata(doc, issuer, name)
    except UpstreamUnavailable as exc:
        raise InvalidInput(exc.reason) from None
    now = idp.clock.now()
    row = Upstream(
        name=name, display_name=spec.display_name or name, issuer=issuer, discovery_url=discovery_url,
        client_id=spec.client_id, auth_method=method, scopes=list(spec.scopes) or ["openid", "email", "profile"],
        acr_values=list(spec.acr_values), claim_map=dict(spec.claim_map or {}), domains=domains, tenants=tenants,
        id_token_alg=spec.id_token_alg, acr=spec.acr, trust_amr=spec.trust_amr, create_accounts=spec.create_accounts,
        link_by_proof=spec.link_by_proof, trust_email=spec.trust_email,
        national_id_claim=spec.national_id_claim or None, test_environment=spec.test_environment, enabled=True,
        button=spec.button,
        metadata_doc=doc, metadata_at=now, created_at=now,
    )
    if "openid" not in row.scopes:
        row.scopes = ["openid", *row.scopes]
    row.client_secret = spec.client_secret
    if method == "private_key_jwt":
        key = RSAKey.generate_key(2048, private=True)
        row.key_id = secrets.token_hex(8)
        row.private_key = {**key.as_dict(private=True), "kid": row.key_id, "alg": "RS256", "use": "sig"}
    db.session.add(row)
    db.session.flush()
    forget_directory()
    audit.record("upstream_added", details={"upstream": name, "issuer": issuer, "domains": domains,
                                           "national": bool(row.national_id_claim)})
    return row


def remove(name: str) -> None:
    """Remove an upstream and every identity linked through it; the caller commits.

    Raises:
        InvalidInput: no such upstream.
    """
    row = by_name(name)
    if row is None:
        raise InvalidInput(f"no upstream named {name!r}")
    links = db.session.scalars(select(UpstreamIdentity).where(UpstreamIdentity.upstream_id == row.id)).all()
    audit.record("upstream_removed", details={"upstream": row.name, "identities": len(links)})
    db.session.delete(row)
    forget_directory()


def all_upstreams() -> list[Upstream]:
    return list(db.session.scalars(select(Upstream).order_by(Upstream.name)))


def by_name(name: str) -> Upstream | None:
    return db.session.scalar(select(Upstream).where(Upstream.name == name.strip().lower()))


def by_id(upstream_id: int) -> Upstream | None:
    return db.session.get(Upstream, upstream_id)


def for_domain(domain: str | None) -> Upstream | None:
    """The enabled company upstream that serves ``domain`` (home-realm discovery), if any."""
    if not domain:
        return None
    return db.session.scalar(select(Upstream).join(UpstreamDomain).where(
        UpstreamDomain.domain == domain.lower(), Upstream.enabled.is_(True), Upstream.national_id_claim.is_(None)))


def buttons() -> tuple[list[Upstream], list[Upstream]]:
    """(company upstreams, national eID upstreams) with a button on the email page."""
    rows = list(db.session.scalars(select(Upstream).where(Upstream.enabled.is_(True), Upstream.button.is_(True))
                                   .order_by(Upstream.name)))
    return [r for r in rows if not r.national], [r for r in rows if r.national]


@dataclass(frozen=True)
class Button:
    """An upstream as the email page shows it (plain data, kept between requests)."""

    name: str
    label: str
    national: bool
    endpoint: str | None  # its authorization endpoint (CSP form-action)


@dataclass(frozen=True)
class Directory:
    """What the email page needs of the upstreams: the buttons, and which
    domain goes to which upstream (home-realm discovery)."""

    buttons: tuple[Button, ...]
    domains: dict[str, str]
    endpoints: tuple[str, ...]

    @property
    def companies(self) -> list[Button]:
        return [b for b in self.buttons if not b.national]

    @property
    def national(self) -> list[Button]:
        return [b for b in self.buttons if b.national]


_DIRECTORY = "visma_idp.federation.directory"


def directory() -> Directory:
    """The upstreams of the email page, kept in this process for
    ``UPSTREAM_CACHE_SECONDS`` (a plain sign-in reads no upstream row; an
    upstream added or removed on another node shows within that time, on this
    one at once)."""
    from flask import current_app

    now = time.monotonic()
    cached = current_app.extensions.get(_DIRECTORY)
    if cached is not None and cached[0] > now:
        return cached[1]
    rows = list(db.session.scalars(select(Upstream).where(Upstream.enabled.is_(True)).order_by(Upstream.name)))
    endpoints = [(r.metadata_doc or {}).get("authorization_endpoint") for r in rows]
    found = Directory(
        buttons=tuple(Button(r.name, r.label, r.national, e if isinstance(e, str) else None)
                      for r, e in zip(rows, endpoints, strict=True) if r.button),
        domains={d: r.name for r in rows if not r.national for d in r.domains},
        endpoints=tuple(e for e in endpoints if isinstance(e, str)),
    )
    current_app.extensions[_DIRECTORY] = (now + current_idp().settings["UPSTREAM_CACHE_SECONDS"], found)
    return found


def forget_directory() -> None:
    """An upstream was added or removed: this process reads them again."""
    from flask import current_app

    current_app.extensions.pop(_DIRECTORY, None)


def allow_forms_to(endpoints: list[str | None]) -> None:
    """Let this page's forms end at these upstreams' authorization endpoints:
    Chromium applies CSP ``form-action`` to the redirect that follows a form
    post, so a page whose button (or email field, by home-realm discovery)
    leads to an upstream names its origin (from the operator's configuration,
    never from the request)."""
    from ..security import allow_form_action

    for endpoint in endpoints:
        if isinstance(endpoint, str):
            allow_form_action(endpoint)


def identities_of(user_id: int) -> list[UpstreamIdentity]:
    return list(db.session.scalars(
        select(UpstreamIdentity).where(UpstreamIdentity.user_id == user_id).order_by(UpstreamIdentity.linked_at)))


# -- discovery and keys ----------------------------------------------------------------


def metadata(row: Upstream) -> dict[str, Any]:
    """The upstream's discovery document, fetched again when older than
    ``UPSTREAM_METADATA_SECONDS`` (the old copy stays when it does not answer).

    Raises:
        UpstreamUnavailable: no good copy at all.
    """
    idp = current_idp()
    now = idp.clock.now()
    fresh = row.metadata_at is not None and now - row.metadata_at < idp.settings["UPSTREAM_METADATA_SECONDS"]
    if row.metadata_doc and fresh:
        return row.metadata_doc
    try:
        doc = _check_metadata(_fetch_json(row.name, row.discovery_url, "the discovery document"), row.issuer, row.name)
    except UpstreamUnavailable as exc:
        log.warning("upstream %s: %s%s", row.name, exc.reason, "; using the last good copy" if row.metadata_doc else "")
        if row.metadata_doc:
            return row.metadata_doc
        raise
    row.metadata_doc, row.metadata_at = doc, now
    db.session.commit()
    return doc


def jwks(row: Upstream, *, unknown_kid: bool = False) -> dict[str, Any]:
    """The upstream's public keys, fetched again when stale, or at once
    (at most once a minute) when a token names a key we do not have.

    Raises:
        UpstreamUnavailable: no good copy at all.
    """
    idp = current_idp()
    now = idp.clock.now()
    age = now - row.jwks_at if row.jwks_at is not None else None
    stale = age is None or age >= idp.settings["UPSTREAM_METADATA_SECONDS"] or (
        unknown_kid and age >= JWKS_RETRY_SECONDS)
    if row.jwks_doc and not stale:
        return row.jwks_doc
    url = metadata(row)["jwks_uri"]
    try:
        doc = _fetch_json(row.name, url, "the key set")
        if not isinstance(doc.get("keys"), list):
            raise UpstreamUnavailable(row.name, f"the key set at {url} has no keys")
    except UpstreamUnavailable as exc:
        log.warning("upstream %s: %s", row.name, exc.reason)
        if row.jwks_doc:
            return row.jwks_doc
        raise
    row.jwks_doc, row.jwks_at = doc, now
    db.session.commit()
    return doc


def public_jwks() -> dict[str, Any]:
    """The public halves of our ``private_key_jwt`` keys (``/upstreams/jwks.json``)."""
    keys = []
    for row in db.session.scalars(select(Upstream).where(Upstream.private_key_enc.is_not(None))):
        private = row.private_key
        if private:
            public = RSAKey.import_key(private).as_dict(private=False)
            keys.append({**public, "kid": row.key_id, "alg": "RS256", "use": "sig"})
    return {"keys": keys}


def as_dict(row: Upstream) -> dict[str, Any]:
    """What the CLI and the admin API show of an upstream (never its secret or private key)."""
    return {
        "name": row.name, "display_name": row.label, "issuer": row.issuer, "discovery_url": row.discovery_url,
        "client_id": row.client_id, "token_endpoint_auth_method": row.auth_method,
        "jwks_uri": current_idp().url("federation.jwks") if row.auth_method == "private_key_jwt" else None,
        "kid": row.key_id, "scopes": list(row.scopes), "acr_values": list(row.acr_values),
        "claim_map": dict(row.claim_map or {}), "domains": list(row.domains), "tenants": list(row.tenants),
        "id_token_alg": row.id_token_alg, "acr": row.acr, "trust_amr": row.trust_amr,
        "create_accounts": row.create_accounts, "link_by_proof": row.link_by_proof, "trust_email": row.trust_email,
        "national_id_claim": row.national_id_claim, "test_environment": row.test_environment,
        "enabled": row.enabled, "button": row.button, "redirect_uri": current_idp().url("federation.callback"),
    }
