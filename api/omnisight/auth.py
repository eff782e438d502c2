"""OmniSight authentication: register, login, refresh-token, logout (users)."""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, post
from litestar.params import JSONBody

from api.auth import SECURITY_SCHEME, authenticate
from api.omnisight.schemas import LoginBody, RefreshTokenBody, RegisterBody
from api.omnisight.views import (
    LoginView,
    MessageView,
    RefreshView,
    RegisteredView,
    login_view,
    refresh_view,
    registered_view,
)
from api.state import services_of
from core.users import USERS_ADMIN_SCOPE


@post("/register", status_code=201,
      security=[{}, {SECURITY_SCHEME: [USERS_ADMIN_SCOPE]}])
async def register(request: Request[Any, Any, Any], data: JSONBody[RegisterBody]) -> RegisteredView:
    """Create an account. While registration is open (VAS_OPEN_REGISTRATION) anyone may
    create a `user`; `role: "admin"`, or any account while it is closed, needs a token with
    `users:admin`."""
    by = await authenticate(request) if request.headers.get("authorization") else None
    user = await services_of(request.app).users.register(
        data.username, data.email, data.password, data.role, by
    )
    return registered_view(user)


@post("/login", status_code=200, security=[])
async def login(request: Request[Any, Any, Any], data: JSONBody[LoginBody]) -> LoginView:
    """Sign in: an access token (1 h) and the refresh token of a new session (7 d).
    Repeated failures for one email are answered 429 for a while."""
    return login_view(await services_of(request.app).users.login(data.email, data.password))


@post("/refresh-token", status_code=200, security=[])
async def refresh_token(
    request: Request[Any, Any, Any], data: JSONBody[RefreshTokenBody]
) -> RefreshView:
    """A new access token and a new refresh token; the one presented stops working.
    Presenting an already-used refresh token ends its session."""
    return refresh_view(await services_of(request.app).users.refresh(data.refresh_token))


@post("/logout", status_code=200, security=[])
async def logout(
    request: Request[Any, Any, Any], data: JSONBody[RefreshTokenBody]
) -> MessageView:
    """End the session of the refresh token (its access tokens stop working too)."""
    await services_of(request.app).users.logout(data.refresh_token)
    return {"message": "Logged out successfully"}


router = Router(path="/auth", route_handlers=[register, login, refresh_token, logout],
                tags=["OmniSight: authentication"])
