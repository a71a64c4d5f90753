"""An error nobody foresaw still answers in problem+json, without leaking the exception."""

from fastapi.testclient import TestClient

import licensing.api.routers.accounts as accounts_router


def test_an_unexpected_error_is_a_problem_500_that_hides_the_exception(app, api_keys, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("secret connection string")

    monkeypatch.setattr(accounts_router.accounts, "create_account", broken)
    client = TestClient(app, raise_server_exceptions=False, headers={"Authorization": f"Bearer {api_keys['billing']}"})

    response = client.post("/api/v1/accounts", json={"name": "Acme", "email": "a@acme.test", "currency": "EUR"})

    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "internal_error"
    assert "secret" not in response.text
