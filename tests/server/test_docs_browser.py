"""/docs and /redoc in a real browser that may reach nothing but the server: they still render."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from test_ui_browser import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)


def test_the_docs_render_with_no_network(live_server) -> None:
    from playwright.sync_api import Route, sync_playwright

    own = urlsplit(live_server.url).netloc
    elsewhere: list[str] = []

    def only_the_server(route: Route) -> None:
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.route("**/*", only_the_server)
            page.goto(f"{live_server.url}/docs")
            page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
            assert "videogen" in page.inner_text(".swagger-ui .info .title")
            page.wait_for_selector(".opblock-summary-path", timeout=30_000)
            paths = page.locator(".opblock-summary-path").all_inner_texts()
            assert any("/v1/jobs/{job_id}/events" in path.replace("\u200b", "") for path in paths), paths
            page.goto(f"{live_server.url}/redoc")
            page.wait_for_selector("h1", timeout=30_000)
            assert "videogen" in page.inner_text("h1")
            assert page.get_by_text("Follow a job's progress").count() >= 1
        finally:
            browser.close()
    assert elsewhere == []
