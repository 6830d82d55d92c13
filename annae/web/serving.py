"""How ``annae serve`` runs uvicorn: redacted logs, bounded frames and headers, fast worker checks.

- Logging: Annae's JSON lines (:mod:`annae.logs`), :class:`~annae.logredact.RedactSecrets` on every
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
import logging
import time

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.supervisors.multiprocess import Multiprocess, Process

log = logging.getLogger("uvicorn.error")

WS_MAX_SIZE = 64 * 1024
HEADER_TIMEOUT = 10.0
LIVENESS_TIMEOUT = 4.0
READY_TIMEOUT = 120


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

    uvicorn uses ``timeout_worker_healthcheck`` both for how long a worker may take to start and
    for how long a running worker may leave a ping unanswered; one number cannot be right for
    both (a worker loads its model for seconds on a busy machine; a hung one should go in
    seconds). Here a starting worker is asked once, without waiting, whether it is serving yet,
    and has :data:`READY_TIMEOUT` seconds to say yes; from then on it must answer every ping
    within :data:`LIVENESS_TIMEOUT` seconds, or it is killed and replaced."""

    liveness_timeout = LIVENESS_TIMEOUT
    ready_timeout = READY_TIMEOUT

    def __init__(self, config: Config, sockets: list) -> None:
        super().__init__(config, sockets)
        self._born: dict[int, float] = {}  # id(process) -> start time, until it serves
        self._asked: set[int] = set()  # id(process) with a start-up ping not yet answered
        self._serving: set[Process] = set()  # answered "started": liveness pings from now on

    def _starting(self, process: Process) -> bool | None:
        """True while ``process`` is still starting in time, False once it serves, None if it
        took too long (or its pipe broke)."""
        key = id(process)
        born = self._born.setdefault(key, time.monotonic())
        try:
            if key not in self._asked:
                process.parent_conn.send(b"ping")
                self._asked.add(key)
            if process.parent_conn.poll(0):
                self._asked.discard(key)
                if process.parent_conn.recv() is True:
                    del self._born[key]
                    return False
        except (OSError, EOFError):
            return None
        return True if time.monotonic() - born < self.ready_timeout else None

    def _healthy(self, process: Process) -> bool:
        if not process.process.is_alive():
            return False
        if process not in self._serving:
            state = self._starting(process)
            if state is None:
                return False
            if state is False:
                self._serving.add(process)
            return True
        return process.is_alive(timeout=self.liveness_timeout)

    def keep_subprocess_alive(self) -> None:
        if self.should_exit.is_set():
            return
        # dead workers first (no waiting), then the pings, which may each wait
        dead = [i for i, p in enumerate(self.processes) if not p.process.is_alive()]
        alive = [i for i in range(len(self.processes)) if i not in dead]
        for idx in dead + alive:
            process = self.processes[idx]
            if idx in alive and self._healthy(process):
                continue
            process.kill()  # dead or hung: make sure it is gone
            process.join()
            self._serving.discard(process)
            self._born.pop(id(process), None)
            self._asked.discard(id(process))
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

    from annae import logs

    config = Config(
        app,
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        # Annae's JSON lines for uvicorn too: every handler carries annae.logs.HANDLER_FILTERS,
        # the credential filter included
        log_config=logs.config(log_level),
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
