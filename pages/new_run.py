"""New run: pick a base and a post-trained checkpoint, launch, watch, and the runs so far.

The page computes nothing. ``check_reference`` validates each reference as it
is typed (cheap, never downloads); under the settings, the internals analysis's
cost for them (``internals.cost``, worded by ``views.internals`` and, one line per causal part,
``views.internals_cost``); Launch records the run
(``jobs.create_run``) and starts its worker process (``jobs.launch_worker``).
The progress view is a fragment that re-reads the store every second, so it
shows the same thing after a reload or from another tab: the watched run is
named in ``?active=<id>``, else it is the newest active run.
"""

from __future__ import annotations

import dataclasses

import streamlit as st

from afterburn_core.checkpoints.check import ReferenceCheck, check_reference
from afterburn_core.config import (
    BACKENDS,
    DEVICES,
    MAX_NEW_TOKENS_LIMIT,
    PARALLEL_SIZE_LIMIT,
    THREADS_LIMIT,
    TRAINING_METHODS,
    AnalysisConfig,
)
from afterburn_core.device import choose_device
from afterburn_core.errors import AfterburnError, RunNotFound
from afterburn_core.generation.backends import chosen_backend
from afterburn_core.generation.suites import BUILTIN_SUITES, DEFAULT_SUITES, load_suites
from afterburn_core.analyses import stage_title
from afterburn_core.jobs import cancel_run, create_run, launch_worker, reap_dead_workers
from afterburn_core.internals.cost import estimate_internals_cost
from afterburn_core.types import ModelDescription, RunRecord
from afterburn_core.views.internals import cost_estimate_line
from afterburn_core.views.internals_cost import causal_cost_lines
from afterburn_core.views.wording import duration
from pages.common import (
    ACTIVE_QUERY_PARAM,
    OVERVIEW_PAGE,
    WATCH_KEY,
    elapsed,
    escape_markdown,
    format_when,
    get_store,
    require_app_frame,
    select_run,
    selected_run_id,
    short_id,
    status_markdown,
)

BASE_KEY = "new_run_base"
TRAINED_KEY = "new_run_trained"
METHOD_KEY = "new_run_method"
DEVICE_KEY = "new_run_device"
SUITES_KEY = "new_run_suites"
SUITE_FILES_KEY = "new_run_suite_files"
MAX_NEW_TOKENS_KEY = "new_run_max_new_tokens"
EXACT_KEY = "new_run_exact_spectra"
#: The internals analysis's causal parts, each a toggle (setting name → session key).
CAUSAL_KEYS = {"steering": "new_run_steering", "localization": "new_run_localization",
               "amplification": "new_run_amplification"}
SEED_KEY = "new_run_seed"
#: Where the models run: the generation engine, its parallel layout, the memory budget and CPU threads.
BACKEND_KEY = "new_run_backend"
TENSOR_PARALLEL_KEY = "new_run_tensor_parallel_size"
PIPELINE_PARALLEL_KEY = "new_run_pipeline_parallel_size"
MAX_MEMORY_KEY = "new_run_max_memory"
THREADS_KEY = "new_run_threads"
#: (button label, trained reference, what the pair shows) — the bundled demo pairs, all on demo:base.
DEMO_PAIRS = (
    ("Demo: fine-tuned", "demo:trained", "fine-tuned with planted behaviours and weight edits"),
    ("Demo: control", "demo:control", "fine-tuned as long on clean data: nothing planted"),
    ("Demo: LoRA adapter", "demo:lora", "a LoRA adapter of demo:base"),
)
HISTORY_LIMIT = 50
#: How the history shows a queued or running run (the progress view above follows it live).
IN_PROGRESS = ":blue[:material/autorenew:] in progress"
#: Re-checking a reference fingerprints local files; typing reruns the page on every edit,
#: so a verdict is reused for a few seconds (long enough for reruns, short enough for edits on disk).
CHECK_TTL_S = 5

