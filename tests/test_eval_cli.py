"""``reunite eval``: the report folder a researcher gets, and what a user meets on bad input.

Bad input must end with one clear line on stderr, exit code 2, no traceback, and nothing written
or overwritten. The report tests call ``run_eval`` with embedder objects; the command-line tests
that need a model by name use the registry (``--model color_histogram``).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from reunite.cli_eval import eval_command, format_report_markdown, run_eval
from reunite.errors import DatasetLayoutError, OutputExistsError
from reunite.evaluation.market1501 import Market1501Layout
from reunite.evaluation.plots import choose_queries, plot_cmc
from reunite.evaluation.rank import QueryScores
from reunite.evaluation.reid_eval import market_eval_set
from reunite.models.color_histogram import ColorHistogramEmbedder

# (upper, lower) BGR clothing colours of six people; cameras 1-3.
CLOTHES = [
    ((0, 0, 200), (200, 0, 0)),
    ((0, 200, 0), (0, 200, 200)),
    ((200, 0, 200), (40, 40, 40)),
    ((0, 120, 255), (255, 255, 255)),
    ((200, 200, 0), (0, 0, 120)),
    ((90, 90, 90), (0, 160, 0)),
]


def crop(pid: int, rng: np.random.Generator) -> np.ndarray:
    """A 64x32 person: pid's upper colour over its lower colour, plus noise."""
    upper, lower = CLOTHES[(pid - 1) % len(CLOTHES)]
    image = np.empty((64, 32, 3), dtype=np.int16)
    image[:32], image[32:] = upper, lower
    image += rng.integers(-30, 31, image.shape, dtype=np.int16)
    return np.clip(image, 0, 255).astype(np.uint8)


def make_market(root: Path, describe: bool = True) -> Path:
    """Six people: a query on camera 1, two gallery crops on cameras 2 and 3; junk, distractors.

    With ``describe``, the identities.json and sequences.json that ``synth reid`` writes.
    """
    rng = np.random.default_rng(0)
    for folder in ("bounding_box_train", "bounding_box_test", "query"):
        (root / folder).mkdir(parents=True)
    for pid in range(1, 7):
        seq = 1 if pid <= 3 else 2
        cv2.imwrite(str(root / "query" / f"{pid:04d}_c1s{seq}_000005_00.jpg"), crop(pid, rng))
        for cam in (2, 3):
            name = f"{pid:04d}_c{cam}s{seq}_000010_00.jpg"
            cv2.imwrite(str(root / "bounding_box_test" / name), crop(pid, rng))
    for frame in range(3):
        noise = rng.integers(0, 256, (64, 32, 3), dtype=np.uint8)
        cv2.imwrite(str(root / "bounding_box_test" / f"0000_c2s1_00002{frame}_01.jpg"), noise)
    cv2.imwrite(str(root / "bounding_box_test" / "-1_c3s1_000030_02.jpg"), crop(1, rng))
    if describe:
        ages = ["child", "adult", "elderly", "child", "adult", "elderly"]
        identities = {f"{pid:04d}": {"age_group": ages[pid - 1]} for pid in range(1, 7)}
        (root / "identities.json").write_text(json.dumps(identities))
        lights = {"1": {"hour": 12.0, "light": "day"}, "2": {"hour": 23.0, "light": "night"}}
        (root / "sequences.json").write_text(json.dumps(lights))
    return root


@pytest.fixture
def market(tmp_path: Path) -> Path:
    return make_market(tmp_path / "market")


