"""Channels: KakaoTalk, e-mail, outbound webhooks and agent alerts.

Every channel runs the same customer turn
(:func:`annae.channels.turn.commit_turn`); outbound calls go through the durable
outbox (:mod:`annae.channels.outbox`), written by :func:`annae.channels.hooks.record` in the
transaction of the change they report.
"""

from annae.channels import hooks, outbox, registry, webhooks

__all__ = ["hooks", "outbox", "registry", "webhooks"]
