"""What every router needs: the JSON error type, the database, the live engine, events, limits."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request
from sqlalchemy import Engine
from starlette.requests import HTTPConnection

from annae.settings import Settings
from annae.web.batching import BatchDecider
from annae.web.events import LocalBroker
from annae.web.holder import EngineHolder
from annae.web.ratelimit import LocalLimiter, retry_after

log = logging.getLogger("annae.web")


class ApiError(Exception):
    """An error answered as ``{"error": {"code", "message"}}`` with ``status``."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = headers or {}
        self.extra = extra

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


@dataclass
class Services:
    """Per-process service objects, kept on ``app.state.services``."""

    db: Engine
    settings: Settings
    holder: EngineHolder
    broker: LocalBroker
    limiter: LocalLimiter
    decider: BatchDecider = field(default_factory=BatchDecider)
    extra: dict = field(default_factory=dict)

    def decided(self, reply: dict, routing_s: float | None = None) -> None:
        """Count a turn's reply and time its hand-off routing in the metrics
        (:class:`annae.channels.turn.TurnServices`)."""
        from annae.web import metrics

        kind = reply["type"]
        metrics.observe_decision(kind, reply.get("reason") if kind == "handoff" else None)
        if routing_s is not None:
            metrics.ROUTING.observe(routing_s)


def services(conn: HTTPConnection) -> Services:
    return conn.app.state.services


def model_switched(svc: Services, version: str, previous: str | None, author: str) -> None:
    """After a model version went live (retrain, rollback, promotion, operating point): the
    ``model.promoted`` webhook, this process serves it now, the consoles are told."""
    from annae.channels import hooks
    from annae.store.db import session_scope

    with session_scope(svc.db) as session:
        hooks.promoted(session, version, previous, author)
    svc.holder.load_now()
    svc.broker.publish("agents", {"event": "model", "version": version})


def start_retrain(svc: Services, author: str, *, force: bool = False, wait: bool = False) -> dict:
    """Start this process's one gated retrain (409 while one runs here or in another process);
    a promotion is announced by :func:`model_switched`."""

    def announce(state) -> None:
        if state.status == "done":
            model_switched(svc, state.version, (state.gate or {}).get("live"), author)

    if not svc.holder.start_retrain(svc.db, author, announce, force=force, wait=wait):
        raise ApiError(409, "conflict", "a retrain is already running")
    return svc.holder.retrain.to_dict()


def client_ip(conn: HTTPConnection) -> str:
    return conn.client.host if conn.client else "unknown"


def limit(conn: HTTPConnection, kind: str, key: str) -> None:
    """Take a token from the ``kind`` bucket for ``key`` or raise 429 with Retry-After."""
    wait = services(conn).limiter.hit(kind, key)
    if wait > 0:
        secs = retry_after(wait)
        raise ApiError(
            429, "rate_limited", f"too many requests; retry in {secs} s", {"Retry-After": str(secs)}
        )


def bearer_token(conn: HTTPConnection) -> str | None:
    header = conn.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def is_unsafe(request: Request) -> bool:
    return request.method not in ("GET", "HEAD", "OPTIONS")
