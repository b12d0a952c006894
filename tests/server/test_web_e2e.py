"""The web UI in a real browser: headless Chromium (Debian's chromium + chromium-driver) via Selenium,
against an ``unmasked`` server started on localhost by the test.

Skipped, with the reason, when chromium, chromedriver or selenium are missing (``./install.sh``
installs them).
"""

from __future__ import annotations

import base64
import io
import shutil
import socket
import threading
import time

import numpy as np
import pytest
from PIL import Image

pytestmark = [pytest.mark.browser, pytest.mark.filterwarnings("ignore::DeprecationWarning")]

MAX_PIXELS = 100_000  # small, so the error flow can hit the limit with a small photo
W, H = 320, 240


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip("headless browser tests need chromium and chromedriver on PATH (./install.sh installs them)")
    pytest.importorskip("selenium", reason="browser tests need selenium (pip install -e '.[dev]')")
    return browser, driver


@pytest.fixture(scope="module")
def server(tmp_path_factory, tiny_sketch_checkpoint):
    """Base URL of a real uvicorn server on a free localhost port, in a thread; it offers every
    shipped model plus ``tiny_sketch``, an untrained sketch model."""
    import uvicorn

    from unmasked.server import ServerSettings, create_app

    _chromium()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tiny = tiny_sketch_checkpoint
    app = create_app(ServerSettings(max_pixels=MAX_PIXELS, checkpoints={"tiny_sketch": tiny}))
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not srv.started:
        if time.time() > deadline or not thread.is_alive():
            pytest.fail("the test server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, chromedriver = _chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    d = webdriver.Chrome(service=Service(chromedriver), options=options)
    d.set_script_timeout(30)
    yield d
    d.quit()


@pytest.fixture
def photo_path(tmp_path):
    """A textured synthetic photo: any fill differs from it inside the hole."""
    y, x = np.mgrid[0:H, 0:W]
    rgb = np.stack([x * 255 // W, y * 255 // H, ((x // 8 + y // 8) % 2) * 200 + 20], -1).astype(np.uint8)
    path = tmp_path / "photo.png"
    Image.fromarray(rgb).save(path)
    return path, rgb


def _wait(driver, condition, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def _by_id(driver, id_):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, id_)


def _image_from(driver, img_id: str) -> np.ndarray:
    """The pixels an <img> shows (fetched from its blob: or data: URL inside the page)."""
    data_url = driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
        fetch(document.getElementById(arguments[0]).src).then(r => r.blob()).then(b => {
          const fr = new FileReader(); fr.onload = () => done(fr.result); fr.readAsDataURL(b); });""",
        img_id,
    )
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.partition(",")[2]))))


def _hole_pixels(driver) -> int:
    return driver.execute_script(
        """const m = window.unmasked.mask, d = m.getContext('2d').getImageData(0, 0, m.width, m.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 127) n++; return n;""")


def _sketch_pixels(driver) -> int:
    return driver.execute_script("return window.unmasked.sketchPixels();")


def _lines_in_hole(driver) -> int:
    """Sketch pixels inside the painted hole, counted in the page (what the server should use)."""
    return driver.execute_script(
        """const {mask, sketch} = window.unmasked, w = mask.width, h = mask.height;
        const m = mask.getContext('2d').getImageData(0, 0, w, h).data, s = sketch.getContext('2d').getImageData(0, 0, w, h).data;
        let n = 0; for (let i = 0; i < m.length; i += 4) if (m[i] > 127 && s[i] > 127) n++; return n;""")


def _open(driver, server, path, model):
    from selenium.webdriver.support.ui import Select

    driver.get(server + "/")
    _wait(driver, lambda d: len(Select(_by_id(d, "model")).options) > 0)
    Select(_by_id(driver, "model")).select_by_value(model)
    _by_id(driver, "image-input").send_keys(str(path))
    _wait(driver, lambda d: f"{W} × {H}" in _by_id(d, "status").text)


def _drag(driver, element, start, moves):
    """Press at ``start`` (x, y in photo pixels; shown 1:1), move by each (dx, dy), release.

    The element is scrolled wholly into view first: WebDriver measures offsets from the centre
    of the element's *visible* part, so after the page scrolled to show a result the strokes
    would land elsewhere."""
    from selenium.webdriver.common.action_chains import ActionChains

    driver.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'center'});", element)
    chain = ActionChains(driver).move_to_element_with_offset(element, start[0] - W // 2, start[1] - H // 2)
    chain = chain.click_and_hold()
    for dx, dy in moves:
        chain = chain.move_by_offset(dx, dy)
    chain.release().perform()


def test_upload_paint_fill_changes_only_the_painted_region(server, driver, photo_path):
    path, rgb = photo_path
    _open(driver, server, path, "telea")
    canvas = _by_id(driver, "canvas")
    assert canvas.size == {"width": W, "height": H}  # shown at its own size: offsets are photo pixels

    _drag(driver, canvas, (60, 60), [(40, 0), (40, 10)])  # a brush stroke
    painted = _hole_pixels(driver)
    assert painted > 500
    _by_id(driver, "undo").click()
    assert _hole_pixels(driver) == 0
    _by_id(driver, "redo").click()
    assert _hole_pixels(driver) == painted
    _by_id(driver, "tool-rect").click()
    _drag(driver, canvas, (200, 150), [(50, 40)])  # a rectangle hole
    assert _hole_pixels(driver) >= painted + 45 * 35

    _by_id(driver, "run").click()
    _wait(driver, lambda d: d.find_element("id", "status").text.startswith("Filled with telea"))
    assert _by_id(driver, "error").is_displayed() is False
    result = _image_from(driver, "result-img")
    hole = _image_from(driver, "mask-img")[..., 0] > 127  # the mask the page sent (white = hole)
    assert result.shape == rgb.shape and hole.shape == rgb.shape[:2]
    assert hole[60, 80] and hole[170, 225] and not hole[10, 10] and not hole[230, 310]
    np.testing.assert_array_equal(result[~hole], rgb[~hole])
    assert (result[hole] != rgb[hole]).any(axis=-1).mean() > 0.5
    link = _by_id(driver, "download")
    assert link.get_attribute("download") == "photo_filled.png" and link.get_attribute("href").startswith("blob:")


def test_unmask_flow_with_a_face_square(server, driver, photo_path):
    from selenium.webdriver.support.ui import Select

    path, rgb = photo_path
    _open(driver, server, path, "deepfill_v2_faces128")
    face_tool = _by_id(driver, "tool-face")
    assert face_tool.is_enabled()
    face_tool.click()
    _drag(driver, _by_id(driver, "canvas"), (100, 40), [(120, 120)])
    _wait(driver, lambda d: "Face square: 100, 40, 120, 120" in _by_id(d, "face-box-text").text)
    Select(_by_id(driver, "region")).select_by_value("landmarks")
    Select(_by_id(driver, "mean-face")).select_by_value("on")
    for box in ("mean-texture", "mean-chroma"):  # on by default; sent as false, which the server must accept
        assert _by_id(driver, box).is_selected()
        _by_id(driver, box).click()
    second_look = _by_id(driver, "second-look")
    assert second_look.is_selected()
    second_look.click()  # sent as second_look=false, which the server must accept
    ear_loops = _by_id(driver, "ear-loops")
    assert ear_loops.is_selected()
    ear_loops.click()  # and ear_loops=false
    _by_id(driver, "unmask").click()
    _wait(driver, lambda d: "with deepfill_v2_faces128 in" in _by_id(d, "status").text, timeout=60)
    assert "1 face found, 1 restored (1 with the mean face's structure)" in _by_id(driver, "status").text
    assert _by_id(driver, "mask-caption").text == "detected masks and faces"
    result = _image_from(driver, "result-img")
    changed = (result != rgb).any(axis=-1)
    inside, near = np.zeros(changed.shape, bool), np.zeros(changed.shape, bool)
    inside[40:160, 100:220] = True
    near[10:190, 70:250] = True  # the square grown by a quarter: the jaw line may reach past a loose square
    assert changed[inside].mean() > 0.05 and not changed[~near].any()  # restored around the face square only
    overlay = _image_from(driver, "mask-img")
    assert overlay.shape[:2] == (H, W) and (overlay[..., :3] != rgb).any()  # masks/boxes drawn over the photo


def test_a_landmark_guided_model_is_offered_for_remove_masks_only(server, driver, photo_path):
    """The fill has no landmarks to give it: Fill is disabled and says why; Remove masks runs it, and
    with a model that is not a face model selected, Remove masks uses the server's default_unmask."""
    path, _ = photo_path
    _open(driver, server, path, "pconv_unet_faces128_landmarks")
    run = _by_id(driver, "run")
    assert not run.is_enabled() and "only Remove masks finds" in run.get_attribute("title")
    assert _by_id(driver, "unmask").is_enabled()
    _open(driver, server, path, "telea")
    assert _by_id(driver, "run").is_enabled()
    _by_id(driver, "unmask").click()
    _wait(driver, lambda d: "with pconv_unet_faces128_landmarks in" in _by_id(d, "status").text, timeout=60)


def test_errors_from_the_api_are_shown(server, driver, tmp_path, photo_path):
    big = tmp_path / "big.png"
    Image.fromarray(np.full((300, 400, 3), 90, np.uint8)).save(big)  # 120,000 pixels > MAX_PIXELS
    driver.get(server + "/")
    _by_id(driver, "image-input").send_keys(str(big))
    _wait(driver, lambda d: "400 × 300" in _by_id(d, "status").text)
    _drag(driver, _by_id(driver, "canvas"), (20, 20), [(30, 30)])
    _by_id(driver, "run").click()
    _wait(driver, lambda d: _by_id(d, "error").is_displayed())
    text = _by_id(driver, "error").text
    assert "The server answered 413" in text and "above this server's limit of 100,000" in text
    assert _by_id(driver, "run").is_enabled()  # the page is usable again

    not_image = tmp_path / "notes.txt"
    not_image.write_text("hello")
    _by_id(driver, "image-input").send_keys(str(not_image))
    _wait(driver, lambda d: "does not look like an image" in _by_id(d, "error").text)


def test_sketch_pen_draw_undo_and_fill_with_a_sketch_model(server, driver, photo_path):
    path, rgb = photo_path
    _open(driver, server, path, "tiny_sketch")
    canvas, pen = _by_id(driver, "canvas"), _by_id(driver, "tool-sketch")
    assert pen.is_enabled() and "(S)" in pen.get_attribute("title")
    _by_id(driver, "tool-rect").click()
    _drag(driver, canvas, (100, 80), [(120, 80)])  # the hole: x 100..220, y 80..160
    painted = _hole_pixels(driver)
    assert painted >= 115 * 75

    pen.click()
    _drag(driver, canvas, (90, 120), [(70, 0), (70, 0)])  # a line across the hole, out of it on the left
    drawn = _sketch_pixels(driver)
    assert 2 * 130 <= drawn <= 3 * 145  # thin: about 2 px wide at the photo's resolution
    assert _hole_pixels(driver) == painted  # the pen draws on the sketch, not on the mask
    assert "will guide the fill" in _by_id(driver, "sketch-help").text
    _by_id(driver, "undo").click()  # undo removes the last stroke: the sketch line
    assert _sketch_pixels(driver) == 0 and _hole_pixels(driver) == painted
    assert driver.execute_script("return window.unmasked.state.hasSketch;") is False

    _by_id(driver, "run").click()  # no sketch: nothing sent, nothing said about one
    _wait(driver, lambda d: _by_id(d, "status").text.startswith("Filled with tiny_sketch"))
    assert "following your sketch" not in _by_id(driver, "status").text and _by_id(driver, "mask-caption").text == "mask"
    plain = _image_from(driver, "result-img")

    _drag(driver, canvas, (90, 120), [(70, 0), (70, 0)])  # the pen is still selected: draw again
    inside = _lines_in_hole(driver)
    assert _sketch_pixels(driver) == drawn and inside > 200
    _by_id(driver, "run").click()
    _wait(driver, lambda d: "following your sketch" in _by_id(d, "status").text)
    # the server counted the line pixels inside the hole it received: the page's own count
    assert f"following your sketch ({inside} line pixels inside the hole)" in _by_id(driver, "status").text
    assert _by_id(driver, "error").is_displayed() is False
    guided = _image_from(driver, "result-img")
    hole = np.zeros((H, W), bool)
    hole[81:159, 101:219] = True  # well inside the dragged rectangle
    assert guided.shape == rgb.shape
    np.testing.assert_array_equal(guided[:70], rgb[:70])  # outside the hole: unchanged
    assert (guided[hole] != rgb[hole]).any(axis=-1).mean() > 0.5
    assert (guided[hole] != plain[hole]).any(axis=-1).mean() > 0.05  # the sketch changed the fill
    # what was sent is shown: the mask with the sketch in cyan, faint where it lies outside the hole
    assert _by_id(driver, "mask-caption").text == "mask + sketch (cyan)"
    shown = _image_from(driver, "mask-img")[..., :3]
    near_line = range(118, 123)  # the 2-px stroke at y = 120, give or take the pointer's rounding
    assert any(tuple(shown[y, 150]) == (0, 229, 255) for y in near_line)
    assert any(tuple(shown[y, x]) == (0, 90, 110) for y in near_line for x in range(88, 100))  # left of the hole
    assert tuple(shown[100, 150]) == (255, 255, 255) and tuple(shown[20, 20]) == (0, 0, 0)


def test_sketch_pen_is_disabled_for_a_model_without_a_sketch_channel(server, driver, photo_path):
    from selenium.webdriver.support.ui import Select

    path, _ = photo_path
    _open(driver, server, path, "telea")
    pen = _by_id(driver, "tool-sketch")
    assert not pen.is_enabled()
    assert "telea has no sketch channel: pick" in pen.get_attribute("title") and "tiny_sketch" in pen.get_attribute("title")
    assert "tiny_sketch" in _by_id(driver, "sketch-help").text

    # a sketch drawn for a sketch model is never dropped silently when the model changes
    Select(_by_id(driver, "model")).select_by_value("tiny_sketch")
    assert pen.is_enabled()
    _drag(driver, _by_id(driver, "canvas"), (60, 60), [(60, 20)])  # brush: a hole
    pen.click()
    _drag(driver, _by_id(driver, "canvas"), (50, 70), [(80, 0)])
    assert _sketch_pixels(driver) > 0
    Select(_by_id(driver, "model")).select_by_value("telea")
    help_ = _by_id(driver, "sketch-help")
    assert "You drew a sketch, but telea has no sketch channel" in help_.text and "Clear sketch" in help_.text
    assert "warn" in help_.get_attribute("class")
    assert not pen.is_enabled() and not _by_id(driver, "run").is_enabled()
    assert driver.execute_script("return window.unmasked.state.tool;") == "brush"
    _by_id(driver, "clear-sketch").click()
    assert _sketch_pixels(driver) == 0 and _hole_pixels(driver) > 0  # the mask stays
    assert _by_id(driver, "run").is_enabled() and "warn" not in help_.get_attribute("class")
    _by_id(driver, "undo").click()  # the cleared sketch comes back, and blocks the fill again
    assert _sketch_pixels(driver) > 0 and not _by_id(driver, "run").is_enabled()


def test_a_reference_photo_is_sent_and_shown_next_to_the_result(server, driver, photo_path, tmp_path):
    from skimage import data

    path, rgb = photo_path
    ref = tmp_path / "reference.png"
    Image.fromarray(data.astronaut()).resize((256, 256)).save(ref)  # under MAX_PIXELS, a face blazeface finds
    _open(driver, server, path, "telea")
    assert not _by_id(driver, "reference-input").is_enabled()  # telea takes no reference
    from selenium.webdriver.support.ui import Select

    Select(_by_id(driver, "model")).select_by_value("two_face_faces128")
    assert "uses the reference photo" in _by_id(driver, "reference-help").text
    _by_id(driver, "reference-input").send_keys(str(ref))
    _by_id(driver, "tool-face").click()
    _drag(driver, _by_id(driver, "canvas"), (100, 40), [(120, 120)])
    _by_id(driver, "tool-rect").click()
    _drag(driver, _by_id(driver, "canvas"), (140, 110), [(40, 40)])
    _by_id(driver, "run").click()
    _wait(driver, lambda d: d.find_element("id", "status").text.startswith("Filled with two_face_faces128"), timeout=60)
    assert "filled with the reference photo" in _by_id(driver, "result-note").text
    assert _by_id(driver, "reference-figure").is_displayed()
    shown = _image_from(driver, "reference-img")
    assert shown.shape[:2] == (256, 256)
    # a fill without a reference hides it again
    Select(_by_id(driver, "model")).select_by_value("telea")
    _by_id(driver, "run").click()
    _wait(driver, lambda d: d.find_element("id", "status").text.startswith("Filled with telea"))
    assert not _by_id(driver, "reference-figure").is_displayed()


def test_a_face_square_drawn_on_the_reference_is_sent_as_reference_box(server, driver, photo_path, tmp_path,
                                                                       monkeypatch):
    """As in the Two-Face web app: a square dragged on the reference photo picks the face there
    (a group photo); the server receives it as ``reference_box`` in reference-photo pixels."""
    from selenium.webdriver.common.action_chains import ActionChains
    from skimage import data

    from unmasked.server.routes import fill as fill_route

    calls = []
    real = fill_route.inpaint_image
    monkeypatch.setattr(fill_route, "inpaint_image", lambda *a, **k: (calls.append(k), real(*a, **k))[1])
    path, _ = photo_path
    crop = np.ascontiguousarray(data.astronaut()[:256, 96:352])
    group = np.full((192, 312, 3), 90, np.uint8)  # her face small on the left, a larger other face on the right
    group[36:156, :120] = np.asarray(Image.fromarray(crop).resize((120, 120), Image.BILINEAR))
    group[:, 120:] = np.asarray(Image.fromarray(np.ascontiguousarray(crop[:, ::-1])).resize((192, 192), Image.BILINEAR))
    ref = tmp_path / "group.png"
    Image.fromarray(group).save(ref)
    _open(driver, server, path, "two_face_faces128")
    _by_id(driver, "reference-input").send_keys(str(ref))
    canvas = _by_id(driver, "reference-canvas")
    _wait(driver, lambda d: canvas.is_displayed() and "drag a square" in _by_id(d, "reference-box-text").text)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", canvas)
    shown = canvas.size["width"] / 312  # the canvas may be shown scaled
    start = (round(4 * shown - canvas.size["width"] / 2), round(40 * shown - canvas.size["height"] / 2))
    ActionChains(driver).move_to_element_with_offset(canvas, *start).click_and_hold() \
        .move_by_offset(round(110 * shown), round(110 * shown)).release().perform()
    b = driver.execute_script("return window.unmasked.state.referenceBox;")
    assert b is not None and abs(b[0] - 4) <= 2 and abs(b[1] - 40) <= 2 and abs(b[2] - 110) <= 3 and b[2] == b[3]
    assert f"{b[0]}, {b[1]}, {b[2]}, {b[3]}" in _by_id(driver, "reference-box-text").text
    _by_id(driver, "tool-rect").click()
    _drag(driver, _by_id(driver, "canvas"), (140, 110), [(40, 40)])
    _by_id(driver, "run").click()
    _wait(driver, lambda d: d.find_element("id", "status").text.startswith("Filled with two_face_faces128"), timeout=60)
    assert calls[-1]["reference_box"] == tuple(b)
    assert "face square" in _by_id(driver, "reference-caption").text
    # a click on the reference clears the square; the next fill sends none
    ActionChains(driver).move_to_element(canvas).click().perform()
    assert driver.execute_script("return window.unmasked.state.referenceBox;") is None
    _by_id(driver, "run").click()
    _wait(driver, lambda d: calls and calls[-1]["reference_box"] is None and
          d.find_element("id", "status").text.startswith("Filled with two_face_faces128"), timeout=60)