def cli() -> typer.Typer:
    """The command as reunite.cli registers it: ``app.command("eval")(eval_command)``."""
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Reunite."""

    app.command("eval")(eval_command)
    return app


def run_cli(*args: str):
    return CliRunner().invoke(cli(), ["eval", *args])


def needs_registry() -> None:
    pytest.importorskip("reunite.models.registry", reason="--model by name needs the registry")


# --- the report ------------------------------------------------------------------------------


def test_report_folder_holds_metrics_tables_plot_and_sheets(market: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    models = [ColorHistogramEmbedder(), ColorHistogramEmbedder(centre_fraction=0.5)]

    report = run_eval(models, market_eval_set(Market1501Layout(market)), out=out, sheet_queries=4)

    assert sorted(p.name for p in out.iterdir()) == [
        "cmc.png",
        "metrics.json",
        "metrics.md",
        "ranked",
    ]
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == report
    assert list(saved["models"]) == ["color_histogram", "color_histogram_centre50"]
    entry = saved["models"]["color_histogram"]
    assert entry["metrics"]["num_query"] == 6 and entry["metrics"]["num_gallery"] == 16
    assert len(entry["cmc"]) == 50 and entry["cmc"][0] == entry["metrics"]["rank1"]
    assert set(entry["threshold"]) >= {"cosine_distance", "fpr", "tpr", "pairs"}
    assert entry["threshold"]["fpr"] == 1e-3
    assert set(entry["subgroups"]) == {"age_group", "light"}
    assert entry["subgroups"]["light"]["night"]["num_query"] == 3
    sheet = saved["sheets"]["color_histogram"][0]
    assert sheet["file"] == "ranked/color_histogram/ranked_01.png"
    assert len(sheet["queries"]) == 4 and sheet["queries"][0].endswith(".jpg")
    image = cv2.imread(str(out / sheet["file"]))
    assert image.shape[0] == 4 * (128 + 8 + 16)  # one row per query
    assert cv2.imread(str(out / "cmc.png")) is not None
    markdown = (out / "metrics.md").read_text()
    assert "| color_histogram_centre50 |" in markdown and "## By age group" in markdown


def test_a_corrupt_image_is_skipped_and_reported_in_json_and_markdown(
    market: Path, tmp_path: Path
) -> None:
    # One gallery file is cut short (a broken copy): the run goes on without it and says so.
    broken = market / "bounding_box_test" / "0002_c2s1_000010_00.jpg"
    broken.write_bytes(broken.read_bytes()[:20])

    report = run_eval([ColorHistogramEmbedder()], market_eval_set(Market1501Layout(market)))

    assert report["num_skipped_images"] == 1
    assert report["skipped_images"] == [f"bounding_box_test/{broken.name}: cannot be decoded"]
    assert report["models"]["color_histogram"]["metrics"]["num_gallery"] == 15
    assert f"- bounding_box_test/{broken.name}: cannot be decoded" in format_report_markdown(report)


def test_an_existing_report_is_kept_when_the_evaluation_fails(market: Path, tmp_path: Path) -> None:
    # A gallery file vanishes between listing and embedding: the error must not cost the old
    # report, even with --overwrite.
    out = tmp_path / "report"
    out.mkdir()
    (out / "metrics.json").write_text('{"old": true}')
    eval_set = market_eval_set(Market1501Layout(market))
    eval_set.gallery[0].unlink()

    with pytest.raises(DatasetLayoutError, match=eval_set.gallery[0].name):
        run_eval([ColorHistogramEmbedder()], eval_set, out=out, overwrite=True)

    assert [p.name for p in out.iterdir()] == ["metrics.json"]
    assert json.loads((out / "metrics.json").read_text()) == {"old": True}
    assert not list(tmp_path.glob(".report*"))  # no temporary folder left behind


def test_an_existing_report_is_replaced_only_with_overwrite(market: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    eval_set = market_eval_set(Market1501Layout(market))

    with pytest.raises(OutputExistsError, match="exists and is not empty"):
        run_eval([ColorHistogramEmbedder()], eval_set, out=out)
    assert (out / "notes.txt").read_text() == "keep me"

    run_eval([ColorHistogramEmbedder()], eval_set, out=out, overwrite=True)
    assert not (out / "notes.txt").exists() and (out / "metrics.json").exists()


def test_report_carries_bootstrap_intervals_gaps_and_the_paired_difference(market: Path) -> None:
    eval_set = market_eval_set(Market1501Layout(market))
    models = [ColorHistogramEmbedder(), ColorHistogramEmbedder(centre_fraction=0.5)]

    report = run_eval(models, eval_set, resamples=300, seed=4)

    first, second = (report["models"][name] for name in report["models"])
    intervals = first["intervals"]
    assert (intervals["resamples"], intervals["num_identities"]) == (300, 6)
    low, high = intervals["overall"]["mAP"]
    assert 0 <= low <= first["metrics"]["mAP"] <= high <= 1
    # Two people per age group are too few for an interval: none is given rather than a wild one.
    assert intervals["subgroups"]["age_group"]["child"] == {"rank1": None, "mAP": None}
    assert intervals["gaps"]["age_group"]["child"]["reference"] == "adult"
    assert "versus" not in intervals
    versus = second["intervals"]["versus"]
    assert versus["model"] == "color_histogram"
    assert versus["mAP"] == pytest.approx(second["metrics"]["mAP"] - first["metrics"]["mAP"])
    markdown = format_report_markdown(report)
    assert "## 95% intervals (bootstrap over 6 query identities, 300 resamples)" in markdown
    assert "| child - adult |" in markdown and "| night - day |" in markdown
    assert run_eval(models, eval_set, resamples=300, seed=4) == report  # seeded: reproducible

    plain = run_eval(models, eval_set, resamples=0)
    assert plain["models"]["color_histogram"]["intervals"] is None
    assert "intervals" not in format_report_markdown(plain)


def test_sheets_show_the_worst_queries_first_or_a_seeded_sample() -> None:
    # Five queries; q3 has no valid match and is never shown.
    scores = QueryScores(
        first_hit=np.array([1, 3, 2, 0, 3]),
        ap=np.array([1.0, 0.2, 0.5, np.nan, 0.2]),
        inp=np.array([1.0, 0.2, 0.5, np.nan, 0.2]),
    )
    assert choose_queries(scores, 3).tolist() == [1, 4, 2]  # ties in AP: index order
    first = choose_queries(scores, 3, "random", seed=4)
    assert first.tolist() == choose_queries(scores, 3, "random", seed=4).tolist()
    assert 3 not in first and len(set(first.tolist())) == 3
    assert sorted(choose_queries(scores, 10, "random").tolist()) == [0, 1, 2, 4]


def test_cmc_plot_draws_one_curve_per_model_up_to_the_asked_rank() -> None:
    curves = {"a": np.linspace(0.5, 1.0, 50), "b": np.linspace(0.1, 0.9, 50)}
    figure = plot_cmc(curves, max_rank=20)
    lines = figure.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ["a", "b"]
    np.testing.assert_allclose(lines[1].get_ydata(), 100 * curves["b"][:20])


# --- the command line: bad input ---------------------------------------------------------------


def assert_one_clear_error(result, message: str) -> None:
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_folder_that_is_not_market_layout_names_the_bad_file(market: Path, tmp_path: Path):
    # A stray file in query/ with a name that carries no person or camera.
    cv2.imwrite(str(market / "query" / "abc.jpg"), np.zeros((8, 4, 3), np.uint8))
    out = tmp_path / "report"
    result = run_cli("--data", str(market), "--model", "color_histogram", "--out", str(out))
    assert_one_clear_error(result, "query/abc.jpg: name does not match")
    assert not out.exists()


def test_a_missing_query_folder_is_named(market: Path, tmp_path: Path) -> None:
    # Someone pointed --data at a folder with only the gallery.
    for image in (market / "query").iterdir():
        image.unlink()
    (market / "query").rmdir()
    result = run_cli("--data", str(market), "--model", "color_histogram")
    assert_one_clear_error(result, "missing folder query/")


def test_an_empty_query_set_is_refused(market: Path) -> None:
    for image in (market / "query").iterdir():
        image.unlink()
    result = run_cli("--data", str(market), "--model", "color_histogram")
    assert_one_clear_error(result, "no .jpg images in query/")


def test_a_set_where_no_query_can_be_scored_is_refused(tmp_path: Path) -> None:
    # Every gallery image of the queries' people is on the queries' own camera.
    root = make_market(tmp_path / "m", describe=False)
    for image in (root / "bounding_box_test").glob("000[1-6]_c3*.jpg"):
        image.unlink()
    for image in (root / "bounding_box_test").glob("000[1-6]_c2*.jpg"):
        image.rename(image.with_name(image.name.replace("_c2", "_c1")))
    result = run_cli("--data", str(root), "--model", "color_histogram")
    assert_one_clear_error(result, "nothing can be scored")


def test_an_existing_non_empty_out_is_refused_before_any_work(market: Path, tmp_path: Path):
    out = tmp_path / "report"
    out.mkdir()
    (out / "precious.txt").write_text("keep me")
    result = run_cli("--data", str(market), "--model", "color_histogram", "--out", str(out))
    assert_one_clear_error(result, "exists and is not empty")
    assert [p.name for p in out.iterdir()] == ["precious.txt"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give exactly one of --data"),  # neither set
        (["--data", "x", "--mot17", "y"], "give exactly one of --data"),  # both
        (["--mot17", "y", "--rerank"], "--rerank applies to --data only"),
        (["--data", "x", "--batch-size", "0"], "--batch-size must be at least 1"),
        (["--data", "x", "--max-queries", "0"], "--max-queries must be at least 1"),
        (["--data", "x", "--sheets", "best"], "--sheets must be 'worst' or 'random'"),
        (["--data", "x", "--sheet-queries", "-1"], "--sheet-queries must be 0 or more"),
        (["--data", "x", "--bootstrap", "-1"], "--bootstrap must be 0 (off) or more"),
        (["--data", "no/such/folder"], "data set folder not found"),
    ],
)
def test_impossible_options_fail_with_one_clear_line(args: list[str], message: str) -> None:
    result = run_cli("--model", "color_histogram", *args)
    assert_one_clear_error(result, message)


# --- the command line: a real run ----------------------------------------------------------------


def test_json_goes_to_stdout_and_the_report_folder_is_written(market: Path, tmp_path: Path):
    needs_registry()
    out = tmp_path / "report"
    result = run_cli(
        "--data", str(market), "--model", "color_histogram", "--model", "color_histogram_centre50",
        "--out", str(out), "--json", "--max-queries", "4", "--sheets", "random",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report == json.loads((out / "metrics.json").read_text())
    assert report["num_query"] == 4
    assert list(report["models"]) == ["color_histogram", "color_histogram_centre50"]
    assert "| model |" in result.stderr  # the table still shows, on stderr


def test_without_json_the_markdown_table_is_printed(market: Path) -> None:
    needs_registry()
    result = run_cli("--data", str(market), "--model", "color_histogram", "--rerank")
    assert result.exit_code == 0, result.output
    assert "k-reciprocal re-ranking" in result.stdout
    assert "| color_histogram |" in result.stdout


def test_an_unknown_model_is_one_clear_line(market: Path, tmp_path: Path) -> None:
    needs_registry()
    out = tmp_path / "report"
    result = run_cli("--data", str(market), "--model", "no-such-model", "--out", str(out))
    assert_one_clear_error(result, "no-such-model")
    assert not out.exists()


@pytest.mark.shared
def test_the_mot17_sanity_set_runs_from_the_command_line(shared_dir: Path, tmp_path: Path):
    needs_registry()
    out = tmp_path / "report"
    mot17 = shared_dir / "data" / "real" / "mot17_mini"
    result = run_cli(
        "--mot17", str(mot17), "--model", "color_histogram", "--json", "--out", str(out)
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    entry = report["models"]["color_histogram"]
    assert report["protocol"] == "mot17-same-camera"
    assert entry["metrics"]["num_query"] == 66
    assert entry["threshold"] is None  # one camera per sequence: nothing to calibrate on
    assert len(entry["subgroups"]["sequence"]) == 7
    assert (out / report["sheets"]["color_histogram"][0]["file"]).is_file()
