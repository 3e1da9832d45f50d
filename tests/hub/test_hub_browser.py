"""The build page behind a real JupyterHub, in Debian's Chromium: a user logs in with the Hub
(its login form, then its OAuth flow back to the service) and watches her build's log live;
a browser without a Hub login is sent to the Hub's login page; another user's page is 404."""

from __future__ import annotations

import re
import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.hub.conftest import BuildService, gated_request, submit, wait_ended
from tests.support.http_gate import Gate
from tests.support.jupyterhub import PASSWORD, Hub

pytestmark = [pytest.mark.browser, pytest.mark.engine, pytest.mark.registry, pytest.mark.slow]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    # Module scope: while Playwright's sync API is open its loop runs on this thread, and the
    # kernel helper's asyncio.run() (other modules) would fail.
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"{CHROMIUM} is missing; apt-get install -y --no-install-recommends chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """Open pages, each in a browser context of its own (its own cookies: its own user)."""
    contexts: list[Any] = []

    def open_page() -> Any:
        contexts.append(browser.new_context())
        page = contexts[-1].new_page()
        page.set_default_timeout(60_000)
        return page

    yield open_page
    for context in contexts:
        context.close()


def log_in_through_the_hub(page: Any, hub: Hub, user: str, url: str) -> None:
    """Open ``url``; the Hub asks who this is; after its login the OAuth flow comes back."""
    page.goto(url)
    page.wait_for_url(re.compile(re.escape(f"{hub.url}/hub/login")))
    page.fill("#username_input", user)
    page.fill("#password_input", PASSWORD)
    page.click("#login_submit")
    page.wait_for_url(url)


def test_alice_watches_her_build_live_after_the_hubs_login(
    hub: Hub, build_service: BuildService, gate: Gate, new_page: Any
) -> None:
    from playwright.sync_api import expect

    key = f"page-{uuid.uuid4().hex[:8]}"
    build_id = submit(build_service, hub.token("alice"),
                      gated_request(gate, key, first=f"before-{key}"))
    gate.wait_arrived(key)
    url = f"{build_service.public_base}/imagebuild/builds/{build_id}"

    anonymous = new_page()
    anonymous.goto(url)
    assert anonymous.url.startswith(f"{hub.url}/hub/login")
    expect(anonymous.locator("#login_submit")).to_be_visible()
    assert f"before-{key}" not in anonymous.content()

    bobs = new_page()
    log_in_through_the_hub(bobs, hub, "bob", url)
    assert bobs.goto(url).status == 404
    assert f"before-{key}" not in bobs.content()

    alices = new_page()
    log_in_through_the_hub(alices, hub, "alice", url)
    navigations: list[str] = []
    alices.on("framenavigated", lambda frame: navigations.append(frame.url))
    view = alices.locator("#view")
    expect(view).to_contain_text(f"before-{key}")
    expect(view.locator("tr", has_text="Owner")).to_contain_text("alice")
    expect(alices.locator("#status")).to_have_attribute("data-status", "running")
    # Her login cookie alone does not make a cross-site POST: cancelling needs the XSRF token.
    api = f"{build_service.public_base}/imagebuild/api/builds/{build_id}"
    assert alices.request.post(f"{api}/cancel").status == 403

    gate.open(key)  # the rest of the log arrives on the open page, with no reload
    expect(view).to_contain_text(f"gate {key} passed", timeout=120_000)
    expect(alices.locator("#status")).to_have_attribute("data-status", "succeeded",
                                                        timeout=120_000)
    assert navigations == []
    assert wait_ended(build_service, hub.token("alice"), build_id) == "succeeded"
