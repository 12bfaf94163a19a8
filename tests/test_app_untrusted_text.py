"""What a model, a suite file or a checkpoint wrote reaches the dashboard as text, never as Streamlit markdown.

Two halves. ``escape_markdown`` (the one door for untrusted strings into a
markdown element) is checked against what the frontend does with markdown:
CommonMark parses the escaped source (markdown-it-py, the same grammar as the
frontend's remark), then Streamlit 1.67's own rewrites of the parsed text run
(icons, emoji, its logo, arrows, GFM's bare links), ported below from its
frontend bundle. Then the pages: a finished demo run whose prompt, answers,
category, detector evidence and findings hold ``DIRECTIVES`` is opened on the
Prompts, Behaviour, Reward hacking and Weights pages, and no string the
frontend renders as markdown may hold a directive raw, while each is on screen
verbatim in a plain element or escaped.
"""

from __future__ import annotations

import functools
import re
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest
from ui_helpers import (
    DIRECTIVES,
    EDITED_PROJECTION,
    HOSTILE_CATEGORY,
    HOSTILE_PROMPT_LINK,
    hostile_generation_results,
    markdown_strings,
    open_app,
    store_generation_results,
    store_result,
    weight_diff_result,
)

from afterburn_core.reward_hack import detect_reward_hacking
from afterburn_core.reward_hack.types import CategoryEvidence, HackFinding
from afterburn_core.store import RunStore
from pages.common import escape_markdown

pytestmark = pytest.mark.usefixtures("navigation_as_on_a_server", "fresh_streamlit_caches")

WORD_JOINER = "\u2060"
#: The grammar the frontend parses with (react-markdown over remark: CommonMark plus GFM).
COMMONMARK = MarkdownIt("commonmark")
#: What Streamlit 1.67's frontend does to the parsed text, which no backslash escape reaches
#: (StreamlitMarkdown's text plugins, remark-emoji, remark-gfm's autolink literals).
REWRITTEN_AFTER_PARSING = {
    "material icon": re.compile(r":material_\w+:"),
    "Streamlit logo": re.compile(r":streamlit:"),
    "emoji shortcode": re.compile(r":\+1:|:-1:|:[\w-]+:"),
    "arrow or symbol": re.compile(r"(?:^|\s)(?:<->|->|<-|--|>=|<=|~=)(?:\s|$)"),
    "bare URL": re.compile(r"(?i)https?://|www\."),
    "bare e-mail address": re.compile(r"[\w.+-]@[\w-]"),
}
#: Syntax the frontend adds to CommonMark: ``:name[…]`` directives (colours, badges) and ``$…$`` LaTeX.
DIRECTIVE_OR_MATH = re.compile(r"[:$\[\]]")
#: Text a stranger could write: letters, digits, space, newline, all of ASCII's punctuation, a few others.
UNTRUSTED_TEXT = st.text(alphabet=st.sampled_from(
    list("abcxyzABC019 \n") + list("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~") + ["é", "→", "\u00a0"]), max_size=40)


def rendered(markdown: str) -> tuple[set[str], str]:
    """The token types and the text that CommonMark makes of ``markdown`` after the frontend's one
    source rewrite (``:material/`` becomes ``:material_``, so that the icon survives parsing)."""
    tokens = COMMONMARK.parse(markdown.replace(":material/", ":material_"))
    inline = [child for token in tokens if token.type == "inline" for child in token.children or ()]
    types = {token.type for token in tokens} | {child.type for child in inline}
    return types, "".join(child.content for child in inline if child.type == "text")


def assert_shown_literally(text: str) -> None:
    escaped = escape_markdown(text)
    types, shown = rendered(escaped.strip(" "))
    assert types <= {"paragraph_open", "inline", "text", "paragraph_close"}, (text, escaped, types)
    # Equal but for whitespace at the ends, which a paragraph drops.
    assert shown.replace(WORD_JOINER, "").strip() == text.replace("\n", " ").strip(), (text, escaped, shown)
    for name, pattern in REWRITTEN_AFTER_PARSING.items():
        assert not pattern.search(shown), (name, text, escaped)
    assert not DIRECTIVE_OR_MATH.search(re.sub(r"\\.", "", escaped)), (text, escaped)


@pytest.mark.parametrize("text", [*DIRECTIVES, ":streamlit:", ":+1: :-1:", "x <-> y <- z -- w >= 1 <= 2 ~= 3",
                                  "see https://example.com, www.example.com or me@example.com",
                                  ":red-background[~~x~~] :blue-badge[y] :small[z] :help[w]", "$$x^2$$ \\(x\\)",
                                  "[a](javascript:alert(1)) ![i](x) <b>b</b> &amp; `c` ~~d~~ | e |"])
def test_each_directive_is_literal_text(text):
    assert_shown_literally(text)


@settings(max_examples=300, deadline=None)
@given(UNTRUSTED_TEXT)
def test_escape_markdown_leaves_nothing_for_streamlit_to_rewrite(text):
    assert_shown_literally(text)


def test_the_frontend_would_rewrite_what_a_bare_backslash_escape_leaves():
    # The check above can fail: the escape this module had before turned ':material/warning:' into an icon.
    backslashed = re.sub(r"([:*_$\[\]<>\\-])", r"\\\1", ":material/warning: :smile: a -> b")
    _, shown = rendered(backslashed)
    assert [name for name, pattern in REWRITTEN_AFTER_PARSING.items() if pattern.search(shown)] == [
        "material icon", "emoji shortcode", "arrow or symbol"]


