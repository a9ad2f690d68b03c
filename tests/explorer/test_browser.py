"""The explorer in real headless Chromium (Debian's, driven by Playwright), over a real Anvil.

Screenshots of the main pages go to `test-artifacts/screenshots/` (git-ignored). In CI (`CI=true`)
a missing Chromium or Playwright is a failure, not a skip: `mk/explorer.mk` installs both.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from chain.anvil import free_port
from chain.devchain import DevChain
from explorer.server import build_app
from tests.explorer.scenario import NAMES, Scenario

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("KNEXA_CHROMIUM", "/usr/bin/chromium"))
LAUNCH_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"


def _require_browser() -> Any:
    problem = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        problem = "the Python package playwright is not installed (make pytest installs it)"
    if problem is None and not (CHROMIUM.exists() or shutil.which("chromium")):
        problem = f"no Chromium at {CHROMIUM} (mk/explorer.mk installs Debian's chromium)"
    if problem is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"browser tests cannot run in CI: {problem}")
        pytest.skip(problem)
    return sync_playwright


@pytest.fixture(scope="module")
def explorer_url(round_chain: tuple[DevChain, Scenario]) -> Iterator[str]:
    """The explorer served by uvicorn on a free loopback port, in a background thread."""
    _, scenario = round_chain
    app = build_app(
        manifest=scenario.manifest,
        store=str(scenario.store_dir),
        block_explorer_url="http://127.0.0.1:5100",
        ttl_s=30.0,
    )
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.05)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def page(explorer_url: str) -> Iterator[Any]:
    sync_playwright = _require_browser()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_FLAGS)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 900}, java_script_enabled=False)
            yield context.new_page()
        finally:
            browser.close()


def _shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_main_pages_render_without_javascript(page: Any, explorer_url: str) -> None:
    for path, name, heading in (
        ("/", "home", "Marketplace overview"),
        ("/organizations", "organizations", "Organizations"),
        ("/rounds", "rounds", "Rounds"),
        ("/events", "events", "Market events"),
    ):
        response = page.goto(explorer_url + path)
        assert response is not None, path
        assert response.status == 200, path
        assert page.locator("h1").first.inner_text().startswith(heading)
        _shot(page, name)
    page.goto(explorer_url + "/organizations")
    rows = page.locator("table#organizations tr[data-address]")
    assert rows.count() == 3
    assert [rows.nth(i).locator("td").first.inner_text().split()[0] for i in range(3)] == list(NAMES)


def test_round_page_pairing_graph_shows_the_rounds_pairs(
    page: Any, explorer_url: str, round_chain: tuple[DevChain, Scenario]
) -> None:
    _, scenario = round_chain
    response = page.goto(explorer_url + "/rounds/1")
    assert response is not None
    assert response.status == 200
    graph = page.locator("svg.pairing-graph")
    assert graph.count() == 1
    assert graph.is_visible()
    edges = graph.locator("g.edge")
    drawn = {
        (edges.nth(i).get_attribute("data-teacher"), edges.nth(i).get_attribute("data-student"))
        for i in range(edges.count())
    }
    assert drawn == set(scenario.pairs[1])
    arrows = graph.locator("g.edge path.arrow")
    assert arrows.count() == len(scenario.pairs[1])
    labels = [label.strip() for label in graph.locator("g.edge text.edge-label").all_text_contents()]
    assert "+0.125" in labels  # the first pair's reported gain
    nodes = graph.locator("g.node text.node-label").all_text_contents()
    assert sorted(nodes) == sorted(NAMES)
    assert page.locator("#verdict .badge").first.inner_text() == "match"
    assert page.locator("table#pairs tr[data-teacher]").count() == len(scenario.pairs[1])
    link = page.locator("table#pairs a.bx").first.get_attribute("href")
    assert link is not None
    assert link.startswith("http://127.0.0.1:5100/")
    _shot(page, "round-1")
