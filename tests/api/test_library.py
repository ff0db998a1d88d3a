"""GET /library: past analyses from the store, searchable; GET /library/{id}: one of them."""

from __future__ import annotations

from datetime import datetime

from songmap.api.routes.library import entry_id, list_entries
from songmap.store import ResultStore
from tests.api.conftest import upload


def test_lists_searches_and_returns_stored_results(service, clips):
    client, _ = service
    for name in ("song", "other"):
        assert upload(client, "/analyze", clips[name]).status_code == 200
    listed = client.get("/library").json()
    assert listed["total"] == 2
    names = [e["filename"] for e in listed["entries"]]
    assert names == ["other.flac", "song.wav"]  # newest first
    other = listed["entries"][0]
    assert other["bpm"] > 0 and other["bars"] >= 3 and other["duration"] > 5
    assert other["key"] != "" and datetime.fromisoformat(other["analysed_at"])
    # search by name (any case) and by key
    hits = client.get("/library", params={"q": "SONG"}).json()
    assert [e["filename"] for e in hits["entries"]] == ["song.wav"] and hits["total"] == 1
    key = other["key"]
    assert other["id"] in {e["id"] for e in client.get("/library", params={"q": key}).json()["entries"]}
    assert client.get("/library", params={"q": "no such song"}).json() == {"entries": [], "total": 0}
    assert client.get("/library", params={"limit": 1}).json()["total"] == 2
    # the stored result itself
    r = client.get(f"/library/{other['id']}")
    assert r.status_code == 200 and r.json()["filename"] == "other.flac"
    assert r.json()["tempo"]["bpm"] == other["bpm"]


def test_unknown_and_malformed_ids_are_4xx(service):
    client, _ = service
    missing = client.get("/library/" + "0" * 64 + "-" + "0" * 12)
    assert missing.status_code == 404 and "no stored result" in missing.json()["error"]["message"]
    # bad parameters are 400s, as everywhere in this service
    assert client.get("/library/not-an-id").status_code == 400
    assert client.get("/library", params={"limit": 0}).status_code == 400


def test_search_treats_wildcards_literally(tmp_path):
    with ResultStore(tmp_path / "r.sqlite") as store:
        for i, name in enumerate(("100%_done.wav", "100 done.wav")):
            store.put(f"h{i}", "k", f'{{"filename": "{name}", "tempo": {{"bpm": 1}}, '
                                    '"key": {"label": "C major"}, "audio": {"duration": 1}, '
                                    '"total_bars": 1}')
        hits = list_entries(store, query="%_", limit=10)
        assert [e.filename for e in hits.entries] == ["100%_done.wav"]
        assert hits.entries[0].id == entry_id("h0", "k")
