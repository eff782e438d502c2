"""Guide §3.1: API clients and tokens."""

from __future__ import annotations

from typing import Any, TypedDict

from litestar import Request, Router, delete, get, post
from litestar.params import FromPath, JSONBody

from api.auth import scoped
from api.schemas import CreateClientBody, RefreshBody, TokenBody
from api.state import services_of
from core.clients import ADMIN_SCOPE, IssuedTokens
from core.clock import iso
from core.tokens import Principal


class ClientCreatedView(TypedDict):
    client_id: FromPath[str]
    client_secret: str
    scopes: list[str]
    created_at: str


class ClientView(TypedDict):
    client_id: FromPath[str]
    scopes: list[str]
    created_at: str


class ClientListView(TypedDict):
    clients: list[ClientView]


class TokenView(TypedDict):
    access_token: str
    token_type: str
    expires_in: int
    refresh_token: str
    scopes: list[str]


def _tokens(issued: IssuedTokens) -> TokenView:
    return {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "refresh_token": issued.refresh_token,
        "scopes": issued.scopes,
    }


@post("/clients", status_code=201, **scoped(ADMIN_SCOPE))
async def create_client(
    request: Request[Any, Any, Any], data: JSONBody[CreateClientBody]
) -> ClientCreatedView:
    """Register an API client (admin only). The secret is in this answer and nowhere else."""
    record, secret = await services_of(request.app).clients.create(data.client_id, data.scopes)
    return {
        "client_id": record.client_id,
        "client_secret": secret,
        "scopes": record.scopes,
        "created_at": iso(record.created_at) or "",
    }


@get("/clients", **scoped(ADMIN_SCOPE))
async def list_clients(request: Request[Any, Any, Any]) -> ClientListView:
    """List API clients (admin only); secrets are never shown."""
    records = await services_of(request.app).clients.all()
    return {"clients": [
        {"client_id": r.client_id, "scopes": r.scopes, "created_at": iso(r.created_at) or ""}
        for r in records
    ]}


@delete("/clients/{client_id:str}", status_code=204, **scoped(ADMIN_SCOPE))
async def delete_client(request: Request[Any, Any, Any], client_id: FromPath[str]) -> None:
    """Delete an API client (admin only); its tokens stop working at once."""
    principal: Principal = request.state.principal
    await services_of(request.app).clients.delete(client_id, principal.client_id)


@post("/token", status_code=200, security=[])
async def issue_token(request: Request[Any, Any, Any], data: JSONBody[TokenBody]) -> TokenView:
    """Exchange client credentials for an access token (1 h) and a refresh token (7 d).

    Issuing revokes the client's previous refresh token. Repeated failures for one client id
    are answered 429 for a while.
    """
    return _tokens(await services_of(request.app).clients.login(data.client_id, data.client_secret))


@post("/token/refresh", status_code=200, security=[])
async def refresh_token(request: Request[Any, Any, Any], data: JSONBody[RefreshBody]) -> TokenView:
    """Exchange the current refresh token for a new access token and a new refresh token."""
    return _tokens(await services_of(request.app).clients.refresh(data.refresh_token))


router = Router(
    path="/v2/auth",
    route_handlers=[create_client, list_clients, delete_client, issue_token, refresh_token],
    tags=["auth"],
)
