"""One settings object: keyword arguments over REUNITE_* variables over a TOML file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from reunite.config import Settings


def test_toml_file_then_environment_then_arguments(tmp_path: Path, monkeypatch):
    toml = tmp_path / "reunite.toml"
    toml.write_text('log_level = "WARNING"\nrender_threads = 3\ndata_dir = "/srv/reunite"\n')
    monkeypatch.setenv("REUNITE_CONFIG", str(toml))
    assert Settings().render_threads == 3
    monkeypatch.setenv("REUNITE_RENDER_THREADS", "4")
    settings = Settings()
    assert settings.render_threads == 4 and settings.log_level == "WARNING"
    assert Settings(render_threads=1).render_threads == 1
    assert settings.resolved_database_url() == "sqlite:////srv/reunite/reunite.db"


def test_unknown_or_impossible_settings_are_refused(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("REUNITE_CONFIG", str(tmp_path / "absent.toml"))
    with pytest.raises(ValidationError):
        Settings(render_threads=0)
    with pytest.raises(ValidationError):
        Settings(no_such_setting=True)
