"""What every page shares: the run store, the selected run, and text formatting.

The store is one ``RunStore`` per ``$AFTERBURN_HOME`` for the whole server
(``st.cache_resource``), keyed by its folder so a test that points the
variable elsewhere gets its own store. The selected run lives in
``st.session_state`` (the sidebar picker in ``app.py`` writes it) and is
mirrored in the ``?run=<id>`` query parameter so a link opens a run.

This module computes nothing: pages ask ``afterburn_core`` and format what it
returns. Every string a model, a checkpoint or a user wrote goes through
``escape_markdown`` before it reaches a markdown-rendering element.
"""

from __future__ import annotations

import re
import time
from datetime import datetime
from typing import Any

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from afterburn_core.store import RunStore, default_home
from afterburn_core.types import RunRecord
from afterburn_core.views.wording import duration

#: Page files, relative to app.py; ``st.switch_page`` / ``st.page_link`` take these.
NEW_RUN_PAGE = "pages/new_run.py"
OVERVIEW_PAGE = "pages/overview.py"
PROMPTS_PAGE = "pages/prompts.py"

#: Session-state key of the run the result pages show (a run id, or absent).
SELECTED_RUN_KEY = "afterburn_selected_run"
#: Query parameter that mirrors the selected run, so ``…/overview?run=<id>`` opens it.
RUN_QUERY_PARAM = "run"
#: Query parameter of the Prompts page: ``?prompt=<suite>/<prompt id>`` opens that prompt.
PROMPT_QUERY_PARAM = "prompt"

SHORT_ID_LENGTH = 8
#: Session key of the run the New run page's progress view follows, and its query parameter (a reload keeps
#: following it); here because other pages start runs and hand them to that view.
WATCH_KEY = "new_run_watched"
ACTIVE_QUERY_PARAM = "active"

#: Material icons ship with Streamlit's frontend, so they render where no emoji font is installed.
STATUS_ICONS = {
    "queued": ":gray[:material/schedule:]",
    "running": ":blue[:material/autorenew:]",
    "done": ":green[:material/check_circle:]",
    "failed": ":red[:material/error:]",
    "cancelled": ":orange[:material/cancel:]",
}


@st.cache_resource(show_spinner=False)
def _store_at(home: str) -> RunStore:
    return RunStore(home)


def get_store() -> RunStore:
    """The run store of ``$AFTERBURN_HOME`` (one connection per server, shared by sessions)."""
    return _store_at(str(default_home()))


_FRAME_KEY = "_afterburn_app_ran"
_FRAME_RETRY_KEY = "_afterburn_app_rerun_asked"


def mark_app_frame() -> None:
    """Called by app.py on every run: the sidebar and the selection exist for this session."""
    st.session_state[_FRAME_KEY] = True


def require_app_frame() -> None:
    """Make sure app.py ran before this page; rerun once through it if not.

    A fresh server runs its first script in Streamlit's legacy ``pages/``
    folder mode (it finds the design's ``pages/`` before any ``st.navigation``
    call), and stays in it until some session runs app.py: a link such as
    ``/overview?run=…`` then runs the page alone, with no sidebar and no
    selection. Turning the mode off is exactly what ``st.navigation`` itself
    does first; the rerun then goes through app.py. Remove if Streamlit stops
    guessing from the folder once an app calls ``st.navigation``.
    """
    if st.session_state.get(_FRAME_KEY):
        return
    if st.session_state.get(_FRAME_RETRY_KEY):
        st.error("Start the dashboard with `streamlit run app.py`, not a page file.")
        st.stop()
    st.session_state[_FRAME_RETRY_KEY] = True
    PagesManager.uses_pages_directory = False
    st.rerun()


def selected_run_id() -> str | None:
    """The run the result pages should show, or None when none is picked."""
    return st.session_state.get(SELECTED_RUN_KEY)


def select_run(run_id: str | None) -> None:
    """Make ``run_id`` the selected run (the sidebar picker follows on the next run)."""
    if run_id is None:
        st.session_state.pop(SELECTED_RUN_KEY, None)
    else:
        st.session_state[SELECTED_RUN_KEY] = run_id


# --- formatting ----------------------------------------------------------------------------------

# Everything CommonMark lets a backslash escape, plus ':' (Streamlit's emoji, icon and
# colour directives) and '$' (its LaTeX); '<' and '>' too, so nothing reads as a tag.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$:&])")


# Streamlit rewrites the text *after* the parser has resolved backslash escapes, so escaping
# cannot stop these; an invisible word joiner (U+2060) inside each pattern does, and the text
# looks the same. Patterns from Streamlit 1.67's frontend (StreamlitMarkdown, remark-emoji):
# ``:material/name:`` icons (the source's ``:material/`` becomes ``:material_`` first),
# ``:streamlit:`` its logo, ``:name:`` emoji shortcodes; ``->`` ``<-`` ``<->`` ``--`` ``>=``
# ``<=`` ``~=`` between spaces become arrows and symbols. GFM links bare URLs and e-mail
# addresses found in the rendered text, after escapes and character references are resolved.
_WORD_JOINER = "\u2060"
_REWRITTEN_AFTER_PARSING = (
    (re.compile(r":(?=[\w+/-]+:)"), lambda match: match.group() + _WORD_JOINER),
    (re.compile(r"(?<!\S)(?:<->|->|<-|--|>=|<=|~=)(?!\S)"), lambda match: _WORD_JOINER.join(match.group())),
)
_AUTOLINK_STARTS = (
    (re.compile(r"(?i)(https?|ftp)(?=\\://)"), rf"\1{_WORD_JOINER}"),
    (re.compile(r"(?i)(www)(?=\\\.)"), rf"\1{_WORD_JOINER}"),
    (re.compile(r"@"), f"{_WORD_JOINER}@"),
)


