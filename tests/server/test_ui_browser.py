"""The web UI in a real browser: Playwright driving Debian's chromium against a running
``videogen serve --ui`` whose models folder holds tiny unet3d and SV3D_p models.

One server and one browser serve the whole module; each test opens its own browser context, so its
localStorage (the jobs the page follows) starts empty. Jobs are tiny (64x64, a few steps); the
"long" ones run 1000 steps and are cancelled as soon as the test has seen what it needs.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server_helpers import ServerProcess, png_bytes
from ui_pages import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PHONE,
    choose_model,
    control,
    fill,
    form_error,
    generate,
    open_ui,
    placeholder_of,
    queue_row,
    upload_image,
    value_of,
    wait_status,
)

from videogen.testing import build_tiny_model

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (.ci/run installs it)"
)
SMALL = {"height": "64", "width": "64", "num_frames": "8", "steps": "2"}
#: long enough to be seen running (about 0.07 s a step here; the server's most), cancelled once it has been
LONG_STEPS = 500


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("ui")
    for family in ("unet3d", "sv3d-p"):
        build_tiny_model(family, root / "models" / f"tiny-{family}")
    server = ServerProcess(root / "data", root / "models", "--ui").start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, server: ServerProcess) -> Iterator[Any]:
    page = open_ui(browser, server.url)
    yield page
    page.context.close()


@pytest.fixture(autouse=True)
def idle_worker(server: ServerProcess) -> Iterator[None]:
    """Whatever a test leaves queued or running is cancelled, so the next one has the worker."""
    yield
    for job in server.client.get("/v1/jobs", params={"status": ["queued", "running"]}).json()["jobs"]:
        server.client.post(f"/v1/jobs/{job['id']}/cancel")
        server.wait_for(job["id"], {"cancelled", "succeeded", "failed"})


def _job(server: ServerProcess, job_id: str) -> dict[str, Any]:
    return server.client.get(f"/v1/jobs/{job_id}").json()


def _text_to_video(page: Any, prompt: str, **fields: str) -> None:
    choose_model(page, "tiny-unet3d")
    fill(page, prompt=prompt, **{**SMALL, **fields})


def test_empty_means_the_models_default_and_a_typed_zero_is_refused_as_the_api_refuses_it(
    page: Any, server: ServerProcess
) -> None:
    choose_model(page, "tiny-unet3d")
    assert placeholder_of(page, "num_frames") == "16"  # tiny-unet3d's default, not the SV3D model's 21
    _text_to_video(page, "a panda", num_frames="")
    job_id = generate(page)
    assert _job(server, job_id)["request"]["num_frames"] is None
    wait_status(page, job_id, "succeeded")
    (video,) = _job(server, job_id)["outputs"]
    assert video["metadata"]["request"]["num_frames"] == 16

    fill(page, steps="0")
    jobs_before = len(server.client.get("/v1/jobs").json()["jobs"])
    page.click("#generate")
    shown = form_error(page)
    body = {"model": "tiny-unet3d", "prompt": "a panda", "height": 64, "width": 64, "steps": 0}
    api = server.client.post("/v1/jobs", json=body)
    assert api.status_code == 422 and api.json()["field"] == "steps"
    assert shown.inner_text() == api.json()["error"]
    assert shown.get_attribute("data-field") == "steps" and "steps" in shown.inner_text()
    assert len(server.client.get("/v1/jobs").json()["jobs"]) == jobs_before  # the refused one never queued


def test_sv3d_elevation_zero_reaches_the_job_as_zero(
    page: Any, server: ServerProcess, tmp_path: Path
) -> None:
    still = tmp_path / "still.png"
    still.write_bytes(png_bytes(64, 64))
    choose_model(page, "tiny-sv3d-p")
    assert placeholder_of(page, "elevations") == "10"
    upload_image(page, still)
    fill(page, elevations="0", steps="1", height="64", width="64")
    job_id = generate(page)
    assert _job(server, job_id)["request"]["elevations"] == [0.0]
    # The still is RGB, so its background is removed first; without rembg (or its weights, which
    # need the network) the job fails saying what to do, not with the library's own message.
    ended = page.wait_for_selector(
        f"#job-status[data-job='{job_id}']:is([data-status=failed], [data-status=succeeded])", timeout=120_000
    )
    if ended.get_attribute("data-status") == "failed":
        reason = page.inner_text("#job-status .job-error")
        assert "background removal is unavailable" in reason and "remove_background" in reason


def test_a_reload_mid_run_still_follows_the_running_job(page: Any, server: ServerProcess) -> None:
    _text_to_video(page, "a long panda", steps=str(LONG_STEPS))
    job_id = generate(page)
    page.wait_for_selector("#job-progress", timeout=60_000)
    page.reload()
    page.wait_for_selector(f"#job-status[data-job='{job_id}'] #job-progress", timeout=60_000)
    assert "denoise" in page.inner_text("#job-status") and "left" in page.inner_text("#job-status")
    server.client.post(f"/v1/jobs/{job_id}/cancel")
    wait_status(page, job_id, "cancelled")


def test_the_live_preview_appears(page: Any, server: ServerProcess) -> None:
    _text_to_video(page, "a previewed panda", steps=str(LONG_STEPS))
    job_id = generate(page)
    preview = page.wait_for_selector("#job-preview img", timeout=60_000)
    assert preview.get_attribute("src").startswith("data:image/jpeg;base64,")
    server.client.post(f"/v1/jobs/{job_id}/cancel")
    wait_status(page, job_id, "cancelled")
    assert page.query_selector("#job-preview") is None


def test_two_submits_are_both_followed_and_the_history_refreshes_itself(
    page: Any, server: ServerProcess
) -> None:
    _text_to_video(page, "the first panda")
    first = generate(page)
    fill(page, prompt="the second panda")
    second = generate(page)
    for job_id in (first, second):
        queue_row(page, job_id, "succeeded", timeout=120_000)
    wait_status(page, second, "succeeded")
    page.wait_for_selector("#job-video video", timeout=30_000)
    # Neither job was in the history when the page loaded; nothing was clicked to refresh it.
    page.wait_for_function("document.querySelectorAll('#history video, #history img').length >= 2")
    external = server.submit(prompt="a panda from the API", steps=2)
    server.wait_for(external["id"], {"succeeded"})
    page.wait_for_function("document.querySelectorAll('#history video, #history img').length >= 3")


def test_load_into_the_form_from_a_history_item_and_run_it_again(page: Any, server: ServerProcess) -> None:
    fields = {"prompt": "a red fox", "steps": 3, "seed": 1234, "guidance": 0, "formats": ["mp4", "gif"]}
    earlier = server.submit(**fields)
    server.wait_for(earlier["id"], {"succeeded"})
    page.reload()
    page.wait_for_selector("#history video, #history img", timeout=60_000)
    page.locator("#history .thumbnail-item").first.click()
    wait_status(page, earlier["id"], "succeeded")
    assert page.inner_text("#job-seed") == "1234"
    details = page.inner_text("#job-details")
    assert "tiny-unet3d" in details and str(server.models_dir) not in details  # no server paths
    page.click("#load-into-form")
    page.wait_for_function("document.querySelector('#field-prompt textarea')?.value === 'a red fox'")
    assert value_of(page, "steps") == "3" and value_of(page, "seed") == "1234"
    assert value_of(page, "guidance") == "0" and value_of(page, "num_frames") == "8"
    assert control(page, "formats").locator("input[type=checkbox]:checked").count() == 2
    again = generate(page)
    request = _job(server, again)["request"]
    for name, value in {**fields, "model": "tiny-unet3d", "num_frames": 8, "height": 64}.items():
        assert request[name] == value, name


def test_the_queue_panel_cancels_a_queued_and_a_running_job(page: Any, server: ServerProcess) -> None:
    running = server.submit(prompt="a long panda", steps=LONG_STEPS)
    queued = server.submit(prompt="a waiting panda", steps=2)
    server.wait_for(running["id"], {"running"})
    queue_row(page, queued["id"], "queued")
    page.click(f"#cancel-{queued['id']}")
    queue_row(page, queued["id"], "cancelled")
    assert _job(server, queued["id"])["status"] == "cancelled"
    page.click(f"#cancel-{running['id']}")
    row = queue_row(page, running["id"], "cancelled")
    assert "cancel" in row.inner_text()


def test_the_page_fits_a_phone_screen(browser: Any, server: ServerProcess) -> None:
    done = server.submit(prompt="a panda " * 30, steps=2)
    server.wait_for(done["id"], {"succeeded"})
    phone = open_ui(browser, server.url, PHONE)
    try:
        phone.wait_for_selector("#history video, #history img", timeout=60_000)
        phone.locator("#history .thumbnail-item").first.click()
        wait_status(phone, done["id"], "succeeded")
        phone.wait_for_selector("#job-details dl")
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    finally:
        phone.context.close()
