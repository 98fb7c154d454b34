"""The dashboard in a real browser (Debian's chromium, driven by Playwright): sign in, read the activity
chart after traffic, create a key and use it with the `openai` SDK, disable it and see it refused, open a
model page and a generation's routing trace, stream a reply in the playground — at desktop and phone
widths, in light and dark mode, with no console error anywhere.

Every page is saved as a screenshot in `.cache/screenshots/` (ignored by git); `docs/img/` holds two of
them for the README.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import openai
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import ADMIN_KEY, Gateway, GatewayFactory, provider_keys, upstream_catalog

CHROMIUM = os.environ.get("CROSSROADS_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parents[2] / ".cache" / "screenshots"
#: The series colour drawn first in the activity chart (app.js PALETTE[0]), as RGB.
FIRST_SERIES = (0x63, 0x66, 0xF1)
CATALOG_MODELS = {"test/flaky": [{"provider": "alpha", "upstream_model": "m#status=503", "prompt": "0.000001",
                                  "completion": "0.000002"},
                                 {"provider": "beta", "upstream_model": "m", "prompt": "0.000001",
                                  "completion": "0.000002"}]}

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(),
                                reason=f"no chromium binary at {CHROMIUM} (apt-get install -y chromium)")


async def in_browser(drive: Callable[[Browser], None]) -> None:
    """Runs `drive` with a launched chromium in a worker thread (Playwright's sync API), while the gateway
    under test keeps serving on this event loop."""

    def run() -> None:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                drive(browser)
            finally:
                browser.close()

    await asyncio.to_thread(run)


@pytest.fixture
async def traffic_gateway(start_gateway: GatewayFactory) -> AsyncIterator[Gateway]:
    """A gateway whose Simulator serves the catalog, plus a model whose first provider always fails."""
    from crossroads.sim import SimServer

    async with SimServer() as sim, start_gateway(
            env={"CROSSROADS_SIMULATOR": "on", **provider_keys("alpha", "beta")},
            catalog=upstream_catalog(sim.url, CATALOG_MODELS, providers=("alpha", "beta"))) as gw:
        yield gw


class Console:
    """Every console error and uncaught exception of a page."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"{m.type}: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"uncaught: {e}"))


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page: Page, root: str, key: str) -> None:
    page.goto(f"{root}/")
    page.get_by_label("The management key, or an API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("header.top")).to_be_visible()


def chart_pixels(page: Page) -> int:
    """Pixels of the activity chart's canvas in the first series' colour."""
    count: int = page.evaluate("""([r, g, b]) => {
        const canvas = document.querySelector('.uplot canvas');
        const {data} = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height);
        let n = 0;
        for (let i = 0; i < data.length; i += 4)
            if (Math.abs(data[i] - r) < 8 && Math.abs(data[i + 1] - g) < 8 && Math.abs(data[i + 2] - b) < 8) n++;
        return n;
    }""", list(FIRST_SERIES))
    return count


async def test_the_dashboard_end_to_end(traffic_gateway: Gateway) -> None:
    await in_browser(lambda browser: end_to_end(traffic_gateway, browser))


def end_to_end(gw: Gateway, browser: Browser) -> None:
    sdk = openai.OpenAI(base_url=gw.url, api_key=gw.key, max_retries=0)
    for model, app in [("openai/gpt-4o", "App A"), ("openai/gpt-4o-mini", "App B"), ("openai/gpt-4o", "App B")]:
        sdk.chat.completions.create(model=model, messages=[{"role": "user", "content": "hi"}],
                                          extra_headers={"X-Title": app})
    flaky = sdk.chat.completions.create(model="test/flaky", messages=[{"role": "user", "content": "hi"}],
                                              extra_body={"provider": {"order": ["alpha", "beta"]}})

    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                        permissions=["clipboard-read", "clipboard-write"])
    page = context.new_page()
    console = Console(page)
    page.on("dialog", lambda dialog: dialog.accept())

    # Sign in; the activity chart draws the traffic.
    sign_in(page, gw.root, ADMIN_KEY)
    expect(page.locator(".uplot canvas")).to_be_visible()
    expect(page.locator(".card .value").nth(1)).to_have_text("4")
    assert chart_pixels(page) > 50
    shot(page, "activity")
    page.get_by_label("Stacked by").select_option("app")
    expect(page.get_by_role("cell", name="App B")).to_be_visible()
    page.get_by_label("Period").select_option("hour")
    expect(page.locator(".uplot canvas")).to_be_visible()
    assert chart_pixels(page) > 50

    # Keys: create one, copy its secret, use it, edit it, disable it and see it refused.
    page.get_by_role("link", name="Keys", exact=True).click()
    page.get_by_label("Name").fill("browser key")
    page.get_by_label("Limit (USD)").fill("3")
    page.get_by_role("button", name="Create key").click()
    secret = (page.locator(".new-secret").text_content()) or ""
    assert secret.startswith("sk-cr-v1-")
    page.get_by_role("button", name="Copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    shot(page, "keys")
    reply = openai.OpenAI(base_url=gw.url, api_key=secret, max_retries=0).chat.completions.create(
        model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content
    row = page.get_by_role("row").filter(has_text="browser key")
    page.get_by_role("button", name="Edit browser key").click()
    page.get_by_role("dialog").get_by_label("Limit (USD)").fill("5")
    page.get_by_role("dialog").get_by_label("Reset").select_option("daily")
    page.get_by_role("dialog").get_by_label("Cache replies").check()
    page.get_by_role("dialog").get_by_role("button", name="Save").click()
    expect(row).to_contain_text("/ $5.00")
    expect(row).to_contain_text("Daily")
    assert [k.record.response_cache for k in gw.services.keys.all() if k.record.name == "browser key"] == [True]
    page.get_by_role("button", name="Disable browser key").click()
    expect(row.locator(".badge")).to_have_text("disabled")
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=gw.url, api_key=secret, max_retries=0).chat.completions.create(
            model="openai/gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    page.get_by_role("button", name="Delete browser key").click()
    expect(row).to_have_count(0)

    # Models: search the catalog, open a model page with its endpoints' live health.
    page.get_by_role("link", name="Models", exact=True).click()
    page.get_by_label("Search models and providers").fill("gpt-4o-mini")
    page.get_by_role("link", name="OpenAI: GPT-4o-mini", exact=True).click()
    simulator = page.get_by_role("row").filter(has_text="Simulator")
    expect(simulator.locator(".badge")).to_have_text("live")
    expect(simulator).to_contain_text("100% / 100% / 100%")
    assert simulator.locator("svg.spark > *").count() >= 3
    shot(page, "model")

    # Generations: the list, then the failed-over generation's routing trace.
    page.get_by_role("link", name="Generations", exact=True).click()
    page.get_by_label("Model").fill("test/flaky")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("row")).to_have_count(2)
    shot(page, "generations")
    page.get_by_role("row").nth(1).get_by_role("link").click()
    expect(page.get_by_role("heading", name="Routing trace")).to_be_visible()
    trace = page.get_by_role("row")
    expect(trace.nth(1)).to_contain_text("Alpha")
    expect(trace.nth(1)).to_contain_text("503")
    expect(trace.nth(2)).to_contain_text("Beta")
    expect(trace.nth(2)).to_contain_text("served")
    assert flaky.id in page.url
    shot(page, "generation")

    # Playground: stream a reply and see its cost and provider.
    page.get_by_role("link", name="Playground").click()
    page.get_by_label("Model").select_option("openai/gpt-4o-mini")
    page.get_by_label("Message").fill("Tell me something")
    page.get_by_role("button", name="Send").click()
    facts = page.locator(".facts-line")
    expect(facts).to_contain_text("Simulator")
    expect(facts).to_contain_text("$")
    assert (page.locator(".reply").text_content() or "").strip()
    shot(page, "playground")
    facts.get_by_role("link", name="generation").click()
    expect(page.get_by_role("heading", name="Routing trace")).to_be_visible()

    # Keyboard: the skip link first, then the navigation, reached and followed with the keyboard.
    page.goto(f"{gw.root}/dashboard/activity")
    expect(page.locator(".uplot canvas")).to_be_visible()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    for _ in range(3):
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Keys"
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{gw.root}/dashboard/keys")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert console.errors == []
    context.close()


async def test_phone_width_dark_mode_and_an_api_key_session(traffic_gateway: Gateway) -> None:
    await in_browser(lambda browser: phone(traffic_gateway, browser))


def phone(gw: Gateway, browser: Browser) -> None:
    openai.OpenAI(base_url=gw.url, api_key=gw.key, max_retries=0).chat.completions.create(
        model="openai/gpt-4o", messages=[{"role": "user", "content": "hi"}])
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark",
                                        is_mobile=True, has_touch=True)
    page = context.new_page()
    console = Console(page)
    sign_in(page, gw.root, gw.key)
    expect(page.locator(".uplot canvas")).to_be_visible()
    assert chart_pixels(page) > 20
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(15, 17, 23)"  # the dark palette
    for path, ready in [("activity", ".uplot canvas"), ("keys", "dl.facts"), ("models", "table"),
                        ("models/openai/gpt-4o", "table"), ("generations", "table"), ("playground", "textarea")]:
        page.goto(f"{gw.root}/dashboard/{path}")
        expect(page.locator(ready).first).to_be_visible()
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (path, overflow)
        shot(page, f"phone-{path.replace('/', '-')}")
    # An API key's session: its own key, no key management.
    page.goto(f"{gw.root}/dashboard/keys")
    expect(page.get_by_role("heading", name="Your key")).to_be_visible()
    expect(page.get_by_role("button", name="Create key")).to_have_count(0)
    assert console.errors == []
    context.close()
