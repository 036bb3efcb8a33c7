from visma_idp.oidc.tokens import verify


def test_code_flow_end_to_end(flow, idp, app):
    tokens = flow.tokens(scope="openid email profile")
    with app.app_context():
        header, claims = verify(idp.keys, tokens["id_token"], issuer=idp.issuer)
    assert header["alg"] == "RS256"
    assert claims["aud"] == "expense"
    assert claims["nonce"] == flow.last["nonce"]
    assert claims["amr"] == ["pwd"]
    resp = flow.client.get("/userinfo", headers={"Authorization": "Bearer " + tokens["access_token"]})
    assert resp.status_code == 200, resp.get_data(as_text=True)
    assert resp.get_json()["email"] == "kari@example.no"
