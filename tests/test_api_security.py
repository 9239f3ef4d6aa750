"""The API's security on a real server (uvicorn on loopback, httpx): authentication everywhere,
roles, upload attacks, rate limits, headers, the audit chain. No footage is needed here.

Bad input tried: no token, a forged token, an expired token, a disabled user's token, a
researcher on case data; uploads of 50 MB, a PNG bomb (a tiny file declaring 40 000 x 40 000
pixels), a ZIP named .jpg, a truncated JPEG, an SVG, a zero-byte file, a photo with no person;
ten wrong passwords in a row; an audit row edited and one deleted behind the server's back.
"""

from __future__ import annotations

import io
import sqlite3
import struct
import time
import zlib
from pathlib import Path

import cv2
import httpx
import jwt
import numpy as np
import pytest
from api_server import Server
from PIL import Image

PASSWORD = "correct horse battery"
REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "samples" / "district" / "cameras" / "c1" / "img1"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("api")
    srv = Server(data, login_per_minute="5")
    for name, role in [("op", "operator"), ("sup", "supervisor"), ("res", "researcher")]:
        result = srv.cli("users", "add", name, "--role", role, "--password-stdin", stdin=PASSWORD)
        assert result.returncode == 0, result.stderr
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def op(server):
    return server.client(server.login("op", PASSWORD))


def person_jpeg() -> bytes:
    """A person-shaped crop (taller than wide, with texture) from the sample district."""
    frame = cv2.imread(str(sorted(SAMPLE.glob("*.jpg"))[0]))
    crop = frame[100:300, 300:380]
    return cv2.imencode(".jpg", crop)[1].tobytes()


def case_count(server: Server, client: httpx.Client) -> int:
    return len(client.get("/cases").json())


def stored_files(data_dir: Path) -> int:
    root = data_dir / "case_photos"
    return sum(1 for p in root.rglob("*") if p.is_file()) if root.exists() else 0


def test_every_endpoint_but_health_refuses_anonymous_and_forged_callers(server):
    spec = httpx.get(f"{server.url}/openapi.json").json()
    forged = jwt.encode(
        {"sub": "op", "exp": time.time() + 60},
        "not the server key, but long enough for HS256",
        algorithm="HS256",
    )
    checked = 0
    for path, methods in spec["paths"].items():
        if path in ("/health", "/auth/token"):
            continue
        url = server.url + path.replace("{", "").replace("}", "").replace("_id", "1")
        url = url.replace("/which", "/crop").replace("/username", "/op").replace("/name", "/x")
        for method in methods:
            for headers in ({}, {"Authorization": f"Bearer {forged}"}):
                response = httpx.request(method.upper(), url, headers=headers)
                assert response.status_code == 401, (method, path, response.text)
                assert response.headers["content-type"] == "application/problem+json"
                assert response.headers["www-authenticate"] == "Bearer"
                checked += 1
    assert checked >= 40
    assert httpx.get(f"{server.url}/health").status_code == 200


def test_researcher_gets_models_but_no_cases_sightings_or_alerts(server):
    res = server.client(server.login("res", PASSWORD))
    assert res.get("/research/models").status_code == 200
    for path in ("/cases", "/sightings/1", "/sightings/1/thumbnail", "/alerts", "/cameras"):
        response = res.get(path)
        assert response.status_code == 403, path
        assert "researcher" in response.json()["detail"]
    assert res.post("/search", data={"purpose": "curious"}).status_code in (403, 422)


def test_operator_may_not_close_cases_or_read_the_audit(server, op):
    case = op.post("/cases", data={"alias": "role check"}).json()
    assert op.post(f"/cases/{case['id']}/close").status_code == 403
    assert op.get("/audit").status_code == 403
    sup = server.client(server.login("sup", PASSWORD))
    assert sup.post(f"/cases/{case['id']}/close").json()["status"] == "closed"


def test_disabled_user_and_expired_token_are_refused_at_once(server):
    token = server.login("op", PASSWORD)
    assert server.client(token).get("/cases").status_code == 200
    assert server.cli("users", "disable", "op").returncode == 0
    try:
        response = server.client(token).get("/cases")
        assert response.status_code == 401 and "disabled" in response.json()["detail"]
    finally:
        assert server.cli("users", "enable", "op").returncode == 0
    key = (Path(server.env["REUNITE_DATA_DIR"]) / "api_secret").read_text().strip()
    expired = jwt.encode({"sub": "op", "exp": int(time.time()) - 5}, key, algorithm="HS256")
    response = server.client(expired).get("/cases")
    assert response.status_code == 401 and "expired" in response.json()["detail"]