_DEFAULTS = AnalysisConfig()
_FIELD_HELP = {field.name: field.metadata.get("help") for field in dataclasses.fields(AnalysisConfig)}
_REFERENCE_HELP = (
    "A local folder or .safetensors / .bin file, a hub id (owner/name@revision), a LoRA adapter folder, "
    "or a bundled demo model (demo:base, demo:trained, demo:control, demo:lora)."
)


@st.cache_data(ttl=CHECK_TTL_S, show_spinner=False)
def _check(reference: str) -> ReferenceCheck:
    return check_reference(reference)


def _kept(key: str) -> str:
    # Streamlit drops a widget's state when another page runs; this copy outlives it.
    return f"_kept_{key}"


def _remember(key: str) -> None:
    st.session_state[_kept(key)] = st.session_state[key]


def _restore(key: str, default: str) -> None:
    if key not in st.session_state:
        st.session_state[key] = st.session_state.get(_kept(key), default)


@st.cache_data(ttl=CHECK_TTL_S, show_spinner=False)
def _internals_cost(description: ModelDescription | None, device: str, suites: tuple[str, ...],
                    max_new_tokens: int, causal: tuple[tuple[str, bool], ...] = ()) -> tuple[str, ...] | None:
    """The internals cost lines for the trained side's description: the reading half's, then one per causal
    part; None while a suite file is unreadable (Launch says why in one line); raises ``ConfigError`` for a
    device this machine lacks."""
    if description is None:
        return (cost_estimate_line(None),)
    try:
        prompts = sum(len(suite.prompts) for suite in load_suites(suites))
    except AfterburnError:
        return None
    config = AnalysisConfig(device=device, suites=suites, max_new_tokens=max_new_tokens, **dict(causal))
    estimate = estimate_internals_cost(description, config, prompts)
    return (cost_estimate_line(estimate), *causal_cost_lines(estimate))


def _use_demo_pair(trained_reference: str) -> None:
    for key, value in ((BASE_KEY, "demo:base"), (TRAINED_KEY, trained_reference)):
        st.session_state[key] = value
        _remember(key)


def _show_check(label: str, verdict: ReferenceCheck) -> None:
    line = f"**{label}** · {escape_markdown(verdict.message)}"
    (st.success if verdict.ok else st.error)(line)


def _watch(run_id: str) -> None:
    st.session_state[WATCH_KEY] = run_id
    if st.query_params.get(ACTIVE_QUERY_PARAM) != run_id:
        st.query_params[ACTIVE_QUERY_PARAM] = run_id


def _watched_run(runs: list[RunRecord]) -> RunRecord | None:
    by_id = {record.run_id: record for record in runs}
    for wanted in (st.query_params.get(ACTIVE_QUERY_PARAM), st.session_state.get(WATCH_KEY)):
        if wanted in by_id:
            return by_id[wanted]
    return next((record for record in runs if record.is_active), None)


def _open_results(run_id: str) -> None:
    select_run(run_id)
    st.switch_page(OVERVIEW_PAGE)


# --- the form ------------------------------------------------------------------------------------

require_app_frame()
st.title("New run")
st.caption("Compare a base checkpoint with its post-trained version: what changed in the weights, and how.")

store = get_store()

_restore(BASE_KEY, "demo:base")
_restore(TRAINED_KEY, "demo:trained")

demo_columns = st.columns(len(DEMO_PAIRS) + 1, vertical_alignment="center")
demo_columns[0].markdown("**Bundled demo pairs**")
for column, (label, trained_reference, description) in zip(demo_columns[1:], DEMO_PAIRS):
    column.button(
        label,
        key=f"demo_pair_{trained_reference}",
        help=f"demo:base → {trained_reference}: {description}",
        on_click=_use_demo_pair,
        args=(trained_reference,),
        width="stretch",
    )

