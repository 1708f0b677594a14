"""Bearer tokens: required everywhere, rotated with the password, revocable."""

from __future__ import annotations

import httpx
import pytest

from pigeon_testing.stack import Stack

from .api_helpers import assert_error_shape

pytestmark = pytest.mark.asyncio(loop_scope="session")


def _anonymous(stack: Stack) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=stack.base_url, timeout=30)


async def test_every_api_endpoint_needs_a_token(stack: Stack) -> None:
    assert stack.client is not None
    spec = (await stack.client.get("/api/v1/openapi.json")).json()
    public = {("post", "/api/v1/auth/token")}
    async with _anonymous(stack) as anonymous:
        checked = 0
        for path, operations in spec["paths"].items():
            if not path.startswith("/api/v1"):
                continue
            url = path.replace("{campaign_id}", "8d3b2a1c-7e90-4c55-9f0e-6f2c1d4e2b7a")
            url = url.replace("{mailbox_id}", "8d3b2a1c-7e90-4c55-9f0e-6f2c1d4e2b7a")
            url = url.replace("{recipient_id}", "8d3b2a1c-7e90-4c55-9f0e-6f2c1d4e2b7a")
            for method in operations:
                if (method, path) in public:
                    continue
                response = await anonymous.request(method.upper(), url)
                assert_error_shape(response, 401)
                assert response.headers["www-authenticate"] == "Bearer"
                checked += 1
        assert checked >= 15


@pytest.mark.parametrize(
    "header",
    [
        "Bearer nonsense",
        "Bearer pgn_00000000000000000000000000000000_" + "A" * 43,
        "Basic YWRtaW46YWRtaW4=",
        "Bearer pgn_",
    ],
)
async def test_wrong_tokens_get_401(stack: Stack, header: str) -> None:
    async with _anonymous(stack) as anonymous:
        response = await anonymous.get("/api/v1/campaigns", headers={"Authorization": header})
        assert_error_shape(response, 401)


async def _new_user(stack: Stack, email: str, password: str) -> str:
    assert stack.client is not None
    created = await stack.client.post("/api/v1/users", json={"email": email, "password": password})
    assert created.status_code == 201, created.text
    async with _anonymous(stack) as anonymous:
        response = await anonymous.post(
            "/api/v1/auth/token", json={"email": email, "password": password}
        )
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


async def test_token_rotates_when_the_password_changes(stack: Stack) -> None:
    old = await _new_user(stack, "rotate@example.com", "first-password-1")
    async with _anonymous(stack) as anonymous:
        auth = {"Authorization": f"Bearer {old}"}
        assert (await anonymous.get("/api/v1/users/me", headers=auth)).status_code == 200
        changed = await anonymous.post(
            "/api/v1/users/me/password",
            headers=auth,
            json={"current_password": "first-password-1", "new_password": "second-password-2"},
        )
        assert changed.status_code == 200, changed.text
        new = changed.json()["token"]
        assert new != old
        assert_error_shape(await anonymous.get("/api/v1/users/me", headers=auth), 401)
        me = await anonymous.get("/api/v1/users/me", headers={"Authorization": f"Bearer {new}"})
        assert me.json()["email"] == "rotate@example.com"
        wrong = await anonymous.post(
            "/api/v1/auth/token",
            json={"email": "rotate@example.com", "password": "first-password-1"},
        )
        assert_error_shape(wrong, 401)


async def test_revoked_token_gets_401(stack: Stack) -> None:
    old = await _new_user(stack, "revoke@example.com", "some-password-1")
    async with _anonymous(stack) as anonymous:
        auth = {"Authorization": f"Bearer {old}"}
        revoked = await anonymous.post("/api/v1/users/me/tokens/revoke", headers=auth)
        assert revoked.status_code == 200
        assert_error_shape(await anonymous.get("/api/v1/campaigns", headers=auth), 401)
        new = {"Authorization": f"Bearer {revoked.json()['token']}"}
        assert (await anonymous.get("/api/v1/campaigns", headers=new)).status_code == 200


async def test_only_admins_manage_users(stack: Stack) -> None:
    token = await _new_user(stack, "plain@example.com", "plain-password-1")
    async with _anonymous(stack) as anonymous:
        response = await anonymous.post(
            "/api/v1/users",
            headers={"Authorization": f"Bearer {token}"},
            json={"email": "other@example.com", "password": "other-password-1"},
        )
        assert_error_shape(response, 403)


async def test_duplicate_user_and_short_password(stack: Stack) -> None:
    assert stack.client is not None
    body = {"email": "dup@example.com", "password": "dup-password-1"}
    assert (await stack.client.post("/api/v1/users", json=body)).status_code == 201
    assert_error_shape(await stack.client.post("/api/v1/users", json=body), 409)
    short = {"email": "short@example.com", "password": "short"}
    assert_error_shape(
        await stack.client.post("/api/v1/users", json=short), 422, mentions="password"
    )
