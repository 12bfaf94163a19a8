"""The Prompts page under AppTest: the real demo run's generations and token KL, and a hostile copy.

The demo pair's real analyses run once per process (``ui_helpers``); each
test files copies of their results under a finished run in its own store, so
the page reads them back through ``afterburn_core.store.load_result``.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df
from streamlit.testing.v1 import AppTest
from ui_helpers import (
    HOSTILE_BASE_OUTPUT,
    HOSTILE_OUTPUT,
    HOSTILE_PROMPT,
    HOSTILE_PROMPT_LINK,
    demo_generation_results,
    hostile_generation_results,
    markdown_strings,
    open_app,
    store_generation_results,
)

from afterburn_core.behaviour.answers import is_correct
from afterburn_core.behaviour.diffing import word_diff
from afterburn_core.config import AnalysisConfig
from afterburn_core.generation.types import Completion
from afterburn_core.internals.types import (
    AmplificationLevel,
    CorpusRef,
    InternalsCost,
    InternalsResult,
    ModelRef,
    SteeringResult,
    StrengthTrial,
)
from afterburn_core.jobs import create_run
from afterburn_core.store import RunStore
from afterburn_core.views.text import spell_invisible
from pages.common import escape_markdown

pytestmark = pytest.mark.usefixtures("navigation_as_on_a_server", "fresh_streamlit_caches")

PROMPTS = "pages/prompts.py"
SUITE_KEY = "prompts_suite"
SORT_KEY = "prompts_sort"
ALPHA_KEY = "prompts_alpha"
SKIP_REASON = "token-level KL needs one vocabulary; the base has 1024 tokens, the trained model 1032"


def prompt_key(suite: str) -> str:
    return f"prompts_prompt_{suite}"


def open_prompts(afterburn_home, results, skipped=None, **query) -> AppTest:
    with RunStore(afterburn_home) as store:
        run_id = store_generation_results(store, *results, skipped=skipped)
    return open_app(PROMPTS, run=run_id, **query)


def readings(app: AppTest) -> list[str]:
    return [element.value for element in app.markdown if element.value.startswith(":material/insights:")]


def answers(app: AppTest) -> list[str]:
    """The code blocks: the prompt, then the base and the post-trained answer (then any steered and amplified)."""
    return [element.value for element in app.code]


def kl_strip_data(app: AppTest):
    [chart] = app.get("vega_lite_chart")
    return convert_arrow_bytes_to_pandas_df(chart.proto.datasets[0].data.data)


def test_without_a_run_the_page_points_to_new_run():
    app = open_app(PROMPTS)

    assert app.title[0].value == "Prompts"
    [info] = app.info
    assert "New run" in info.value
    assert not app.code


def test_a_run_without_generations_says_so(afterburn_home):
    with RunStore(afterburn_home) as store:
        run_id = create_run(store, "demo:base", "demo:control", AnalysisConfig())
        store.finish_run(run_id, "done")

    app = open_app(PROMPTS, run=run_id)

    assert not app.exception
    [info] = app.info
    assert info.value == escape_markdown("No result: generation was skipped.")


def test_the_demo_run_shows_both_answers_a_diff_and_token_kl(afterburn_home):
    generations, token_kl, _ = demo_generation_results()
    app = open_prompts(afterburn_home, (generations, token_kl))

    assert not app.exception
    first = generations.prompts[0]
    assert app.selectbox(key=SUITE_KEY).value == first.suite
    assert app.selectbox(key=prompt_key(first.suite)).value == f"{first.suite}/{first.prompt_id}"
    assert answers(app) == [first.text, generations.base[0].text, generations.trained[0].text]
    # The first math prompt has an expected answer: each answer is marked as the behaviour analysis grades it.
    assert first.expected_answer is not None
    for completion in (generations.base[0], generations.trained[0]):
        grade = "correct" if is_correct(first, completion.text) else "incorrect"
        expected_caption = f"{completion.n_tokens} tokens · stopped by {completion.stop_reason} · {grade}"
        assert escape_markdown(expected_caption) in [element.value for element in app.caption]
    [diff] = [element.value for element in app.markdown if ":green-background[" in element.value]
    added = " ".join(run.text for run in word_diff(generations.base[0].text, generations.trained[0].text)
                     if run.op == "added")
    assert escape_markdown(added.split()[0]) in diff
    scored = next(prompt for prompt in token_kl.scores.prompts if prompt.prompt_id == f"{first.suite}/{first.prompt_id}")
    strip = kl_strip_data(app)
    assert list(strip["kl"]) == list(scored.kl_per_token)
    assert list(strip["position"]) == list(range(len(scored.tokens)))
    top = scored.top_tokens[0]
    expected = escape_markdown(f"largest at token {top.position} {top.token!r}: {top.kl:.3g} nats")
    assert any(expected in line for line in readings(app)), readings(app)
    top_table = next(element.value for element in app.dataframe if "KL (nats)" in element.value.columns)
    assert list(top_table["Position"]) == [token.position for token in scored.top_tokens]


def test_suite_and_prompt_pickers_switch_the_prompt(afterburn_home):
    generations, token_kl, _ = demo_generation_results()
    app = open_prompts(afterburn_home, (generations, token_kl))

    app.selectbox(key=SUITE_KEY).select("sycophancy").run()
    options = app.selectbox(key=prompt_key("sycophancy")).options
    assert len(options) == sum(prompt.suite == "sycophancy" for prompt in generations.prompts)
    index, prompt = next((i, p) for i, p in enumerate(generations.prompts) if p.variant == "wrong")
    app.selectbox(key=prompt_key("sycophancy")).select(f"sycophancy/{prompt.prompt_id}").run()

    assert not app.exception
    assert answers(app)[1:] == [generations.base[index].text, generations.trained[index].text]
    assert any("wrong variant" in element.value for element in app.markdown)
    assert app.query_params["prompt"] == f"sycophancy/{prompt.prompt_id}"  # a link to what is shown


def test_sorting_by_divergence_and_by_length_change(afterburn_home):
    generations, token_kl, _ = demo_generation_results()
    app = open_prompts(afterburn_home, (generations, token_kl))
    suite = app.selectbox(key=SUITE_KEY).value
    mean_kl = {prompt.prompt_id: prompt.mean_kl for prompt in token_kl.scores.prompts
               if prompt.prompt_id.startswith(f"{suite}/")}

    app.segmented_control(key=SORT_KEY).set_value("Divergence").run()

    assert not app.exception
    picker = app.selectbox(key=prompt_key(suite))
    ordered = [picker.options[i].split(" · ")[0] for i in range(len(picker.options))]
    assert [mean_kl[f"{suite}/{prompt_id}"] for prompt_id in ordered] == sorted(mean_kl.values(), reverse=True)
    most_divergent = max(mean_kl, key=mean_kl.get)
    assert picker.value == most_divergent  # a re-sort opens the first prompt of the new order
    assert f" · KL {mean_kl[most_divergent]:.2f} · " in picker.options[0]  # labelled in the new measure
    assert app.query_params["prompt"] == most_divergent
    table = next(element.value for element in app.dataframe if "Mean KL" in element.value.columns)
    assert table["Mean KL"].iloc[0] == max(mean_kl.values())

    app.segmented_control(key=SORT_KEY).set_value("Length change").run()

    changes = {f"{prompt.suite}/{prompt.prompt_id}": trained.n_tokens - base.n_tokens
               for prompt, base, trained in zip(generations.prompts, generations.base, generations.trained)
               if prompt.suite == suite}
    table = next(element.value for element in app.dataframe if "Change" in element.value.columns)
    assert list(table["Change"].abs()) == sorted((abs(change) for change in changes.values()), reverse=True)
    most_changed = max(changes, key=lambda link: abs(changes[link]))
    assert abs(changes[app.selectbox(key=prompt_key(suite)).value]) == abs(changes[most_changed])


def test_a_prompt_link_opens_that_prompt(afterburn_home):
    generations, token_kl, _ = demo_generation_results()
    index, prompt = next((i, p) for i, p in enumerate(generations.prompts) if p.suite == "safety")
    link = f"safety/{prompt.prompt_id}"

    app = open_prompts(afterburn_home, (generations, token_kl), prompt=link)

    assert not app.exception
    assert app.selectbox(key=SUITE_KEY).value == "safety"
    assert app.selectbox(key=prompt_key("safety")).value == link
    assert answers(app)[2] == generations.trained[index].text


def test_an_unknown_prompt_link_says_so(afterburn_home):
    app = open_prompts(afterburn_home, demo_generation_results()[:2], prompt="math/no-such-prompt")

    assert not app.exception
    [warning] = app.warning
    assert "No prompt math/no\\-such\\-prompt in this run" in warning.value


def test_a_skipped_token_kl_stage_still_shows_answers_and_diff(afterburn_home):
    generations, _, _ = demo_generation_results()
    app = open_prompts(afterburn_home, (generations,), skipped={"token_kl": SKIP_REASON})

    assert not app.exception
    assert len(answers(app)) == 3
    assert any(":green-background[" in element.value for element in app.markdown)
    [info] = app.info
    assert info.value.startswith("Token\\-level KL is not available for this run")
    assert escape_markdown(SKIP_REASON) in info.value
    assert not app.get("vega_lite_chart")


def test_hostile_answers_show_as_text(afterburn_home):
    app = open_prompts(afterburn_home, hostile_generation_results(), prompt=HOSTILE_PROMPT_LINK)

    assert not app.exception
    # Verbatim in code blocks, the direction override spelled out.
    assert answers(app) == [HOSTILE_PROMPT, HOSTILE_BASE_OUTPUT, spell_invisible(HOSTILE_OUTPUT)]
    assert "\\u202e" in answers(app)[2] and "\u202e" not in answers(app)[2]
    strip = kl_strip_data(app)
    assert "".join(strip["label"]).startswith("<script>alert(1)</script> <img src=x onerror=alert(1)>")
    assert "\u202e" not in "".join(strip["label"])
    top_table = next(element.value for element in app.dataframe if "KL (nats)" in element.value.columns)
    assert "'next '" in list(top_table["Token"])
    for element in (*app.markdown, *app.caption, *app.info, *app.warning):
        assert not re.search(r"(?<!\\)<", element.value), element.value  # no tag survives unescaped
        assert not re.search(r"(?<!\\)\]\(", element.value), element.value  # nor a link
        assert not re.search(r"(?<![\\\u2060]):red\[", element.value.replace(":red-background[", "")), element.value
        assert "https://" not in element.value and "http://" not in element.value
        assert "\u202e" not in element.value
    [diff] = [element.value for element in app.markdown if ":green-background[" in element.value]
    assert "\\<script\\>alert\\(1\\)\\</script\\>" in diff
    assert "\\[home\\]\\(http\u2060\\://example\\.com\\)" in diff  # no autolink either


# --- the internals result's steered and amplified answers ---------------------------------------------------

HOSTILE_STEERED = "<script>alert(4)</script> [x](javascript:alert(4)) :red[steered] **b** \u202eevil"
HOSTILE_AMPLIFIED = "<img src=x onerror=alert(5)> $x$ :material/warning: ~~amplified~~"


def causal_internals(generations, strength: float = 3.0, hostile_index: int | None = None) -> InternalsResult:
    """An internals result holding only a causal half: steered answers ``steered <i>`` (hostile at
    ``hostile_index``) and amplified ones ``α=<a> sample <s> prompt <i>`` for α 0, 1, 2 and two samples."""
    count = len(generations.prompts)

    def answer(i: int, text: str, hostile: str) -> Completion:
        return replace(generations.base[i], text=hostile if i == hostile_index else text)

    steering = SteeringResult(2, strength, 20.0, 40.0, (StrengthTrial(strength, 25.0, True),), {},
                              tuple(answer(i, f"steered {i}", HOSTILE_STEERED) for i in range(count)))
    levels = tuple(AmplificationLevel(alpha, {}, tuple(
        answer(i, f"α={alpha:g} sample {s + 1} prompt {i}", HOSTILE_AMPLIFIED) for s in range(2) for i in range(count)))
        for alpha in (0.0, 1.0, 2.0))
    return InternalsResult(
        base=ModelRef("demo:base", "b" * 16), trained=ModelRef("demo:trained", "t" * 16), method="two_pass",
        num_layers=4, layers=(), input_sets=(), adl=(), adl_layers=(), patchscope_prompt="", lens_prompts=(),
        corpus=CorpusRef("neutral", 1, "0" * 64, 0, 0), cost=InternalsCost(0, 0, 0, 0.0),
        steering=steering, amplification=levels)


def test_steered_and_amplified_answers_sit_beside_base_and_trained(afterburn_home):
    generations, token_kl, _ = demo_generation_results()
    app = open_prompts(afterburn_home, (generations, token_kl, causal_internals(generations)))

    assert not app.exception
    picker = app.selectbox(key=ALPHA_KEY)
    assert picker.options == ["0", "1", "2"] and picker.value == 2.0
    assert answers(app) == [generations.prompts[0].text, generations.base[0].text, generations.trained[0].text,
                            "steered 0", "α=2 sample 1 prompt 0"]
    titles = [element.value for element in app.markdown]
    start = titles.index("**Base**")
    assert titles[start:start + 4] == [
        "**Base**", "**Post-trained**", "**Steered base (layer 2, strength 3)**", "**Amplified, α = 2 (sample 1)**"]

    picker.set_value(1.0).run()
    index, prompt = next((i, p) for i, p in enumerate(generations.prompts) if p.suite == "sycophancy")
    app.selectbox(key=SUITE_KEY).select("sycophancy").run()
    app.selectbox(key=prompt_key("sycophancy")).select(f"sycophancy/{prompt.prompt_id}").run()

    assert answers(app)[3:] == [f"steered {index}", f"α=1 sample 1 prompt {index}"]


def test_a_steering_at_strength_zero_says_its_answers_are_the_bases(afterburn_home):
    generations, _, _ = demo_generation_results()
    internals = replace(causal_internals(generations, strength=0.0), amplification=None)
    app = open_prompts(afterburn_home, (generations, internals))

    assert not app.exception
    assert ALPHA_KEY not in [box.key for box in app.selectbox]
    assert "**Steered base (strength 0: the base's own answer)**" in [element.value for element in app.markdown]
    assert len(answers(app)) == 4


def test_without_internals_only_base_and_trained_are_shown(afterburn_home):
    generations, token_kl, _ = demo_generation_results()
    app = open_prompts(afterburn_home, (generations, token_kl))

    assert ALPHA_KEY not in [box.key for box in app.selectbox]
    assert len(answers(app)) == 3


def test_hostile_steered_and_amplified_answers_show_as_text(afterburn_home):
    generations, token_kl, _ = demo_generation_results()
    app = open_prompts(afterburn_home, (generations, token_kl, causal_internals(generations, hostile_index=0)))

    assert not app.exception
    assert answers(app)[3:] == [spell_invisible(HOSTILE_STEERED), HOSTILE_AMPLIFIED]
    assert "\u202e" not in answers(app)[3]
    for text in markdown_strings(app):
        assert "alert(4)" not in text and "alert(5)" not in text, text
