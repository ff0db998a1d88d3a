"""Liveness, readiness, version, OpenAPI docs and the web page."""

from __future__ import annotations

import time

import pytest
from fastapi.testclient import TestClient

from songmap import __version__
from songmap.api.app import create_app

from .conftest import make_settings


def test_health_and_readiness(service):
    client, _ = service
    assert client.get("/healthz").json() == {"status": "ok"}
    for _ in range(600):
        r = client.get("/readyz")
        if r.status_code == 200:
            break
        assert r.json()["status"] == "starting"
        time.sleep(0.05)
    assert r.status_code == 200
    assert r.json() == {"status": "ready", "workers": 1, "workers_ready": 1, "detail": None}


@pytest.mark.models  # its own app's worker loads them
def test_readiness_is_separate_from_liveness(tmp_path):
    """Right after start the process is alive while the workers still load their models."""
    with TestClient(create_app(make_settings(tmp_path))) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code in (200, 503)


def test_version(service):
    client, _ = service
    body = client.get("/version").json()
    assert body["songmap"] == __version__
    assert body["schema_version"]
    assert "json" in body["analysis_settings"]["formats"]
    assert body["models"]


def test_openapi_documents_the_routes(service):
    client, _ = service
    spec = client.get("/openapi.json").json()
    for path in ("/analyze-timeline", "/analyze", "/jobs", "/jobs/{job_id}",
                 "/jobs/{job_id}/result", "/healthz", "/readyz", "/version"):
        assert path in spec["paths"]
    schemas = spec["components"]["schemas"]
    assert "TimelineResponse" in schemas and "AnalysisResult" in schemas


def test_docs_load_nothing_from_outside(service):
    client, _ = service
    for page in ("/docs", "/redoc"):
        r = client.get(page)
        assert r.status_code == 200
        assert "/docs-static/" in r.text
        assert "cdn." not in r.text and "fonts.googleapis" not in r.text
    assert client.get("/docs-static/swagger-ui-bundle.js").status_code == 200


def test_web_page_is_served(service):
    client, _ = service
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    assert "songmap" in r.text
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200
