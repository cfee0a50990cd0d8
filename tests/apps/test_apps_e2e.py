"""End to end: the hub served by `streamlit run` on localhost, every page loaded in a real browser.

Uses Debian's chromium (Playwright's own browser download is not reachable here); skipped when it is
missing. Fails on any exception a page renders; saves a screenshot of each page (VAI_SCREENSHOT_DIR, or
the test's tmp dir)."""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import vai.apps

pytestmark = pytest.mark.e2e

APPS_DIR = Path(vai.apps.__file__).parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _page_urls(base: str) -> list[tuple[str, str]]:
    # Streamlit serves pages/<N>_<Name>.py at /<Name>.
    urls = [("Home", base + "/")]
    for p in sorted((APPS_DIR / "pages").glob("*.py")):
        name = p.stem.split("_", 1)[1] if p.stem.split("_", 1)[0].isdigit() else p.stem
        urls.append((name, f"{base}/{name}"))
    return urls


@pytest.fixture
def hub_server(vai_home):
    from vai.core.store import Store

    with Store().run("scheduling", "solve", {"instance": "e2e.json"}) as run:
        run.summary["status"] = "OPTIMAL"
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", str(APPS_DIR / "Home.py"), "--server.address", "127.0.0.1",
           "--server.port", str(port), "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=os.environ.copy())
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while True:
        try:
            with urllib.request.urlopen(base + "/_stcore/health", timeout=2) as r:
                if r.read().strip() == b"ok":
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            out = proc.stdout.read().decode(errors="replace") if proc.poll() is not None else ""
            proc.kill()
            pytest.fail(f"the hub did not start: {out[-2000:]}")
        time.sleep(0.5)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_every_page_loads_in_a_browser_without_exceptions(hub_server, tmp_path):
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("VAI_SCREENSHOT_DIR", tmp_path / "screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    problems = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        console_errors: list[str] = []
        page.on("pageerror", lambda exc: console_errors.append(str(exc)))
        for name, url in _page_urls(hub_server):
            page.goto(url)
            page.wait_for_selector("[data-testid='stApp']", timeout=60_000)
            page.wait_for_selector("h1", timeout=120_000)
            # Wait for the script run to finish (the running indicator disappears).
            deadline = time.time() + 180
            while time.time() < deadline:
                page.wait_for_timeout(500)
                if page.locator("[data-testid='stStatusWidget']").count() == 0:
                    break
            page.wait_for_load_state("networkidle")
            page.wait_for_timeout(2000)  # let data frames and charts draw before the screenshot
            page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
            exceptions = page.locator("[data-testid='stException']")
            if exceptions.count():
                problems.append(f"{name}: {exceptions.first.inner_text()[:500]}")
            if name == "Home":
                assert "vai" in page.locator("h1").first.inner_text()
                assert page.get_by_text("Recent runs").count() >= 1
        browser.close()
    assert not problems, "\n".join(problems)
    assert not console_errors, console_errors
    assert len(list(shots.glob("*.png"))) == len(_page_urls(hub_server))


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)")
def test_discovery_page_predicts_a_molecule_drawn_in_the_editor(hub_server, tmp_path):
    """Draw benzene in the Ketcher editor, press Apply, Predict: the drawn molecule is a row of the table."""
    pytest.importorskip("streamlit_ketcher")
    from playwright.sync_api import expect, sync_playwright

    from vai.verticals.discovery.sample_data import synthetic_logp_frame
    from vai.verticals.discovery.workflows import train_table
    from vai.verticals.discovery.zoo import default_zoo_dir

    train_table(synthetic_logp_frame(), smiles_col="smiles", target_cols=["logp_crippen"],
                out=default_zoo_dir() / "logp_synthetic" / "model", model="gbm", split="random", gbm_members=1)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1400, "height": 1200})
        page.goto(hub_server + "/Discovery")
        page.wait_for_selector("h1", timeout=120_000)
        page.get_by_text("Draw a molecule").click()
        editor = page.frame_locator('iframe[title="streamlit_ketcher\\.streamlit_ketcher"]')
        editor.get_by_role("button", name="Benzene (T)").click(timeout=120_000)  # waits for the editor to load
        editor.locator("svg").filter(has_text="Created with Rapha").last.click()  # the drawing canvas
        editor.get_by_role("button", name="Apply").click()
        expect(page.get_by_text("Drawn:")).to_contain_text("C1C=CC=CC=1", timeout=60_000)
        page.get_by_role("button", name="Predict").click()
        cells = page.locator("[data-testid='stDataFrame'] td")
        # the grid draws on a canvas; its cells are also in an (off-screen) accessibility table
        expect(cells.filter(has_text=re.compile(r"^c1ccccc1$"))).to_have_count(1, timeout=120_000)  # standardised
        texts = [c.inner_text() for c in cells.all()]
        browser.close()
    assert texts.count("C1C=CC=CC=1") == 1  # the drawn input, predicted with the two pasted molecules
    assert "OCCOc1ccccc1" in texts
