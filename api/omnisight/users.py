"""OmniSight user management: the calling user, their settings, the list (admin)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router, get, patch
from litestar.params import JSONBody, QueryParameter

from api.omnisight.guards import omni_scoped, user_only
from api.omnisight.schemas import UserSettingsBody
from api.omnisight.views import (
    MeView,
    UserListView,
    UserSettingsView,
    me_view,
    user_list_view,
    user_settings_view,
)
from api.state import services_of
from core.users import USERS_ADMIN_SCOPE


@get("/me", **user_only())
async def get_me(request: Request[Any, Any, Any]) -> MeView:
    """The signed-in user."""
    return me_view(await services_of(request.app).users.me(request.state.principal))


@patch("/me/settings", status_code=200, **user_only())
async def update_my_settings(
    request: Request[Any, Any, Any], data: JSONBody[UserSettingsBody]
) -> UserSettingsView:
    """Merge keys into the user's settings (a key set to null is removed). Only `settings`
    may be sent: role, email and the rest are not changed here."""
    user = await services_of(request.app).users.update_settings(
        request.state.principal, data.settings
    )
    return user_settings_view(user)


@get("/", **omni_scoped(USERS_ADMIN_SCOPE))
async def list_users(
    request: Request[Any, Any, Any],
    page: Annotated[int, QueryParameter(ge=1, le=1_000_000)] = 1,
    limit: Annotated[int, QueryParameter(ge=1, le=100)] = 10,
) -> UserListView:
    """All users, oldest first (admin only)."""
    return user_list_view(await services_of(request.app).users.page(page, limit))


router = Router(path="/users", route_handlers=[get_me, update_my_settings, list_users],
                tags=["OmniSight: users"])
