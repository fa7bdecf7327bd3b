"""`/docs` and `/redoc` in a real browser, offline (issue 15, item 2): Debian's `chromium`
driven by Playwright against a real `python -m app serve`. Every request the pages make goes
to the service itself; Swagger UI's Authorize takes the first admin key and "Try it out" on
`GET /v1/me` sends it and shows 200; ReDoc renders the document. Skipped when chromium or
Playwright is absent, unless `CONSOLE_BROWSER_REQUIRED=1` (CI). Bounded in time; every process
it starts is stopped."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.e2e.processes import Service, scratch_dir, service_env, stop_postgres_in

CHROMIUM = Path(os.environ.get("CONSOLE_CHROMIUM", "/usr/bin/chromium"))
WAIT_MS = 20_000
# Recorded before any of the page's scripts run: CSP violations and uncaught errors.
WATCH = """
window.__problems = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__problems.push(`CSP ${e.violatedDirective} ${e.blockedURI}`));
window.addEventListener("error", (e) => window.__problems.push(`error ${e.message}`));
"""


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CONSOLE_BROWSER_REQUIRED") == "1":
        pytest.fail(f"the browser test must run here: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install -e '.[dev]')")
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"no chromium at {CHROMIUM} (apt-get install chromium; or CONSOLE_CHROMIUM)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, str]]:
    """A real service on a fresh data folder: its base URL and the first admin key."""
    with scratch_dir("cle-docs-browser-") as folder:
        service = Service(service_env(APP_DATA_DIR=str(folder / "data")), folder / "serve.log")
        try:
            service.wait_ready(timeout=90)
            assert service.token is not None
            yield service.base, service.token
        finally:
            service.close()
            stop_postgres_in(folder / "data" / "pg")


def _open(browser: Any, url: str) -> tuple[Any, Any, list[str]]:
    """A new page at `url`; the page, its context and every URL it requested."""
    context = browser.new_context()
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.add_init_script(WATCH)
    served = page.goto(url)
    assert served is not None
    assert served.ok
    return page, context, requested


def _only_from(base: str, requested: list[str]) -> None:
    elsewhere = [u for u in requested if not u.startswith((base + "/", "data:", "blob:"))]
    assert not elsewhere, elsewhere


def test_swagger_ui_authorizes_and_tries_an_operation(
    browser: Any, served: tuple[str, str]
) -> None:
    base, token = served
    page, context, requested = _open(browser, base + "/docs")
    try:
        sent: list[dict[str, str]] = []
        page.on("request", lambda r: sent.append(r.headers) if r.url == base + "/v1/me" else None)
        page.wait_for_selector(".swagger-ui .information-container")
        page.click(".swagger-ui .auth-wrapper button.authorize")
        page.fill(".swagger-ui .modal-ux input", token)
        page.click(".swagger-ui .modal-ux .auth-btn-wrapper button.authorize")
        page.click(".swagger-ui .modal-ux .auth-btn-wrapper button.btn-done")
        operation = page.locator(".opblock-get", has=page.locator('[data-path="/v1/me"]')).first
        operation.locator(".opblock-summary").first.click()
        operation.locator("button.try-out__btn").click()
        operation.locator("button.execute").click()
        status = operation.locator(".live-responses-table tbody .response-col_status").first
        status.wait_for()
        assert status.inner_text().strip() == "200"
        assert [h.get("authorization") for h in sent] == [f"Bearer {token}"]
        assert page.evaluate("window.__problems") == []
        _only_from(base, requested)
    finally:
        context.close()


def test_redoc_renders_the_document_offline(browser: Any, served: tuple[str, str]) -> None:
    base, _token = served
    page, context, requested = _open(browser, base + "/redoc")
    try:
        page.wait_for_selector(".api-content h1")  # the document's title, rendered
        assert "Closed-loop event management" in page.inner_text(".api-content h1")
        assert page.locator("[data-section-id^='tag/']").count() > 3  # the tags, rendered
        assert page.evaluate("window.__problems") == []
        _only_from(base, requested)
    finally:
        context.close()
