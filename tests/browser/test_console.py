"""The reference console in a real browser (issue 16, item 6): Debian's `chromium` driven by
Playwright against a real `python -m app serve` (embedded PostgreSQL). A person of the intake
desk signs in with an API key, reports an event through the form, classifies and assigns it,
and watches the checklist change (R3.1, R3.2.1-3, R4.1); the queue and the KPI charts render.

Screenshots are written to `tests/browser/artifacts/` (or `CONSOLE_ARTIFACTS`); with
`UPDATE_CONSOLE_PICTURE=1` the event page also becomes the README's `docs/console.png`.
The console runs under its own strict Content-Security-Policy; any violation, page error or
console error fails the test. Skipped when chromium or Playwright is absent, unless
`CONSOLE_BROWSER_REQUIRED=1` (CI), where that is a failure. Bounded in time: the server's
start (90 s) and every browser wait (15 s); every process it starts is stopped."""

from __future__ import annotations

import os
import shutil
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import httpx
import pytest

from tests.e2e.processes import ROOT, Service, scratch_dir, service_env, stop_postgres_in

if TYPE_CHECKING:
    from playwright.sync_api import Page

CHROMIUM = Path(os.environ.get("CONSOLE_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("CONSOLE_ARTIFACTS", ROOT / "tests" / "browser" / "artifacts"))
PICTURE = ROOT / "docs" / "console.png"
WAIT_MS = 15_000
TITLE = "客户投诉：系统登录失败，无法下单"  # noqa: RUF001
DESCRIPTION = "上午 9 点起多名客户反映登录后提示“服务器错误”，无法提交订单。"  # noqa: RUF001
STORIES = (  # events made through the API, so that the queue and the KPI charts show something
    ("仓库扫码枪无法连接系统", "business_issue", "system_failure", True),
    ("客户投诉：快递延误两周", "customer_complaint", "delivery_time", True),  # noqa: RUF001
    ("跨部门周报模板不统一", None, None, False),
)

DEPARTMENTS = {
    "CS": "客户服务部",
    "IT": "信息技术部",
    "OPS": "运营部",
    "SALES": "销售部",
    "LOG": "物流部",
    "ADM": "行政部",
    "SAF": "安全部",
    "HR": "人力资源部",
    "SUP": "监督组",
}

# Recorded in the page before any of its own scripts run: CSP violations and uncaught errors.
WATCH = """
window.__problems = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__problems.push(`CSP ${e.violatedDirective} ${e.blockedURI}`));
window.addEventListener("error", (e) => window.__problems.push(`error ${e.message}`));
window.addEventListener("unhandledrejection", (e) =>
  window.__problems.push(`rejection ${e.reason}`));
"""


def _bounded(step: Callable[[], None], seconds: float) -> None:
    """Run `step` for at most `seconds` (a read of the server's output may block; the
    teardown's stop of the server ends it)."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            step()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        pytest.fail(f"{step.__qualname__} took more than {seconds} s")
    if failure:
        raise failure[0]


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


class Api:
    """The service's API as the test's setup uses it (the console's user is made here)."""

    def __init__(self, base: str, token: str) -> None:
        self.client = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10
        )

    def __call__(self, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.client.request(method, path, headers=headers, **kw)
        assert response.status_code < 300, f"{method} {path}: {response.text}"
        return response.json()

    def person(self, name: str, department: str, *roles: str) -> dict[str, str]:
        email = f"{uuid.uuid4().hex[:10]}@example.com"
        user = self("POST", "/v1/users", json={
            "name": name, "email": email, "department": department, "roles": list(roles)
        })  # fmt: skip
        key = self("POST", "/v1/api-keys", json={"name": name, "user_id": user["id"]})
        return {"id": user["id"], "token": key["token"]}


def _seed(api: Api, desk: str) -> None:
    for title, category, subcategory, assign in STORIES:
        event = api("POST", "/v1/events", desk, json={
            "title": title, "description": title + "。", "channel": "hotline",
            "reporter": {"name": "陈静", "phone": "+86 21 5555 0100"},
        })  # fmt: skip
        if category:
            path = f"/v1/events/{event['id']}"
            body = {"category": category, "subcategory": subcategory}
            api("POST", path + "/classification", desk, json=body)
            if assign:
                api("POST", path + "/assignment", desk, json={})


def _shoot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _done(page: Page) -> set[str]:
    """The checklist's items shown as done."""
    items = page.locator("#checklist li[data-done='true']")
    return {str(items.nth(i).get_attribute("data-code")) for i in range(items.count())}


def _sign_in(page: Page, base: str, token: str) -> None:
    served = page.goto(base + "/console")
    assert served is not None
    assert served.ok
    csp = served.all_headers()["content-security-policy"]
    assert "script-src 'self'" in csp, csp
    assert "unsafe-inline" not in csp, csp
    page.fill("#api-key", token)
    _shoot(page, "01-sign-in")
    page.click("#signin-form button[type=submit]")
    page.wait_for_selector("#queue")
    assert page.inner_text("#who-name").count("王芳") == 1
    assert page.locator("#queue tbody tr").count() >= 1  # a seeded event waits for the desk
    _shoot(page, "02-queue")


def _report(page: Page) -> str:
    """Report through the intake form; the event's id, from the page it lands on."""
    page.click("#nav a[href='#/report']")
    page.fill("#title", TITLE)
    page.fill("#description", DESCRIPTION)
    page.select_option("#channel", "hotline")
    page.fill("#reporter_name", "赵磊")
    page.fill("#reporter_phone", "+86 10 6555 0199")
    page.check("#involved input[value='IT']")
    _shoot(page, "03-report-form")
    page.click("#report-submit")
    page.wait_for_selector("#summary[data-status='reported']")
    _shoot(page, "04-reported")
    return page.url.rsplit("/", 1)[1]


def _classify_and_assign(page: Page, assignee: str) -> list[set[str]]:
    """Classify, then assign, on the event page; the done checklist items after each step."""
    seen = [_done(page)]
    page.select_option("#category", "business_issue")
    page.select_option("#subcategory", "system_failure")
    page.select_option("#system_outage", "partial")
    page.click("#classify-submit")
    page.wait_for_selector("#summary[data-status='classified']")
    assert page.locator("#summary .severity-important").count() == 1
    seen.append(_done(page))
    _shoot(page, "05-classified")
    page.select_option("#assignee_id", label=f"{assignee} (handler)")
    page.click("#assign-submit")
    page.wait_for_selector("#summary[data-status='assigned']")
    seen.append(_done(page))
    shot = _shoot(page, "06-assigned")
    if os.environ.get("UPDATE_CONSOLE_PICTURE") == "1":
        PICTURE.parent.mkdir(exist_ok=True)
        shutil.copyfile(shot, PICTURE)
    return seen


def _kpis(page: Page) -> None:
    page.click("#nav a[href='#/kpis']")
    page.wait_for_selector("#chart-events rect.bar")
    assert page.locator("#chart-on-time").count() == 1
    assert "IT" in page.inner_text("#kpi-out")
    _shoot(page, "07-kpis")


def _in_chinese(page: Page, event_id: str) -> None:
    """The same event with the console's labels in Chinese."""
    page.click("#lang")
    page.wait_for_selector("#nav a[href='#/kpis']:has-text('考核指标')")
    page.goto(page.url.split("#", 1)[0] + f"#/events/{event_id}")
    page.wait_for_selector("#checklist h2:has-text('检查清单')")
    _shoot(page, "08-event-zh")


def _watch(page: Page) -> list[str]:
    """Console errors and page errors, as they come."""
    errors: list[str] = []
    page.add_init_script(WATCH)
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    return errors


def test_report_classify_and_assign_through_the_console(browser: Any) -> None:
    with scratch_dir("cle-console-") as folder:
        service = Service(service_env(APP_DATA_DIR=str(folder)), folder / "service.log")
        context = api = None
        try:
            _bounded(service.wait_ready, 90)
            assert service.token is not None
            api = Api(service.base, service.token)
            for code, name in DEPARTMENTS.items():
                api("POST", "/v1/departments", json={"code": code, "name": name})
            desk = api.person("王芳", "CS", "intake_agent", "supervisor")
            handler = api.person("李明", "IT", "handler")
            _seed(api, desk["token"])

            context = browser.new_context(viewport={"width": 1360, "height": 900}, locale="en-US")
            context.set_default_timeout(WAIT_MS)
            page = context.new_page()
            errors = _watch(page)
            _sign_in(page, service.base, desk["token"])
            event_id = _report(page)
            reported, classified, assigned = _classify_and_assign(page, "李明")
            # The checklist changed with each step: more of the path's gates are done.
            assert reported < classified < assigned, (reported, classified, assigned)
            timeline = page.inner_text("#timeline").lower()

            event = api("GET", f"/v1/events/{event_id}")
            assert (event["status"], event["title"]) == ("assigned", TITLE)
            assert event["reporter"]["name"] == "赵磊"
            assert (event["severity"], event["lead_department"]) == ("important", "IT")
            assert event["assignee_id"] == handler["id"]
            entries = api("GET", f"/v1/events/{event_id}/timeline")["items"]
            assert len(entries) >= 3
            assert all(e["action"].replace("_", " ") in timeline for e in entries), timeline

            _kpis(page)
            _in_chinese(page, event_id)
            assert page.evaluate("window.__problems") == []
            assert errors == []
        finally:
            if context is not None:
                context.close()
            if api is not None:
                api.client.close()
            service.close()
            stop_postgres_in(folder / "pg")