base_column, trained_column = st.columns(2)
with base_column:
    base_reference = st.text_input(
        "Base model", key=BASE_KEY, help=_REFERENCE_HELP, on_change=_remember, args=(BASE_KEY,)
    )
    base_check = _check(base_reference)
    _show_check("Base", base_check)
with trained_column:
    trained_reference = st.text_input(
        "Post-trained model", key=TRAINED_KEY, help=_REFERENCE_HELP, on_change=_remember, args=(TRAINED_KEY,)
    )
    # No adapter_base: the run resolves an adapter's base from its adapter_config.json, so the
    # check must too, or it would accept what the run then refuses.
    trained_check = _check(trained_reference)
    _show_check("Post-trained", trained_check)

method_column, device_column, launch_column = st.columns([2, 2, 1], vertical_alignment="bottom")
_restore(METHOD_KEY, _DEFAULTS.method)
_restore(DEVICE_KEY, _DEFAULTS.device)
method = method_column.selectbox(
    "Training method", TRAINING_METHODS, key=METHOD_KEY, help=_FIELD_HELP["method"], on_change=_remember,
    args=(METHOD_KEY,),
)
device = device_column.selectbox(
    "Device", DEVICES, key=DEVICE_KEY, help=_FIELD_HELP["device"], on_change=_remember, args=(DEVICE_KEY,)
)
for key, default in ((SUITES_KEY, list(DEFAULT_SUITES)), (SUITE_FILES_KEY, ""),
                     (MAX_NEW_TOKENS_KEY, _DEFAULTS.max_new_tokens), (EXACT_KEY, _DEFAULTS.exact_spectra),
                     (SEED_KEY, _DEFAULTS.seed), (BACKEND_KEY, _DEFAULTS.backend),
                     (TENSOR_PARALLEL_KEY, _DEFAULTS.tensor_parallel_size),
                     (PIPELINE_PARALLEL_KEY, _DEFAULTS.pipeline_parallel_size), (MAX_MEMORY_KEY, _DEFAULTS.max_memory),
                     (THREADS_KEY, _DEFAULTS.threads),
                     *((key, getattr(_DEFAULTS, name)) for name, key in CAUSAL_KEYS.items())):
    _restore(key, default)
