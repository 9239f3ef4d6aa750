"""What a user meets when they get the options wrong: one clear line, a non-zero exit, no folder."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REUNITE = [sys.executable, "-m", "reunite.cli"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*REUNITE, *args], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cameras", "0"], "--cameras must be 1..64"),
        (["--minutes", "-1"], "--minutes must be > 0"),
        (["--size", "100000x100000"], "is impossible"),
        (["--size", "big"], "--size must look like 1280x720"),
        (["--fps", "0"], "--fps must be"),
        (["--format", "gif"], "--format must be"),
        (["--people", "-3"], "--people must be"),
    ],
)
def test_impossible_district_options_fail_with_one_clear_line(tmp_path: Path, args, message):
    out = tmp_path / "district"
    result = run("synth", "district", "--out", str(out), *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_unknown_option_is_a_usage_error_not_a_traceback(tmp_path: Path):
    result = run("synth", "district", "--out", str(tmp_path / "d"), "--colour-me-surprised")
    assert result.returncode == 2
    assert "No such option" in result.stderr
    assert "Traceback" not in result.stderr


def test_existing_non_empty_output_is_refused_without_overwrite(tmp_path: Path):
    out = tmp_path / "district"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    result = run("synth", "district", "--out", str(out))
    assert result.returncode == 2
    assert "exists and is not empty" in result.stderr
    assert (out / "precious.txt").read_text() == "keep me"


def test_reid_rejects_more_cameras_than_market_names_can_hold(tmp_path: Path):
    result = run("synth", "reid", "--out", str(tmp_path / "r"), "--cameras", "12")
    assert result.returncode == 2
    assert "--cameras must be 2..9" in result.stderr


def test_missing_egl_names_the_packages_to_install(tmp_path: Path):
    env = {
        "PATH": "/usr/bin:/bin",
        "EGL_PLATFORM": "surfaceless",
        "__EGL_VENDOR_LIBRARY_FILENAMES": str(tmp_path / "no-such-vendor.json"),
        "HOME": str(Path.home()),
    }
    out = tmp_path / "d"
    result = subprocess.run(
        [
            *REUNITE,
            "synth",
            "district",
            "--out",
            str(out),
            "--cameras",
            "1",
            "--people",
            "1",
            "--minutes",
            "0.01",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 2, result.stderr
    assert "libegl1" in result.stderr and "Traceback" not in result.stderr
    assert not out.exists()
