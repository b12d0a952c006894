"""Bad input on the command line ends in one line and exit code 1 (or click's usage error, 2),
never a traceback, and loses nothing.

The first tests pin the bugs a sweep of bad inputs over every command found (each printed a
traceback, or damaged a file, before its fix); the table after them pins what was already right.
"""

from __future__ import annotations

import sqlite3

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from unmasked.cli import main

PHOTO = np.random.default_rng(0).integers(0, 256, (60, 80, 3), dtype=np.uint8)
HOLE = np.zeros((60, 80), np.uint8)
HOLE[20:35, 30:55] = 255


@pytest.fixture
def d(tmp_path):
    """img.png (80x60), mask.png, a plain file ``afile``, a folder ``dir`` and a few broken files."""
    Image.fromarray(PHOTO).save(tmp_path / "img.png")
    Image.fromarray(HOLE).save(tmp_path / "mask.png")
    Image.fromarray(HOLE[:50]).save(tmp_path / "mask_small.png")
    Image.fromarray(np.full((60, 80), 255, np.uint8)).save(tmp_path / "white.png")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "dir").mkdir()
    (tmp_path / "garbage.png").write_bytes(b"garbage")
    Image.fromarray(PHOTO).save(tmp_path / "img.jpg")
    jpeg = (tmp_path / "img.jpg").read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    return tmp_path


def invoke(args: list[str], d, code: int = 1) -> str:
    """Run ``unmasked ARGS`` ({d} = the fixture folder); the error line, after checking the exit code,
    that there is no traceback and that the error is one line."""
    r = CliRunner().invoke(main, [a.format(d=d) for a in args])
    assert r.exit_code == code, r.output
    assert r.exception is None or isinstance(r.exception, SystemExit), repr(r.exception)
    assert "Traceback" not in r.output
    errors = [line for line in r.output.splitlines() if line.startswith("Error")]
    assert len(errors) == 1, r.output
    return errors[0]


# --------------------------------------------------------------------------- bugs found


@pytest.mark.parametrize("args, where", [
    (["fill", "{d}/img.png", "--mask", "{d}/mask.png", "-o", "{d}/afile/out.png", "--model", "telea"], "afile"),
    (["unmask", "{d}/img.png", "-o", "{d}/afile/out.png", "--model", "telea", "--box", "10,5,50,50",
      "--region", "landmarks"], "afile"),
    (["unmask", "{d}/img.png", "-o", "{d}/out.png", "--model", "telea", "--box", "10,5,50,50",
      "--region", "landmarks", "--debug-dir", "{d}/afile"], "afile"),
    (["masks", "generate", "--kind", "box", "--count", "2", "--size", "16", "--out", "{d}/afile"], "afile"),
])
def test_an_output_below_a_file_is_one_line(d, args, where):
    """A file where an output folder must go raised FileExistsError / NotADirectoryError: a traceback."""
    line = invoke(args, d)
    assert f"cannot write to {d / where}: a file is in the way where a folder is needed" in line
    assert (d / "afile").read_text() == "x"


@pytest.mark.parametrize("content", [b"x", b"my notes, not a database\n" * 8])
def test_study_report_of_a_file_that_is_no_database_leaves_it_alone(d, content):
    """SQLite turned a short file of another kind into a database (its content lost) and failed on a
    longer one with a DatabaseError traceback."""
    notes = d / "notes.txt"
    notes.write_bytes(content)
    line = invoke(["study", "report", str(notes)], d)
    assert f"{notes} is not a study database (SQLite)" in line
    assert notes.read_bytes() == content


def test_study_report_of_a_database_without_ratings_table_is_one_line(d):
    db = d / "other.sqlite"
    con = sqlite3.connect(db)
    con.execute("CREATE TABLE ratings (x TEXT)")  # another schema: the report's query fails
    con.commit()
    con.close()
    assert "cannot read the study database" in invoke(["study", "report", str(db)], d)


def test_serve_refuses_a_study_db_that_is_no_database(d, monkeypatch):
    started = []
    monkeypatch.setattr("unmasked.cli.serve.uvicorn.run", lambda *a, **k: started.append(a))
    for sub in ("real", "telea"):
        (d / "study" / sub).mkdir(parents=True)
        Image.fromarray(PHOTO).save(d / "study" / sub / "a.png")
    line = invoke(["serve", "--study-dir", "{d}/study", "--study-db", "{d}/afile"], d)
    assert "afile is not a study database (SQLite)" in line
    assert not started and (d / "afile").read_text() == "x"