with st.expander("Analysis settings"):
    suites_column, files_column = st.columns(2)
    chosen_suites = suites_column.multiselect(
        "Prompt suites", list(BUILTIN_SUITES), key=SUITES_KEY, on_change=_remember, args=(SUITES_KEY,),
        help="Built-in suites both models answer (the behaviour and reward-hack analyses read their answers).",
    )
    suite_files = files_column.text_input(
        "Your suite files", key=SUITE_FILES_KEY, on_change=_remember, args=(SUITE_FILES_KEY,),
        placeholder="path/to/suite.yaml, other.jsonl",
        help="Comma-separated YAML or JSONL suite files on this machine (schema: id, text, category, "
             "expected_answer, tags), run after the built-in suites chosen.",
    )
    tokens_column, seed_column, exact_column = st.columns(3, vertical_alignment="bottom")
    max_new_tokens = tokens_column.number_input(
        "Max new tokens", min_value=1, max_value=MAX_NEW_TOKENS_LIMIT, step=16, key=MAX_NEW_TOKENS_KEY,
        on_change=_remember, args=(MAX_NEW_TOKENS_KEY,), help=_FIELD_HELP["max_new_tokens"],
    )
    seed = seed_column.number_input(
        "Seed", min_value=0, max_value=2**32 - 1, step=1, key=SEED_KEY, on_change=_remember, args=(SEED_KEY,),
        help=_FIELD_HELP["seed"],
    )
    exact_spectra = exact_column.toggle(
        "Exact spectra", key=EXACT_KEY, on_change=_remember, args=(EXACT_KEY,), help=_FIELD_HELP["exact_spectra"],
    )
    backend_column, tensor_column, pipeline_column, memory_column, threads_column = st.columns(
        [2, 1, 1, 2, 1], vertical_alignment="bottom")
    backend = backend_column.selectbox(
        "Generation engine", BACKENDS, key=BACKEND_KEY, on_change=_remember, args=(BACKEND_KEY,),
        help=_FIELD_HELP["backend"],
    )
    tensor_parallel_size = tensor_column.number_input(
        "Tensor parallel", min_value=1, max_value=PARALLEL_SIZE_LIMIT, step=1, key=TENSOR_PARALLEL_KEY,
        on_change=_remember, args=(TENSOR_PARALLEL_KEY,), help=_FIELD_HELP["tensor_parallel_size"],
    )
    pipeline_parallel_size = pipeline_column.number_input(
        "Pipeline parallel", min_value=1, max_value=PARALLEL_SIZE_LIMIT, step=1, key=PIPELINE_PARALLEL_KEY,
        on_change=_remember, args=(PIPELINE_PARALLEL_KEY,), help=_FIELD_HELP["pipeline_parallel_size"],
    )
    max_memory = memory_column.text_input(
        "Max memory", key=MAX_MEMORY_KEY, on_change=_remember, args=(MAX_MEMORY_KEY,),
        placeholder="cuda:0=20GiB,cpu=60GiB", help=_FIELD_HELP["max_memory"],
    )
    threads = threads_column.number_input(
        "CPU threads", min_value=0, max_value=THREADS_LIMIT, step=1, key=THREADS_KEY, on_change=_remember,
        args=(THREADS_KEY,), help=_FIELD_HELP["threads"],
    )
    causal_columns = st.columns(len(CAUSAL_KEYS))
    causal = tuple(
        (name, column.toggle(name.capitalize(), key=key, on_change=_remember, args=(key,), help=_FIELD_HELP[name]))
        for column, (name, key) in zip(causal_columns, CAUSAL_KEYS.items())
    )
suite_paths = tuple(part.strip() for part in suite_files.split(",") if part.strip())
references_ok = base_check.ok and trained_check.ok
if references_ok and (chosen_suites or suite_paths):
    try:
        cost_lines = _internals_cost(trained_check.description, device, (*chosen_suites, *suite_paths),
                                     int(max_new_tokens), causal)
    except AfterburnError as error:
        st.error(escape_markdown(str(error)))
    else:
        for cost_line in cost_lines or ():
            st.caption(escape_markdown(cost_line),
                       help="Estimated from the post-trained model's config.json and the settings above.")
if launch_column.button(
    "Launch",
    key="new_run_launch",
    type="primary",
    disabled=not references_ok,
    help=None if references_ok else "Fix the references above first.",
    width="stretch",
):
    try:
        if not chosen_suites and not suite_paths:
            raise AfterburnError("choose at least one prompt suite under Analysis settings")
        if suite_paths:
            load_suites(suite_paths)  # a bad file is one line here, not a failed run later
        config = AnalysisConfig(method=method, device=device, suites=(*chosen_suites, *suite_paths),
                                max_new_tokens=int(max_new_tokens), seed=int(seed), exact_spectra=exact_spectra,
                                backend=backend, tensor_parallel_size=int(tensor_parallel_size),
                                pipeline_parallel_size=int(pipeline_parallel_size), max_memory=max_memory.strip(),
                                threads=int(threads), **dict(causal))
        chosen_backend(config.backend, choose_device(config.device))  # an engine not installed: one line here
        new_run_id = create_run(store, base_reference, trained_reference, config)
        launch_worker(store, new_run_id)
    except AfterburnError as error:
        st.error(escape_markdown(str(error)))
    else:
        _watch(new_run_id)

# --- progress of the watched run -----------------------------------------------------------------

try:
    reap_dead_workers(store)
    runs = store.list_runs(limit=HISTORY_LIMIT)
except AfterburnError as error:
    st.error(escape_markdown(str(error)))
    st.stop()


