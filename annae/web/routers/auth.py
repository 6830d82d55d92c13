"""Logins: ``/api/v1/auth/*`` for API clients, ``/auth/login``/``/auth/logout`` forms for browsers."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from annae.agents import users
from annae.agents.users import Identity
from annae.store.db import session_scope
from annae.web.auth import (
    SESSION_COOKIE,
    current_user,
    login_form_handler,
    logout_form_handler,
)
from annae.web.routers.deps import ApiError, bearer_token, client_ip, limit, services

router = APIRouter()


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=1, max_length=1000)


@router.post("/api/v1/auth/login", tags=["auth"])
def login(body: LoginIn, request: Request) -> dict:
    """Exchange a username and password for a bearer token (valid 7 days)."""
    limit(request, "login", client_ip(request))
    with session_scope(services(request).db) as session:
        user = users.authenticate(session, body.username, body.password)
        if user is None:
            raise ApiError(401, "unauthorized", "wrong username or password")
        token, expires = users.issue_token(session, user, "bearer")
        info = {"id": user.id, "username": user.username, "role": user.role}
    return {"token": token, "token_type": "bearer", "expires_at": expires.isoformat(), "user": info}


@router.post("/api/v1/auth/logout", tags=["auth"])
def logout(request: Request, user: Identity = Depends(current_user)) -> dict:
    """Revoke the bearer token or browser session in use."""
    token = bearer_token(request) or request.cookies.get(SESSION_COOKIE)
    assert token is not None  # current_user found the user by one of the two
    with session_scope(services(request).db) as session:
        users.revoke_token(session, token)
    return {"ok": True}


@router.get("/api/v1/auth/me", tags=["auth"])
def me(user: Identity = Depends(current_user)) -> dict:
    return user.to_dict()


router.add_api_route("/auth/login", login_form_handler, methods=["POST"], include_in_schema=False)
router.add_api_route("/auth/logout", logout_form_handler, methods=["POST"], include_in_schema=False)