def test_train_with_yaml_that_does_not_parse_is_one_line(d):
    """PyYAML's errors are no ValueError: a multi-line traceback for a broken config or --set value."""
    (d / "bad.yaml").write_text("model: [1, 2\n")
    line = invoke(["train", "{d}/bad.yaml"], d)
    assert f"{d / 'bad.yaml'} is not valid YAML: expected ',' or ']'" in line and "(line 2, column 1)" in line
    line = invoke(["train", "{d}/bad.yaml", "--set", "data.size=[64"], d)
    assert "--set data.size=[64 is not valid YAML" in line


@pytest.mark.parametrize("args, fragment", [
    (["eval", "--model", "telea", "--images", "{d}/dir", "--size", "0"], "Invalid value for '--size': 0 is not in the range x>=1"),
    (["eval", "--model", "telea", "--images", "{d}/dir", "--limit", "0"], "Invalid value for '--limit': 0 is not in the range x>=1"),
    (["eval-unmask", "--images", "{d}/dir", "--size", "0"], "Invalid value for '--size': 0 is not in the range x>=1"),
    (["eval-unmask", "--images", "{d}/dir", "--limit", "-1"], "Invalid value for '--limit': -1 is not in the range x>=1"),
    (["eval-unmask", "--images", "{d}/dir", "--edge-blur", "-2"], "Invalid value for '--edge-blur': -2.0 is not in the range x>=0"),
    (["fill", "{d}/img.png", "--mask", "{d}/mask.png", "-o", "{d}/out.png", "--max-pixels", "0"],
     "Invalid value for '--max-pixels': 0 is not in the range x>=1"),
    (["fill", "{d}/img.png", "--mask", "{d}/mask.png", "-o", "{d}/out.png", "--max-pixels", "-5"],
     "Invalid value for '--max-pixels': -5 is not in the range x>=1"),
    (["unmask", "{d}/img.png", "-o", "{d}/out.png", "--max-pixels", "-1"], "Invalid value for '--max-pixels': -1"),
])
def test_sizes_and_limits_out_of_range_are_usage_errors(d, args, fragment):
    """``eval --size 0`` and ``eval-unmask --size 0`` ended in ZeroDivisionError inside Pillow; a limit of
    0 or below was taken as the default (0) or refused every image with a puzzling message."""
    assert fragment in invoke(args, d, code=2)
    assert not (d / "out.png").exists()


@pytest.mark.parametrize("option, fragment", [
    (["--port", "70000"], "'--port': 70000 is not in the range 0<=x<=65535"),
    (["--max-pixels", "0"], "'--max-pixels': 0 is not in the range x>=1"),
    (["--max-body-mb", "-1"], "'--max-body-mb': -1.0 is not in the range x>0"),
])
def test_serve_options_out_of_range_are_usage_errors(d, monkeypatch, option, fragment):
    """``serve --port 70000`` died in uvicorn with OverflowError (a traceback); negative limits
    started a server that refused every request."""
    started = []
    monkeypatch.setattr("unmasked.cli.serve.uvicorn.run", lambda *a, **k: started.append(a))
    assert fragment in invoke(["serve", "--model", "telea", *option], d, code=2)
    assert not started


def test_unmask_a_face_square_across_a_thin_photo(d):
    """FaceMesh shrank a 900x1 photo to less than a pixel for a square that long: cv2.error traceback."""
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (1, 900, 3), dtype=np.uint8)).save(d / "thin.png")
    r = CliRunner().invoke(main, ["unmask", str(d / "thin.png"), "-o", str(d / "out.png"), "--model", "telea",
                                  "--box", "0,0,900,1", "--region", "landmarks"])
    assert r.exit_code == 0, r.output
    assert Image.open(d / "out.png").size == (900, 1)


# --------------------------------------------------------------------------- what was right, kept right

FILL = ["fill", "{d}/img.png", "--mask", "{d}/mask.png", "-o", "{d}/out.png", "--model", "telea"]


def fill_with(**changes) -> list[str]:
    args = list(FILL)
    for option, value in changes.items():
        flag = {"image": 1, "mask": 3, "output": 5}.get(option)
        if flag is not None:
            args[flag] = value
        else:
            args += [f"--{option.replace('_', '-')}", value]
    return args