def png_bomb(side: int = 40_000) -> bytes:
    """A valid PNG header declaring side x side pixels with a tiny compressed body."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    rows = zlib.compress(b"\x00" * (side + 1) * 64)  # a few rows; the decoder would want all
    body = chunk(b"IHDR", header) + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body


ATTACKS = {
    "50 MB": (b"\xff\xd8\xff" + b"\0" * (50 * 2**20), 413, "MB"),
    "PNG bomb": (png_bomb(), 413, "pixels"),
    "ZIP named .jpg": (b"PK\x03\x04" + b"\0" * 2000, 415, "not a JPEG"),
    "truncated JPEG": (None, 422, "decoded"),
    "SVG": (b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="9"/></svg>', 415, "JPEG"),
    "zero bytes": (b"", 422, "empty"),
    "no person": (None, 422, "no person"),
}


@pytest.mark.parametrize("attack", ATTACKS)
def test_upload_attacks_get_the_right_4xx_and_store_nothing(server, op, attack):
    data, status, words = ATTACKS[attack]
    if attack == "truncated JPEG":
        data = person_jpeg()[:-400]
    if attack == "no person":  # a wide, plain landscape: no face, not person-shaped
        data = cv2.imencode(".jpg", np.full((240, 640, 3), 128, np.uint8))[1].tobytes()
    data_dir = Path(server.env["REUNITE_DATA_DIR"])
    before_cases, before_files = case_count(server, op), stored_files(data_dir)
    response = op.post(
        "/cases",
        data={"alias": f"attack {attack}"},
        files=[("photos", ("photo.jpg", data, "image/jpeg"))],
    )
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert words.lower() in response.json()["detail"].lower()
    assert case_count(server, op) == before_cases
    assert stored_files(data_dir) == before_files


def test_a_good_photo_is_stored_upright_and_without_exif(server, op):
    # A phone photo: stored rotated (EXIF orientation 6 = turn 90 degrees clockwise), with GPS.
    crop = cv2.imdecode(np.frombuffer(person_jpeg(), np.uint8), cv2.IMREAD_COLOR)
    sideways = Image.fromarray(cv2.cvtColor(np.rot90(crop, 1).copy(), cv2.COLOR_BGR2RGB))
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation
    exif[0x010F] = "PhoneMaker"
    buf = io.BytesIO()
    sideways.save(buf, format="JPEG", exif=exif)
    response = op.post(
        "/cases",
        data={"alias": "exif", "photo_kind": "cctv"},
        files=[("photos", ("p.jpg", buf.getvalue(), "image/jpeg"))],
    )
    assert response.status_code == 201, response.text
    photo = response.json()["photos"][0]
    assert photo["found_by"] == "whole" and photo["kind"] == "cctv"
    stored = op.get(photo["image_url"])
    assert stored.headers["content-type"] == "image/jpeg"
    image = Image.open(io.BytesIO(stored.content))
    assert image.height > image.width  # upright again: a person stands
    assert not image.getexif()


def test_wrong_passwords_are_rate_limited_and_audited(server):
    assert server.cli("users", "add", "victim", "--role", "operator", "--password-stdin",
                      stdin=PASSWORD).returncode == 0  # fmt: skip
    server.login("victim", PASSWORD)  # a success does not count against the limit
    for _ in range(5):
        bad = httpx.post(f"{server.url}/auth/token", data={"username": "victim", "password": "x"})
        assert bad.status_code == 401
    right = {"username": "victim", "password": PASSWORD}
    limited = httpx.post(f"{server.url}/auth/token", data=right)
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    sup = server.client(server.login("sup", PASSWORD))  # another name is not locked out
    refused = sup.get("/audit", params={"username": "victim", "action": "login"}).json()
    assert [r["outcome"] for r in refused].count("refused") == 5


def test_security_headers_and_no_cors(server, op):
    response = op.get("/cases", headers={"Origin": "https://evil.example"})
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["cache-control"] == "no-store"
    assert "access-control-allow-origin" not in response.headers
    assert "server" not in response.headers


def test_audit_records_and_detects_an_edited_or_deleted_row(server, op):
    op.get("/cases", headers={"X-Reunite-Purpose": "shift handover"})
    sup = server.client(server.login("sup", PASSWORD))
    rows = sup.get("/audit", params={"action": "case_list"}).json()
    assert rows[0]["username"] == "op" and rows[0]["purpose"] == "shift handover"
    assert {"login", "case_create"} <= {r["action"] for r in sup.get("/audit").json()}
    assert sup.get("/audit/verify").json()["intact"] is True
    assert server.cli("audit", "verify").returncode == 0

    database = Path(server.env["REUNITE_DATA_DIR"]) / "reunite.db"
    with sqlite3.connect(database) as conn:
        conn.execute("UPDATE audit_log SET purpose = 'nothing to see' WHERE seq = 3")
    result = server.cli("audit", "verify")
    assert result.returncode == 1 and "entry 3 was changed" in result.stdout + result.stderr
    with sqlite3.connect(database) as conn:
        conn.execute("DELETE FROM audit_log WHERE seq = 5")
    report = sup.get("/audit/verify").json()
    assert report["intact"] is False
    assert any("entries 5..5 are missing" in p for p in report["problems"])
