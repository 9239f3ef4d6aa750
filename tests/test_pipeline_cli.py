"""The pipeline commands as an operator meets them, on the checked-in sample district: cameras,
ingest, jobs, search, purge, index-check. Bad input tried: a duplicate or malformed camera id, an
unknown camera, a missing path, a corrupt photo, an unreadable age, searching an empty system —
each one line and exit code 2, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from reunite.cli import app

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples" / "district"


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REUNITE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()

    def invoke(*args: str):
        result = runner.invoke(app, list(args))
        assert "Traceback" not in result.output
        return result

    return invoke


def one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines and lines[0].startswith("error:"), result.output
    text = " ".join(result.output.split())
    for fragment in fragments:
        assert fragment in text, (fragment, text)


def test_cameras_add_list_and_refuse_duplicates_and_bad_ids(cli):
    assert (
        cli(
            "cameras", "add", "gate-1", "--name", "North gate", "--x", "12.5", "--y", "-3"
        ).exit_code
        == 0
    )
    listed = cli("cameras", "list", "--json")
    assert json.loads(listed.stdout) == [
        {"id": "gate-1", "name": "North gate", "x": 12.5, "y": -3.0, "area": None}
    ]
    one_line_error(
        cli("cameras", "add", "gate-1", "--name", "Again"), "already registered", "--replace"
    )
    assert cli("cameras", "add", "gate-1", "--name", "Again", "--replace").exit_code == 0
    one_line_error(cli("cameras", "add", "../etc", "--name", "x"), "not valid")
    one_line_error(cli("cameras", "import", str(SAMPLES / "manifest.json")), "cameras.json")


def test_ingest_refuses_an_unknown_camera_and_a_missing_path(cli, tmp_path):
    one_line_error(
        cli("ingest", str(SAMPLES / "cameras" / "c1"), "--camera", "c9"),
        "unknown camera",
        "cameras add c9",
    )
    assert cli("cameras", "import", str(SAMPLES)).exit_code == 0
    one_line_error(cli("ingest", str(tmp_path / "nope.mp4"), "--camera", "c1"), "nope.mp4")
    one_line_error(
        cli("ingest", str(SAMPLES / "cameras" / "c1"), "--camera", "c1", "--fps", "0"), "fps"
    )


def test_search_before_any_ingest_says_what_to_do(cli, tmp_path):
    photo = tmp_path / "p.jpg"
    photo.write_bytes((SAMPLES / "cases" / "0003" / "last_seen.jpg").read_bytes())
    one_line_error(cli("search", "--photo", str(photo)), "ingest footage first")


def test_ingest_jobs_search_and_purge_on_the_sample_district(cli, tmp_path):
    assert cli("cameras", "import", str(SAMPLES)).exit_code == 0
    for camera in ("c1", "c2"):
        result = cli(
            "ingest", str(SAMPLES / "cameras" / camera), "--camera", camera, "--chunk-frames", "12"
        )
        assert result.exit_code == 0, result.output
        assert "12 frames" in result.output and "sightings" in result.output
    again = cli("ingest", str(SAMPLES / "cameras" / "c1"), "--camera", "c1")
    assert again.exit_code == 0 and "already ingested" in again.output

    jobs = json.loads(cli("jobs", "--json").stdout)
    assert [j["status"] for j in jobs] == ["done"] * 3 and {j["kind"] for j in jobs} == {"ingest"}

    check = cli("index-check")
    assert check.exit_code == 0 and "0 rebuilt" in check.output

    data = tmp_path / "data"
    crops = sorted((data / "crops").rglob("*.jpg"))
    assert crops, "the sample district has people in it"
    found = cli("search", "--photo", str(crops[0]), "--json", "-k", "3")
    assert found.exit_code == 0, found.output
    rows = json.loads(found.stdout)
    assert rows and rows[0]["score"] > 0.5 and rows[0]["camera_id"] in ("c1", "c2")

    bad = tmp_path / "corrupt.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    one_line_error(cli("search", "--photo", str(bad)), "not a readable image")
    one_line_error(
        cli("search", "--photo", str(crops[0]), "--since", "yesterday"), "not understood"
    )
    one_line_error(cli("purge", "--older-than", "30 days"), "not understood")
    assert cli("purge", "--older-than", "3650d").exit_code == 0  # nothing that old: nothing purged
    assert json.loads(cli("search", "--photo", str(crops[0]), "--json").stdout)
