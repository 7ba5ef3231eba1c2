"""Page helpers for the web UI's browser tests: find a field's control by its Request field name
(opening the section it is folded in), pick a model, submit, and read the job panel and queue."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from videogen.fields import field_info
from videogen.request import GROUPS
from videogen.server.ui.controls import elem_id

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
#: a Gradio page can take a while to start on a busy 2-core machine
LOAD_MS = 60_000
PHONE = {"width": 390, "height": 844}


def open_ui(browser: Any, url: str, viewport: dict[str, int] | None = None) -> Any:
    """A fresh browser context (its own localStorage) on the UI, once the form is there."""
    context = browser.new_context(viewport=viewport or {"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{url}/ui/")
    page.wait_for_selector("#generate", timeout=LOAD_MS)
    return page


def control(page: Any, name: str) -> Any:
    """The field's control, its folded sections opened first."""
    box = page.locator(f"#{elem_id(name)}")
    if not box.is_visible():
        info = field_info(name)
        title = GROUPS[info.group]
        titles = [title, f"More {title.lower()} settings"] if info.advanced else [title]
        for section in titles:
            label = page.locator(".label-wrap", has_text=section).first
            if "open" not in (label.get_attribute("class") or ""):
                label.click()
    box.wait_for(state="visible")
    return box


def fill(page: Any, **values: str) -> None:
    """Type into text and number fields (``""`` empties one)."""
    for name, value in values.items():
        control(page, name).locator("textarea, input").first.fill(value)


def value_of(page: Any, name: str) -> str:
    return control(page, name).locator("textarea, input").first.input_value()


def placeholder_of(page: Any, name: str) -> str:
    return control(page, name).locator("textarea, input").first.get_attribute("placeholder") or ""


def choose_model(page: Any, model: str) -> None:
    """Pick ``model`` and wait for the form to take its look (the note under the picker names it)."""
    page.click(f"#{elem_id('model')} input")
    page.click(f"[role=option][aria-label^='{model}']")
    page.wait_for_selector(f"#model-note .model-note[data-model='{model}']")


def upload_image(page: Any, path: Path) -> None:
    page.locator(f"#{elem_id('image')} input[type=file]").set_input_files(str(path))
    page.wait_for_selector(f"#{elem_id('image')} img", timeout=LOAD_MS)


def generate(page: Any) -> str:
    """Press Generate; return the id of the job the page now follows."""
    before = page.get_attribute("#job-status", "data-job")
    page.click("#generate")
    page.wait_for_function(
        "(before) => { const s = document.querySelector('#job-status');"
        " return s && s.dataset.job && s.dataset.job !== before; }",
        arg=before,
        timeout=LOAD_MS,
    )
    return page.get_attribute("#job-status", "data-job")


def form_error(page: Any) -> Any:
    """The form's refusal, once shown."""
    return page.wait_for_selector("#form-error .field-error", timeout=LOAD_MS)


def wait_status(page: Any, job_id: str, status: str, timeout: int = 120_000) -> None:
    """Until the job panel shows ``job_id`` in ``status``."""
    page.wait_for_selector(f"#job-status[data-job='{job_id}'][data-status='{status}']", timeout=timeout)


def queue_row(page: Any, job_id: str, status: str, timeout: int = 60_000) -> Any:
    return page.wait_for_selector(f".queue-row[data-job='{job_id}'][data-status='{status}']", timeout=timeout)
