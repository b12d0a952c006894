"""Realism study: people rate faces from 1 (clearly computer-made) to 10 (an untouched photo).

As in the Unmasked report's evaluation, a rater sees a shuffled mix of real faces and faces
whose worn-mask region was filled by the chosen models, one at a time, without being told
which is which. A study folder holds one sub-folder per source, ``real/`` plus one per model
(:func:`prepare_study` writes it); each image is served under an opaque id so neither the
URL nor the file name gives the source away.

Every rating is committed to an SQLite database (WAL journal, synchronous=FULL) the moment
it arrives, so stopping the server mid-study loses nothing; a rater resumes where they left
off because the order is a shuffle seeded by their session id. :func:`rating_histograms`
and :func:`plot_report` back ``unmasked study report DB``.
"""

from __future__ import annotations

import hashlib
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field

from unmasked.api import load_model
from unmasked.conventions import load_image, save_image
from unmasked.data.datasets import list_images
from unmasked.masks.face_mask import face_mask_for_aligned
from unmasked.pipelines.fill import fill_array

REAL = "real"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
SCHEMA = """
CREATE TABLE IF NOT EXISTS ratings (
    session TEXT NOT NULL,
    item    TEXT NOT NULL,
    source  TEXT NOT NULL,
    file    TEXT NOT NULL,
    score   INTEGER NOT NULL CHECK (score BETWEEN 1 AND 10),
    created REAL NOT NULL,
    PRIMARY KEY (session, item)
)
"""


@dataclass(frozen=True)
class StudyItem:
    id: str
    source: str  # "real" or a model name
    path: Path


#: the first bytes of every SQLite 3 database file
SQLITE_HEADER = b"SQLite format 3\x00"


def check_database(db_path: str | Path) -> None:
    """``ValueError`` unless ``db_path`` is absent, empty or an SQLite database: SQLite would turn a
    short file of another kind into a database, and fail on a longer one with a traceback."""
    path = Path(db_path)
    if path.is_file() and path.stat().st_size:
        with open(path, "rb") as f:
            if f.read(len(SQLITE_HEADER)) != SQLITE_HEADER:
                raise ValueError(f"{path} is not a study database (SQLite); give its ratings file or a new path")


def connect(db_path: str | Path) -> sqlite3.Connection:
    con = sqlite3.connect(str(db_path), timeout=30)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=FULL")
    con.execute(SCHEMA)
    return con


class StudyStore:
    """The study's images (from ``study_dir``) and its ratings database (``db_path``)."""

    def __init__(self, study_dir: str | Path, db_path: str | Path | None = None):
        self.root = Path(study_dir)
        if not self.root.is_dir():
            raise ValueError(f"study folder not found: {self.root}")
        items = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for path in sorted(folder.iterdir()):
                if path.suffix.lower() in IMAGE_SUFFIXES:
                    rel = f"{folder.name}/{path.name}"
                    items.append(StudyItem(hashlib.sha256(rel.encode()).hexdigest()[:16], folder.name, path))
        if not items:
            raise ValueError(f"no images in the sub-folders of {self.root} (expected real/ and one folder per model)")
        if REAL not in {i.source for i in items}:
            raise ValueError(f"{self.root} has no real/ folder of untouched photos to compare against")
        self.items = {i.id: i for i in items}
        self.db_path = Path(db_path) if db_path else self.root / "ratings.sqlite"
        check_database(self.db_path)
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        connect(self.db_path).close()

    def order(self, session: str) -> list[str]:
        """The session's own shuffle of all item ids (stable across restarts)."""
        seed = int.from_bytes(hashlib.sha256(session.encode()).digest()[:8], "little")
        ids = sorted(self.items)
        return [ids[i] for i in np.random.default_rng(seed).permutation(len(ids))]

    def rated(self, session: str) -> set[str]:
        con = connect(self.db_path)
        try:
            return {r[0] for r in con.execute("SELECT item FROM ratings WHERE session = ?", (session,))}
        finally:
            con.close()

    def next_item(self, session: str) -> dict:
        done = self.rated(session)
        total = len(self.items)
        for item_id in self.order(session):
            if item_id not in done:
                return {"done": False, "item": item_id, "url": f"/api/v1/study/image/{item_id}",
                        "index": len(done) + 1, "total": total}
        return {"done": True, "item": None, "url": None, "index": total, "total": total}

    def rate(self, session: str, item_id: str, score: int) -> int:
        """Store (or replace) a rating, committed before returning; the session's rating count."""
        item = self.items.get(item_id)
        if item is None:
            raise HTTPException(404, f"unknown study item {item_id!r}")
        con = connect(self.db_path)
        try:
            with con:  # one transaction, committed on exit
                con.execute("INSERT OR REPLACE INTO ratings VALUES (?, ?, ?, ?, ?, ?)",
                            (session, item_id, item.source, item.path.name, score, time.time()))
            return con.execute("SELECT COUNT(*) FROM ratings WHERE session = ?", (session,)).fetchone()[0]
        finally:
            con.close()


# --------------------------------------------------------------------------- HTTP

