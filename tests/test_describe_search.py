"""Description search: the likelihood ranking, fusion with photos, the stored attributes after a
real ingest of the checked-in district, backfill, and the CLI.

Bad input tried: a floor outside (0, 1), an unknown fusion, k = 0, a window whose sightings have
no attributes (must say to backfill, not return nothing), sightings outside the time window or
camera filter, an empty / contradictory / unintelligible description and no query at all on the
command line (one line, exit code 2)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import delete, func, select
from typer.testing import CliRunner

from reunite.cli import app
from reunite.config import Settings
from reunite.errors import InvalidOptionError, NotFoundError
from reunite.models.attributes import ACCESSORIES, FIELDS
from reunite.pipeline.cameras import CameraSpec, add_camera
from reunite.pipeline.describe import parse_description
from reunite.pipeline.describe_search import (
    FLOOR,
    default_attribute_version,
    field_probabilities,
    fuse,
    log_likelihood,
    search_description,
)
from reunite.pipeline.schema import Sighting, SightingAttributes, Source
from reunite.pipeline.workspace import Workspace

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "samples" / "district"
VERSION = default_attribute_version()  # what ingest stores attributes under


def person(**sure: str) -> dict:
    """Stored probabilities: 0.9 on the values given, the rest spread evenly; accessories 0.05
    unless named (0.9)."""
    probs = {}
    for field, values in FIELDS.items():
        chosen = sure.get(field)
        if chosen is None:
            probs[field] = {v: 1 / len(values) for v in values}
        else:
            rest = 0.1 / (len(values) - 1)
            probs[field] = {v: 0.9 if v == chosen else rest for v in values}
    carried = sure.get("accessories", "").split()
    probs["accessories"] = {a: 0.9 if a in carried else 0.05 for a in ACCESSORIES}
    return probs


BOY = person(
    age_group="child",
    gender="male",
    upper_colour="yellow",
    upper_type="raincoat",
    lower_colour="navy",
    bag_colour="pink",
    accessories="backpack",
)
GRANNY = person(
    age_group="elderly",
    gender="female",
    upper_colour="grey",
    upper_type="cardigan",
    lower_colour="black",
    accessories="cane",
)
MAN = person(age_group="adult", gender="male", upper_colour="black", lower_colour="blue")


def test_the_described_person_scores_highest():
    rows = [MAN, GRANNY, BOY]
    boy = parse_description("8살 남자아이, 노란 우비, 남색 바지, 분홍 책가방")
    granny = parse_description("an elderly woman, grey cardigan, black trousers, walking stick")
    assert int(np.argmax(log_likelihood(boy, rows))) == 2
    assert int(np.argmax(log_likelihood(granny, rows))) == 1


def test_one_wrong_field_lowers_but_does_not_zero_a_match():
    # The caller says black trousers; the camera saw navy. The boy must still beat a stranger.
    noisy = parse_description("남자아이, 노란 우비, 검정 바지")
    scores = log_likelihood(noisy, [MAN, BOY])
    assert np.all(np.isfinite(scores)) and scores[1] > scores[0]
    exact = log_likelihood(parse_description("남자아이, 노란 우비, 남색 바지"), [BOY])[0]
    assert exact > scores[1] > exact + 2 * np.log(FLOOR)


def test_a_neighbouring_colour_earns_part_of_the_credit():
    # Said navy, the model saw black (navy's neighbour): better than a colour far from navy.
    black = person(lower_colour="black")
    yellow = person(lower_colour="yellow")
    said = parse_description("남색 바지")
    with_confusion = log_likelihood(said, [black, yellow])
    assert with_confusion[0] > with_confusion[1]
    without = log_likelihood(said, [black, yellow], confusion=0.0)
    assert without[0] == pytest.approx(without[1])
    with pytest.raises(InvalidOptionError, match="confusion"):
        log_likelihood(said, [black], confusion=2.0)


def test_fields_the_description_leaves_out_cost_nothing():
    short = parse_description("노란 우비")
    full = field_probabilities(short, BOY)
    assert set(full) == {"upper_colour", "upper_type"}
    # a field missing from the stored attributes is ignored, not penalised
    partial = {k: v for k, v in BOY.items() if k != "upper_type"}
    assert set(field_probabilities(short, partial)) == {"upper_colour"}
    bag = field_probabilities(parse_description("가방"), BOY)
    assert bag["accessory:any_bag"] == pytest.approx(1 - 0.1 * 0.95)


def test_bad_floor_and_fusion_are_refused():
    with pytest.raises(InvalidOptionError, match="floor"):
        log_likelihood(parse_description("노란 우비"), [BOY], floor=0.0)
    ids = np.arange(3)
    with pytest.raises(InvalidOptionError, match="fusion"):
        fuse(np.zeros(3), np.zeros(3), ids, "sum")  # type: ignore[arg-type]


def test_fusion_rewards_agreement():
    ids = np.arange(4)
    photo = np.array([0.9, 0.8, 0.1, 0.2])
    described = np.array([-9.0, -1.0, -0.5, -8.0])
    for method in ("rank", "zscore"):
        fused = fuse(photo, described, ids, method)
        assert int(np.argmax(fused)) == 1, method  # second on both beats first on one


# -- on a workspace -------------------------------------------------------------------------


@pytest.fixture
def ws(tmp_path: Path):
    workspace = Workspace.open(Settings(data_dir=tmp_path / "data", database_url=""))
    yield workspace
    workspace.close()


def add_sightings(ws: Workspace, people: list[tuple[str, datetime, dict | None]]) -> list[int]:
    with ws.db.session() as session:
        for cam in ("c1", "c2"):
            add_camera(session, CameraSpec(cam, f"camera {cam}"), replace=True)
        source = Source(camera_id="c1", uri="test", kind="folder", fingerprint=uuid.uuid4().hex)
        session.add(source)
        session.flush()
        ids = []
        for track, (camera, when, probs) in enumerate(people):
            s = Sighting(
                camera_id=camera,
                source_id=source.id,
                chunk_index=0,
                track_id=track,
                start_time=when,
                end_time=when + timedelta(seconds=5),
                frames=10,
                quality=0.8,
                x1=0,
                y1=0,
                x2=10,
                y2=30,
            )
            session.add(s)
            session.flush()
            if probs is not None:
                session.add(
                    SightingAttributes(sighting_id=s.id, model=VERSION, probabilities=probs)
                )
            ids.append(s.id)
    return ids


def test_search_ranks_the_right_sighting_first_within_the_filters(ws: Workspace):
    now = datetime.now(UTC)
    ids = add_sightings(
        ws,
        [
            ("c1", now - timedelta(hours=1), MAN),
            ("c1", now - timedelta(hours=2), BOY),
            ("c2", now - timedelta(hours=3), GRANNY),
            ("c2", now - timedelta(days=2), BOY),  # outside a 1-day window
            ("c1", now - timedelta(days=60), BOY),  # past the 30-day retention
        ],
    )
    found = search_description(ws, "노란 우비 입은 남자아이, 분홍 가방", k=3)
    assert found.results[0].sighting_id == ids[1]
    assert found.considered == 4  # the 60-day-old sighting is past retention
    assert found.evidence[0]["upper_colour"] == pytest.approx(0.9, abs=0.01)
    assert found.description.summary().startswith("child · male")
    recent = search_description(ws, "노란 우비", since=now - timedelta(days=1), k=5)
    assert ids[3] not in [r.sighting_id for r in recent.results]
    only_c2 = search_description(ws, "노란 우비", cameras=["c2"], k=5)
    assert {r.camera_id for r in only_c2.results} == {"c2"}
    assert only_c2.results[0].sighting_id == ids[3]
    as_json = json.loads(json.dumps(found.as_dict()))
    assert as_json["results"][0]["sighting_id"] == ids[1]
    with pytest.raises(InvalidOptionError, match="k must be"):
        search_description(ws, "노란 우비", k=0)


def test_sightings_without_attributes_are_not_a_silent_empty_result(ws: Workspace):
    now = datetime.now(UTC)
    add_sightings(ws, [("c1", now - timedelta(hours=1), None)])
    with pytest.raises(NotFoundError, match="attributes backfill"):
        search_description(ws, "노란 우비")
    add_sightings(ws, [("c2", now - timedelta(hours=1), BOY)])
    found = search_description(ws, "노란 우비")
    assert found.without_attributes == 1 and "backfill" in found.warnings[0]


def test_attributes_go_with_their_sighting(ws: Workspace):
    # Retention deletes sightings with a bulk DELETE: the attributes must not outlive them.
    ids = add_sightings(ws, [("c1", datetime.now(UTC), BOY), ("c2", datetime.now(UTC), MAN)])
    with ws.db.session() as session:
        session.execute(delete(Sighting).where(Sighting.id == ids[0]))
    with ws.db.session() as session:
        left = session.scalars(select(SightingAttributes.sighting_id)).all()
    assert left == [ids[1]]


# -- a real ingest of the checked-in district (about 10 s on a busy 2-core machine) -------------


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    from reunite.demo_job import ingest_district

    data = tmp_path_factory.mktemp("described") / "data"
    workspace = Workspace.open(Settings(data_dir=data, database_url=""))
    ingest_district(workspace, SAMPLES)
    yield workspace, data
    workspace.close()


@pytest.mark.slow
def test_ingest_stores_attributes_for_every_sighting(ingested):
    ws, _ = ingested
    with ws.db.session() as session:
        sightings = session.scalar(select(func.count()).select_from(Sighting))
        rows = session.scalars(select(SightingAttributes)).all()
        assert sightings > 0 and len(rows) == sightings
        for row in rows:
            assert row.model == VERSION
            for field in FIELDS:
                assert abs(sum(row.probabilities[field].values()) - 1) < 1e-2
            assert set(row.probabilities["accessories"]) == set(ACCESSORIES)
    found = search_description(ws, "black coat, blue trousers", k=3)
    assert len(found.results) == min(3, sightings) and found.without_attributes == 0


@pytest.mark.slow
def test_backfill_restores_deleted_attributes_from_the_stored_crops(ingested):
    from reunite.pipeline.attributes import backfill, load_attribute_model

    ws, _ = ingested
    with ws.db.session() as session:
        before = {
            r.sighting_id: r.probabilities for r in session.scalars(select(SightingAttributes))
        }
        session.execute(delete(SightingAttributes))
    report = backfill(ws, load_attribute_model(), batch_size=2)
    assert report.sightings == len(before) and report.skipped_without_crops == 0
    with ws.db.session() as session:
        after = {
            r.sighting_id: r.probabilities for r in session.scalars(select(SightingAttributes))
        }
    assert after.keys() == before.keys()
    for sid, probs in after.items():  # crops re-decoded from JPEG: close, not bit-identical
        assert (
            max(
                abs(probs["age_group"][v] - before[sid]["age_group"][v])
                for v in FIELDS["age_group"]
            )
            < 0.1
        )
    assert backfill(ws, load_attribute_model()).sightings == 0  # nothing left to do


@pytest.mark.slow
def test_the_cli_shows_the_parse_then_the_ranking(ingested, monkeypatch):
    _, data = ingested
    monkeypatch.setenv("REUNITE_DATA_DIR", str(data))
    monkeypatch.setenv("COLUMNS", "200")
    runner = CliRunner()
    result = runner.invoke(app, ["search", "--describe", "검정 코트, 파란 바지 flibber", "-k", "2"])
    assert result.exit_code == 0, result.output
    assert "understood: top: black coat · bottom: blue trousers" in result.output
    assert "해석: 상의 검정 코트 · 하의 파랑 바지" in result.output
    assert "ignored (not understood): flibber" in result.output
    assert "sightings searched" in result.output
    as_json = runner.invoke(app, ["search", "--describe", "black coat", "--json"])
    assert as_json.exit_code == 0, as_json.output
    payload = json.loads(as_json.stdout)
    assert payload["summary"] == "top: black coat" and payload["results"]
    photo = sorted((data / "crops").rglob("*.jpg"))[0]
    both = runner.invoke(app, ["search", "--describe", "black coat", "--photo", str(photo)])
    assert both.exit_code == 0, both.output


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["search", "--describe", ""], "empty"),
        (["search", "--describe", "child and elderly"], "two age groups"),
        (["search", "--describe", "flibber gobble"], "'flibber'"),
        (["search"], "give --photo, --describe, or both"),
        (["search", "--describe", "노란 우비", "--rerank"], "photo search only"),
        (["attributes", "parse", "   "], "empty"),
    ],
)
def test_cli_bad_input_is_one_clear_line(tmp_path, monkeypatch, args, fragment):
    monkeypatch.setenv("REUNITE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    text = " ".join(result.output.split())
    assert text.startswith("error:") and fragment in text, text
