"""The researchers' notebooks run top to bottom on a fresh kernel, as a reader would run them."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from reunite.models.registry import DEFAULT_MODEL

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def execute(name: str) -> nbformat.NotebookNode:
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    return notebook


def text_of(cell: nbformat.NotebookNode) -> str:
    parts = []
    for output in cell.get("outputs", []):
        parts.append(output.get("text", ""))
        parts.append(output.get("data", {}).get("text/markdown", ""))
    return "".join(parts)


def test_evaluate_notebook_generates_a_split_evaluates_and_shows_failures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, renderer
) -> None:
    # A fresh folder: the notebook must generate the split itself (the `renderer` fixture skips
    # where there is no headless OpenGL to render it with).
    monkeypatch.setenv("REUNITE_NOTEBOOK_DATA", str(tmp_path / "synth"))

    notebook = execute("evaluate.ipynb")

    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    output = "\n".join(text_of(cell) for cell in code)
    assert (tmp_path / "synth" / "query").is_dir()
    assert "36 queries" in output  # 12 test identities x 3 cameras
    assert "queries by age_group" in output and "queries by light" in output
    # The shipped default model is evaluated beside the baselines.
    assert f"| {DEFAULT_MODEL} |" in output
    assert "| color_histogram |" in output and "| color_histogram_centre50 |" in output
    assert "same person if cosine distance <=" in output
    images = [o for cell in code for o in cell.outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2  # the CMC plot and the failure sheet
