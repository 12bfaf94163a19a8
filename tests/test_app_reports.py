"""The Reports page under AppTest: four downloads of a real finished run, each rendered only when asked for.

The run's results are the real demo run of ``report_helpers`` (math suite,
16 new tokens, every analysis but reward hacking), plus its reward-hack
result computed here from its generations and behaviour, filed under a
finished run in the test's own store. AppTest has no server to click a
download against, so the tests catch the callables the page hands to
``st.download_button`` and call them, as Streamlit does on a click.
"""

from __future__ import annotations

import functools
import io
import json
from concurrent.futures import ThreadPoolExecutor

import pypdf
import pytest
import streamlit.elements.widgets.button as button_module
from report_helpers import DEMO_CONFIG, demo_report
from streamlit.testing.v1 import AppTest
from ui_helpers import open_app

from afterburn_core.errors import RunNotFound
from afterburn_core.jobs import create_run
from afterburn_core.reports import REPORT_FORMATS, RunReport, from_json
from afterburn_core.reward_hack import detect_reward_hacking
from afterburn_core.serde import to_jsonable
from afterburn_core.store import RunStore
from pages.common import escape_markdown

pytestmark = pytest.mark.usefixtures("navigation_as_on_a_server", "fresh_streamlit_caches")

REPORTS = "pages/reports.py"
LABELS = ["Download HTML", "Download JSON", "Download Markdown", "Download PDF"]


@functools.lru_cache(maxsize=1)
def finished_report() -> RunReport:
    """``demo_report`` with the reward-hack result its generations and behaviour give."""

    report = demo_report()
    return report.replace(reward_hack=detect_reward_hacking(report.generations, report.behaviour, "sft"))


def store_report(store: RunStore, report: RunReport, base: str = "demo:base", trained: str = "demo:trained") -> str:
    """A finished run of ``base`` / ``trained`` holding every result of ``report``; its run id."""
    run_id = create_run(store, base, trained, DEMO_CONFIG)
    for kind in ("inventory", "weights", "generations", "token_kl", "behaviour", "reward_hack"):
        result = getattr(report, kind)
        store.put_result(run_id, f"test-{kind}-{run_id}", result.KIND, result.SCHEMA_VERSION, to_jsonable(result))
    store.finish_run(run_id, "done")
    return run_id


@pytest.fixture
def deferred_downloads(monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """File name → the data callable each download button was given (AppTest has no media server)."""
    caught: dict[str, object] = {}
    original = button_module.marshall_file

    def catch(coordinates, data, proto, mimetype, file_name=None, **kwargs):
        if callable(data):
            caught[file_name] = (data, mimetype)
        return original(coordinates, data, proto, mimetype, file_name, **kwargs)

    monkeypatch.setattr(button_module, "marshall_file", catch)
    return caught


def open_reports(afterburn_home) -> tuple[AppTest, str]:
    with RunStore(afterburn_home) as store:
        run_id = store_report(store, finished_report())
    return open_app(REPORTS, run=run_id), run_id


def test_without_a_run_the_page_says_so():
    app = open_app(REPORTS)

    assert app.title[0].value == "Reports"
    [info] = app.info
    assert info.value.startswith("No run selected") and "New run" in info.value
    assert not app.get("download_button")


def test_a_finished_run_offers_the_four_formats(afterburn_home, deferred_downloads):
    app, run_id = open_reports(afterburn_home)

    assert not app.exception
    buttons = app.get("download_button")
    assert [button.proto.label for button in buttons] == LABELS
    short = run_id[:8]
    assert sorted(deferred_downloads) == sorted(f"afterburn-{short}{extension}" for _, extension in
                                                REPORT_FORMATS.values())
    assert {name: mime for name, (_, mime) in deferred_downloads.items()} == {
        f"afterburn-{short}{extension}": mime for mime, extension in REPORT_FORMATS.values()}
    # Opening the page renders nothing: every button holds a callable, not bytes.
    assert all(not button.proto.url for button in buttons)
    computed = escape_markdown("The reports hold what this run computed: behaviour, generations, inventory, "
                               "reward_hack, token_kl, weights.")
    assert computed in [element.value for element in app.markdown]


def test_each_download_renders_the_selected_run(afterburn_home, deferred_downloads):
    app, run_id = open_reports(afterburn_home)
    assert not app.exception
    # Streamlit calls a deferred download from a worker thread, outside any script run: so do we.
    with ThreadPoolExecutor(max_workers=1) as worker:
        rendered = {name.rsplit(".", 1)[1]: worker.submit(render).result()
                    for name, (render, _) in deferred_downloads.items()}

    html = rendered["html"].decode("utf-8")
    assert html.startswith("<!DOCTYPE html>") and html.rstrip().endswith("</html>") and run_id in html
    report = from_json(rendered["json"].decode("utf-8"))
    assert report.run.run_id == run_id and report.reward_hack == finished_report().reward_hack
    assert report.weights == finished_report().weights
    assert json.loads(rendered["json"])["schema_version"] == 1
    markdown = rendered["md"].decode("utf-8")
    assert markdown.startswith("# Afterburn report: demo:base → demo:trained") and run_id in markdown
    assert rendered["pdf"].startswith(b"%PDF-")
    pdf = pypdf.PdfReader(io.BytesIO(rendered["pdf"]))
    assert len(pdf.pages) >= 2 and run_id in "".join(page.extract_text() for page in pdf.pages)


def test_a_download_after_the_run_is_deleted_fails_with_its_reason(afterburn_home, deferred_downloads):
    app, run_id = open_reports(afterburn_home)
    with RunStore(afterburn_home) as store:
        store.delete_run(run_id)

    render, _ = deferred_downloads[f"afterburn-{run_id[:8]}.json"]
    with pytest.raises(RunNotFound, match=run_id):  # read at click time, not when the page opened
        render()


def test_hostile_model_references_show_as_text(afterburn_home):
    hostile = "<script>alert(1)</script> **x** [link](http://x)"
    with RunStore(afterburn_home) as store:
        run_id = store_report(store, finished_report(), base=f"base {hostile}", trained=f"trained {hostile}")

    app = open_app(REPORTS, run=run_id)

    assert not app.exception
    [caption] = [caption.value for caption in app.caption if caption.value.startswith("Run ")]
    assert escape_markdown(f"base {hostile}") in caption and escape_markdown(f"trained {hostile}") in caption
    for body in (element.value for element in (*app.markdown, *app.caption)):
        assert "<script>" not in body and "**x**" not in body and "[link](http://x)" not in body
