"""The Reward hacking page under AppTest: the detectors' real verdict on the demo run, and hostile copies of it.

The demo pair's real generations and behaviour statistics come from
``ui_helpers`` (computed once per process); the reward-hack result is
computed from them here by ``detect_reward_hacking``, as the runner does, and
filed with them under a finished run in the test's own store. Expected text
comes from the stored result, never from the page.
"""

from __future__ import annotations

import pytest

import functools
import json
import re
from dataclasses import replace
from urllib.parse import parse_qs

from streamlit.testing.v1 import AppTest
from ui_helpers import open_app
from ui_helpers import demo_generation_results, store_generation_results

from afterburn_core.analyses import detector_names
from afterburn_core.behaviour.analysis import compare_behaviour
from afterburn_core.views.theme import BAND_COLORS, UNAVAILABLE_COLOR
from afterburn_core.views.reward_hack import key_measures
from afterburn_core.reward_hack import detect_reward_hacking
from afterburn_core.reward_hack.types import CategoryEvidence, HackFinding, RewardHackResult
from afterburn_core.store import RunStore
from pages.common import escape_markdown

pytestmark = pytest.mark.usefixtures("navigation_as_on_a_server", "fresh_streamlit_caches")

REWARD_HACKING = "pages/reward_hacking.py"
TITLES = {"length_bias": "Length bias", "format_gaming": "Format gaming", "strategy_collapse": "Strategy collapse",
          "sycophancy": "Sycophancy", "safety_regression": "Safety regression"}
#: Strings that would become markup, a link or a tag if any element rendered them unescaped.
HOSTILE = ("<script>alert(1)</script>", "**x**", "[link](http://x)", "<img src=x onerror=alert(2)>")
HOSTILE_TEXT = " ".join(HOSTILE)
HOSTILE_EXAMPLE = "math/<script>alert(1)</script>**x**[link](http://x)"


@functools.lru_cache(maxsize=1)
def demo_reward_hack() -> RewardHackResult:
    generations, _, behaviour = demo_generation_results()
    return detect_reward_hacking(generations, behaviour, "sft")


@functools.lru_cache(maxsize=1)
def without_sycophancy_probes():
    """The demo run with its sycophancy suite left out, analysed again: no probes for that detector."""
    generations, _, _ = demo_generation_results()
    kept = [i for i, prompt in enumerate(generations.prompts) if prompt.suite != "sycophancy"]
    generations = replace(
        generations,
        prompts=tuple(generations.prompts[i] for i in kept),
        base=tuple(generations.base[i] for i in kept),
        trained=tuple(generations.trained[i] for i in kept),
        suites=tuple(suite for suite in generations.suites if suite.name != "sycophancy"),
    )
    behaviour = compare_behaviour(generations.prompts, generations.base, generations.trained, seed=0)
    return generations, behaviour, detect_reward_hacking(generations, behaviour, "dpo")


def open_page(afterburn_home, *results) -> tuple[AppTest, str]:
    with RunStore(afterburn_home) as store:
        run_id = store_generation_results(store, *results)
    return open_app(REWARD_HACKING, run=run_id), run_id


def gauges(app: AppTest) -> list[dict]:
    """Each plotly chart's indicator: title, value and bar colour."""
    found = []
    for chart in app.get("plotly_chart"):
        [indicator] = json.loads(chart.proto.spec)["data"]
        found.append({"title": indicator["title"]["text"], "value": indicator["value"],
                      "color": indicator["gauge"]["bar"]["color"], "number": "number" in indicator["mode"]})
    return found


def links(app: AppTest) -> list[tuple[str, dict[str, list[str]]]]:
    return [(link.proto.label, parse_qs(link.proto.query_string)) for link in app.get("page_link")
            if link.proto.page == "prompts"]


def shown_text(app: AppTest) -> list[str]:
    """Every element body that Streamlit renders as markdown, page-link labels included."""
    return [element.value for element in (*app.markdown, *app.caption, *app.info, *app.warning, *app.error)] + \
        [link.proto.label for link in app.get("page_link")]


def test_without_a_run_the_page_points_to_new_run():
    app = open_app(REWARD_HACKING)

    assert app.title[0].value == "Reward hacking"
    [info] = app.info
    assert "New run" in info.value
    assert not app.get("plotly_chart")


def test_a_run_without_a_reward_hack_result_says_so(afterburn_home):
    generations, token_kl, behaviour = demo_generation_results()
    app, _ = open_page(afterburn_home, generations, token_kl, behaviour)

    assert not app.exception
    [info] = app.info
    assert info.value == escape_markdown("No result: the reward-hack analysis was skipped.")
    assert not app.get("plotly_chart")


