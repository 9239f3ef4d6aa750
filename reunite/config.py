"""One settings object for the CLI, the pipeline and the API.

Values come from, in order of precedence: keyword arguments, ``REUNITE_*`` environment
variables, an optional TOML file (``REUNITE_CONFIG`` or ``./reunite.toml``), then defaults.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _config_file() -> Path:
    return Path(os.environ.get("REUNITE_CONFIG", "reunite.toml"))


class Settings(BaseSettings):
    """Process-wide settings; construct once and pass down (never read env vars elsewhere)."""

    model_config = SettingsConfigDict(env_prefix="REUNITE_", extra="forbid")

    data_dir: Path = Field(
        Path("reunite_data"), description="Where crops, indexes and the DB live."
    )
    database_url: str = Field("", description="SQLAlchemy URL; empty means SQLite in data_dir.")
    log_level: str = Field("INFO", description="DEBUG, INFO, WARNING or ERROR.")
    log_json: bool = Field(False, description="Log one JSON object per line (for collectors).")
    retention_days: int = Field(
        30, ge=1, le=3650, description="Sightings older than this are never returned, and purged."
    )
    index_kind: str = Field(
        "flat",
        pattern="^(flat|hnsw|ivfpq)$",
        description="FAISS index of a new index version: flat (exact), hnsw or ivfpq.",
    )
    render_threads: int = Field(2, ge=1, le=64, description="llvmpipe rasteriser threads.")
    anny_cache_dir: Path | None = Field(
        None, description="Where anny caches its ~790 MB of model data (default ~/.cache/anny)."
    )
    # -- the API service (`reunite serve`) --
    api_host: str = Field("127.0.0.1", description="Address `reunite serve` listens on.")
    api_port: int = Field(8000, ge=1, le=65535, description="Port `reunite serve` listens on.")
    api_secret: SecretStr | None = Field(
        None,
        description="Key that signs access tokens; unset: a random one kept in data_dir.",
    )
    token_minutes: int = Field(15, ge=1, le=720, description="Lifetime of an access token.")
    max_upload_mb: float = Field(10.0, gt=0, le=100, description="Largest photo upload.")
    max_upload_megapixels: float = Field(
        40.0, gt=0, le=400, description="Largest photo in pixels (decompression-bomb guard)."
    )
    login_per_minute: int = Field(5, ge=1, description="Login attempts per user name and client.")
    search_per_minute: int = Field(60, ge=1, description="Searches and match lists per user.")
    person_detector: Path | None = Field(
        None,
        description="YOLOX-style ONNX person detector for case photos; without one, faces and "
        "person-shaped crops are used and a box can be given.",
    )
    alert_poll_seconds: float = Field(
        2.0, gt=0, le=3600, description="How often the API looks for new sightings to alert on."
    )
    webhook_url: str | None = Field(None, description="POST every new alert here (JSON).")
    webhook_secret: SecretStr | None = Field(
        None, description="Key of the X-Reunite-Signature HMAC-SHA256 on webhook bodies."
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=_config_file()),
        )

    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'reunite.db'}"
