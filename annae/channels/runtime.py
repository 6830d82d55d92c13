"""What ``annae serve`` runs for the channels: the outbox delivery thread and, when configured,
the inbound SMTP receiver."""

from __future__ import annotations

import logging
from collections.abc import Callable

from annae.channels.settings import channel_settings

log = logging.getLogger("annae.channels")


def start(svc) -> Callable[[], None]:
    """Start the channel workers for this process; returns the function that stops them."""
    from annae.channels.outbox import Deliverer

    settings = channel_settings()
    stops: list[Callable[[], None]] = []
    if settings.outbox_worker:
        deliverer = Deliverer(svc.db, settings=settings)
        deliverer.start()
        svc.extra["deliverer"] = deliverer
        stops.append(deliverer.stop)
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
