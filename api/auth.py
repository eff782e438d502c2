"""Authentication and scopes in one guard: bearer JWT → principal → scope check."""

from __future__ import annotations

from typing import Any

from litestar import Litestar
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.types import Guard

from api.state import services_of
from core.clients import ADMIN_SCOPE
from core.errors import Forbidden, Unauthorized
from core.tokens import Principal, decode_access_token

SECURITY_SCHEME = "BearerToken"


def _bearer(connection: ASGIConnection[Any, Any, Any, Any]) -> str:
    header = connection.headers.get("authorization")
    if not header:
        raise Unauthorized("Not authenticated: send 'Authorization: Bearer <access_token>'")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <access_token>'")
    return token.strip()


async def verify_token(app: Litestar, token: str) -> Principal:
    """Decode an access token (pinned algorithm) and refuse revoked clients, removed or
    disabled users and ended user sessions (the revocation hook, per kind of subject)."""
    services = services_of(app)
    principal = decode_access_token(services.settings.auth.jwt_secret, token)
    if principal.is_user:
        await services.users.check_active(principal)
    else:
        await services.clients.check_active(principal)
    return principal


async def authenticate(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """Check the caller's bearer token; the principal is kept on `connection.state`."""
    principal = await verify_token(connection.app, _bearer(connection))
    connection.state.principal = principal
    return principal


async def check_scope(connection: ASGIConnection[Any, Any, Any, Any], scope: str) -> None:
    """401 without a valid token, 403 when it lacks `scope` (admins hold every scope)."""
    principal = await authenticate(connection)
    if scope not in principal.scopes and ADMIN_SCOPE not in principal.scopes:
        raise Forbidden(f"This operation needs the '{scope}' scope")


def requires(scope: str) -> Guard:
    """A guard admitting tokens that carry `scope`."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        await check_scope(connection, scope)

    return guard


def requires_v1(scope: str) -> Guard:
    """V1 device routes are open (legacy) unless VAS_V1_AUTH=required."""

    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        if services_of(connection.app).settings.auth.v1_auth_required:
            await check_scope(connection, scope)

    return guard


def scoped(scope: str) -> dict[str, Any]:
    """Route options for a V2 route needing `scope`: the guard plus its OpenAPI security."""
    return {
        "guards": [requires(scope)],
        "security": [{SECURITY_SCHEME: [scope]}],
        "opt": {"scope": scope},
    }


def scoped_v1(scope: str) -> dict[str, Any]:
    """Route options for a V1 route: open by default, `scope` when VAS_V1_AUTH=required."""
    return {
        "guards": [requires_v1(scope)],
        "security": [{}, {SECURITY_SCHEME: [scope]}],
        "opt": {"scope": scope, "v1": True},
    }
