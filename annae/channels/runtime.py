"""What ``annae serve`` runs for the channels: the outbox delivery thread, the opening-hours
sweep (:func:`sweep_openings`) and, when configured, the inbound SMTP receiver."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from annae.settings import get_settings

log = logging.getLogger("annae.channels")


def start(svc) -> Callable[[], None]:
    """Start the channel workers for this process; returns the function that stops them."""
    from annae.channels.outbox import Deliverer

    settings = get_settings()
    stops: list[Callable[[], None]] = []
    if settings.outbox_worker:
        deliverer = Deliverer(svc.db, settings=settings)
        deliverer.start()
        svc.extra["deliverer"] = deliverer
        stops.append(deliverer.stop)
    if settings.hours_poll > 0:
        stops.append(_every(settings.hours_poll, lambda: sweep_openings(svc), "annae-hours"))
    if settings.smtp_listen:
        from annae.channels.email import start_receiver

        try:
            stops.append(start_receiver(svc, settings))
        except OSError as exc:  # another worker holds the port: one receiver is enough
            log.warning("SMTP receiver not started on %s: %s", settings.smtp_listen, exc)

    def stop() -> None:
        for fn in reversed(stops):
            fn()

    return stop


def sweep_openings(svc, now=None) -> list:
    """Teams whose hours just started: queued conversations to online members, one alert each
    (:func:`annae.agents.routing.openings`, :func:`annae.channels.alerts.on_hours_start`)."""
    from annae.agents.routing import openings
    from annae.channels import outbox
    from annae.channels.alerts import on_hours_start
    from annae.store.db import session_scope

    with session_scope(svc.db) as session:
        found = openings(session, now)
        alerted = [on_hours_start(session, o) for o in found]
    svc.broker.publish_many([event for o in found for event in o.events])
    if any(alerted):
        outbox.wake(svc)
    for o in found:
        log.info("team %s opened: %d waiting, %d assigned", o.team, o.waiting, o.assigned)
    return found


def _every(seconds: float, fn: Callable[[], object], name: str) -> Callable[[], None]:
    """Run ``fn`` every ``seconds`` in a daemon thread; returns the function that stops it."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(seconds):
            try:
                fn()
            except Exception:
                log.exception("%s failed", name)

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()

    def stopper() -> None:
        stop.set()
        thread.join(5)

    return stopper
