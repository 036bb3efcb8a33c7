"""The ``visma-idp upstreams`` commands: add, list and remove upstream
OpenID providers (a company's ADFS or Entra ID, national eID)."""

from __future__ import annotations

import json

import click

from ..cli_support import provider_app, table
from ..errors import InvalidInput


@click.group()
def upstreams() -> None:
    """Add, list and remove upstream OpenID providers people may sign in through."""


def _claim_map(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        ours, sep, theirs = value.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise InvalidInput(f"--claim must be OURS=THEIRS, like email=upn: {value!r}")
        if ours.strip() not in ("sub", "email", "email_verified", "name"):
            raise InvalidInput("--claim maps sub, email, email_verified or name")
        out[ours.strip()] = theirs.strip()
    return out


@upstreams.command("add")
@click.option("--name", required=True, help="Short name (a-z, 0-9, - and _), used in URLs and commands.")
@click.option("--display-name", default="", help="What people see on the buttons (default: the name).")
@click.option("--issuer", help="The issuer (its discovery document is at ISSUER/.well-known/openid-configuration).")
@click.option("--discovery-url", help="The discovery document's URL, when it is not below the issuer "
                                      "(Entra ID multi-tenant: .../organizations/v2.0/.well-known/openid-configuration).")
@click.option("--client-id", required=True, help="Our client id at the upstream.")
@click.option("--client-secret", help="Our client secret at the upstream (stored encrypted).")
@click.option("--private-key-jwt", is_flag=True,
              help="Authenticate with a key of our own instead of a secret: an RSA key is made, and its public half "
                   "is published at /upstreams/jwks.json (register that URL at the upstream).")
@click.option("--client-secret-post", is_flag=True, help="Send the secret in the form (client_secret_post), not in "
                                                         "the Authorization header.")
@click.option("--scope", "scopes", multiple=True, help="Scope to ask for (repeatable; default: openid email profile).")
@click.option("--acr-values", "acr_values", multiple=True, help="acr_values to ask the upstream for (repeatable).")
@click.option("--claim", "claims", multiple=True, help="Where a claim comes from: OURS=THEIRS (sub, email, "
                                                       "email_verified, name), like email=upn.")
@click.option("--domain", "domains", multiple=True,
              help="An email domain this upstream serves (repeatable): its addresses go straight to it on the "
                   "email page.")
@click.option("--no-button", is_flag=True, help="No \"Sign in with ...\" button on the email page (its --domain "
                                               "addresses still go to it).")
@click.option("--tenant", "tenants", multiple=True,
              help="A tenant id (tid) allowed for a multi-tenant issuer with {tenantid} (repeatable).")
@click.option("--id-token-alg", default="RS256", show_default=True, help="The one algorithm its ID tokens may use.")
@click.option("--acr", help="The session's acr after signing in here (default: one factor, urn:visma_idp:acr:pwd).")
@click.option("--trust-amr", is_flag=True, help="Add the upstream's amr values to ours (fed).")
@click.option("--create-accounts", is_flag=True,
              help="Create accounts just in time for new people of its --domain values whose verified email it "
                   "vouches for (an existing account is never taken over: its owner links it with the password).")
@click.option("--no-link", is_flag=True, help="Do not let people link an identity of it to an account by proving it.")
@click.option("--trust-email", is_flag=True,
              help="Count its email claim as verified without email_verified (only for --create-accounts; "
                   "never for linking).")
@click.option("--national-id-claim", help="A national eID: the claim with the national identity number "
                                          "(pid for ID-porten, nnin_altsub for BankID).")
@click.option("--test-environment", is_flag=True, help="A test environment: synthetic national identity numbers "
                                                       "are accepted from it.")
def upstreams_add(name: str, display_name: str, issuer: str | None, discovery_url: str | None, client_id: str,
                  client_secret: str | None, private_key_jwt: bool, client_secret_post: bool,
                  scopes: tuple[str, ...], acr_values: tuple[str, ...], claims: tuple[str, ...],
                  domains: tuple[str, ...], no_button: bool, tenants: tuple[str, ...], id_token_alg: str, acr: str | None,
                  trust_amr: bool, create_accounts: bool, no_link: bool, trust_email: bool,
                  national_id_claim: str | None, test_environment: bool) -> None:
    """Add an upstream provider (its discovery document is fetched now) and print it as JSON."""
    from ..storage import db
    from .upstreams import UpstreamSpec, add, as_dict

    spec = UpstreamSpec(
        name=name, display_name=display_name, issuer=issuer, discovery_url=discovery_url, client_id=client_id,
        client_secret=client_secret, private_key_jwt=private_key_jwt,
        auth_method="client_secret_post" if client_secret_post else None,
        scopes=tuple(s for v in scopes for s in v.split()), acr_values=tuple(a for v in acr_values for a in v.split()),
        claim_map=_claim_map(claims), domains=domains, tenants=tenants, id_token_alg=id_token_alg, acr=acr,
        trust_amr=trust_amr, create_accounts=create_accounts, link_by_proof=not no_link, trust_email=trust_email,
        national_id_claim=national_id_claim, test_environment=test_environment, button=not no_button,
    )
    app = provider_app()
    with app.app_context():
        row = add(spec)
        db.session.commit()
        click.echo(json.dumps(as_dict(row), indent=2))


@upstreams.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line instead of a table.")
def upstreams_list(as_json: bool) -> None:
    """List upstream providers (never their secrets)."""
    from .upstreams import all_upstreams, as_dict

    app = provider_app()
    with app.app_context():
        items = [as_dict(u) for u in all_upstreams()]
    if as_json:
        for item in items:
            click.echo(json.dumps(item))
        return
    table(["name", "issuer", "client_id", "auth", "domains", "national_id_claim", "create_accounts"],
          [[u["name"], u["issuer"], u["client_id"], u["token_endpoint_auth_method"], " ".join(u["domains"]),
            u["national_id_claim"] or "", "yes" if u["create_accounts"] else "no"] for u in items])


@upstreams.command("remove")
@click.argument("name")
def upstreams_remove(name: str) -> None:
    """Remove an upstream provider and every identity linked through it (national identity numbers stay)."""
    from ..storage import db
    from .upstreams import remove

    app = provider_app()
    with app.app_context():
        remove(name)
        db.session.commit()
    click.echo(f"removed {name}")
