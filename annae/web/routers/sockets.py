"""The loop behind every WebSocket: push subscribed events, answer client frames, close cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

import anyio
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from annae.web import metrics
from annae.web.events import Subscription
from annae.web.faults import UNAVAILABLE_MESSAGE, db_unavailable
from annae.web.inputs import NUL_MESSAGE, nul_in_value

MAX_FRAME = 64 * 1024
log = logging.getLogger("annae.web")

Handler = Callable[[dict], Awaitable[dict]]


def dumps(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


def error_frame(code: str, message: str) -> dict:
    return {"event": "error", "error": {"code": code, "message": message}}


async def close(ws: WebSocket, code: int, reason: str = "") -> None:
    with contextlib.suppress(Exception):
        if ws.application_state != WebSocketState.DISCONNECTED:
            await ws.close(code=code, reason=reason[:120])


def _gone(exc: BaseException) -> bool:
    """The client went away while we were sending or receiving (not a server fault)."""
    return isinstance(exc, WebSocketDisconnect | OSError | ConnectionError) or (
        isinstance(exc, RuntimeError) and "close" in str(exc).lower()
    )


async def fail(ws: WebSocket, exc: BaseException) -> None:
    """The one error path of every socket: an error frame, then close 1013 (the database is
    unavailable: reconnect shortly) or 1011 (a server error)."""
    if _gone(exc):
        return
    if db_unavailable(exc):
        log.warning("socket closed, database unavailable: %s", type(exc).__name__)
        code, frame = 1013, error_frame("unavailable", UNAVAILABLE_MESSAGE)
    else:
        log.error("socket closed by a server error", exc_info=exc)
        code, frame = 1011, error_frame("internal", "internal error; reconnect")
    with contextlib.suppress(Exception):
        await ws.send_text(dumps(frame))
    await close(ws, code, frame["error"]["message"])


def parse_frame(data: str) -> dict | str:
    """The client's frame as a dict, or why it is refused (sent back as an ``invalid`` error)."""
    try:
        frame = json.loads(data)
    except (ValueError, RecursionError):
        return "frames must be JSON objects"
    if not isinstance(frame, dict):
        return "frames must be JSON objects"
    if nul_in_value(frame):
        return NUL_MESSAGE
    return frame


async def pump(
    ws: WebSocket,
    sub: Subscription,
    kind: str,
    hello: dict,
    handle: Handler | None = None,
    after: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run one accepted socket until either side ends it (or a fault ends it through :func:`fail`).

    ``after()`` runs once each handled frame's reply is sent (or failed to send), shielded from
    the socket's end: work the reply must not wait for (a hand-off's assignment)."""
    lock = asyncio.Lock()
    ended: dict[str, BaseException | int] = {}

    async def send(obj: dict) -> None:
        async with lock:
            await ws.send_text(dumps(obj))

    async def writer() -> None:
        while True:
            event = await sub.get()
            if event is None:  # we fell too far behind: let the client reconnect and catch up
                ended["code"] = 1013
                await send({"event": "resync", "reason": "too slow"})
                await close(ws, 1013, "too slow; reconnect")
                return
            await send(event)

    async def reader() -> None:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("text")
            if data is None:
                data = (message.get("bytes") or b"").decode("utf-8", "replace")
            if len(data) > MAX_FRAME:
                ended["code"] = 1009
                await close(ws, 1009, "frame over 64 kB")
                return
            frame = parse_frame(data)
            if isinstance(frame, str):
                await send(error_frame("invalid", frame))
            elif "ping" in frame:
                await send({"event": "pong"})
            elif handle is None:
                await send(error_frame("invalid", "this socket only pushes events"))
            else:
                try:
                    await send(await handle(frame))
                finally:
                    if after is not None:
                        with anyio.CancelScope(shield=True):
                            await after()

    async def run(part, scope: anyio.CancelScope) -> None:
        try:
            await part()
        except Exception as exc:
            ended.setdefault("error", exc)
        finally:
            scope.cancel()  # either side ending ends the socket

    metrics.WEBSOCKETS.labels(kind).inc()
    try:
        await send(hello)
        async with anyio.create_task_group() as group:
            group.start_soon(run, writer, group.cancel_scope)
            group.start_soon(run, reader, group.cancel_scope)
    except Exception as exc:
        ended.setdefault("error", exc)
    finally:
        sub.close()
        metrics.WEBSOCKETS.labels(kind).dec()
        with anyio.CancelScope(shield=True):
            error = ended.get("error")
            if isinstance(error, BaseException):
                await fail(ws, error)
            elif "code" not in ended:
                await close(ws, 1000)
