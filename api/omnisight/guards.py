"""Route options for OmniSight routes: the one auth guard of api.auth plus OpenAPI security.

User tokens and API-client tokens are both accepted; what decides is the scope.
"""

from __future__ import annotations

from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler

from api.auth import SECURITY_SCHEME, authenticate, requires
from core.errors import Forbidden


def omni_scoped(scope: str) -> dict[str, Any]:
    """Options for a route needing `scope` (`admin` satisfies every scope)."""
    return {
        "guards": [requires(scope)],
        "security": [{SECURITY_SCHEME: [scope]}],
        "opt": {"omnisight_scope": scope},
    }


async def _user_only(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    principal = await authenticate(connection)
    if not principal.is_user:
        raise Forbidden("This route is for user accounts; an API client's token has no user")


def user_only() -> dict[str, Any]:
    """Options for a route about the calling user (`/users/me…`): any user token."""
    return {
        "guards": [_user_only],
        "security": [{SECURITY_SCHEME: []}],
        "opt": {"omnisight_scope": "user"},
    }
