"""The whole path in a real browser: a real server, a real worker, the bundled demo pair.

Starts ``streamlit run app.py`` on a free port with its own ``$AFTERBURN_HOME``,
drives headless Chromium through playwright: open a ``?run=`` link as the
server's first page, launch the preselected demo pair, watch the progress view
reach done, reload, open the results (checkpoints, weights, behaviour,
prompts, reward hacking), then download all four reports from the Reports page. A hand-built weight diff with hostile model strings, and a copy of a
demo run whose answer is markup, check that nothing a checkpoint or a model
wrote becomes markup in the page.
No page may show Streamlit's exception box, and no page may load anything
from outside the local server (every test's browser refuses and lists such
requests; one test walks every page of a finished run for it). Screenshots
land in ``test-artifacts/`` for a person to look at.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from trajectory_factories import stored_trajectory
from waits import HANG_S
from ui_helpers import (
    DEMO_CONFIG,
    DIRECTIVES,
    HOSTILE_OUTPUT,
    HOSTILE_PROMPT_LINK,
    hostile_generation_results,
    store_generation_results,
    store_result,
    weight_diff_result,
)

from afterburn_core import api
from afterburn_core.config import AnalysisConfig
from afterburn_core.jobs import create_run
from afterburn_core.runner import execute_run
from afterburn_core.store import RunStore
from afterburn_core.views.trajectory import trajectory_view

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO_ROOT / "test-artifacts"
SERVER_START_TIMEOUT_S = 60
#: A default run of the demo pair launched from the page (every stage; steering and amplification switched
#: off on the page) takes about a minute on 2 idle cores; the bound stops a hung worker, not a busy machine.
RUN_TIMEOUT_MS = 600_000
EXCEPTION_BOX = '[data-testid="stException"]'
#: Tall enough that a screenshot holds the whole page (Streamlit scrolls inside its own container).
VIEWPORT = {"width": 1400, "height": 1500}
#: The Weights page is long: findings, two heatmaps, a table, a spectrum, norms and tokens.
WEIGHTS_VIEWPORT = {"width": 1400, "height": 4800}
#: Behaviour: the tests table and seven charts, one per measure family.
BEHAVIOUR_VIEWPORT = {"width": 1400, "height": 3700}
PROMPTS_VIEWPORT = {"width": 1400, "height": 2600}
REWARD_HACK_VIEWPORT = {"width": 1400, "height": 2000}
#: How each downloaded report starts.
REPORT_MAGIC = {"HTML": b"<!DOCTYPE html>", "JSON": b"{", "Markdown": b"# ", "PDF": b"%PDF-"}

try:
    from playwright.sync_api import Page, Route, expect, sync_playwright
except ImportError:  # pragma: no cover - depends on the machine
    sync_playwright = None

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason=f"no Chromium at {CHROMIUM}"),
    pytest.mark.skipif(sync_playwright is None, reason="playwright is not installed"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]


def _wait_until_serving(url: str, server: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with {server.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"streamlit did not serve within {SERVER_START_TIMEOUT_S} s:\n{log_path.read_text()}")


@pytest.fixture
def server_url(tmp_path: Path, afterburn_home: Path):
    """A dashboard server of this checkout, on a free port, with an empty run store."""
    port = _free_port()
    log_path = tmp_path / "streamlit.log"
    env = {**os.environ, "AFTERBURN_HOME": str(afterburn_home)}
    with open(log_path, "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py",
             "--server.port", str(port), "--server.headless", "true"],
            cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://localhost:{port}"
        _wait_until_serving(url, server, log_path)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture
def new_page(server_url: str):
    """``new_page(viewport)``: a fresh Chromium page that may reach the dashboard's server and nothing else.

    Every other request is refused and noted (the dashboard must work offline: no
    icon font, favicon, telemetry or script from elsewhere), and so is a web socket
    to anywhere else; the test fails listing them.
    """
    local = urlsplit(server_url).netloc
    outside: list[str] = []

    def only_local(route: Route) -> None:
        if urlsplit(route.request.url).netloc == local:
            route.continue_()
        else:
            outside.append(f"{route.request.resource_type} {route.request.url}")
            route.abort("blockedbyclient")

    def watch_sockets(page: Page) -> None:
        def on_socket(socket) -> None:
            if urlsplit(socket.url).netloc != local:
                outside.append(f"websocket {socket.url}")

        page.on("websocket", on_socket)

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)

        def open_page(viewport: dict[str, int]) -> Page:
            context = browser.new_context(viewport=viewport)
            context.route("**/*", only_local)
            context.on("page", watch_sockets)
            return context.new_page()

        try:
            yield open_page
        finally:
            browser.close()
    assert not outside, "requests that left the local server:\n" + "\n".join(outside)


def _settled(page: Page) -> None:
    """Wait until Streamlit has finished running the script for what is on screen.

    The app root carries the frontend's own script-run state, which turns to ``rerunRequested`` the moment a
    widget changes — before the status widget appears — so a click made right after another waits for its rerun.
    """
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=30_000)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " || !document.querySelector('[data-testid=\"stStatusWidget\"]').innerText.includes('Running')",
        timeout=30_000,
    )


def _charts_drawn(page: Page, count: int) -> None:
    """Wait until ``count`` Vega-Lite charts are drawn and no element is still a loading skeleton."""
    page.wait_for_function(
        f"() => document.querySelectorAll('.vega-embed canvas, .vega-embed svg.marks').length >= {count}"
        " && !document.querySelector('[data-testid=\"stSkeleton\"]')",
        timeout=30_000,
    )


def _gauges_drawn(page: Page, count: int) -> None:
    """Wait until ``count`` plotly figures are drawn."""
    page.wait_for_function(f"() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= {count}",
                           timeout=30_000)


def _no_exception(page: Page, where: str) -> None:
    assert page.locator(EXCEPTION_BOX).count() == 0, f"{where}: {page.locator(EXCEPTION_BOX).first.inner_text()}"


#: Text a reader must see whole: paragraphs, captions, link labels and the sidebar's run picker. Each is cut (an
#: ellipsis, or clipped by its box) exactly when its content is wider than its box.
CLIPPED_TEXT = """() => [...document.querySelectorAll(
    '[data-testid="stMarkdownContainer"] p, [data-testid="stCaptionContainer"], [data-testid="stPageLink"] p,'
    + ' [data-testid="stSidebar"] [role="combobox"]')]
  .filter((element) => element.offsetParent !== null && element.scrollWidth > element.clientWidth + 1)
  .map((element) => (element.value || element.innerText).slice(0, 80))"""


def _no_clipped_text(page: Page, where: str) -> None:
    clipped = page.evaluate(CLIPPED_TEXT)
    assert not clipped, f"{where}: text cut by its box: {clipped}"


#: WCAG 2.1 AA's contrast ratio for body text: every paragraph and caption is read, not guessed at.
MIN_CONTRAST = 4.5
#: WCAG 2.1 AA's ratio for large text and controls, asked of button and segment labels: Streamlit draws white
#: on the theme's primary colour and that colour itself on the dark background, and no colour gives both 4.5.
MIN_CONTROL_CONTRAST = 3.0
#: Each visible paragraph and caption with its contrast ratio against what is drawn behind it: the element's
#: colour and every translucent background from the page down to it, composited over white.
TEXT_CONTRAST = r"""() => {
  const rgba = (colour) => { const v = colour.match(/[\d.]+/g).map(Number); return [v[0], v[1], v[2], v[3] ?? 1]; };
  const over = (top, under) => top.slice(0, 3).map((v, i) => v * top[3] + under[i] * (1 - top[3]));
  const backdrop = (element) => {
    const layers = [];
    for (let node = element; node; node = node.parentElement) layers.unshift(rgba(getComputedStyle(node).backgroundColor));
    return layers.reduce((under, layer) => over(layer, under), [255, 255, 255]);
  };
  const luminance = (rgb) => rgb.map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  return [...document.querySelectorAll('[data-testid="stMarkdownContainer"] p, [data-testid="stCaptionContainer"]')]
    .filter((element) => element.offsetParent !== null && element.innerText.trim())
    .map((element) => {
      const back = backdrop(element);
      const [light, dark] = [luminance(over(rgba(getComputedStyle(element).color), back)), luminance(back)]
        .sort((a, b) => b - a);
      const control = element.closest('button, [data-testid="stButtonGroup"]') !== null;
      return [(light + 0.05) / (dark + 0.05), element.innerText.slice(0, 80), control];
    });
}"""


def _readable_text(page: Page, where: str) -> None:
    faint = [(round(ratio, 2), text) for ratio, text, control in page.evaluate(TEXT_CONTRAST)
             if ratio < (MIN_CONTROL_CONTRAST if control else MIN_CONTRAST)]
    assert not faint, f"{where}: text below {MIN_CONTRAST}:1 (controls {MIN_CONTROL_CONTRAST}:1) contrast: {faint}"


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True, animations="disabled")


def test_launch_the_demo_pair_and_open_its_checkpoints(server_url: str, afterburn_home: Path, new_page):
    with RunStore(afterburn_home) as store:
        # The linked page is the Checkpoints page: the inventory is all it reads.
        linked_run_id = create_run(store, "demo:base", "demo:control", AnalysisConfig(), analyses=("inventory",))
        assert execute_run(store, linked_run_id) == "done", store.get_run(linked_run_id).error

    # The server's very first page is a link to a finished run: it must open that run.
    page = new_page(VIEWPORT)
    page.goto(f"{server_url}/overview?run={linked_run_id}")
    expect(page.get_by_text("Shared tensors")).to_be_visible(timeout=30_000)
    expect(page.get_by_text(f"Run {linked_run_id}")).to_be_visible()
    expect(page.get_by_test_id("stSidebar").get_by_text("demo:base → demo:control")).to_be_visible()
    _settled(page)
    _no_exception(page, "checkpoints page opened from a link")
    _shot(page, "00-link-on-a-fresh-server")

    page.goto(server_url)
    expect(page.get_by_role("heading", name="New run")).to_be_visible(timeout=30_000)
    expect(page.get_by_role("textbox", name="Base model")).to_have_value("demo:base")
    expect(page.get_by_role("textbox", name="Post-trained model")).to_have_value("demo:trained")
    launch = page.get_by_role("button", name="Launch")
    expect(launch).to_be_enabled(timeout=30_000)
    _settled(page)
    _no_exception(page, "new run page")
    _shot(page, "01-new-run")

    # A reference that names nothing: one line in red, and no launching.
    trained_input = page.get_by_role("textbox", name="Post-trained model")
    trained_input.fill("/no/such/model")
    trained_input.press("Enter")
    expect(page.get_by_text("/no/such/model").last).to_be_visible(timeout=30_000)
    expect(launch).to_be_disabled()
    _settled(page)
    _no_exception(page, "invalid reference")
    _shot(page, "01b-invalid-reference")
    page.get_by_role("button", name="Demo: fine-tuned").click()
    expect(trained_input).to_have_value("demo:trained", timeout=30_000)
    expect(launch).to_be_enabled(timeout=30_000)

    # The settings a user trims before launching: the causal half's costliest parts off (each has its own test).
    page.get_by_text("Analysis settings").click()
    for part in ("Steering", "Amplification"):
        _settled(page)  # each toggle reruns the page; the next click waits for the last one's rerun
        toggle = page.get_by_role("switch", name=part)
        # The input hides behind its drawn switch, so the click goes to the label a user clicks, with Playwright's
        # checks (visible, stable, receiving events): a forced click on the input could land while the expander
        # was still opening, on nothing.
        page.locator("label").filter(has=toggle).click()
        expect(toggle).not_to_be_checked()
    _settled(page)
    for part in ("Steering", "Amplification"):
        expect(page.get_by_role("switch", name=part)).not_to_be_checked()  # still off once the reruns are done
    _shot(page, "01c-settings")
    launch.click()
    expect(page.get_by_text("Done.", exact=True)).to_be_visible(timeout=RUN_TIMEOUT_MS)
    _settled(page)
    _no_exception(page, "progress view")
    _shot(page, "02-run-done")
    run_id = page.url.split("active=")[1].split("&")[0]

    # A reload keeps following the run: it is read from the store, named in the URL.
    page.reload()
    expect(page.get_by_text("Done.", exact=True)).to_be_visible(timeout=30_000)
    _no_exception(page, "reloaded progress view")

    page.get_by_role("button", name="Open results").click()
    expect(page.get_by_role("heading", name="Checkpoints")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Shared tensors")).to_be_visible(timeout=30_000)
    _settled(page)
    _no_exception(page, "checkpoints page")
    assert f"run={run_id}" in page.url
    _shot(page, "03-checkpoints")

    page.set_viewport_size(WEIGHTS_VIEWPORT)
    page.get_by_role("link", name="Weights").click()
    expect(page.get_by_role("heading", name="Weights")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Layer × module")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Singular-value spectrum of ΔW")).to_be_visible()
    _settled(page)
    _charts_drawn(page, 5)
    _no_exception(page, "weights page")
    assert f"run={run_id}" in page.url
    _shot(page, "04-weights")

    page.set_viewport_size(BEHAVIOUR_VIEWPORT)
    page.get_by_role("link", name="Behaviour").click()
    expect(page.get_by_role("heading", name="Behaviour")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Shifts at a glance")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Post-trained answers are longer").first).to_be_visible()
    _settled(page)
    _charts_drawn(page, 6)
    _no_exception(page, "behaviour page")
    assert f"run={run_id}" in page.url
    _shot(page, "05-behaviour")

    # The evidence link opens the prompt whose length changed most.
    page.set_viewport_size(PROMPTS_VIEWPORT)
    page.get_by_role("link", name="the answer whose length changed most").click()
    expect(page.get_by_role("heading", name="Prompts")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Where the models disagree")).to_be_visible(timeout=30_000)
    _settled(page)
    _charts_drawn(page, 1)
    _no_exception(page, "prompts page")
    assert f"run={run_id}" in page.url and "prompt=" in page.url
    _shot(page, "06-prompts")

    page.set_viewport_size(REWARD_HACK_VIEWPORT)
    page.get_by_role("link", name="Reward hacking").click()
    expect(page.get_by_role("heading", name="Reward hacking")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Composite").first).to_be_visible(timeout=30_000)
    _settled(page)
    _gauges_drawn(page, 5)  # the composite and one per detector
    _no_exception(page, "reward hacking page")
    assert f"run={run_id}" in page.url
    _shot(page, "07-reward-hacking")

    page.set_viewport_size(VIEWPORT)
    page.get_by_role("link", name="Reports").click()
    expect(page.get_by_role("heading", name="Reports")).to_be_visible(timeout=30_000)
    _settled(page)
    _no_exception(page, "reports page")
    _shot(page, "08-reports")
    for label, magic in REPORT_MAGIC.items():
        with page.expect_download(timeout=120_000) as download_info:
            page.get_by_role("button", name=f"Download {label}").click()
        path = download_info.value.path()
        assert path is not None and Path(path).read_bytes().lstrip()[:len(magic)] == magic, label
        _no_exception(page, f"reports page after the {label} download")


#: Every view by its URL path, and a line it shows once the run's results are drawn.
EVERY_PAGE = {"": "Bundled demo pairs", "overview": "Shared tensors", "weights": "Layer × module",
              "behaviour": "Shifts at a glance", "prompts": "Where the models disagree",
              "reward_hacking": "Composite", "internals": "Activation-difference lens", "reports": "Download HTML"}
#: The menu, in order, as a user walks it without reloading.
MENU = ("Checkpoints", "Weights", "Behaviour", "Prompts", "Internals", "Reward hacking", "Reports", "New run")


def test_every_page_of_a_finished_run_loads_from_the_local_server_only(server_url: str, afterburn_home: Path,
                                                                       new_page):
    # The audit counted 35 requests to fonts.gstatic.com over 15 page views: each page's menu icon as favicon.
    with RunStore(afterburn_home) as store:
        # Every page needs its analysis; the causal half's costliest parts have their own test below.
        config = AnalysisConfig(**DEMO_CONFIG, steering=False, amplification=False)
        run_id = create_run(store, "demo:base", "demo:trained", config)
        assert execute_run(store, run_id) == "done", store.get_run(run_id).error

    page = new_page(VIEWPORT)
    for path, shown in EVERY_PAGE.items():
        page.goto(f"{server_url}/{path}?run={run_id}")
        expect(page.get_by_text(shown).first).to_be_visible(timeout=30_000)
        _settled(page)
        _no_exception(page, f"/{path}")
        _no_clipped_text(page, f"/{path}")
        _readable_text(page, f"/{path}")
    for title in MENU:
        page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
        expect(page.get_by_role("heading", name=title)).to_be_visible(timeout=30_000)
        _settled(page)
    page.wait_for_timeout(1000)  # a late favicon or font request would have been made by now
    _shot(page, "09-new-run-after-every-page")
    # The fixture fails the test, listing them, if any request went elsewhere.

def test_weights_page_shows_hostile_model_strings_as_text(server_url: str, afterburn_home: Path, new_page):
    hostile_tokens = ("<img src=x onerror=alert(1)>", "[link](javascript:alert(1))", "**bold**\nline", "\u202eevil",
                      ":red[x] $x$", "\x00", " lead", "ok")
    with RunStore(afterburn_home) as store:
        run_id = store_result(store, weight_diff_result(token_strings=hostile_tokens, unpaired=True))

    page = new_page(WEIGHTS_VIEWPORT)
    page.goto(f"{server_url}/weights?run={run_id}")
    expect(page.get_by_text("Not compared one to one")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("Norm shifts")).to_be_visible()
    # The reading names the most-moved token quoted, as text, not as an image tag.
    expect(page.get_by_text("<img src=x onerror=alert(1)>", exact=False).first).to_be_visible()
    _settled(page)
    _charts_drawn(page, 5)
    _no_exception(page, "weights page with hostile strings")
    assert page.locator('img[src="x"]').count() == 0
    assert page.locator('a[href^="javascript"]').count() == 0
    _shot(page, "04b-weights-hand-built")


def test_prompts_page_shows_a_hostile_answer_as_text(server_url: str, afterburn_home: Path, new_page):
    with RunStore(afterburn_home) as store:
        run_id = store_generation_results(store, *hostile_generation_results())

    page = new_page(PROMPTS_VIEWPORT)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{server_url}/prompts?run={run_id}&prompt={HOSTILE_PROMPT_LINK}")
    expect(page.get_by_text("Where the models disagree")).to_be_visible(timeout=30_000)
    _settled(page)
    _charts_drawn(page, 1)
    _no_exception(page, "prompts page with a hostile answer")
    # The answer is shown verbatim, as text: tags, links and directives included.
    expect(page.get_by_text("<script>alert(1)</script>", exact=False).first).to_be_visible()
    expect(page.get_by_text(HOSTILE_OUTPUT.split(" ")[3], exact=False).first).to_be_visible()
    main = page.get_by_test_id("stMain")
    assert main.locator('img[src="x"]').count() == 0
    assert main.locator('a[href^="javascript"]').count() == 0
    assert main.locator("script").count() == 0
    page.wait_for_timeout(500)  # an onerror handler would have fired by now
    assert dialogs == []
    # Streamlit's own directives in the answer stay text in the word diff: no icon, emoji or arrow.
    diff = next(text for text in main.locator('[data-testid="stMarkdownContainer"]').all_inner_texts()
                if "javascript:alert(1)" in text and "x^2" in text)
    for directive in DIRECTIVES:
        assert directive in diff.replace("\u2060", ""), directive
    assert "\U0001f604" not in diff and "→" not in diff  # :smile: and ->
    assert main.locator('[aria-label="warning icon"]').count() == 0
    _shot(page, "06b-prompts-hostile")

    page.set_viewport_size(BEHAVIOUR_VIEWPORT)
    page.goto(f"{server_url}/behaviour?run={run_id}")
    expect(page.get_by_text("Shifts at a glance")).to_be_visible(timeout=30_000)
    _settled(page)
    _no_exception(page, "behaviour page of the hostile copy")
    assert page.locator('img[src="x"]').count() == 0
    assert dialogs == []


INTERNALS_VIEWPORT = {"width": 1400, "height": 2800}
#: Where a person looks at the Internals page as it was drawn (besides test-artifacts/).
INTERNALS_SCREENSHOT = Path("/tmp/internals_page.png")


def test_internals_page_draws_the_curves_and_the_lens_heatmap_of_a_real_run(server_url: str, afterburn_home: Path,
                                                                          new_page):
    with RunStore(afterburn_home) as store:
        # The reading half is what this page test draws; the causal half has its own test below.
        reading_only = AnalysisConfig(**DEMO_CONFIG, steering=False, localization=False, amplification=False)
        run_id = create_run(store, "demo:base", "demo:trained", reading_only, analyses=("internals",))
        assert execute_run(store, run_id) == "done", store.get_run(run_id).error

    page = new_page(INTERNALS_VIEWPORT)
    page.goto(f"{server_url}/internals?run={run_id}")
    expect(page.get_by_role("heading", name="Lens by layer and position")).to_be_visible(timeout=30_000)
    expect(page.get_by_text("neutral passages the residual streams differ most", exact=False)).to_be_visible()
    _settled(page)
    _charts_drawn(page, 4)
    _gauges_drawn(page, 1)
    heatmap = page.locator(".js-plotly-plot .hm image")
    expect(heatmap).to_have_count(1)
    # Hovering a cell names both models' top tokens there.
    box = heatmap.bounding_box()
    assert box is not None and box["width"] > 100 and box["height"] > 40
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.locator(".js-plotly-plot .hoverlayer")).to_contain_text("post-trained top:", timeout=10_000)
    _no_exception(page, "internals page")
    page.screenshot(path=str(INTERNALS_SCREENSHOT), full_page=True, animations="disabled")
    _shot(page, "07b-internals")


#: Tall enough for the three causal sections (steering tables, localization bars, amplification curve and table).
CAUSAL_VIEWPORT = {"width": 1400, "height": 2100}
#: Where a person looks at the causal half of the Internals page as it was drawn (besides test-artifacts/).
CAUSAL_SCREENSHOT = Path("/tmp/internals_causal.png")


def test_internals_page_draws_the_causal_half_of_a_real_run(server_url: str, afterburn_home: Path, new_page):
    config = AnalysisConfig(suites=("math", "sycophancy"), max_new_tokens=48)
    with RunStore(afterburn_home) as store:
        run_id = create_run(store, "demo:base", "demo:trained", config, analyses=("internals",))
        assert execute_run(store, run_id) == "done", store.get_run(run_id).error

    page = new_page(CAUSAL_VIEWPORT)
    page.goto(f"{server_url}/internals?run={run_id}")
    expect(page.get_by_role("heading", name="Logit-difference amplification")).to_be_visible(timeout=30_000)
    _settled(page)
    _charts_drawn(page, 6)  # four layer curves, the localization bars, the amplification curve
    expect(page.get_by_text("of the KL gap", exact=False).first).to_be_visible()
    expect(page.get_by_text("the largest rise with α of any detector", exact=False)).to_be_visible()
    expect(page.get_by_text("Sycophancy: ", exact=False).first).to_be_visible()
    _no_exception(page, "internals page, causal half")
    page.get_by_role("heading", name="Steering with the difference", exact=True).evaluate("heading => heading.scrollIntoView()")
    page.screenshot(path=str(CAUSAL_SCREENSHOT), animations="disabled")
    _shot(page, "07c-internals-causal")


#: The Trajectory page: the risk charts with the trainer's log beside them, drift, six behaviour charts, tables.
TRAJECTORY_VIEWPORT = {"width": 1400, "height": 3700}


def test_trajectory_page_draws_a_stored_trajectory_and_opens_a_checkpoints_run(server_url: str, afterburn_home: Path,
                                                                               new_page, tmp_path: Path):
    _, result = stored_trajectory(tmp_path, afterburn_home)
    [stored] = api.trajectories(afterburn_home)
    view = trajectory_view(result)

    page = new_page(TRAJECTORY_VIEWPORT)
    page.goto(f"{server_url}/trajectory?trajectory={stored.key}")
    # The first page of a fresh server imports pandas and altair: on busy cores that passed 30 s once.
    expect(page.get_by_role("heading", name="Checkpoints and their runs")).to_be_visible(timeout=HANG_S * 1000)
    expect(page.get_by_text(view.recommendation)).to_be_visible()
    _settled(page)
    # Composite, detectors, each logged value, drift, modules, each behaviour metric.
    _charts_drawn(page, 4 + len(view.logged) + len(view.behaviour))
    _no_exception(page, "trajectory page")
    _shot(page, "08-trajectory")

    page.get_by_role("button", name="Open run").click()
    expect(page.get_by_role("heading", name="Checkpoints", exact=True)).to_be_visible(timeout=30_000)
    _settled(page)
    assert f"run={result.checkpoints[0].run_id}" in page.url
    _no_exception(page, "checkpoints page opened from the trajectory")