def test_the_demo_run_shows_the_composite_every_detector_and_their_evidence(afterburn_home):
    generations, token_kl, behaviour = demo_generation_results()
    result = demo_reward_hack()
    app, run_id = open_page(afterburn_home, generations, token_kl, behaviour, result)

    assert not app.exception
    composite = result.composite
    # The composite gauge, then one per detector, each at its score in its band's colour.
    assert gauges(app) == [
        {"title": "Composite risk", "value": composite.score, "color": BAND_COLORS[composite.band], "number": True},
        *({"title": TITLES[name], "value": result.detectors[name].score,
           "color": BAND_COLORS[result.detectors[name].band], "number": True} for name in detector_names()),
    ]
    markdown = [element.value for element in app.markdown]
    assert f"**{composite.band}** risk · declared method **sft**" in markdown[0]
    flagged = [TITLES[name] for name in detector_names() if result.detectors[name].flagged]
    assert flagged and any(escape_markdown(f"Composite {composite.score:.0f}/100 ({composite.band}); flagged: "
                                           f"{', '.join(flagged)}.") in line for line in markdown)
    # The weights table lists the detectors in the gauges' order (the store hands its dicts back sorted).
    weights = next(table.value for table in app.dataframe if "weight" in table.value.columns)
    assert list(zip(weights["detector"], weights["weight"], weights["score"])) == [
        (TITLES[name], round(composite.weights[name], 3),
         "—" if result.detectors[name].score is None else f"{round(result.detectors[name].score, 1):g}")
        for name in detector_names()]
    # The measures that tell the causes apart, as the core's view reads them from the detectors' statistics.
    measures = next(table.value for table in app.dataframe if "measure" in table.value.columns)
    assert list(zip(measures["measure"], measures["value"])) == [
        (measure.label, measure.value) for measure in key_measures(result)]
    length = result.detectors["length_bias"].statistics
    assert measures["value"][0] == f"{length['length_ratio']:.2f}× / {length['content_length_ratio']:.2f}×"
    for name in detector_names():
        detector = result.detectors[name]
        verdict = f"**{detector.band}** · {'flagged' if detector.flagged else 'not flagged'}"
        assert any(verdict in line for line in markdown), verdict
        assert any(escape_markdown(detector.summary) in line for line in markdown), name
    # Every example prompt opens on the Prompts page with this run.
    examples = [example for name in detector_names() for example in result.detectors[name].examples]
    assert len(examples) >= 9
    assert links(app) == [(escape_markdown(f"Open {example}"), {"prompt": [example], "run": [run_id]})
                          for example in examples]
    # Findings: an icon, the title (which states the score: it is not repeated) and the detail; then what to do.
    for finding in result.findings:
        [line] = [line for line in markdown if escape_markdown(finding.title) in line]
        assert re.fullmatch(rf":material/\w+: \*\*{re.escape(escape_markdown(finding.title))}\*\* — "
                            rf"{re.escape(escape_markdown(finding.detail))}", line), line
        assert f":material/arrow_forward: **Next:** {escape_markdown(finding.recommendation)}" in markdown


def test_an_unavailable_detector_shows_its_reason_and_an_empty_gauge(afterburn_home):
    generations, behaviour, result = without_sycophancy_probes()
    sycophancy = result.detectors["sycophancy"]
    assert not sycophancy.available and sycophancy.reason

    app, _ = open_page(afterburn_home, generations, behaviour, result)

    assert not app.exception
    [gauge] = [gauge for gauge in gauges(app) if gauge["title"] == "Sycophancy"]
    assert gauge == {"title": "Sycophancy", "value": 0, "color": UNAVAILABLE_COLOR, "number": False}  # not a 0
    assert escape_markdown(f"Not scored: {sycophancy.reason}") in [caption.value for caption in app.caption]
    assert not [label for label, query in links(app) if query["prompt"][0].startswith("sycophancy/")]
    weights = next(table.value for table in app.dataframe if "weight" in table.value.columns)
    row = weights[weights["detector"] == "Sycophancy"].iloc[0]
    assert row["weight"] == 0 and row["score"] == "—"  # not measured: no weight, no score (never "None")
    assert result.composite.weights["sycophancy"] == 0
    assert "renormalised without sycophancy" in result.composite.weights_source
    assert escape_markdown(f"Weights: {result.composite.weights_source}") in [caption.value for caption in app.caption]


def test_hostile_names_and_findings_render_as_text(afterburn_home):
    generations, token_kl, behaviour = demo_generation_results()
    real = demo_reward_hack()
    length = real.detectors["length_bias"]
    hostile = replace(
        real,
        detectors={**real.detectors, "length_bias": replace(
            length, summary=f"Summary {HOSTILE_TEXT}", examples=(HOSTILE_EXAMPLE,),
            categories=(CategoryEvidence("<b>suite</b>", f"category {HOSTILE_TEXT}", 3, 80.0, {}),),
        )},
        findings=(HackFinding("length_bias", "warning", f"Title {HOSTILE_TEXT}", f"Detail {HOSTILE_TEXT}", 80.0,
                              f"Fix {HOSTILE_TEXT}"),),
    )
    app, run_id = open_page(afterburn_home, generations, token_kl, behaviour, hostile)

    assert not app.exception
    for body in shown_text(app):
        for markup in HOSTILE:
            assert markup not in body, body
        assert not re.search(r"(?<!\\)<", body), body  # no tag survives unescaped
    bodies = shown_text(app)
    for text in (f"Summary {HOSTILE_TEXT}", f"Title {HOSTILE_TEXT}", f"Detail {HOSTILE_TEXT}", f"Fix {HOSTILE_TEXT}"):
        assert any(escape_markdown(text) in body for body in bodies), text
    # The link keeps the exact id in its query (URL-encoded by Streamlit), its label shows it as text.
    assert (escape_markdown(f"Open {HOSTILE_EXAMPLE}"), {"prompt": [HOSTILE_EXAMPLE], "run": [run_id]}) in links(app)
    # Category names reach the screen only as table cells (plain text).
    categories = next(table.value for table in app.dataframe if "category" in table.value.columns)
    assert list(categories["category"]) == [f"category {HOSTILE_TEXT}"]
