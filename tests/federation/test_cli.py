"""``visma-idp upstreams add|list|remove`` against a real upstream (its
discovery document is fetched at add time), on a migrated database."""

from __future__ import annotations

import json

import pytest

from tests.federation.conftest import SECRET, TENANT_A

pytestmark = pytest.mark.interop


def test_add_list_and_remove(migrated, company_idp):
    result = migrated("upstreams", "add", "--name", "acme", "--display-name", "Acme ID", "--issuer", company_idp.issuer,
                      "--client-id", "visma-idp", "--client-secret", SECRET, "--domain", "Acme.no",
                      "--create-accounts", "--acr", "urn:visma_idp:acr:mfa", "--trust-amr")
    shown = json.loads(result.stdout)
    assert shown["domains"] == ["acme.no"] and shown["create_accounts"] is True
    assert shown["redirect_uri"].endswith("/upstreams/callback")
    assert SECRET not in result.stdout
    listed = migrated("upstreams", "list", "--json").stdout.splitlines()
    assert [json.loads(line)["name"] for line in listed] == ["acme"]
    table = migrated("upstreams", "list").stdout
    assert "acme" in table and SECRET not in table
    migrated("upstreams", "remove", "acme")
    assert migrated("upstreams", "list", "--json").stdout.strip() == ""


def test_private_key_jwt_prints_the_jwks_uri_to_register(migrated, company_idp):
    result = migrated("upstreams", "add", "--name", "acme", "--issuer", company_idp.issuer, "--client-id", "visma-idp",
                      "--private-key-jwt")
    shown = json.loads(result.stdout)
    assert shown["token_endpoint_auth_method"] == "private_key_jwt"
    assert shown["jwks_uri"].endswith("/upstreams/jwks.json") and shown["kid"]
    assert '"d"' not in result.stdout  # never the private key


@pytest.mark.parametrize("args, message", [
    (["--issuer", "http://idp.example.com"], "must use https"),
    (["--issuer", "http://127.0.0.1:9"], "did not answer"),
    (["--discovery-url", "http://127.0.0.1:9/{tenantid}"], "did not answer"),
    (["--id-token-alg", "none"], "never none"),
    (["--domain", "*.acme.no"], "not a domain name"),
    (["--create-accounts"], "needs the --domain"),
    (["--national-id-claim", "pid", "--domain", "acme.no"], "no --domain or --create-accounts"),
    (["--claim", "sub"], "OURS=THEIRS"),
])
def test_mistakes_are_refused_with_the_reason(migrated, company_idp, args, message):
    base = ["upstreams", "add", "--name", "acme", "--client-id", "visma-idp", "--client-secret", SECRET]
    if "--issuer" not in args and "--discovery-url" not in args:
        base += ["--issuer", company_idp.issuer]
    result = migrated(*base, *args, expect=1)
    assert message in result.stderr, result.stderr


def test_a_multi_tenant_issuer_needs_its_tenants_and_a_discovery_url(migrated, entra_idp):
    template = f"{entra_idp.origin}/{{tenantid}}/v2.0"
    discovery = f"{entra_idp.origin}/organizations/v2.0/.well-known/openid-configuration"
    common = ["upstreams", "add", "--name", "contoso", "--client-id", "visma-idp", "--client-secret", SECRET]
    assert "needs --discovery-url" in migrated(*common, "--issuer", template, expect=1).stderr
    assert "allowed tenants" in migrated(*common, "--issuer", template, "--discovery-url", discovery, expect=1).stderr
    shown = json.loads(migrated(*common, "--issuer", template, "--discovery-url", discovery,
                                "--tenant", TENANT_A.upper()).stdout)
    assert shown["tenants"] == [TENANT_A] and shown["issuer"] == template


def test_a_discovery_document_of_another_issuer_is_refused(migrated, company_idp):
    result = migrated("upstreams", "add", "--name", "acme", "--issuer", company_idp.issuer + "/other",
                      "--discovery-url", company_idp.discovery_url, "--client-id", "x", "--client-secret", SECRET,
                      expect=1)
    assert "names issuer" in result.stderr


def test_remove_unknown_and_a_taken_name(migrated, company_idp):
    assert "no upstream named" in migrated("upstreams", "remove", "nobody", expect=1).stderr
    args = ["upstreams", "add", "--name", "acme", "--issuer", company_idp.issuer, "--client-id", "x",
            "--client-secret", SECRET]
    migrated(*args)
    assert "exists already" in migrated(*args, expect=1).stderr