def _progress(run_id: str, was_active: bool) -> None:
    fragment_store = get_store()
    try:
        reap_dead_workers(fragment_store)
        record = fragment_store.get_run(run_id)
    except RunNotFound:
        st.info("The run this view followed was deleted.")
        return
    except AfterburnError as error:
        st.error(escape_markdown(str(error)))
        return
    if was_active and not record.is_active:
        # Finished since the page last ran in full: rerun it all, so the sidebar lists the run
        # and this view stops polling.
        st.rerun()
    st.markdown(
        f"**Run {short_id(record.run_id)}** · {escape_markdown(record.base_reference)} → "
        f"{escape_markdown(record.trained_reference)} · {status_markdown(record)} · {elapsed(record)}"
    )
    for stage in record.stages:
        detail = f" — {escape_markdown(stage.message)}" if stage.message else ""
        st.progress(stage.fraction, text=f"**{escape_markdown(stage_title(stage.stage))}** · {stage.status}{detail}")
    if record.is_active:
        if st.button("Cancel", key=f"cancel_{record.run_id}", icon=":material/stop:"):
            try:
                cancel_run(fragment_store, record.run_id)
            except AfterburnError as error:
                st.error(escape_markdown(str(error)))
    elif record.status == "done":
        st.success("Done.")
        if st.button("Open results", key=f"open_{record.run_id}", type="primary", icon=":material/arrow_forward:"):
            _open_results(record.run_id)
    elif record.status == "failed":
        st.error(escape_markdown(record.error or "the run failed without giving a reason"))
    else:
        st.warning(escape_markdown(record.error or "the run was cancelled"))


watched = _watched_run(runs)
if watched is not None:
    # Keep following it once it ends (so its outcome stays on screen), and across reloads.
    _watch(watched.run_id)
    st.subheader("Progress")
    st.fragment(run_every=1 if watched.is_active else None)(_progress)(watched.run_id, watched.is_active)

# --- history -------------------------------------------------------------------------------------

st.subheader("Runs")
if not runs:
    st.caption("No runs yet: launch one above.")
widths = [1.2, 5, 1.2, 1.6, 1, 1]
if runs:
    for column, heading in zip(st.columns(widths), ("Status", "Base → post-trained", "Duration", "When", "", "")):
        column.caption(heading)
for record in runs:
    status_column, pair_column, duration_column, when_column, open_column, delete_column = st.columns(
        widths, vertical_alignment="center"
    )
    # The history is drawn once per page run, and a launched run leaves "queued" within a second; its live
    # status is the progress view's, so an active run reads "in progress" here, never a stale "queued".
    status_column.markdown(IN_PROGRESS if record.is_active else status_markdown(record))
    pair_column.text(f"{short_id(record.run_id)} · {record.base_reference} → {record.trained_reference}")
    if record.status in ("failed", "cancelled") and record.error:
        pair_column.caption(escape_markdown(record.error))  # why it ended, beside the run it ended
    # Only the progress view above refreshes while a run works; a running clock here would go stale.
    duration_column.text(duration(record.duration_s) if not record.is_active else "…")
    when_column.text(format_when(record.created_at))
    if open_column.button(
        "Open", key=f"history_open_{record.run_id}", disabled=record.status != "done", width="stretch"
    ):
        _open_results(record.run_id)
    if delete_column.button(
        "Delete",
        key=f"history_delete_{record.run_id}",
        disabled=record.is_active,
        help="Cancel the run before deleting it." if record.is_active else None,
        width="stretch",
    ):
        try:
            # Re-read: the run may have started (or a worker taken it) since this row was drawn.
            if store.get_run(record.run_id).is_active:
                st.warning(f"Run {short_id(record.run_id)} is still active: cancel it before deleting it.")
            else:
                store.delete_run(record.run_id)
                if selected_run_id() == record.run_id:
                    select_run(None)
                st.rerun()
        except AfterburnError as error:
            st.error(escape_markdown(str(error)))
