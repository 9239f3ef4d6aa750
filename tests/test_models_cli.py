"""Specification of ``reunite models list/show/pull`` as a user meets them: tables, cards as JSON,
downloads from a (real, local) mirror, and one clear line with exit code 2 for bad input."""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import typer
from test_model_download import UNREACHABLE, http_server
from typer.testing import CliRunner

from reunite.cli_models import models_app
from reunite.models.architectures import build_network
from reunite.models.registry import ModelCard, Registry, load_embedder

OMZ_0288 = Path("models/openvino_omz/person-reidentification-retail-0288/FP32")

torch.set_num_threads(1)


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``cli(*args) -> result``: the models sub-app mounted as reunite.cli mounts it, with
    REUNITE_DATA_DIR in tmp_path and a wide terminal so table cells are not folded."""
    monkeypatch.chdir(tmp_path)  # no reunite.toml from the repository
    monkeypatch.setenv("REUNITE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    root = typer.Typer()
    root.callback()(lambda: None)
    root.add_typer(models_app, name="models")
    runner = CliRunner()
    return lambda *args: runner.invoke(root, ["models", *args])


@pytest.fixture
def serve() -> Iterator:
    """``serve(folder) -> base URL`` of a real local HTTP server (see test_model_download)."""
    with contextlib.ExitStack() as stack:
        yield lambda folder: stack.enter_context(http_server(folder))


def rows(output: str) -> dict[str, str]:
    """Table rows of ``models list`` by model name."""
    return {
        line.split()[0]: line for line in output.splitlines() if line[:2] == "  " and line.strip()
    }


def test_list_shows_built_in_and_downloadable_models_with_their_published_figures(cli):
    result = cli("list")
    assert result.exit_code == 0, result.output
    table = rows(result.output)
    assert (
        "built-in" in table["color_histogram"] and "built-in" in table["color_histogram_centre50"]
    )
    retail = table["person-reidentification-retail-0288"]
    assert retail.split()[1:4] == ["openvino", "256", "no"]
    assert "86/59 market1501" in retail  # the card's published figures (86.1 / 58.857)
    assert "61/30 msmt17" in table["osnet_x0_25_msmt17"]


def test_show_json_prints_the_card_exactly(cli):
    result = cli("show", "osnet_x0_25_msmt17", "--json")
    assert result.exit_code == 0, result.output
    card = ModelCard.model_validate(json.loads(result.output))
    assert card == Registry(zoo=None).get("osnet_x0_25_msmt17").card
    assert card.licence == "MIT" and card.sha256 is None  # no published checksum, said honestly


def test_show_prints_every_field_of_the_card(cli):
    result = cli("show", "person-reidentification-retail-0288")
    assert result.exit_code == 0, result.output
    for field in ModelCard.model_fields:
        assert f"│ {field} " in result.output
    assert "storage.openvinotoolkit.org" in result.output


@pytest.mark.parametrize("command", ["show", "pull"])
def test_an_unknown_name_is_one_line_with_the_known_names_and_exit_code_2(cli, command):
    # Bad input: a misspelt model name.
    result = cli(command, "osnet_x0_25_msmt71")
    assert result.exit_code == 2
    assert "error:" in result.output and "osnet_x0_25_msmt17" in result.output
    assert "Traceback" not in result.output


def test_pull_without_network_says_where_to_place_the_file_and_installs_nothing(cli, tmp_path):
    # Bad input: no way to reach the server.
    result = cli("pull", "osnet_x0_25_msmt17", "--url-base", UNREACHABLE)
    target = tmp_path / "data" / "models" / "osnet_x0_25_msmt17" / "osnet_x0_25_msmt17.pth"
    flat = " ".join(result.output.split())  # rich wraps long lines
    assert result.exit_code == 2
    assert f"cannot reach {UNREACHABLE}/osnet_x0_25_msmt17.pth" in flat
    assert f"place it at {target}" in flat
    assert not target.exists() and "no" in rows(cli("list").output)["osnet_x0_25_msmt17"]


@pytest.mark.shared
def test_pull_installs_a_model_that_list_then_shows_installed_and_loads(
    cli, serve, shared_dir, tmp_path
):
    result = cli(
        "pull", "person-reidentification-retail-0288", "--url-base", serve(shared_dir / OMZ_0288)
    )
    folder = tmp_path / "data" / "models" / "person-reidentification-retail-0288"
    assert result.exit_code == 0, result.output
    assert f"installed person-reidentification-retail-0288 in {folder}" in result.output
    assert "yes" in rows(cli("list").output)["person-reidentification-retail-0288"].split()
    registry = Registry(data_dir=tmp_path / "data", zoo=None)
    assert load_embedder("person-reidentification-retail-0288", registry=registry).dim == 256
    again = cli("pull", "person-reidentification-retail-0288", "--url-base", UNREACHABLE)
    assert again.exit_code == 0 and "already installed" in again.output  # verified, not fetched


@pytest.mark.shared
def test_pull_force_downloads_again_and_a_damaged_install_says_to_use_it(
    cli, serve, shared_dir, tmp_path
):
    base = serve(shared_dir / OMZ_0288)
    assert cli("pull", "person-reidentification-retail-0288", "--url-base", base).exit_code == 0
    weights = tmp_path / "data/models/person-reidentification-retail-0288"
    weights /= "person-reidentification-retail-0288.bin"
    weights.write_bytes(weights.read_bytes()[:100])  # Bad input: a damaged install
    damaged = cli("pull", "person-reidentification-retail-0288", "--url-base", base)
    assert damaged.exit_code == 2 and "--force" in damaged.output
    forced = cli("pull", "person-reidentification-retail-0288", "--force", "--url-base", base)
    assert forced.exit_code == 0, forced.output
    assert weights.read_bytes() == (shared_dir / OMZ_0288 / weights.name).read_bytes()


def test_pull_of_a_file_without_published_checksum_prints_the_sha256_it_pinned(
    cli, serve, tmp_path
):
    torch.manual_seed(0)
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    checkpoint = mirror / "osnet_x0_25_msmt17.pth"
    torch.save(
        {"state_dict": build_network("osnet_x0_25", num_classes=1041).state_dict()}, checkpoint
    )
    result = cli("pull", "osnet_x0_25_msmt17", "--url-base", serve(mirror))
    flat = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "no checksum is published for it; it loaded strictly as osnet_x0_25" in flat
    assert hashlib.sha256(checkpoint.read_bytes()).hexdigest() in flat
