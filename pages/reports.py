"""Reports: download the selected run as HTML, JSON, Markdown or PDF.

Each button renders its format only when clicked (deferred download data), so
opening the page costs nothing. It computes nothing: the writers are
``afterburn_core.reports``'s and read the run's stored results; the CLI
(``afterburn diagnose -o report.pdf``) and the Python API
(``DiagnosedRun.save``) write the very same files.
"""

from __future__ import annotations

import functools

import streamlit as st

from afterburn_core.errors import AfterburnError
from afterburn_core.reports import REPORT_FORMATS, load_report, render
from afterburn_core.store import RunStore
from pages.common import escape_markdown, get_store, require_app_frame, selected_run_id, short_id

#: What each format is for, shown beside its button.
FORMAT_NOTES = {
    "html": "One self-contained file that opens offline: summary, charts, example prompts, provenance.",
    "json": "Every result of the run, typed and versioned (docs/report-schema.md); loads back losslessly.",
    "md": "Summary, findings and top tables; renders on GitHub.",
    "pdf": "Title page with the summary, charts, findings and tables, for print.",
}
FORMAT_LABELS = {"html": "HTML", "json": "JSON", "md": "Markdown", "pdf": "PDF"}


def _render(store: RunStore, run_id: str, fmt: str) -> bytes:
    """The report of ``run_id`` in ``fmt``, read from ``store`` when the button is clicked.

    Streamlit calls it from a worker thread outside any script run, so it gets the store bound
    when the page ran instead of calling Streamlit's cache (``get_store``) from that thread.
    """
    return render(load_report(store, run_id), fmt)


require_app_frame()
st.title("Reports")
run_id = selected_run_id()
if run_id is None:
    st.info("No run selected. Launch one on the New run page; finished runs appear in the sidebar.")
    st.stop()
try:
    record = get_store().get_run(run_id)
except AfterburnError as error:
    st.error(escape_markdown(str(error)))
    st.stop()
st.caption(f"Run {escape_markdown(run_id)} · {escape_markdown(record.base_reference)} → "
           f"{escape_markdown(record.trained_reference)}")
kinds = sorted(get_store().run_result_keys(run_id))
st.markdown(escape_markdown(f"The reports hold what this run computed: {', '.join(kinds) or 'nothing yet'}."))

for fmt, (mime, extension) in REPORT_FORMATS.items():
    button, note = st.columns([1, 3], vertical_alignment="center")
    button.download_button(
        f"Download {FORMAT_LABELS[fmt]}", data=functools.partial(_render, get_store(), run_id, fmt),
        file_name=f"afterburn-{short_id(run_id)}{extension}", mime=mime, on_click="ignore",
        icon=":material/download:", key=f"download_{fmt}", width="stretch",
    )
    note.caption(FORMAT_NOTES[fmt])
