"""The web UI in a real browser: Playwright driving Debian's chromium against a running server."""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)


@pytest.fixture
def ui_server(spawn_server):
    """A real server with the web UI mounted (the other server tests run without it)."""
    return spawn_server("--ui")


def test_ui_submits_shows_progress_and_the_video_in_the_gallery(ui_server) -> None:
    from playwright.sync_api import sync_playwright

    live_server = ui_server

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(f"{live_server.url}/ui/")
            page.wait_for_selector("#text-to-video-prompt textarea", timeout=60_000)
            page.fill("#text-to-video-prompt textarea", "a panda eating bamboo")
            page.click("text=Shape and sampling")
            # Long enough (seconds) that the UI's 1 s poll sees it denoising, even on a fast machine.
            for field, value in (("frames", "8"), ("height", "64"), ("width", "64"), ("steps", "400")):
                page.fill(f"#text-to-video-{field} input", value)
            page.click("#text-to-video-generate")

            page.wait_for_selector("#job-progress", timeout=60_000)
            assert "denoise" in page.inner_text("#job-status")
            page.wait_for_selector("#job-status[data-status=succeeded]", timeout=120_000)
            page.wait_for_selector("#job-video video", timeout=30_000)

            page.click("#refresh-history")
            page.wait_for_selector("#history video, #history img", timeout=30_000)
            jobs = live_server.client.get("/v1/jobs", params={"status": "succeeded"}).json()["jobs"]
            assert [job["request"]["prompt"] for job in jobs] == ["a panda eating bamboo"]
        finally:
            browser.close()
