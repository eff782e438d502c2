"""OmniSight user management: /users/me, /users/me/settings, /users (admin)."""

from __future__ import annotations

import math

from tests.conftest import bearer, token_for
from tests.omnisight.conftest import ADMIN_EMAIL, BASE, error_of, new_user, register


async def test_me_has_the_documents_body(client):
    user = await new_user(client)
    me = await client.get(f"{BASE}/users/me", headers=bearer(user["token"]))
    assert me.status_code == 200
    body = me.json()
    assert set(body) == {"id", "username", "email", "role", "lastLogin", "settings"}
    assert body["id"] == user["user"]["id"] and body["role"] == "user"
    assert body["settings"] == {}


async def test_settings_are_merged_and_only_settings_may_change(client):
    user = await new_user(client)
    headers = bearer(user["token"])
    first = await client.patch(f"{BASE}/users/me/settings", headers=headers,
                               json={"settings": {"theme": "dark", "notifications": True}})
    assert first.status_code == 200, first.text
    assert first.json() == {"id": user["user"]["id"],
                            "settings": {"theme": "dark", "notifications": True}}
    second = await client.patch(f"{BASE}/users/me/settings", headers=headers,
                                json={"settings": {"theme": "light", "notifications": False}})
    assert second.json()["settings"] == {"theme": "light", "notifications": False}
    removed = await client.patch(f"{BASE}/users/me/settings", headers=headers,
                                 json={"settings": {"notifications": None, "layout": {"grid": 4}}})
    assert removed.json()["settings"] == {"theme": "light", "layout": {"grid": 4}}

    for body in ({"settings": {"theme": "x"}, "role": "admin"}, {"role": "admin"},
                 {"settings": {}, "email": "x@example.com"}):
        escalate = await client.patch(f"{BASE}/users/me/settings", headers=headers, json=body)
        assert escalate.status_code == 400, escalate.text
        error = error_of(escalate)
        assert error["code"] == "VALIDATION_ERROR"
        assert error["details"]["field"] in ("role", "email", "settings")
    assert error_of(await client.patch(f"{BASE}/users/me/settings", headers=headers, json={
        "settings": {}, "role": "admin"}))["details"]["field"] == "role"
    me = (await client.get(f"{BASE}/users/me", headers=headers)).json()
    assert me["role"] == "user" and me["settings"] == {"theme": "light", "layout": {"grid": 4}}
    assert me["email"] == user["user"]["email"]

    for bad in ({"settings": "dark"}, {"settings": ["a"]}, {"settings": {"k": "x" * 17_000}},
                {"settings": {f"k{i}": i for i in range(65)}}):
        response = await client.patch(f"{BASE}/users/me/settings", headers=headers, json=bad)
        assert response.status_code == 400, (bad, response.text)
        assert error_of(response)["details"]["field"] == "settings"
    anonymous = await client.patch(f"{BASE}/users/me/settings", json={"settings": {}})
    assert anonymous.status_code == 401


async def test_only_admins_list_users_page_by_page(client, admin_user, admin_token):
    user = await new_user(client)
    for _ in range(4):
        assert (await register(client)).status_code == 201
    refused = await client.get(f"{BASE}/users", headers=bearer(user["token"]))
    assert refused.status_code == 403 and error_of(refused)["code"] == "FORBIDDEN"
    assert "users:admin" in error_of(refused)["message"]
    assert (await client.get(f"{BASE}/users")).status_code == 401

    headers = bearer(admin_user["token"])
    everyone = (await client.get(f"{BASE}/users", headers=headers)).json()
    assert set(everyone) == {"users", "total", "page", "limit", "pages"}
    assert (everyone["total"], everyone["page"], everyone["limit"], everyone["pages"]) == (6, 1, 10, 1)
    for entry in everyone["users"]:
        assert set(entry) == {"id", "username", "email", "role", "lastLogin"}
    assert everyone["users"][0]["email"] == ADMIN_EMAIL  # oldest first
    never = [u for u in everyone["users"] if u["lastLogin"] is None]
    assert len(never) == 4

    pages = [(await client.get(f"{BASE}/users?page={p}&limit=4", headers=headers)).json()
             for p in (1, 2, 3)]
    assert [len(p["users"]) for p in pages] == [4, 2, 0]
    assert all(p["pages"] == math.ceil(6 / 4) and p["total"] == 6 for p in pages)
    ids = [u["id"] for p in pages for u in p["users"]]
    assert ids == [u["id"] for u in everyone["users"]]

    for query in ("page=0", "limit=0", "limit=101", "page=x"):
        bad = await client.get(f"{BASE}/users?{query}", headers=headers)
        assert bad.status_code == 400 and error_of(bad)["code"] == "VALIDATION_ERROR", query
        assert error_of(bad)["details"]["field"] == query.split("=")[0]

    # An API client holding users:admin may list them too (same token service, same scopes).
    manager = await token_for(client, admin_token, ["users:admin"])
    assert (await client.get(f"{BASE}/users", headers=bearer(manager))).status_code == 200
