"""The loop behind every WebSocket: push subscribed events, answer client frames, close cleanly."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable

import anyio
from starlette.websockets import WebSocket, WebSocketState

from annae.web import metrics
from annae.web.events import Subscription

MAX_FRAME = 64 * 1024

Handler = Callable[[dict], Awaitable[dict]]


def dumps(obj: dict) -> str:
    return json.dumps(obj, ensure_ascii=False, default=str)


def error_frame(code: str, message: str) -> dict:
    return {"event": "error", "error": {"code": code, "message": message}}


async def close(ws: WebSocket, code: int, reason: str = "") -> None:
    with contextlib.suppress(Exception):
        if ws.application_state != WebSocketState.DISCONNECTED:
            await ws.close(code=code, reason=reason[:120])


async def pump(
    ws: WebSocket, sub: Subscription, kind: str, hello: dict, handle: Handler | None = None
) -> None:
    """Run one accepted socket until either side ends it."""
    lock = asyncio.Lock()

    async def send(obj: dict) -> None:
        async with lock:
            await ws.send_text(dumps(obj))

    async def writer() -> None:
        while True:
            event = await sub.get()
            if event is None:  # we fell too far behind: let the client reconnect and catch up
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
                await close(ws, 1009, "frame over 64 kB")
                return
            try:
                frame = json.loads(data)
            except ValueError:
                await send(error_frame("invalid", "frames must be JSON objects"))
                continue
            if not isinstance(frame, dict):
                await send(error_frame("invalid", "frames must be JSON objects"))
            elif "ping" in frame:
                await send({"event": "pong"})
            elif handle is None:
                await send(error_frame("invalid", "this socket only pushes events"))
            else:
                await send(await handle(frame))

    async def run(part, scope: anyio.CancelScope) -> None:
        try:
            await part()
        except Exception:
            pass  # the client went away while we were sending or receiving
        finally:
            scope.cancel()  # either side ending ends the socket

    metrics.WEBSOCKETS.labels(kind).inc()
    try:
        await send(hello)
        async with anyio.create_task_group() as group:
            group.start_soon(run, writer, group.cancel_scope)
            group.start_soon(run, reader, group.cancel_scope)
    except Exception:
        pass
    finally:
        sub.close()
        metrics.WEBSOCKETS.labels(kind).dec()
        with anyio.CancelScope(shield=True):
            await close(ws, 1000)
