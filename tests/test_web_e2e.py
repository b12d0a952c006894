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
def server():
    """Base URL of a real uvicorn server on a free localhost port, in a thread."""
    import uvicorn

    from unmasked.server import ServerSettings, create_app

    _chromium()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app = create_app(ServerSettings(max_pixels=MAX_PIXELS))
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


def _open(driver, server, path, model):
    from selenium.webdriver.support.ui import Select

    driver.get(server + "/")
    _wait(driver, lambda d: len(Select(_by_id(d, "model")).options) > 0)
    Select(_by_id(driver, "model")).select_by_value(model)
    _by_id(driver, "image-input").send_keys(str(path))
    _wait(driver, lambda d: f"{W} × {H}" in _by_id(d, "status").text)


def _drag(driver, element, start, moves):
    """Press at ``start`` (x, y in photo pixels; shown 1:1), move by each (dx, dy), release."""
    from selenium.webdriver.common.action_chains import ActionChains

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
    _by_id(driver, "unmask").click()
    _wait(driver, lambda d: "restored with deepfill_v2_faces128" in _by_id(d, "status").text, timeout=60)
    assert "1 face found, 1 restored" in _by_id(driver, "status").text
    assert _by_id(driver, "mask-caption").text == "detected masks and faces"
    result = _image_from(driver, "result-img")
    changed = (result != rgb).any(axis=-1)
    inside, near = np.zeros(changed.shape, bool), np.zeros(changed.shape, bool)
    inside[40:160, 100:220] = True
    near[10:190, 70:250] = True  # the square grown by a quarter: the jaw line may reach past a loose square
    assert changed[inside].mean() > 0.05 and not changed[~near].any()  # restored around the face square only
    overlay = _image_from(driver, "mask-img")
    assert overlay.shape[:2] == (H, W) and (overlay[..., :3] != rgb).any()  # masks/boxes drawn over the photo


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