CASES = [
    (fill_with(image="{d}/missing.png"), 1, "image file not found"),
    (fill_with(image="{d}/dir"), 1, "image path is a directory, not a file"),
    (fill_with(mask="{d}/dir"), 1, "mask path is a directory, not a file"),
    (fill_with(image="{d}/garbage.png"), 1, "not a supported image"),
    (fill_with(image="{d}/truncated.jpg"), 1, "image file is truncated"),
    (fill_with(mask="{d}/mask_small.png"), 1, "mask size 80x50 does not match image size 80x60"),
    (fill_with(mask="{d}/white.png"), 1, "mask covers the whole image"),
    (fill_with(output="{d}/out.xyz"), 1, "unknown image format for output"),
    (fill_with(box="1,2,3"), 2, "expected x,y,w,h as four integers, got '1,2,3'"),
    (fill_with(box="1.5,2,3,4"), 2, "expected x,y,w,h as four integers"),
    (fill_with(box="-1,0,10,10"), 1, "box -1,0,10,10 (x,y,w,h) lies outside the 80x60 image"),
    (fill_with(box="0,0,0,10"), 1, "lies outside the 80x60 image"),
    (fill_with(box="0,0,99999999999999999999,10"), 1, "lies outside the 80x60 image"),
    (fill_with(reference_box="0,0,10,10"), 1, "--reference-box needs --reference"),
    (fill_with(reference="{d}/img.png"), 1, "model 'telea' does not use a reference photo"),
    (fill_with(sketch="{d}/mask.png"), 1, "model 'telea' has no sketch channel"),
    (fill_with(max_pixels="100"), 1, "80x60 = 4,800 pixels, above the limit of 100 pixels"),
    (fill_with(max_pixels="many"), 2, "'many' is not a valid integer"),
    (["fill", "{d}/img.png", "--mask", "{d}/mask.png", "-o", "{d}/out.png", "--model", "nope"], 1, "unknown model 'nope'"),
    (["fill", "{d}/img.png", "--mask", "{d}/mask.png", "-o", "{d}/out.png", "--model", "{d}/img.png"], 1,
     "img.png is not a safetensors checkpoint"),
    (["fill", "{d}/img.png", "--mask", "{d}/mask.png", "-o", "{d}/out.png", "--model", "two_face_faces128",
      "--reference", "{d}/img.png", "--reference-box", "70,0,20,20"], 1, "lies outside the 80x60 reference photo"),
    (["fill", "{d}/img.png", "--mask", "{d}/mask.png", "-o", "{d}/out.png", "--model", "two_face_faces128",
      "--reference", "{d}/garbage.png"], 1, "not a supported image"),
    (["fill", "--input-dir", "{d}/missing", "--mask-dir", "{d}/dir", "--output-dir", "{d}/o", "--model", "telea"], 1,
     "image folder not found"),
    (["unmask", "{d}/missing.png", "-o", "{d}/out.png", "--model", "telea"], 1, "image file not found"),
    (["unmask", "{d}/img.png", "-o", "{d}/out.png", "--model", "telea", "--box", "a,b,c,d"], 2, "four integers"),
    (["unmask", "{d}/img.png", "-o", "{d}/out.png", "--model", "telea", "--box", "0,0,1000,1000", "--region",
      "landmarks"], 1, "box 0,0,1000,1000 (x,y,w,h) lies outside the 80x60 image"),
    (["unmask", "{d}/img.png", "-o", "{d}/out.png", "--model", "telea", "--reference-box", "0,0,10,10",
      "--region", "landmarks"], 1, "a reference face square needs a reference photo"),
    (["unmask", "{d}/img.png", "-o", "{d}/out.png", "--model", "two_face_faces128", "--reference", "{d}/img.png",
      "--reference-box", "0,0,0,0"], 1, "reference face square 0,0,0,0 (x,y,w,h) lies outside"),
    (["unmask", "{d}/img.png", "-o", "{d}/out.png", "--model", "two_face_faces128", "--gallery", "{d}/afile"], 1,
     "gallery folder not found"),
    (["masks", "generate", "--kind", "box", "--size", "0", "--out", "{d}/g"], 1, "mask size must be positive"),
    (["study", "report", "{d}/missing.sqlite"], 1, "study database not found"),
    (["train", "--set", "novalue"], 1, "--set needs KEY=VALUE"),
]


@pytest.mark.parametrize("args, code, fragment", CASES, ids=[f"{c[0][0]}-{c[2][:40]}" for c in CASES])
def test_bad_input(d, args, code, fragment):
    assert fragment in invoke(args, d, code)
    assert not (d / "out.png").exists()


def test_folder_fill_with_an_output_folder_below_a_file_reports_each_image_in_one_line(d):
    """``fill --input-dir``: an output folder that is a file is a per-image error in plain words, the
    other images' results are not mistaken for fills, and the run exits 1."""
    (d / "in").mkdir()
    (d / "masks").mkdir()
    Image.fromarray(PHOTO).save(d / "in" / "a.png")
    Image.fromarray(HOLE).save(d / "masks" / "a.png")
    r = CliRunner().invoke(main, ["fill", "--input-dir", str(d / "in"), "--mask-dir", str(d / "masks"),
                                  "--output-dir", str(d / "afile"), "--model", "telea"])
    assert r.exit_code == 1 and "Traceback" not in r.output
    assert "a file is in the way where a folder is needed" in r.output and "Errno" not in r.output
    assert "filled 0, copied 0 (empty mask), failed 1" in r.output
    assert (d / "afile").read_text() == "x"
