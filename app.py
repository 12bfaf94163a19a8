"""Afterburn dashboard entry point: navigation over ``pages/`` and the sidebar run picker.

Nothing else happens here: the pages render what ``afterburn_core`` stored,
and long work runs in worker processes (``afterburn_core.jobs``). Run with
``streamlit run app.py``.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from afterburn_core.errors import AfterburnError
from afterburn_core.jobs import reap_dead_workers
from afterburn_core.views.run import default_run
from pages.common import (
    NEW_RUN_PAGE,
    OVERVIEW_PAGE,
    RUN_QUERY_PARAM,
    escape_markdown,
    get_store,
    mark_app_frame,
    run_label,
    select_run,
    selected_run_id,
    short_id,
)

_HERE = Path(__file__).resolve().parent
#: The tab's icon, served by this server. Without one, Streamlit makes each page's ``:material/…:``
#: icon the favicon and fetches it as an SVG from fonts.gstatic.com: the dashboard must work offline.
FAVICON = _HERE / "assets" / "favicon.png"

st.set_page_config(page_title="Afterburn", page_icon=FAVICON, layout="wide")

#: The dashboard's views in menu order (file, title, icon). A view is listed once its file
#: exists, so a page under construction by someone else does not break the menu.
PAGES = (
    (NEW_RUN_PAGE, "New run", ":material/rocket_launch:"),
    (OVERVIEW_PAGE, "Checkpoints", ":material/inventory_2:"),
    ("pages/weights.py", "Weights", ":material/grid_on:"),
    ("pages/behaviour.py", "Behaviour", ":material/psychology:"),
    ("pages/prompts.py", "Prompts", ":material/chat:"),
    ("pages/internals.py", "Internals", ":material/layers:"),
    ("pages/reward_hacking.py", "Reward hacking", ":material/warning:"),
    ("pages/trajectory.py", "Trajectory", ":material/timeline:"),
    ("pages/reports.py", "Reports", ":material/download:"),
)
_PICKER_KEY = "_afterburn_run_picker"

mark_app_frame()
page = st.navigation(
    [st.Page(path, title=title, icon=icon) for path, title, icon in PAGES if (_HERE / path).is_file()]
)

try:
    store = get_store()
    reap_dead_workers(store)
    finished = [record for record in store.list_runs() if record.status == "done"]
except AfterburnError as error:  # an unreadable or locked store: say so, on every page
    st.error(escape_markdown(str(error)))
    st.stop()
labels = {record.run_id: run_label(record) for record in finished}

# Who picks the run, strongest first: this session's choice, a ?run= link, the newest complete run.
current = selected_run_id()
if current not in labels:
    linked = st.query_params.get(RUN_QUERY_PARAM)
    fallback = default_run(finished)
    current = linked if linked in labels else (fallback.run_id if fallback is not None else None)
    select_run(current)

with st.sidebar:
    if labels:
        if st.session_state.get(_PICKER_KEY) != current:
            st.session_state[_PICKER_KEY] = current
        st.selectbox(
            "Run",
            options=list(labels),
            format_func=labels.__getitem__,
            key=_PICKER_KEY,
            on_change=lambda: select_run(st.session_state[_PICKER_KEY]),
            help="Finished runs, newest first; the newest that ran every analysis is opened first. The page's "
                 "link (?run=…) opens the same run.",
        )
        # The picker holds what fits; the run id and the pair in full, below it.
        picked = next(record for record in finished if record.run_id == current)
        st.caption(f"{short_id(picked.run_id)} · {escape_markdown(picked.base_reference)} → "
                   f"{escape_markdown(picked.trained_reference)}")
    else:
        st.caption("No finished runs yet.")

if current is None:
    st.query_params.pop(RUN_QUERY_PARAM, None)
elif st.query_params.get(RUN_QUERY_PARAM) != current:
    st.query_params[RUN_QUERY_PARAM] = current

page.run()
