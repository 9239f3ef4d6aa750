"""One settings object for the CLI, the pipeline and the API.

Values come from, in order of precedence: keyword arguments, ``REUNITE_*`` environment
variables, an optional TOML file (``REUNITE_CONFIG`` or ``./reunite.toml``), then defaults.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
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