# --- the pages ----------------------------------------------------------------------------------------

#: A page's own icon opens some of its markdown lines (a reading, a band, a finding, a run's status).
OWN_ICON = re.compile(r"^(?::[a-z]+\[)?:material/[a-z_]+:\]? ")
DIRECTIVE_TEXT = " ".join(DIRECTIVES)
#: A detector example is a prompt link (suite/prompt id); this one is written by a suite's author.
HOSTILE_EXAMPLE = f"math/{DIRECTIVE_TEXT}"


@functools.lru_cache(maxsize=1)
def hostile_run_results():
    """The hostile copy of the demo run, and its reward-hack result with directives in all the detector quotes."""
    generations, token_kl, behaviour = hostile_generation_results()
    real = detect_reward_hacking(generations, behaviour, "sft")
    length = real.detectors["length_bias"]
    reward_hack = replace(
        real,
        method=f"sft {DIRECTIVE_TEXT}",
        detectors={**real.detectors, "length_bias": replace(
            length, summary=f"Summary {DIRECTIVE_TEXT}", examples=(HOSTILE_EXAMPLE,),
            categories=(CategoryEvidence(DIRECTIVE_TEXT, f"category {DIRECTIVE_TEXT}", 3, 80.0, {}),),
        )},
        findings=(HackFinding("length_bias", "warning", f"Title {DIRECTIVE_TEXT}", f"Detail {DIRECTIVE_TEXT}", 80.0,
                              f"Fix {DIRECTIVE_TEXT}"),),
    )
    return generations, token_kl, behaviour, reward_hack


def open_hostile(afterburn_home, page: str, **query: str) -> AppTest:
    with RunStore(afterburn_home) as store:
        run_id = store_generation_results(store, *hostile_run_results())
    return open_app(page, run=run_id, **query)


def assert_no_raw_directive(app: AppTest) -> list[str]:
    """No markdown string of the page holds a directive as written; the strings, for more checks."""
    assert not app.exception, [exception.value for exception in app.exception]
    strings = markdown_strings(app)
    for text in strings:
        body = OWN_ICON.sub("", text)
        for directive in DIRECTIVES:
            assert directive not in body, (directive, text)
    return strings


def test_prompts_page_shows_directives_in_answers_and_the_word_diff_as_text(afterburn_home):
    app = open_hostile(afterburn_home, "pages/prompts.py", prompt=HOSTILE_PROMPT_LINK)

    strings = assert_no_raw_directive(app)
    prompt, base_answer, trained_answer = (element.value for element in app.code)
    for directive in DIRECTIVES:
        assert directive in prompt and directive in trained_answer  # verbatim: st.code shows no markdown
        assert any(escape_markdown(directive) in text and ":green-background[" in text for text in strings), directive
    # The prompt's heading names its category, escaped.
    assert any(escape_markdown(f"category {HOSTILE_CATEGORY}") in text for text in strings)


def test_behaviour_page_shows_a_category_of_directives_as_text(afterburn_home):
    app = open_hostile(afterburn_home, "pages/behaviour.py")
    app.selectbox(key="behaviour_suite").select("math").run()
    picker = app.selectbox(key="behaviour_category_math")
    [option] = [option for option in picker.options if option.startswith(HOSTILE_CATEGORY)]  # options: plain text

    picker.select(HOSTILE_CATEGORY).run()

    assert_no_raw_directive(app)
    assert app.selectbox(key="behaviour_category_math").value == HOSTILE_CATEGORY


def test_reward_hacking_page_shows_directives_in_the_evidence_as_text(afterburn_home):
    app = open_hostile(afterburn_home, "pages/reward_hacking.py")

    strings = assert_no_raw_directive(app)
    for text in (f"Summary {DIRECTIVE_TEXT}", f"Title {DIRECTIVE_TEXT}", f"Detail {DIRECTIVE_TEXT}",
                 f"Fix {DIRECTIVE_TEXT}", f"Open {HOSTILE_EXAMPLE}", f"sft {DIRECTIVE_TEXT}"):
        assert any(escape_markdown(text) in shown for shown in strings), text
    categories = next(table.value for table in app.dataframe if "category" in table.value.columns)
    assert list(categories["category"]) == [f"category {DIRECTIVE_TEXT}"]  # a table cell: plain text


def test_weights_page_shows_directives_in_tensor_names_and_tokens_as_text(afterburn_home):
    result = weight_diff_result(token_strings=(*DIRECTIVES, "ok"))
    hostile_name = f"model.layers.1.{DIRECTIVE_TEXT}"
    result = replace(result, tensors=tuple(replace(tensor, name=hostile_name) if tensor.name == EDITED_PROJECTION
                                           else tensor for tensor in result.tensors))
    with RunStore(afterburn_home) as store:
        run_id = store_result(store, result)

    app = open_app("pages/weights.py", run=run_id)

    strings = assert_no_raw_directive(app)
    assert any(escape_markdown(hostile_name) in text for text in strings)  # the reading names the tensor
    assert app.selectbox(key="weights_spectrum_tensor").value == hostile_name
