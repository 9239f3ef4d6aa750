"""The web console, end to end in headless Chromium (the OS package, driven by Playwright) on a
real server over a real index built from a rendered district: sign in, register a missing child
with a CCTV still, find them among the candidates, confirm with the keyboard, see the route, open
the sighting, and watch an alert arrive live when a later clip is ingested by another process;
then switch language; then the supervisor pages. Screenshots of each step go to
test-artifacts/console/.

The fast tests (no browser) check how the console is served and that both dictionaries hold
every string.

Bad input tried: a wrong password; path traversal and hidden files under /console/; a user with
a too-short password; a rejected candidate must leave the results; requests to anywhere but the
server (the console must work offline) and CSP violations or script errors fail the test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
from api_server import Server
from district_clips import ingest_but_later_clip
from fastapi.testclient import TestClient

from reunite.api.app import create_app
from reunite.api.routes_console import CONSOLE_DIR, console_file
from reunite.config import Settings
from reunite.errors import NotFoundError

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts" / "console"
CHROMIUM = Path("/usr/bin/chromium")
PASSWORD = "correct horse battery"
ALIAS = "민준 (7)"


# -- served files (fast) -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_client(tmp_path_factory) -> TestClient:
    # No lifespan: the console routes need no database, and no token.
    data = tmp_path_factory.mktemp("console")
    return TestClient(create_app(Settings(data_dir=data, database_url="")))


def test_console_is_served_without_a_token_with_the_right_types(plain_client):
    root = plain_client.get("/", follow_redirects=False)
    assert root.status_code == 307 and root.headers["location"] == "/console/"
    page = plain_client.get("/console/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script type="module" src="js/app.js">' in page.text
    types = {
        "/console/js/app.js": "text/javascript",
        "/console/style.css": "text/css",
        "/console/i18n/ko.json": "application/json",
        "/console/favicon.svg": "image/svg+xml",
    }
    for path, kind in types.items():
        response = plain_client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-type"].startswith(kind), path
    assert plain_client.head("/console/js/app.js").status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        "/console/../app.py",
        "/console/%2e%2e/routes_console.py",
        "/console/js/%2e%2e/%2e%2e/routes_console.py",
        "/console/..%2froutes_console.py",
        "/console/.hidden",
        "/console/js",
        "/console/nothing.js",
        "/console/js/app.py",
    ],
)
def test_nothing_outside_the_console_folder_is_served(plain_client, path):
    # Traversal, hidden names, folders, unknown files and other types: all 404.
    response = plain_client.get(path)
    assert response.status_code == 404, (path, response.text[:200])
    assert "import" not in response.text
    # The same path as the route receives it (decoded; clients may normalise "..").
    with pytest.raises(NotFoundError):
        console_file(unquote(path.removeprefix("/console/")))


def test_every_asset_is_local():
    # A control room is often offline: no CDN, no remote font, no absolute URL in any asset.
    allowed = {"http://www.w3.org/2000/svg"}
    for file in CONSOLE_DIR.rglob("*"):
        if file.is_file():
            urls = set(re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"')]*", file.read_text()))
            assert urls <= allowed, (file, urls - allowed)


def _dictionaries() -> dict[str, dict[str, str]]:
    return {
        lang: json.loads((CONSOLE_DIR / "i18n" / f"{lang}.json").read_text())
        for lang in ("ko", "en")
    }


def test_both_languages_hold_every_string_with_the_same_placeholders():
    dicts = _dictionaries()
    assert dicts["ko"].keys() == dicts["en"].keys()
    for key, text in dicts["en"].items():
        ko = dicts["ko"][key]
        assert text.strip() and ko.strip(), key
        assert set(re.findall(r"\{\w+\}", text)) == set(re.findall(r"\{\w+\}", ko)), key
    assert re.search("[가-힣]", dicts["ko"]["nav.cases"]), "the Korean dictionary is Korean"
    namespaces = {k.split(".")[0] for k in dicts["en"]}
    source = "\n".join(
        f.read_text() for f in [*CONSOLE_DIR.rglob("*.js"), CONSOLE_DIR / "index.html"]
    )
    # Every literal key the code uses exists (a typo would show the raw key on screen) ...
    used = {
        k
        for k in re.findall(r"[\"'`]([a-z]+\.[A-Za-z.]+[A-Za-z])[\"'`]", source)
        if k.split(".")[0] in namespaces and not k.endswith((".js", ".json", ".css", ".svg"))
    }
    assert used, "no keys found: the pattern is wrong"
    assert used <= dicts["en"].keys(), sorted(used - dicts["en"].keys())
    # ... and so does every key built from a value the API returns.
    families = {
        "age": ["unknown", "child", "adult", "elderly"],
        "role": ["operator", "supervisor", "researcher", "admin"],
        "status": ["open", "closed"],
        "photoKind": ["family", "cctv", "other"],
        "decision": ["confirmed", "rejected", "done.confirmed", "done.rejected"],
        "photo.found": ["box", "detector", "face", "whole"],
        "by": ["auto", "photos", "description", "both"],
        "basis": ["photos", "description", "both"],
    }
    vocabulary = json.loads(
        re.search(r"VOCABULARY = (\{.*?\n\});", _js_to_json(source), re.S).group(1)
    )
    for fld, values in vocabulary.items():
        families.setdefault("field", []).append(fld)
        families.setdefault("value", []).extend(values)
    for prefix, names in families.items():
        for name in names:
            assert f"{prefix}.{name}" in dicts["en"], f"{prefix}.{name}"


def _js_to_json(source: str) -> str:
    """The VOCABULARY literal of describe.js as JSON (keys quoted, COLOURS inlined)."""
    colours = re.search(r"const COLOURS = (\[.*?\]);", source).group(1)
    text = source.replace(": COLOURS", f": {colours}")
    return re.sub(r"^(\s+)(\w+):", r'\1"\2":', text, flags=re.M).replace(",\n};", "\n};")


# -- the browser (slow) ------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    camera: str
    person: int
    split: int
    later_clip: Path
    clothing: dict


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip("needs Chromium at /usr/bin/chromium (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("needs the playwright package (pip install playwright; no browser download)")
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def console_server(tmp_path_factory, pipeline_district, browser):
    """Every camera ingested before the server starts, except the second half of the clip of the
    camera where one person stays longest: that clip is ingested while the page is open."""
    data = tmp_path_factory.mktemp("console_flow")
    setup = ingest_but_later_clip(pipeline_district, data)
    people, person = setup.people, setup.person
    theirs = [s for s in people.values() if s.person_id == person and s.crop_shas]
    assert theirs, f"person {person} should have a sighting in the first clip"
    best = max(theirs, key=lambda s: max(s.crop_qualities))
    photo = data / "last_seen.jpg"
    photo.write_bytes(next((data / "crops").rglob(f"{best.crop_shas[0]}*")).read_bytes())
    server = Server(data, search_per_minute="1000")
    for name, role in [("op", "operator"), ("sup", "supervisor")]:
        result = server.cli(
            "users", "add", name, "--role", role, "--password-stdin", stdin=PASSWORD
        )
        assert result.returncode == 0, result.stderr
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    identities = json.loads((pipeline_district / "identities.json").read_text())
    clothing = next(i["clothing"] for i in identities if i["id"] == person)
    target = Target(setup.camera, person, setup.split, setup.later_clip, clothing)
    yield server, people, photo, target
    server.stop()


class Watched:
    """A page whose script errors, CSP refusals and requests off the server are recorded."""

    def __init__(self, browser, server: Server, locale: str, size=(1366, 768)) -> None:
        self.context = browser.new_context(
            locale=locale,
            timezone_id="Asia/Seoul",
            viewport={"width": size[0], "height": size[1]},
        )
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.page.on("pageerror", lambda e: self.problems.append(f"script error: {e}"))
        self.page.on("console", self._console)
        self.page.on("request", self._request)
        self.origin = server.url

    def _console(self, message) -> None:
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.problems.append(f"console: {message.text}")  # CSP refusals land here

    def _request(self, request) -> None:
        url = request.url
        if not (url.startswith(self.origin + "/") or url.startswith(("blob:", "data:"))):
            self.problems.append(f"request off the server: {url}")

    def shot(self, name: str, full_page: bool = True) -> None:
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=full_page)

    def close(self) -> None:
        self.context.close()
        assert not self.problems, self.problems


def sign_in(w: Watched, user: str, password: str = PASSWORD) -> None:
    w.page.goto(w.origin + "/")
    w.page.wait_for_selector("body[data-ready]")
    w.page.fill("input[name=username]", user)
    w.page.fill("input[name=password]", password)
    w.page.click("form.login button[type=submit]")


@pytest.fixture
def watched(browser, console_server) -> Iterator:
    pages: list[Watched] = []

    def make(locale: str, size=(1366, 768)) -> Watched:
        pages.append(Watched(browser, console_server[0], locale, size))
        return pages[-1]

    yield make
    for w in pages:
        w.close()


@pytest.mark.slow
def test_operator_flow_in_korean_with_a_live_alert(console_server, watched):
    server, people, photo, target = console_server
    w = watched("ko-KR")
    page = w.page
    # The operator types the clothes as a caller would say them, in Korean, from ground truth.
    ko = _dictionaries()["ko"]
    clothing = target.clothing
    description = ", ".join(
        f"{clothing[part]['colour_ko']} {ko['value.' + clothing[part]['type']]}"
        for part in ("upper", "lower")
    )

    # 1. Korean by default for a browser that prefers it; a wrong password is refused.
    sign_in(w, "op", "not the password")
    assert page.locator("html").get_attribute("lang") == "ko"
    page.wait_for_selector("form.login .error:not([hidden])")
    assert "비밀번호" in page.inner_text("form.login .error")
    w.shot("01_login_refused")
    sign_in(w, "op")
    page.wait_for_selector("#cases-title")
    assert page.inner_text("#cases-title") == "진행 중인 사건"
    assert "token" not in page.evaluate("JSON.stringify(localStorage)")
    assert "token" in page.evaluate("sessionStorage.getItem('reunite.session')")
    w.shot("02_cases_empty")

    # 2. A new case: the CCTV still, the person outlined, the camera picked on the plan.
    page.click("a[href='#/cases/new']")
    page.wait_for_selector("#new-title")
    page.get_by_label("이름 또는 별칭").fill(ALIAS)
    page.get_by_label("연령대").select_option("child")
    page.get_by_label("사진 출처").select_option("cctv")
    page.locator("input[type=file]").set_input_files(str(photo))
    page.get_by_label("인상착의").fill(description)
    # The parsed description comes back as chips (or, without POST /describe/parse, the raw text).
    page.wait_for_selector(".chips li")
    chips = page.eval_on_selector_all(
        ".chips li.chip", "els => els.map(e => [e.dataset.field, e.dataset.value])"
    )
    if not page.locator(".chips li.raw").count():
        assert ["upper_colour", clothing["upper"]["colour"]] in chips, chips
        assert ["lower_type", clothing["lower"]["type"]] in chips, chips
    page.click(f".plan .camera[data-camera='{target.camera}']")
    assert page.get_by_label("가장 가까운 카메라", exact=True).input_value() == target.camera
    page.wait_for_selector(".photo[data-found]:not([data-found=''])")
    found = page.get_attribute(".photo", "data-found")
    if found != "unavailable":  # POST /photos/preview answered: the person is outlined
        assert page.locator(".photo .outline rect").count() == 1
    w.shot("03_new_case")
    page.click("form.new-case button[type=submit]")

    # 3. The case page: the right person is among the first candidates (photo and description
    # fused: the CCTV still shows the day's clothes).
    page.wait_for_selector("#case-title")
    page.wait_for_selector("li.result")
    assert ALIAS in page.inner_text("#case-title")
    case_id = int(page.url.rsplit("/", 1)[1])
    ids = [
        int(x)
        for x in page.eval_on_selector_all("li.result", "els => els.map(e => e.dataset.sighting)")
    ]
    persons = [people[i].person_id if i in people else None for i in ids]
    assert target.person in persons[:5], f"top candidates are persons {persons[:5]}"
    right = persons.index(target.person)
    page.wait_for_function(
        "() => [...document.querySelectorAll('li.result img')].every(i => i.naturalWidth > 0)"
    )
    w.shot("04_candidates")

    # 4. Keyboard review: j/k move, r rejects a wrong one, c confirms theirs; help is shown.
    wrong = next(i for i, p in enumerate(persons) if p != target.person)
    page.locator("li.result article").first.focus()
    for _ in range(wrong):
        page.keyboard.press("j")
    assert page.get_attribute("li.result.selected", "data-sighting") == str(ids[wrong])
    page.keyboard.press("r")
    page.wait_for_selector(f"li.result.rejected[data-sighting='{ids[wrong]}']")
    for _ in range(wrong - right):
        page.keyboard.press("k")
    for _ in range(right - wrong):
        page.keyboard.press("j")
    page.keyboard.press("c")
    page.wait_for_selector(f"li.result.confirmed[data-sighting='{ids[right]}']")
    page.wait_for_selector(f".timeline li[data-sighting='{ids[right]}']")
    assert page.locator(".plan .route-stop").count() == 1
    page.keyboard.press("?")
    assert page.is_visible("#shortcut-help")
    w.shot("05_confirmed_and_route")
    page.keyboard.press("u")  # refresh: the rejected candidate is gone, the confirmed one stays
    page.wait_for_function(
        f"() => !document.querySelector(\"li.result[data-sighting='{ids[wrong]}']\")"
    )
    decision = page.get_attribute(f"li.result[data-sighting='{ids[right]}']", "data-decision")
    assert decision == "confirmed"

    # 5. The sighting: its crops (and its frame where the server keeps it).
    page.locator(f"li.result[data-sighting='{ids[right]}'] article").focus()
    page.keyboard.press("o")
    page.wait_for_selector("dialog.sighting[open] .crops img")
    page.wait_for_function(
        "() => [...document.querySelectorAll('dialog .crops img')].every(i => i.naturalWidth > 0)"
    )
    w.shot("06_sighting", full_page=False)
    page.keyboard.press("Escape")
    assert not page.is_visible("dialog.sighting")

    # 6. A later clip is ingested by another process while the page is open: the banner and
    # the case page update without a reload, and a beep is played.
    token = server.login("op", PASSWORD)
    patch = server.client(token).patch(f"/cases/{case_id}", json={"alert_threshold": 0.3})
    assert patch.status_code == 200
    page.wait_for_selector("body[data-stream='open']")
    marker = page.evaluate("window.__sameDocument = true")
    assert marker is True
    ingest = server.cli("ingest", str(target.later_clip), "--camera", target.camera)
    assert ingest.returncode == 0, ingest.stderr
    page.wait_for_selector("#alert-banner:not([hidden])", timeout=120_000)
    assert ALIAS in page.inner_text("#alert-banner")
    assert int(page.get_attribute("#alert-banner", "data-beeps")) >= 1
    page.wait_for_selector(".alert-list li[data-alert]", timeout=30_000)
    assert page.evaluate("window.__sameDocument") is True, "the page was reloaded"
    alerts = server.client(token).get("/alerts", params={"case_id": case_id}).json()
    assert alerts and all(a["sighting"]["camera_id"] == target.camera for a in alerts)
    # The candidates were searched again: the alerted sighting is among them, marked new (the
    # district has fewer sightings than the 20 shown).
    newest = alerts[-1]["sighting"]["sighting_id"]
    page.wait_for_selector(f"li.result[data-sighting='{newest}'] .badge.alert")
    w.shot("07_live_alert")

    # 7. English and back, on the same page.
    page.click("#lang")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("#results-title")).to_have_text("Candidate sightings")
    expect(page.locator("#nav a[href='#/cases']")).to_have_text("Cases")
    expect(page.locator("#logout")).to_have_text("Log out")
    expect(page.locator("#route-title")).to_have_text("Confirmed route")
    expect(page.locator("#alert-banner")).to_contain_text(f"New sighting for {ALIAS}")
    w.shot("08_case_english")
    page.click("#lang")
    expect(page.locator("#results-title")).to_have_text("후보 목격")
    expect(page.locator("#logout")).to_have_text("로그아웃")
    expect(page.locator("#nav a[href='#/cases']")).to_have_text("사건")

    # 8. The case list: this case first, with its alert.
    page.click("#nav a[href='#/cases']")
    page.wait_for_selector(f"tr[data-case='{case_id}'] .badge")
    w.shot("09_cases_with_alert")


@pytest.mark.slow
def test_supervisor_pages_in_english_and_on_a_tablet(console_server, watched):
    server, _, _, _ = console_server
    w = watched("en-US", size=(768, 1024))
    page = w.page
    sign_in(w, "sup")
    page.wait_for_selector("#cases-title")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.inner_text("#cases-title") == "Open cases"

    page.click("#nav a[href='#/audit']")
    page.wait_for_selector("#audit-title")
    page.get_by_label("Action").select_option("login")
    page.click("form.filters button[type=submit]")
    page.wait_for_function(
        "() => document.querySelectorAll('tr[data-action]').length > 0 && "
        "[...document.querySelectorAll('tr[data-action]')].every(r => r.dataset.action === 'login')"
    )
    page.click("text=Verify the chain")
    page.wait_for_selector("p.ok")
    w.shot("10_audit_tablet")

    page.click("#nav a[href='#/users']")
    page.wait_for_selector("#users-title")
    page.get_by_label("User name", exact=True).fill("kim")
    page.get_by_label("Password").fill("short")
    page.evaluate(
        "document.querySelector('form input[name=password]').removeAttribute('minlength')"
    )
    page.click("form button[type=submit]")
    page.wait_for_selector("section .error:not([hidden])")  # the API refuses a short password
    assert "password" in page.inner_text("section .error")
    page.get_by_label("Password").fill("a long enough password")
    page.click("form button[type=submit]")
    page.wait_for_selector("tr[data-user='kim']")
    page.click("tr[data-user='kim'] button")
    page.wait_for_selector("tr[data-user='kim'].disabled")
    users = server.client(server.login("sup", PASSWORD)).get("/users").json()
    assert {u["username"]: u["disabled"] for u in users}["kim"] is True
    w.shot("11_users_tablet")

    # Nothing is wider than a portrait tablet.
    for route in ["#/cases", "#/cases/new", "#/audit", "#/users"]:
        page.evaluate(f"window.location.hash = '{route}'")
        page.wait_for_timeout(300)
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{route} is {overflow} px too wide at 768 px"
        if route == "#/cases/new":
            w.shot("12_new_case_tablet")

    # Signing out forgets the token; an operator is kept off supervisor pages.
    page.click("#logout")
    page.wait_for_selector("form.login")
    assert page.evaluate("sessionStorage.getItem('reunite.session')") is None
    sign_in(w, "op")
    page.wait_for_selector("#cases-title")
    assert not page.is_visible("#nav a[href='#/audit']")
    page.evaluate("window.location.hash = '#/audit'")
    page.wait_for_selector("main .error")


@pytest.mark.slow
def test_a_token_rejected_by_the_server_signs_the_operator_out(console_server, watched):
    # A forged token in the session (what an expired one looks like to the page): the first
    # call gets 401 and the page returns to the sign-in form with a message.
    server = console_server[0]
    w = watched("en-US")
    w.page.goto(server.url + "/console/")
    w.page.wait_for_selector("body[data-ready]")
    w.page.evaluate(
        "sessionStorage.setItem('reunite.session', JSON.stringify("
        "{username: 'op', role: 'operator', token: 'forged.token.value'}))"
    )
    w.page.goto(server.url + "/console/#/cases")
    w.page.wait_for_selector("form.login .error:not([hidden])")
    assert "session has ended" in w.page.inner_text("form.login .error")
    assert w.page.evaluate("sessionStorage.getItem('reunite.session')") is None
    assert httpx.get(server.url + "/health").status_code == 200
