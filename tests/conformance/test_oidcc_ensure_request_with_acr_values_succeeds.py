"""oidcc-ensure-request-with-acr-values-succeeds
(OIDCCEnsureRequestWithAcrValuesSucceeds): ``acr_values`` must not result in an
error (OIDC Core 3.1.2.1, "simply to have its use not result in an error");
the ID token should carry an acr that is one of the requested values
(ValidateIdTokenACRClaimAgainstAcrValuesRequest, a warning)."""

from tests.conformance.oidf import run_code_flow

PWD = "urn:visma_idp:acr:pwd"


def test_acr_values_we_offer_come_back(oidf, idp):
    result = run_code_flow(oidf, idp, acr_values=f"{PWD} urn:example:other")
    assert result.claims["acr"] == PWD


def test_unknown_acr_values_do_not_fail(oidf, idp):
    result = run_code_flow(oidf, idp, acr_values="1 2")  # the suite's default configuration
    assert result.claims["acr"] == PWD  # what the login achieved


def test_acr_values_are_advertised(client):
    assert PWD in client.get("/.well-known/openid-configuration").get_json()["acr_values_supported"]
