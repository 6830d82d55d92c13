"""How ``annae serve`` runs uvicorn: redacted logs, bounded frames and headers, fast worker checks.

- Logging: uvicorn's own configuration with :class:`~annae.web.logredact.RedactSecrets` on every
  handler, so WebSocket handshake lines and access-log lines never show ``?token=`` or ``?api_key=``.
- WebSocket frames over :data:`WS_MAX_SIZE` (64 kB) are refused by the protocol (close 1009)
  before they are buffered whole.
- :class:`HeaderTimeoutProtocol`: a connection that has not sent a request's complete headers
  within :data:`HEADER_TIMEOUT` seconds is closed (slowloris).
- :class:`Supervisor` (``--workers`` > 1): a worker that died or stopped answering the
  supervisor's ping for :data:`LIVENESS_TIMEOUT` seconds is killed and replaced, and its open
  WebSockets leave ``/metrics``. A worker being restarted by ``SIGHUP`` still gets
  :data:`READY_TIMEOUT` seconds to load its model.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from typing import Any

from uvicorn.config import LOGGING_CONFIG, STARTUP_FAILURE, Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors.multiprocess import Multiprocess, Process

log = logging.getLogger("uvicorn.error")

WS_MAX_SIZE = 64 * 1024
HEADER_TIMEOUT = 10.0
LIVENESS_TIMEOUT = 4.0
READY_TIMEOUT = 120


def log_config(access_log: bool = False) -> dict[str, Any]:
    """uvicorn's logging configuration with the credential filter on each of its handlers."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": "annae.web.logredact.RedactSecrets"}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("redact_secrets")
    # the app's own loggers (annae.*) go to the same redacted handler
    config["loggers"]["annae"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    return config


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing connections whose request headers are not complete
    :data:`HEADER_TIMEOUT` seconds after the connection (or the request) started."""

    header_timeout = HEADER_TIMEOUT

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._arm_header_timer()

    def _arm_header_timer(self) -> None:
        if getattr(self, "_header_timer", None) is None:
            self._header_timer = self.loop.call_later(self.header_timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        timer = getattr(self, "_header_timer", None)
        if timer is not None:
            timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            log.info(
                "closing a connection that sent no complete request headers in %.0f s",
                self.header_timeout,
            )
            self.transport.close()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)


class Supervisor(Multiprocess):
    """uvicorn's worker supervisor with a liveness check of its own.

    uvicorn uses ``timeout_worker_healthcheck`` both for how long a restarted worker may take to
    get ready and for how long a running worker may leave a ping unanswered; one number cannot be
    right for both (a model loads in seconds, a hung worker should go in seconds)."""

    liveness_timeout = LIVENESS_TIMEOUT

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        for idx, process in enumerate(self.processes):
            if process.is_alive(timeout=self.liveness_timeout):
                continue
            process.kill()  # dead or hung: make sure it is gone
            process.join()
            forget_worker_metrics(process.pid)
            if process.exitcode == STARTUP_FAILURE:
                log.error("worker [%s] failed to start, stopping", process.pid)
                self.should_exit.set()
                return
            if self.should_exit.is_set():
                return
            log.warning(
                "worker [%s] died or hung (exit code %s); starting a new one",
                process.pid,
                process.exitcode,
            )
            replacement = Process(self.config, self.sockets)
            replacement.start()
            self.processes[idx] = replacement


def forget_worker_metrics(pid: int | None) -> None:
    """Drop a dead worker's live gauges (open WebSockets) from the multiprocess metrics."""
    import os

    if pid is None or not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    try:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
    except Exception as exc:  # a metrics folder problem must not stop the supervisor
        log.warning("could not clear metrics of worker %s: %s", pid, exc)


def run(
    app: str,
    *,
    host: str,
    port: int,
    workers: int,
    log_level: str,
    access_log: bool = False,
) -> None:
    """Run ``app`` (an import string of a factory) like ``uvicorn.run``, with the settings above."""
    from uvicorn.server import Server

    config = Config(
        app,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        log_config=log_config(access_log),
        access_log=access_log,
        proxy_headers=True,
        http=HeaderTimeoutProtocol,
        ws_max_size=WS_MAX_SIZE,
        timeout_worker_healthcheck=READY_TIMEOUT,
    )
    if config.workers > 1:
        Supervisor(config, sockets=[config.bind_socket()]).run()
        return
    server = Server(config=config)
    try:
        server.run()
    except KeyboardInterrupt:
        pass
    if not server.started:
        raise SystemExit(STARTUP_FAILURE)
