"""Issue 15, access control: API key, Host allow-list, no cross-site posts, security headers."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from songmap.api.app import create_app
from songmap.api.security import AccessGuard, exposure_problem, host_allowed
from songmap.api.settings import ServeSettings
from songmap.cli.main import main
from tests.api.conftest import make_settings, upload

KEY = "s3cret-key-for-tests"


@pytest.fixture(scope="module")
def keyed(tmp_path_factory):
    settings = make_settings(tmp_path_factory.mktemp("keyed"), api_key=KEY)
    with TestClient(create_app(settings)) as client:
        yield client, settings


def _headers_ok(r) -> None:
    assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Referrer-Policy"] == "no-referrer"


def test_a_keyed_server_refuses_requests_without_the_key(keyed, clips):
    client, _ = keyed
    for method, url in (("GET", "/library"), ("GET", "/version"), ("GET", "/jobs/abc")):
        r = client.request(method, url)
        assert r.status_code == 401, (url, r.text)
        assert r.json()["error"]["type"] == "NotAuthorizedError"
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        _headers_ok(r)
    r = upload(client, "/analyze", clips["song"])
    assert r.status_code == 401 and "X-Songmap-Cache" not in r.headers
    wrong = client.get("/library", headers={"X-API-Key": KEY + "x"})
    assert wrong.status_code == 401 and "not this server's" in wrong.json()["error"]["message"]


@pytest.mark.models  # runs an analysis in a worker
def test_the_key_opens_every_route_in_either_header(keyed, clips):
    client, _ = keyed
    assert client.get("/library", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
    assert client.get("/library", headers={"X-API-Key": KEY}).status_code == 200
    with open(clips["song"], "rb") as f:
        r = client.post("/analyze", files={"file": ("song.wav", f)},
                        headers={"X-API-Key": KEY})
    assert r.status_code == 200, r.text
    assert r.headers["X-Songmap-Cache"] in ("miss", "hit")  # only a key holder learns it


def test_the_page_and_liveness_stay_public_with_a_key(keyed):
    client, _ = keyed
    spec = client.get("/openapi.json").json()  # /docs can send the key ("Authorize")
    assert spec["components"]["securitySchemes"]["apiKey"]["name"] == "X-API-Key"
    for url in ("/", "/static/app.js", "/healthz", "/openapi.json"):
        r = client.get(url)
        assert r.status_code == 200, url
        _headers_ok(r)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "localhost.evil.example"])
def test_dns_rebinding_host_names_are_refused(service, host):
    client, _ = service
    r = client.get("/library", headers={"Host": host})
    assert r.status_code == 400
    assert r.json()["error"]["type"] == "HostNotAllowedError"
    _headers_ok(r)


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1:8000", "[::1]:8000",
                                  "192.168.1.20:8000", "testserver"])
def test_loopback_names_and_ip_addresses_are_answered(service, host):
    client, _ = service
    assert client.get("/healthz", headers={"Host": host}).status_code == 200


def test_allowed_hosts_and_subdomain_patterns():
    assert host_allowed("songs.example.org", allowed=(".example.org",), bind_host="127.0.0.1")
    assert host_allowed("example.org", allowed=(".example.org",), bind_host="127.0.0.1")
    assert not host_allowed("badexample.org", allowed=(".example.org",), bind_host="127.0.0.1")
    assert host_allowed("box.lan", allowed=(), bind_host="box.lan")
    assert host_allowed("anything", allowed=("*",), bind_host="127.0.0.1")
    assert not host_allowed(".", allowed=(), bind_host="127.0.0.1")
    assert host_allowed("", allowed=(), bind_host="127.0.0.1")  # HTTP/1.0 without Host


def _job_count(settings) -> int:
    from songmap.api.jobs import JobStore

    store = JobStore(settings.jobs_path)
    try:
        return int(store.connect().execute("SELECT COUNT(*) FROM jobs").fetchone()[0])
    finally:
        store.close()


@pytest.mark.parametrize("headers", [
    {"Origin": "http://evil.example"},
    {"Origin": "http://testserver:8080"},  # another port is another origin
    {"Origin": "null"},  # a sandboxed frame or a file: page
    {"Sec-Fetch-Site": "cross-site"},
    {"Sec-Fetch-Site": "same-site", "Origin": "http://testserver"},
])
def test_a_cross_site_form_post_changes_nothing(service, clips, headers):
    client, settings = service
    before = _job_count(settings)
    with open(clips["song"], "rb") as f:
        r = client.post("/jobs", files={"file": ("song.wav", f)}, headers=headers)
    assert r.status_code == 403, r.text
    assert r.json()["error"]["type"] == "CrossSiteRequestError"
    assert _job_count(settings) == before


def test_same_origin_posts_are_accepted(service, clips):
    client, _ = service
    with open(clips["short"], "rb") as f:
        r = client.post("/analyze", files={"file": ("s.wav", f)},
                        headers={"Origin": "http://testserver", "Sec-Fetch-Site": "same-origin"})
    assert r.status_code != 403, r.text


@pytest.mark.parametrize("url", ["/", "/healthz", "/jobs/nope", "/static/style.css", "/docs"])
def test_security_headers_on_every_answer(service, url):
    client, _ = service
    r = client.get(url)
    _headers_ok(r)
    if url == "/":
        csp = r.headers["Content-Security-Policy"]
        assert "script-src 'self';" in csp and "unsafe-inline" not in csp


def test_listening_beyond_loopback_needs_a_key_or_a_loud_opt_out(capsys, tmp_path):
    assert main(["serve", "--host", "0.0.0.0", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "--api-key" in err and "--no-api-key" in err and len(err.strip().splitlines()) == 1
    assert exposure_problem(ServeSettings(host="0.0.0.0", api_key="k")) is None
    assert exposure_problem(ServeSettings(host="0.0.0.0", allow_no_api_key=True)) is None
    assert exposure_problem(ServeSettings(host="::1")) is None


def test_a_keyless_app_answers_only_loopback_connections():
    """However the app is started (uvicorn --factory on 0.0.0.0), no key means loopback only."""
    guard = AccessGuard(None, settings=ServeSettings())
    scope = {"type": "http", "method": "GET", "path": "/library",
             "headers": [(b"host", b"192.168.1.20:8000")]}
    refused = guard.refusal({**scope, "server": ("192.168.1.20", 8000)})
    assert type(refused).__name__ == "NotAuthorizedError"
    assert guard.refusal({**scope, "server": ("127.0.0.1", 8000)}) is None
    open_guard = AccessGuard(None, settings=ServeSettings(allow_no_api_key=True))
    assert open_guard.refusal({**scope, "server": ("192.168.1.20", 8000)}) is None


def test_no_api_key_beyond_loopback_starts_with_one_loud_warning(tmp_path, monkeypatch, caplog):
    import uvicorn

    started: list[dict] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: started.append(options))
    with caplog.at_level("WARNING", logger="songmap"):
        assert main(["serve", "--host", "0.0.0.0", "--no-api-key", "--data-dir",
                     str(tmp_path)]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1 and "no API key" in warnings[0] and "\n" not in warnings[0]
    options = started[0]
    assert options["host"] == "0.0.0.0" and options["limit_concurrency"] == 200
    assert options["http"].header_timeout_s == 10.0 and options["timeout_keep_alive"] == 5