Session = Field(..., min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")


class Rating(BaseModel):
    model_config = ConfigDict(extra="forbid")
    session: str = Session
    item: str = Field(..., min_length=1, max_length=64)
    score: int = Field(..., ge=1, le=10, description="1 = clearly computer-made ... 10 = an untouched photo")


class NextItem(BaseModel):
    done: bool
    item: str | None
    url: str | None
    index: int
    total: int


def study_router(get_store) -> APIRouter:
    """Routes under /study; ``get_store()`` returns the app's :class:`StudyStore` or None."""
    router = APIRouter(prefix="/study", tags=["study"])

    def store() -> StudyStore:
        s = get_store()
        if s is None:
            raise HTTPException(404, "no study on this server: start it with unmasked serve --study-dir DIR")
        return s

    @router.get("/next", response_model=NextItem)
    def next_item(session: str = Query(..., min_length=8, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")) -> NextItem:
        """The next image this session has not rated yet (a shuffle of real and filled faces)."""
        return NextItem(**store().next_item(session))

    @router.post("/ratings")
    def rate(rating: Rating) -> dict:
        """Record a 1-10 rating; it is on disk when this returns."""
        s = store()
        count = s.rate(rating.session, rating.item, rating.score)
        return {"saved": True, "rated": count, "total": len(s.items)}

    @router.get("/image/{item_id}")
    def image(item_id: str):
        item = store().items.get(item_id)
        if item is None:
            raise HTTPException(404, f"unknown study item {item_id!r}")
        return FileResponse(item.path, headers={"Cache-Control": "no-store"})

    return router


# --------------------------------------------------------------------------- preparation and report


def prepare_study(images: str | Path, models: list[str], out_dir: str | Path, *, count: int = 20,
                  size: int = 128, seed: int = 0) -> dict[str, int]:
    """Write ``out_dir/real/`` and ``out_dir/<model>/``: ``count`` different faces each.

    ``images`` should be FFHQ-aligned face crops (e.g. celeba_wild256): each is resized to
    ``size``; for a model folder a synthetic worn-mask hole placed from the mean aligned
    landmarks (jittered) is filled by that model. Every face appears in one folder only.
    """
    from PIL import Image

    files = list_images(images)
    need = count * (len(models) + 1)
    if len(files) < need:
        raise ValueError(f"{images} holds {len(files)} images; {need} needed ({count} x {len(models) + 1} sources)")
    rng = np.random.default_rng(seed)
    picked = [files[i] for i in rng.choice(len(files), need, replace=False)]
    out = Path(out_dir)
    written = {}
    for k, source in enumerate([REAL, *models]):
        model = None if source == REAL else load_model(source)
        for j, path in enumerate(picked[k * count : (k + 1) * count]):
            rgb = np.asarray(Image.fromarray(load_image(path).rgb).resize((size, size), Image.LANCZOS))
            if model is not None:
                _, hole = face_mask_for_aligned(size, rng, kind="random")
                rgb = fill_array(rgb, hole, model).image
            save_image(out / source.replace("/", "_") / f"{j:03d}.png", rgb)
        written[source] = count
    return written


def rating_histograms(db_path: str | Path) -> dict[str, np.ndarray]:
    """Source -> counts of scores 1..10 (int array of 10), real photos first."""
    if not Path(db_path).is_file():
        raise ValueError(f"study database not found: {db_path}")
    check_database(db_path)
    try:
        con = connect(db_path)
        try:
            rows = con.execute("SELECT source, score, COUNT(*) FROM ratings GROUP BY source, score").fetchall()
        finally:
            con.close()
    except sqlite3.DatabaseError as e:  # a damaged file, or one with another schema
        raise ValueError(f"cannot read the study database {db_path}: {e}") from None
    hist: dict[str, np.ndarray] = {}
    for source, score, n in rows:
        hist.setdefault(source, np.zeros(10, int))[score - 1] = n
    return dict(sorted(hist.items(), key=lambda kv: (kv[0] != REAL, kv[0])))


def report_table(hist: dict[str, np.ndarray]) -> str:
    """Markdown table: ratings, mean, median and the count of each score per source."""
    head = "| source | ratings | mean | median | " + " | ".join(str(s) for s in range(1, 11)) + " |"
    lines = [head, "|---|--:|--:|--:|" + "--:|" * 10]
    for source, counts in hist.items():
        scores = np.repeat(np.arange(1, 11), counts)
        lines.append(f"| {source} | {counts.sum()} | {scores.mean():.2f} | {np.median(scores):.1f} | "
                     + " | ".join(str(c) for c in counts) + " |")
    return "\n".join(lines)


def plot_report(hist: dict[str, np.ndarray], path: str | Path) -> Path:
    """One panel per model: its score distribution next to the real photos' distribution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [s for s in hist if s != REAL] or [REAL]
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.2), squeeze=False, sharey=True)
    scores = np.arange(1, 11)
    real = hist.get(REAL)
    for ax, source in zip(axes[0], models, strict=True):
        counts = hist[source]
        if real is not None and source != REAL:
            ax.bar(scores - 0.2, real / max(1, real.sum()), width=0.4, color="0.6", label=f"real (n={real.sum()})")
        ax.bar(scores + (0.2 if source != REAL else 0), counts / max(1, counts.sum()), width=0.4,
               color="tab:blue", label=f"{source} (n={counts.sum()})")
        ax.set_xticks(scores)
        ax.set_xlabel("rating (1 = computer-made, 10 = untouched photo)")
        ax.set_title(source)
        ax.legend(fontsize=8)
    axes[0][0].set_ylabel("share of ratings")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
