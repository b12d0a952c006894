"""Realism study: blind shuffled items, ratings committed to SQLite at once, report and plot."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from unmasked.cli import main
from unmasked.server import ServerSettings, create_app
from unmasked.server.study import StudyStore, prepare_study, rating_histograms, report_table

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
TestClient = pytest.importorskip("fastapi.testclient").TestClient
SOURCES = {"real": 3, "telea": 2, "deepfill_v2_faces128": 2}


@pytest.fixture
def study_dir(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "study"
    for source, n in SOURCES.items():
        (root / source).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(root / source / f"{i:03d}.png")
    return root


def test_each_session_sees_every_item_once_in_its_own_stable_order(study_dir):
    store = StudyStore(study_dir, study_dir / "r.sqlite")
    a, b = store.order("session-aaaa"), store.order("session-bbbb")
    assert sorted(a) == sorted(b) == sorted(store.items) and len(a) == 7
    assert a == store.order("session-aaaa") and a != b
    # ids are opaque: neither the id nor the URL tells the rater the source
    for item_id, item in store.items.items():
        assert item.source not in item_id and "real" not in item_id


def test_http_study_flow_and_errors(study_dir, tmp_path):
    db = tmp_path / "ratings.sqlite"
    with TestClient(create_app(ServerSettings(study_dir=study_dir, study_db=db))) as c:
        session = "rater0001"
        seen = []
        for k in range(7):
            nxt = c.get("/api/v1/study/next", params={"session": session}).json()
            assert not nxt["done"] and nxt["index"] == k + 1 and nxt["total"] == 7
            assert nxt["item"] not in seen
            img = c.get(nxt["url"])
            assert img.status_code == 200 and img.content == c.app.state.study.items[nxt["item"]].path.read_bytes()
            r = c.post("/api/v1/study/ratings", json={"session": session, "item": nxt["item"], "score": k + 1})
            assert r.json() == {"saved": True, "rated": k + 1, "total": 7}
            seen.append(nxt["item"])
        assert c.get("/api/v1/study/next", params={"session": session}).json()["done"] is True

        bad = [({"session": session, "item": seen[0], "score": 11}, 422, "score"),
               ({"session": session, "item": seen[0], "score": 0}, 422, "score"),
               ({"session": session, "item": seen[0], "score": 5, "who": "x"}, 422, "who: unknown field"),
               ({"session": "x", "item": seen[0], "score": 5}, 422, "session"),
               ({"session": session, "item": "0123456789abcdef", "score": 5}, 404, "unknown study item")]
        for body, status, message in bad:
            r = c.post("/api/v1/study/ratings", json=body)
            assert r.status_code == status and message in r.json()["detail"], (body, r.text)
        assert c.get("/api/v1/study/image/nope").status_code == 404
        assert c.get("/study").status_code == 200
    # every rating is in the database with its true source
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT source, COUNT(*) FROM ratings GROUP BY source").fetchall()
    assert dict(rows) == SOURCES


def test_without_a_study_the_api_says_how_to_start_one():
    with TestClient(create_app()) as c:
        r = c.get("/api/v1/study/next", params={"session": "rater0001"})
        assert r.status_code == 404 and "--study-dir" in r.json()["detail"]


def test_ratings_survive_a_killed_server(study_dir, tmp_path):
    """SIGKILL mid-study (no shutdown at all): every answered rating is on disk, and the rater resumes."""
    db = tmp_path / "ratings.sqlite"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "unmasked.cli", "serve", "--port", str(port), "--model", "telea",
           "--study-dir", str(study_dir), "--study-db", str(db)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/api/v1"
        deadline = time.time() + 60
        while True:
            try:
                httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.TransportError:
                if time.time() > deadline or proc.poll() is not None:
                    pytest.fail("server did not start")
                time.sleep(0.2)
        for score in (3, 9, 6):
            item = httpx.get(f"{base}/study/next", params={"session": "killtest1"}).json()["item"]
            httpx.post(f"{base}/study/ratings", json={"session": "killtest1", "item": item, "score": score}).raise_for_status()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    with sqlite3.connect(db) as con:
        scores = sorted(r[0] for r in con.execute("SELECT score FROM ratings WHERE session = 'killtest1'"))
    assert scores == [3, 6, 9]
    assert StudyStore(study_dir, db).next_item("killtest1")["index"] == 4


def test_report_counts_and_cli(study_dir, tmp_path):
    store = StudyStore(study_dir, tmp_path / "r.sqlite")
    ids = {src: [i for i, it in store.items.items() if it.source == src] for src in SOURCES}
    for k, (sess, src, score) in enumerate([("ses00001", "real", 9), ("ses00002", "real", 10), ("ses00001", "real", 9),
                                            ("ses00001", "telea", 2), ("ses00002", "telea", 4)]):
        store.rate(sess, ids[src][k % len(ids[src])], score)
    hist = rating_histograms(store.db_path)
    assert list(hist) == ["real", "telea"]
    assert hist["real"].tolist() == [0] * 8 + [2, 1] and hist["telea"].tolist() == [0, 1, 0, 1] + [0] * 6
    table = report_table(hist)
    assert "| real | 3 | 9.33 | 9.0 |" in table and "| telea | 2 | 3.00 | 3.0 |" in table

    r = CliRunner().invoke(main, ["study", "report", str(store.db_path), "--plot", str(tmp_path / "h.png")])
    assert r.exit_code == 0, r.output
    assert "| telea | 2 | 3.00 |" in r.output
    assert Image.open(tmp_path / "h.png").size[0] > 400
    r = CliRunner().invoke(main, ["study", "report", str(tmp_path / "missing.sqlite")])
    assert r.exit_code == 1 and "not found" in r.output


def test_prepare_study_writes_one_folder_per_source(tmp_path):
    faces = tmp_path / "faces"
    faces.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (80, 80, 3), dtype=np.uint8)).save(faces / f"{i}.png")
    written = prepare_study(faces, ["telea", "navier_stokes"], tmp_path / "out", count=1, size=64, seed=1)
    assert written == {"real": 1, "telea": 1, "navier_stokes": 1}
    for source in written:
        files = list((tmp_path / "out" / source).glob("*.png"))
        assert len(files) == 1 and Image.open(files[0]).size == (64, 64)
    store = StudyStore(tmp_path / "out")
    assert sorted(i.source for i in store.items.values()) == ["navier_stokes", "real", "telea"]
    with pytest.raises(ValueError, match="holds 5 images; 6 needed"):
        prepare_study(faces, ["telea"], tmp_path / "o2", count=3)
