"""The console's admin pages: webhooks and API keys are for admins only (403 for any other role,
and nothing written); a secret is shown once, on the page that answers the form, never in a
link; what the forms make is the API's."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

HOOK = "http://127.0.0.1:9/hooks/licensing"


@pytest.fixture
def local_webhooks(set_operator_setting):
    """Webhooks to 127.0.0.1 allowed, as an operator who receives them on the same host would."""
    set_operator_setting("webhook_allowed_networks", "127.0.0.0/8")


def _secret(page, field_id: str) -> str:
    return re.search(rf'id="{field_id}" type="text" readonly value="([^"]+)"', page.text).group(1)


@pytest.mark.parametrize("role", ["billing", "read"])
def test_the_admin_pages_are_refused_to_other_roles_and_write_nothing(console, client, role, local_webhooks):
    visitor = console(role)
    webhook = client.as_role("admin").post("/api/v1/webhooks", json={"url": HOOK, "events": ["*"]}).json()
    keys_before = client.as_role("admin").get("/api/v1/api-keys").json()["items"]

    answers = [
        visitor.get("/console/webhooks"),
        visitor.get("/console/api-keys"),
        visitor.submit("/console/webhooks", {"url": HOOK, "event:*": "true"}),
        visitor.submit(f"/console/webhooks/{webhook['id']}/delete"),
        visitor.submit("/console/api-keys", {"name": "sneaky", "role": "admin"}),
        visitor.submit(f"/console/api-keys/{keys_before[0]['id']}/revoke"),
    ]

    assert [answer.status_code for answer in answers] == [403] * 6
    assert all("forbidden" in answer.text for answer in answers)
    assert [item["id"] for item in client.as_role("admin").get("/api/v1/webhooks").json()["items"]] == [webhook["id"]]
    assert client.as_role("admin").get("/api/v1/api-keys").json()["items"] == keys_before
    assert 'href="/console/webhooks"' not in visitor.get("/console").text  # nor offered in the menu


def test_a_webhook_registered_through_the_form_is_the_apis_and_its_secret_is_shown_once(console, client, local_webhooks):
    admin = console("admin")

    response = admin.submit("/console/webhooks", {"url": HOOK, "event:invoice.approved": "true", "event:credits.consumed": "true"})

    assert response.status_code == 200
    assert "Its signing secret is shown only this once" in response.text
    secret = _secret(response, "created-secret")
    webhooks = client.get("/api/v1/webhooks").json()["items"]
    assert [(webhook["url"], webhook["events"]) for webhook in webhooks] == [(HOOK, ["invoice.approved", "credits.consumed"])]
    assert "secret" not in webhooks[0]
    again = admin.get("/console/webhooks")
    assert HOOK in again.text and secret not in again.text


def test_a_webhook_to_a_private_address_is_refused_with_the_apis_code_and_not_registered(console, client):
    response = console("admin").submit("/console/webhooks", {"url": HOOK, "event:*": "true"})

    assert response.status_code == 422
    assert "webhook_url_forbidden" in response.text
    assert f'value="{HOOK}"' in response.text  # the form as it was filled in
    assert client.get("/api/v1/webhooks").json()["items"] == []


def test_a_webhook_without_events_is_refused_naming_the_field(console, client, local_webhooks):
    response = console("admin").submit("/console/webhooks", {"url": HOOK})

    assert response.status_code == 422
    assert "validation_error" in response.text and "<code>events</code>" in response.text
    assert client.get("/api/v1/webhooks").json()["items"] == []


def test_the_delete_button_deletes_the_webhook(console, client, local_webhooks):
    webhook = client.post("/api/v1/webhooks", json={"url": HOOK, "events": ["*"]}).json()
    admin = console("admin")
    assert f'action="/console/webhooks/{webhook["id"]}/delete"' in admin.get("/console/webhooks").text

    response = admin.submit(f"/console/webhooks/{webhook['id']}/delete")

    assert response.status_code == 303
    assert response.headers["location"] == "/console/webhooks?done=deleted"
    assert client.get("/api/v1/webhooks").json()["items"] == []
    page = admin.get(response.headers["location"])
    assert "The webhook was deleted" in page.text and "No webhook is registered." in page.text


def test_an_api_key_created_through_the_form_works_over_the_api_and_its_secret_is_shown_once(console, client, app):
    admin = console("admin")

    response = admin.submit("/console/api-keys", {"name": "frontdesk", "role": "read", "expires_at": "2099-01-01T00:00:00Z", "account_ids": ""})

    assert response.status_code == 200
    assert "Its secret is shown only this once" in response.text
    secret = _secret(response, "created-key")
    over_the_api = TestClient(app, headers={"Authorization": f"Bearer {secret}"})
    assert over_the_api.get("/api/v1/products").status_code == 200
    assert over_the_api.post("/api/v1/credit-prices", json={"name": "Room", "credits_per_unit": "2"}).status_code == 403  # a read key
    [key] = [key for key in client.as_role("admin").get("/api/v1/api-keys").json()["items"] if key["name"] == "frontdesk"]
    assert (key["role"], key["status"], key["expires_at"], key["account_ids"]) == ("read", "active", "2099-01-01T00:00:00+00:00", None)
    again = admin.get("/console/api-keys")
    assert "frontdesk" in again.text and secret not in again.text


def test_an_api_key_may_be_limited_to_accounts(console, client):
    response = console("admin").submit("/console/api-keys", {"name": "desk", "role": "bookings", "account_ids": "7, 8"})

    assert response.status_code == 422  # accounts 7 and 8 do not exist
    assert "unknown_reference" in response.text
    assert [key["name"] for key in client.as_role("admin").get("/api/v1/api-keys").json()["items"] if key["name"] == "desk"] == []


def test_a_refused_api_key_is_shown_with_the_apis_code_and_nothing_is_written(console, client):
    keys_before = client.as_role("admin").get("/api/v1/api-keys").json()["items"]

    response = console("admin").submit("/console/api-keys", {"name": "frontdesk", "role": "owner", "expires_at": "tomorrow"})

    assert response.status_code == 422
    assert "validation_error" in response.text and "<code>role</code>" in response.text and "<code>expires_at</code>" in response.text
    assert client.as_role("admin").get("/api/v1/api-keys").json()["items"] == keys_before


def test_the_revoke_button_revokes_the_key(console, client, app):
    admin = console("admin")
    secret = _secret(admin.submit("/console/api-keys", {"name": "frontdesk", "role": "read"}), "created-key")
    [key] = [key for key in client.as_role("admin").get("/api/v1/api-keys").json()["items"] if key["name"] == "frontdesk"]

    response = admin.submit(f"/console/api-keys/{key['id']}/revoke")

    assert response.status_code == 303
    assert response.headers["location"] == "/console/api-keys?done=revoked"
    assert TestClient(app, headers={"Authorization": f"Bearer {secret}"}).get("/api/v1/products").status_code == 401
    page = admin.get(response.headers["location"])
    assert "The API key was revoked" in page.text
    assert f'action="/console/api-keys/{key["id"]}/revoke"' not in page.text


def test_a_post_without_the_csrf_token_is_refused_and_writes_nothing(console, client, local_webhooks):
    admin = console("admin")
    keys_before = client.as_role("admin").get("/api/v1/api-keys").json()["items"]

    answers = [
        admin.post("/console/webhooks", data={"url": HOOK, "event:*": "true"}),
        admin.post("/console/api-keys", data={"name": "frontdesk", "role": "admin"}),
        admin.post(f"/console/api-keys/{keys_before[0]['id']}/revoke", data={"csrf_token": "forged"}),
    ]

    assert [answer.status_code for answer in answers] == [403, 403, 403]
    assert client.get("/api/v1/webhooks").json()["items"] == []
    assert client.as_role("admin").get("/api/v1/api-keys").json()["items"] == keys_before
