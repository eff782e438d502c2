"""OmniSight response bodies (camelCase, dates as `2023-01-01T00:00:00.000Z`)."""

from __future__ import annotations

import math
from typing import Any, TypedDict

from core.clock import iso_ms
from core.users import UserPage, UserRecord, UserTokens


class RegisteredView(TypedDict):
    id: str
    username: str
    email: str
    role: str
    createdAt: str


class LoginUserView(TypedDict):
    id: str
    username: str
    email: str
    role: str


class LoginView(TypedDict):
    token: str
    refreshToken: str
    user: LoginUserView


class RefreshView(TypedDict):
    token: str
    refreshToken: str


class MessageView(TypedDict):
    message: str


class MeView(TypedDict):
    id: str
    username: str
    email: str
    role: str
    lastLogin: str | None
    settings: dict[str, Any]


class UserSettingsView(TypedDict):
    id: str
    settings: dict[str, Any]


class UserListItemView(TypedDict):
    id: str
    username: str
    email: str
    role: str
    lastLogin: str | None


class UserListView(TypedDict):
    users: list[UserListItemView]
    total: int
    page: int
    limit: int
    pages: int


class SystemSettingsUpdatedView(TypedDict):
    message: str
    settings: dict[str, Any]


def registered_view(user: UserRecord) -> RegisteredView:
    return {"id": str(user.id), "username": user.username, "email": user.email,
            "role": user.role.value, "createdAt": iso_ms(user.created_at) or ""}


def login_view(tokens: UserTokens) -> LoginView:
    user = tokens.user
    return {
        "token": tokens.access_token,
        "refreshToken": tokens.refresh_token,
        "user": {"id": str(user.id), "username": user.username, "email": user.email,
                 "role": user.role.value},
    }


def refresh_view(tokens: UserTokens) -> RefreshView:
    return {"token": tokens.access_token, "refreshToken": tokens.refresh_token}


def me_view(user: UserRecord) -> MeView:
    return {"id": str(user.id), "username": user.username, "email": user.email,
            "role": user.role.value, "lastLogin": iso_ms(user.last_login),
            "settings": user.settings}


def user_settings_view(user: UserRecord) -> UserSettingsView:
    return {"id": str(user.id), "settings": user.settings}


def user_list_view(page: UserPage) -> UserListView:
    return {
        "users": [{"id": str(u.id), "username": u.username, "email": u.email,
                   "role": u.role.value, "lastLogin": iso_ms(u.last_login)} for u in page.users],
        "total": page.total,
        "page": page.page,
        "limit": page.limit,
        "pages": math.ceil(page.total / page.limit) if page.total else 0,
    }
