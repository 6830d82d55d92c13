"""Channel knobs, read from ``ANNAE_*`` like the main settings."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ChannelSettings(BaseSettings):
    """Kakao, e-mail, webhook-outbox and alert settings (``ANNAE_<NAME>``)."""

    model_config = SettingsConfigDict(env_prefix="ANNAE_", env_file=None, extra="ignore")

    kakao_idle_minutes: float = Field(
        default=30,
        ge=0,
        description="After a resolve, a Kakao user's next message this much later starts a new conversation.",
    )
    kakao_reply_budget: float = Field(
        default=3.5,
        gt=0,
        le=4.5,
        description="Seconds a skill reply may take before the callback flow is used (Kakao waits 5 s).",
    )
    kakao_callback_seconds: float = Field(
        default=55,
        gt=0,
        le=60,
        description="How long a Kakao callback URL is used (Kakao: valid 1 minute, once).",
    )
    outbox_poll: float = Field(
        default=1.0, gt=0, description="Seconds between outbox scans when idle."
    )
    outbox_backoff: float = Field(
        default=30, gt=0, description="First retry delay (s); doubles each try."
    )
    outbox_backoff_cap: float = Field(
        default=3600, gt=0, description="Longest delay between tries (s)."
    )
    outbox_max_age: float = Field(
        default=24 * 3600,
        gt=0,
        description="Give up (dead letter) this many seconds after the event.",
    )
    outbox_timeout: float = Field(
        default=10, gt=0, description="Seconds one delivery attempt may take."
    )
    outbox_worker: bool = Field(
        default=True, description="Run the outbox delivery thread in `annae serve`."
    )
    hours_poll: float = Field(
        default=30,
        ge=0,
        description="Seconds between checks for teams whose hours just started (0: off).",
    )
    webhook_replay_window: int = Field(
        default=300, description="Documented replay window for receivers (s)."
    )

    smtp_listen: str | None = Field(
        default=None,
        description="host:port for the inbound SMTP receiver (aiosmtpd); off when unset.",
    )
    smtp_relay: str | None = Field(
        default=None, description="host:port of the SMTP server that sends Annae's mail."
    )
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = Field(
        default="support@localhost", description="From: address of Annae's mail."
    )
    mail_max_bytes: int = Field(default=25 * 1024 * 1024, description="Inbound mail size limit.")
    public_url: str = Field(
        default="http://127.0.0.1:8000", description="Base URL for links in mail."
    )

    alert_email: str | None = Field(
        default=None, description="Comma-separated addresses alerted on hand-offs nobody watches."
    )
    alert_webhook_url: str | None = Field(
        default=None, description="Slack-compatible incoming-webhook URL for the same alerts."
    )
    alert_every_minutes: float = Field(
        default=15, ge=0, description="At most one alert per conversation per this many minutes."
    )


@lru_cache
def channel_settings() -> ChannelSettings:
    """The process-wide channel settings (``channel_settings.cache_clear()`` in tests)."""
    return ChannelSettings()
