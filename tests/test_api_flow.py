"""The operator's whole flow on a real server over a real index built from a rendered district:
register a missing child with a CCTV still, find them among the matches, confirm and reject,
then receive an alert over Server-Sent Events (and a signed webhook) when a new camera's clip is
ingested by a separate process. Also: sightings past retention are never returned.

Bad input tried: a rejected sighting must not come back; a sighting moved past the retention
period behind the server's back must be refused though no purge ran; a decision on a sighting
that does not exist.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
import threading
from datetime import datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import ClassVar

import cv2
import httpx
import numpy as np
import pytest
from api_server import Server
from district_clips import IngestedDistrict, ingest_but_later_clip

from reunite.evaluation.mot import read_mot_gt

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
WEBHOOK_SECRET = "a webhook secret for the control room"


class Hook(BaseHTTPRequestHandler):
    received: ClassVar[list[tuple[dict, bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def webhook():
    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/alerts"
    server.shutdown()


@pytest.fixture(scope="module")
def district_server(tmp_path_factory, pipeline_district, webhook):
    """Every camera ingested before the server starts, except the second half of the clip of the
    camera where one person stays longest: that clip comes in later and should raise the alert.
    """
    data = tmp_path_factory.mktemp("flow")
    setup = ingest_but_later_clip(pipeline_district, data)
    server = Server(
        data, webhook_url=webhook, webhook_secret=WEBHOOK_SECRET, search_per_minute="1000"
    )
    for name, role in [("op", "operator"), ("sup", "supervisor"), ("res", "researcher")]:
        result = server.cli(
            "users", "add", name, "--role", role, "--password-stdin", stdin=PASSWORD
        )
        assert result.returncode == 0, result.stderr
    yield server, setup.people, data, setup
    server.stop()


@pytest.fixture(scope="module")
def case(district_server):
    server, people, data, target = district_server
    theirs = [s for s in people.values() if s.person_id == target.person and s.crop_shas]
    assert theirs, f"person {target.person} should have a sighting in the first clip"
    still_sighting = max(theirs, key=lambda s: max(s.crop_qualities))
    photo = next((data / "crops").rglob(f"{still_sighting.crop_shas[0]}*")).read_bytes()
    op = server.client(server.login("op", PASSWORD))
    response = op.post(
        "/cases",
        data={"alias": "민준 (7)", "age_group": "child", "description": "노란 우비, 남색 바지"},
        files=[("photos", ("last_seen.jpg", photo, "image/jpeg"))],
    )
    assert response.status_code == 201, response.text
    return response.json(), target.person


def test_operator_registers_a_missing_child_and_confirms_a_match(district_server, case):
    server, people, _, _ = district_server
    created, person = case
    op = server.client(server.login("op", PASSWORD))
    matches = op.get(f"/cases/{created['id']}/matches", params={"k": 10, "by": "photos"})
    assert matches.status_code == 200, matches.text
    assert matches.json()["basis"] == "photos"
    results = matches.json()["results"]
    found = [r for r in results if people[r["sighting_id"]].person_id == person]
    assert found and results[0]["sighting_id"] == found[0]["sighting_id"], "top match is them"
    assert all(r["thumbnail_url"] for r in results)
    thumb = op.get(results[0]["thumbnail_url"])
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    detail = op.get(f"/sightings/{results[0]['sighting_id']}").json()
    assert detail["crops"] and op.get(detail["crops"][0]["url"]).status_code == 200
    frame = op.get(detail["frame_url"])  # the whole frame, where the box lies
    assert frame.status_code == 200 and frame.headers["content-type"] == "image/jpeg"
    image = cv2.imdecode(np.frombuffer(frame.content, np.uint8), cv2.IMREAD_COLOR)
    x1, y1, x2, y2 = detail["box"]
    assert image.shape[:2] == (360, 640) and 0 <= x1 < x2 <= 640 and 0 <= y1 < y2 <= 360

    confirm = op.put(
        f"/cases/{created['id']}/matches/{found[0]['sighting_id']}", json={"decision": "confirmed"}
    )
    assert confirm.status_code == 200 and confirm.json()["decision"] == "confirmed"
    wrong = next(r for r in results if people[r["sighting_id"]].person_id != person)
    reject = op.put(
        f"/cases/{created['id']}/matches/{wrong['sighting_id']}", json={"decision": "rejected"}
    )
    assert reject.status_code == 200
    again = op.get(f"/cases/{created['id']}/matches", params={"k": 10, "by": "photos"})
    again = again.json()["results"]
    assert wrong["sighting_id"] not in {r["sighting_id"] for r in again}
    assert {r["sighting_id"]: r["decision"] for r in again}[found[0]["sighting_id"]] == "confirmed"
    missing = op.put(f"/cases/{created['id']}/matches/999999", json={"decision": "rejected"})
    assert missing.status_code == 404

    described = op.get(f"/cases/{created['id']}/matches", params={"by": "description"}).json()
    assert described["basis"] == "description" and described["results"]
    assert "raincoat" in described["description"]["summary"]  # parsed from 노란 우비
    both = op.get(f"/cases/{created['id']}/matches").json()  # a CCTV still and a description
    assert both["basis"] == "both"
    parsed = op.post("/describe/parse", json={"text": "노란 우비, 남색 바지, 블라블라"}).json()
    assert parsed["description"]["upper_type"] == ["raincoat"] and parsed["ignored"]
    bad = op.post("/describe/parse", json={"text": "child and elderly"})
    assert bad.status_code == 422 and bad.headers["content-type"] == "application/problem+json"

    cameras = {c["id"]: c for c in op.get("/cameras").json()}
    home = cameras[results[0]["camera_id"]]
    near = {"near_x": home["x"], "near_y": home["y"], "radius": 1.0, "k": 10, "by": "photos"}
    nearby = op.get(f"/cases/{created['id']}/matches", params=near).json()["results"]
    assert nearby and {r["camera_id"] for r in nearby} == {home["id"]}
    only = op.get(f"/cases/{created['id']}/matches", params={"camera": home["id"]}).json()
    assert {r["camera_id"] for r in only["results"]} == {home["id"]}
    adhoc = op.post(
        "/search",
        data={"purpose": "patrol check", "describe": "노란 우비", **near},
    ).json()
    assert adhoc["basis"] == "description"
    assert {r["camera_id"] for r in adhoc["results"]} <= {home["id"]}
    half = op.get(f"/cases/{created['id']}/matches", params={"near_x": 0}).json()
    assert "together" in half["detail"]

    sup = server.client(server.login("sup", PASSWORD))
    trail = sup.get("/audit", params={"case_id": created["id"]}).json()
    views = [t for t in trail if t["action"] == "matches_view"]
    assert views and views[0]["username"] == "op" and views[0]["result_ids"]
    assert views[0]["purpose"] == f"case {created['id']}"
    assert {"match_decision", "case_create"} <= {t["action"] for t in trail}


def test_an_alert_arrives_over_sse_and_webhook_when_a_new_clip_is_ingested(
    district_server, case, pipeline_district
):
    server, _, _, target = district_server
    created, person = case
    token = server.login("op", PASSWORD)
    op = server.client(token)
    # The operator lowers the case's alert threshold so that the test does not hang on how
    # similar two views of one child happen to be.
    assert op.patch(f"/cases/{created['id']}", json={"alert_threshold": 0.3}).status_code == 200

    events: list[dict] = []
    listening = threading.Event()

    def listen() -> None:
        url = f"{server.url}/alerts/stream"
        with httpx.stream("GET", url, params={"access_token": token}, timeout=300) as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            listening.set()
            event = None
            for line in stream.iter_lines():
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: ") and event == "alert":
                    events.append(json.loads(line[6:]))
                    return

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    assert listening.wait(30)
    ingest = server.cli("ingest", str(target.later_clip), "--camera", target.camera)
    assert ingest.returncode == 0, ingest.stderr
    listener.join(timeout=120)
    assert events, "no alert arrived over SSE within two minutes of the ingest"
    assert events[0]["case_id"] == created["id"]
    assert events[0]["sighting"]["camera_id"] == target.camera

    alerts = op.get("/alerts", params={"case_id": created["id"]}).json()
    truth = read_mot_gt(pipeline_district / "cameras" / target.camera / "gt" / "gt.txt")
    assert any(shows_person(op, a["sighting"]["sighting_id"], truth, target) for a in alerts), (
        f"no alert shows person {person} in the new clip"
    )

    for _ in range(40):
        if Hook.received:
            break
        threading.Event().wait(0.5)
    headers, body = Hook.received[0]
    expected = hmac.new(
        WEBHOOK_SECRET.encode(),
        headers["x-reunite-timestamp"].encode() + b"." + body,
        hashlib.sha256,
    ).hexdigest()
    assert headers["x-reunite-signature"] == f"sha256={expected}"
    assert json.loads(body)["case_id"] == created["id"]


def shows_person(op: httpx.Client, sighting_id: int, truth: dict, target: IngestedDistrict) -> bool:
    """Whether a crop of the sighting covers the person's ground-truth box (IoU >= 0.5); the
    later clip's frame i is the camera's frame ``split + i + 1``, matched by the crop's time."""
    detail = op.get(f"/sightings/{sighting_id}").json()
    frames = sorted((target.later_clip / "img1").glob("*.jpg"))
    by_time = {int(f.stem.split("_")[1]): i for i, f in enumerate(frames)}
    for crop in detail["crops"]:
        epoch_ms = round(datetime.fromisoformat(crop["time"]).timestamp() * 1000)
        index = by_time.get(epoch_ms)
        if index is None:
            continue
        for box in truth.get(target.split + index + 1, []):
            if box.track_id == target.person and iou(crop["box"], box.as_xyxy()) >= 0.5:
                return True
    return False


def iou(a: list[float], b: tuple[float, ...]) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union if union > 0 else 0.0


def test_sightings_past_retention_are_never_returned_even_before_purge(district_server, case):
    server, _, data, _ = district_server
    created, _ = case
    op = server.client(server.login("op", PASSWORD))
    results = op.get(f"/cases/{created['id']}/matches", params={"k": 50}).json()["results"]
    old = results[-1]["sighting_id"]
    with sqlite3.connect(data / "reunite.db") as conn:
        conn.execute(
            "UPDATE sightings SET start_time = datetime('now', '-40 days'), "
            "end_time = datetime('now', '-40 days') WHERE id = ?",
            (old,),
        )
    assert op.get(f"/sightings/{old}").status_code == 404
    assert op.get(f"/sightings/{old}/thumbnail").status_code == 404
    again = op.get(f"/cases/{created['id']}/matches", params={"k": 50}).json()["results"]
    assert old not in {r["sighting_id"] for r in again}
