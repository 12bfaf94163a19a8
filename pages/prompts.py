"""Prompts: one prompt at a time, base and post-trained answers side by side.

Pick a suite and a prompt (the picker filters as you type; order it by the
suite's own order, by divergence or by length change); the page shows the
prompt, both answers (and, when the run's internals analysis stored them, the
steered base's answer and the answer amplified at the α picked), a word-level
diff, the post-trained answer with each token shaded by KL(trained ‖ base) and its value on hover, and the tokens
where the two models disagree most (this prompt's, then the suite's).
``?prompt=<suite>/<prompt id>`` opens a prompt, so other pages can link here.

It computes nothing: it reads the run's stored ``GenerationsResult`` and
``TokenKLResult`` and ``InternalsResult`` (the latter two may be missing: a
skipped ``token_kl`` stage, a run without internals),
takes their order, labels and readings from ``afterburn_core.views.prompts``,
lays tokens out in lines, and asks ``afterburn_core.behaviour.diffing`` for
the diff. Every string a model or a suite file wrote is shown as text:
answers through ``st.code`` (no markdown, no HTML), the diff through
``escape_markdown`` inside Streamlit's colour directives, tokens as chart text
marks and table cells, with invisible characters spelled out.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from afterburn_core.behaviour.diffing import word_diff
from afterburn_core.generation.results import GenerationsResult, TokenKLResult
from afterburn_core.generation.results import PromptDivergence
from afterburn_core.views.text import spell_invisible
from afterburn_core.internals.types import InternalsResult
from afterburn_core.views.prompts import (
    SORT_ORDERS,
    amplification_alphas,
    answer_caption,
    causal_answers,
    diff_reading,
    divergence_reading,
    generations_view,
    prompt_details,
    prompt_rows,
    token_kl_view,
    token_label,
)
from afterburn_core.views.wording import visible
from afterburn_core.generation.types import Completion, Prompt
from afterburn_core.types import RunRecord
from pages.common import (
    PROMPT_QUERY_PARAM,
    escape_markdown,
    reading,
    require_app_frame,
    selected_result,
    stored_result,
)

SUITE_KEY = "prompts_suite"
SORT_KEY = "prompts_sort"
ALPHA_KEY = "prompts_alpha"
#: Session key of the last ``?prompt=`` value this page wrote: a different one in the URL is a new link.
_SYNCED_KEY = "_prompts_synced_link"
# The KL strip: tokens laid out in lines of monospace text, one pixel grid (Vega's scale=None).
LINE_CHARS = 100
CHAR_PX = 8  # a 13 px monospace glyph is ~7.8 px wide
LINE_PX = 24
FONT_PX = 13
#: Tokens drawn on cells darker than this share of the scale get white text.
DARK_CELL_SHARE = 0.55


def prompt_key(suite: str) -> str:
    """Session key of the prompt picker of ``suite`` (one per suite: each has its own options)."""
    return f"prompts_prompt_{suite}"


def _open_first_of_new_order() -> None:
    """A re-sort opens the first prompt of the new order (the most divergent, the most changed) with its new
    label: keeping the prompt picked before would hide what the user sorted for."""
    st.session_state.pop(prompt_key(st.session_state[SUITE_KEY]), None)


def follow_link(suites: list[str], links: set[str]) -> None:
    """Point the pickers at ``?prompt=`` when it is a new link (not the value this page last wrote)."""
    linked = st.query_params.get(PROMPT_QUERY_PARAM)
    if linked is None or linked == st.session_state.get(_SYNCED_KEY):
        return
    st.session_state[_SYNCED_KEY] = linked
    if linked not in links:
        st.warning(f"No prompt {escape_markdown(linked)} in this run; pick one below.")
        return
    suite = linked.split("/", 1)[0]
    if suite in suites:
        st.session_state[SUITE_KEY] = suite
        st.session_state[prompt_key(suite)] = linked


def show_answer(column, title: str, prompt: Prompt, completion: Completion) -> None:
    with column:
        st.markdown(f"**{title}**")
        st.caption(escape_markdown(answer_caption(prompt, completion)))
        # st.code shows the text verbatim: no markdown, no HTML, newlines kept; invisible
        # characters (a direction override would reorder the rest of the line) are spelled out.
        st.code(spell_invisible(completion.text), language=None, wrap_lines=True)


def show_diff(base: str, trained: str) -> None:
    st.subheader("Word diff")
    runs = word_diff(base, trained)
    reading(diff_reading(runs))
    if all(run.op == "equal" for run in runs):
        return
    pieces = []
    for run in runs:
        text = escape_markdown(spell_invisible(run.text))
        if run.op == "removed":
            pieces.append(f":red-background[~~{text}~~]")
        elif run.op == "added":
            pieces.append(f":green-background[{text}]")
        else:
            pieces.append(text)
    with st.container(border=True):
        st.markdown(" ".join(pieces))
    st.caption("Words of the base answer in red, struck out; words of the post-trained answer in green. "
               "Whitespace and line breaks are not compared.")


def token_layout(scored: PromptDivergence) -> pd.DataFrame:
    """One row per token: its cell in a monospace grid of ``LINE_CHARS`` columns, and its numbers."""
    rows, line, column = [], 0, 0
    for position, (token, kl, shift) in enumerate(zip(scored.tokens, scored.kl_per_token, scored.logprob_shift)):
        label = token_label(token)[:LINE_CHARS]
        if column + len(label) > LINE_CHARS and column > 0:
            line, column = line + 1, 0
        rows.append({"x": column * CHAR_PX, "x2": (column + len(label)) * CHAR_PX - 1, "y": line * LINE_PX,
                     "y2": (line + 1) * LINE_PX - 2, "middle": line * LINE_PX + LINE_PX / 2 - 1,
                     "label": label, "token": visible(token), "position": position, "kl": kl,
                     "shift": shift})
        column += len(label)
        if "\n" in token:
            line, column = line + 1, 0
    return pd.DataFrame(rows)


def kl_strip(layout: pd.DataFrame, top_kl: float) -> alt.Chart:
    tooltip = [alt.Tooltip("token:N", title="token"), alt.Tooltip("position:Q", title="position"),
               alt.Tooltip("kl:Q", title="KL (nats)", format=".3f"),
               alt.Tooltip("shift:Q", title="log-prob shift", format="+.3f")]
    scale = alt.Scale(scheme="reds", domain=[0, max(top_kl, 1e-9)])
    cells = alt.Chart(layout).mark_rect(cornerRadius=2).encode(
        x=alt.X("x:Q", scale=None, axis=None), x2="x2:Q",
        y=alt.Y("y:Q", scale=None, axis=None), y2="y2:Q",
        color=alt.Color("kl:Q", scale=scale, title="KL (nats)", legend=alt.Legend(orient="top")),
        tooltip=tooltip,
    )
    text = alt.Chart(layout).mark_text(align="left", baseline="middle", font="monospace", fontSize=FONT_PX).encode(
        x=alt.X("x:Q", scale=None, axis=None), y=alt.Y("middle:Q", scale=None, axis=None), text="label:N",
        color=alt.condition(alt.datum.kl > DARK_CELL_SHARE * top_kl, alt.value("white"), alt.value("black")),
        tooltip=tooltip,
    )
    lines = int(layout["y"].max() // LINE_PX) + 1 if len(layout) else 1
    # "pad" grows the view by the legend's height; Streamlit's default ("fit") would squeeze the
    # pixel-placed cells out of sight under a legend on top.
    return (cells + text).properties(width=LINE_CHARS * CHAR_PX, height=lines * LINE_PX,
                                     autosize=alt.AutoSizeParams(type="pad"))


def show_divergence(scored: PromptDivergence | None, token_kl: TokenKLResult | None, record: RunRecord) -> None:
    st.subheader("Where the models disagree")
    if token_kl is None:
        stage = next((stage for stage in record.stages if stage.stage == TokenKLResult.KIND), None)
        why = (f" (the token_kl stage was skipped: {stage.message})" if stage is not None and stage.message
               else " (the run did not score tokens)")
        st.info(escape_markdown(f"Token-level KL is not available for this run{why}. "
                                "The answers and the diff above are complete."))
        return
    if scored is None or not scored.tokens:
        st.caption("No token-level KL for this prompt: the post-trained answer is empty.")
        return
    line = divergence_reading(scored)
    reading(line)
    layout = token_layout(scored)
    st.altair_chart(kl_strip(layout, max(scored.kl_per_token)), width="content", alt=line)
    bound = f" Stored-method error bound ≤ {scored.kl_error_bound:.2g} nats." if scored.kl_error_bound else ""
    st.caption(escape_markdown(
        f"The post-trained answer, token by token; the darker, the more the base model would have predicted "
        f"something else there. Hover a token for its KL and log-prob shift (method: {token_kl.scores.method})."
        f"{bound}"))
    left, right = st.columns(2, gap="large")
    with left:
        st.markdown("**This prompt's top tokens**")
        st.dataframe(
            {"Position": [token.position for token in scored.top_tokens],
             "Token": [visible(token.token) for token in scored.top_tokens],
             "KL (nats)": [token.kl for token in scored.top_tokens],
             "log p base": [token.logprob_base for token in scored.top_tokens],
             "log p post-trained": [token.logprob_trained for token in scored.top_tokens],
             "Shift": [token.logprob_shift for token in scored.top_tokens]},
            hide_index=True, width="stretch", height="content",
            column_config={name: st.column_config.NumberColumn(format="%.3f")
                           for name in ("KL (nats)", "log p base", "log p post-trained", "Shift")},
        )
    suite_tokens = token_kl.suites.get(scored.prompt_id.split("/", 1)[0], ())
    with right:
        st.markdown("**The suite's most divergent tokens**")
        if not suite_tokens:
            st.caption("None recorded for this suite.")
            return
        st.dataframe(
            {"Token": [visible(token.token) for token in suite_tokens],
             "Prompts with it on top": [token.n_prompts_in_top for token in suite_tokens],
             "Occurrences": [token.n_occurrences for token in suite_tokens],
             "Mean KL": [token.mean_kl for token in suite_tokens],
             "Max KL": [token.max_kl for token in suite_tokens]},
            hide_index=True, width="stretch", height="content",
            column_config={"Mean KL": st.column_config.NumberColumn(format="%.3f"),
                           "Max KL": st.column_config.NumberColumn(format="%.3f")},
        )


require_app_frame()
st.title("Prompts")

record, generations = selected_result(GenerationsResult)
token_kl: TokenKLResult | None = stored_result(record.run_id, TokenKLResult)
divergence = token_kl_view(token_kl) if token_kl else {}
view = generations_view(generations)
suites = list(view.suites)
if not suites:
    st.info("This run generated no answers: its suites had no prompts.")
    st.stop()

follow_link(suites, set(view.links))
suite_column, order_column = st.columns([1, 2])
suite = suite_column.selectbox("Suite", suites, key=SUITE_KEY)
order = order_column.segmented_control(
    "Order", list(SORT_ORDERS), default="Suite order", required=True, key=SORT_KEY,
    on_change=_open_first_of_new_order,
    help=" · ".join(f"{name}: {meaning}" for name, meaning in SORT_ORDERS.items()),
)
if order == "Divergence" and not divergence:
    st.caption("No token KL in this run: divergence order is the suite order.")
rows = {row.link: row for row in prompt_rows(generations, divergence, suite, order)}
link = st.selectbox(
    "Prompt", list(rows), key=prompt_key(suite), format_func=lambda value: rows[value].label,
    help="Type to search prompt ids and text.",
)
st.session_state[_SYNCED_KEY] = link
if st.query_params.get(PROMPT_QUERY_PARAM) != link:
    st.query_params[PROMPT_QUERY_PARAM] = link

with st.expander(escape_markdown(f"All {len(rows)} prompts of {suite}, in this order")):
    st.dataframe(pd.DataFrame([{"Prompt": row.prompt_id, "Category": row.category, "Mean KL": row.mean_kl,
                                "Base tokens": row.base_tokens, "Post-trained tokens": row.trained_tokens,
                                "Change": row.change, "Text": row.text} for row in rows.values()]),
                 hide_index=True, width="stretch",
                 column_config={"Mean KL": st.column_config.NumberColumn(format="%.3f"),
                                "Change": st.column_config.NumberColumn(format="%+d")})

index = rows[link].index
prompt = generations.prompts[index]
st.markdown(f"**{escape_markdown(link)}** · {escape_markdown(prompt_details(prompt))}")
st.code(spell_invisible(prompt.text), language=None, wrap_lines=True)

internals: InternalsResult | None = stored_result(record.run_id, InternalsResult)
alphas = amplification_alphas(internals)
alpha = (st.selectbox("Amplification α", alphas, index=len(alphas) - 1, key=ALPHA_KEY, format_func="{:g}".format,
                      help="The amplified answer is sampled from logits_t + α (logits_t − logits_b); sample 1.")
         if alphas else None)
answers = (("Base", generations.base[index]), ("Post-trained", generations.trained[index]),
           *((extra.title, extra.completion)
             for extra in causal_answers(internals, index, len(generations.prompts), alpha)))
for column, (title, completion) in zip(st.columns(len(answers), gap="large"), answers):
    show_answer(column, title, prompt, completion)
show_diff(generations.base[index].text, generations.trained[index].text)
show_divergence(divergence.get(link), token_kl, record)