def escape_markdown(text: str) -> str:
    """``text`` so that a markdown element shows it literally: no links, emphasis, HTML, LaTeX,
    colour directives, icons, emoji or typographic rewrites.

    The one door for strings a model, a checkpoint, a suite file or a user wrote into
    ``st.markdown``, ``st.caption``, alerts, labels and tooltips (all of them render markdown).
    """
    for pattern, replacement in _REWRITTEN_AFTER_PARSING:
        text = pattern.sub(replacement, text)
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", text).replace("\n", " ")
    for pattern, replacement in _AUTOLINK_STARTS:
        escaped = pattern.sub(replacement, escaped)
    return escaped


def reading(text: str) -> None:
    """One line that says what a chart or a table shows, made of its numbers (plain text, escaped)."""
    st.markdown(f":material/insights: {escape_markdown(text)}")


def short_id(run_id: str) -> str:
    """The first characters of a run id: enough to tell runs apart in a list."""
    return run_id[:SHORT_ID_LENGTH]


def format_when(timestamp: float | None) -> str:
    """Local date and time to the minute, e.g. ``2025-11-23 14:05``."""
    if timestamp is None:
        return "—"
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def elapsed(record: RunRecord) -> str:
    """How long the run took, or has been going for while it is active."""
    if record.duration_s is not None:
        return duration(record.duration_s)
    if record.started_at is not None and record.is_active:
        return duration(time.time() - record.started_at)
    return "—"


def run_label(record: RunRecord) -> str:
    """``Nov 23 14:05 · demo:trained`` (plain text, for the sidebar picker): what tells runs apart, in what
    fits the sidebar's width — the picker shows the run id and the whole pair beneath it."""
    when = "—" if record.created_at is None else datetime.fromtimestamp(record.created_at).strftime("%b %-d %H:%M")
    return f"{when} · {record.trained_reference}"


def status_markdown(record: RunRecord) -> str:
    """The run's status with a coloured icon, as markdown (``st.markdown`` / ``st.caption``)."""
    return f"{STATUS_ICONS.get(record.status, '')} {escape_markdown(record.status)}".strip()


def _launch_analysis(record: RunRecord, kind: str) -> None:
    """Start a run of ``kind`` alone on ``record``'s pair and settings, and follow it on the New run page
    (what it needs that the store already holds is reused, as for any run)."""
    from afterburn_core.config import AnalysisConfig
    from afterburn_core.jobs import create_run, launch_worker

    store = get_store()
    run_id = create_run(store, record.base_reference, record.trained_reference,
                        AnalysisConfig.from_json(record.config_json), analyses=(kind,))
    launch_worker(store, run_id)
    st.session_state[WATCH_KEY] = run_id
    st.switch_page(NEW_RUN_PAGE, query_params={ACTIVE_QUERY_PARAM: run_id})


def selected_result(result_type: type) -> tuple[RunRecord, Any]:
    """The selected run and its stored result of ``result_type``, under the run's caption.

    Stops the page with a pointer to New run when no run is selected; when the run
    has no such result, with the run's own reason (``views.run.missing_line``) and a
    button that computes it for the same pair and settings; and with the one-line
    error when the store cannot be read: every result page opens the same way.
    """
    from afterburn_core.errors import AfterburnError
    from afterburn_core.store import load_result

    run_id = selected_run_id()
    if run_id is None:
        st.info("No run selected. Launch one on the New run page; finished runs appear in the sidebar.")
        st.page_link(NEW_RUN_PAGE, label="New run", icon=":material/rocket_launch:")
        st.stop()
    store = get_store()
    try:
        record = store.get_run(run_id)
        result = load_result(store, run_id, result_type)
    except AfterburnError as error:
        st.error(escape_markdown(str(error)))
        st.stop()
    st.caption(
        f"Run {escape_markdown(run_id)} · {escape_markdown(record.base_reference)} → "
        f"{escape_markdown(record.trained_reference)} · {format_when(record.created_at)}"
    )
    if result is None:
        from afterburn_core.views.run import ANALYSIS_NAMES, missing_line

        st.info(escape_markdown(missing_line(record, result_type.KIND)))
        name = ANALYSIS_NAMES.get(result_type.KIND, result_type.KIND)
        if st.button(f"Compute {name} for this pair", key=f"compute_{result_type.KIND}", icon=":material/play_arrow:"):
            _launch_analysis(record, result_type.KIND)
        st.stop()
    return record, result


def stored_result(run_id: str, result_type: type) -> Any:
    """Another stored result of the run a page already opened with ``selected_result``, or None.

    For a page's second source (the Prompts page's token KL, the Behaviour
    page's generations): a missing one is the page's to explain, an unreadable
    store stops the page with its one-line error.
    """
    from afterburn_core.errors import AfterburnError
    from afterburn_core.store import load_result

    try:
        return load_result(get_store(), run_id, result_type)
    except AfterburnError as error:
        st.error(escape_markdown(str(error)))
        st.stop()
