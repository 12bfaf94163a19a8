"""The dashboard's pages under Streamlit's AppTest: real scripts, a real store, real checkpoints.

Each test gets its own ``$AFTERBURN_HOME`` (set before the app creates its
store) and empty Streamlit caches. Runs are made through the same core calls
the pages use (``create_run`` / ``execute_run`` / the store), never by
writing rows by hand.
"""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from ui_helpers import APP, RUN_TIMEOUT_S, finished_run, open_app

from waits import HANG_S

from pages.common import escape_markdown

from afterburn_core.config import AnalysisConfig
from afterburn_core.jobs import create_run
from afterburn_core.runner import execute_run
from afterburn_core.analyses import stage_names, stage_title
from afterburn_core.store import load_result
from afterburn_core.serde import to_jsonable
from afterburn_core.store import RunStore
from afterburn_core.types import (
    CheckpointSummary,
    InventoryResult,
    ResolvedCheckpoint,
    TensorEntry,
)

NEW_RUN = "pages/new_run.py"
OVERVIEW = "pages/overview.py"
pytestmark = pytest.mark.usefixtures("navigation_as_on_a_server", "fresh_streamlit_caches")


def button(app: AppTest, key: str):
    return app.button(key=key)


def texts(app: AppTest) -> list[str]:
    return [element.value for element in app.text] + [element.value for element in app.markdown]


@pytest.fixture(scope="module")
def resized_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny base and a trained copy whose vocabulary grew (embeddings and head reshaped)."""
    from checkpoint_factories import TINY_VOCAB, build_tiny_llama, tiny_llama_model

    root = tmp_path_factory.mktemp("resized-pair")
    base = build_tiny_llama(root / "base", seed=0)
    trained = build_tiny_llama(root / "trained", model=tiny_llama_model(1, vocab_size=TINY_VOCAB + 8))
    return base, trained


# --- New run -------------------------------------------------------------------------------------


def test_app_opens_on_new_run_with_the_demo_pair_preselected():
    app = open_app()

    assert app.title[0].value == "New run"
    assert app.text_input(key="new_run_base").value == "demo:base"
    assert app.text_input(key="new_run_trained").value == "demo:trained"
    assert app.selectbox(key="new_run_method").value == "unknown"
    # Each reference gets exactly one verdict line, whichever it is.
    assert len(app.success) + len(app.error) == 2


def test_the_form_keeps_its_values_across_pages():
    app = open_app()
    app.text_input(key="new_run_trained").input("demo:control")
    app.selectbox(key="new_run_method").select("grpo").run()

    app.switch_page(OVERVIEW).run()
    app.switch_page(NEW_RUN).run()

    assert app.text_input(key="new_run_trained").value == "demo:control"
    assert app.selectbox(key="new_run_method").value == "grpo"


def test_demo_quick_pick_fills_both_references():
    app = open_app()
    app.text_input(key="new_run_base").input("somewhere/else").run()

    button(app, "demo_pair_demo:lora").click().run()

    assert app.text_input(key="new_run_base").value == "demo:base"
    assert app.text_input(key="new_run_trained").value == "demo:lora"


def test_invalid_reference_shows_one_line_error_and_disables_launch(tiny_pair, tmp_path):
    base, trained = tiny_pair
    app = open_app()
    app.text_input(key="new_run_base").input(str(base))
    app.text_input(key="new_run_trained").input(str(trained)).run()
    assert [element.value.split(" · ")[0] for element in app.success] == ["**Base**", "**Post-trained**"], [
        element.value for element in app.error
    ]
    assert not button(app, "new_run_launch").disabled

    missing = tmp_path / "no-such-model"
    app.text_input(key="new_run_trained").input(str(missing)).run()

    assert not app.exception
    [error] = app.error
    assert error.value.startswith("**Post-trained** · ")
    assert "no\\-such\\-model" in error.value  # the message names the reference, escaped for markdown
    assert "\n" not in error.value and "Traceback" not in error.value
    assert button(app, "new_run_launch").disabled


def test_empty_reference_is_refused_too():
    app = open_app()
    app.text_input(key="new_run_base").input("   ").run()

    assert any(element.value.startswith("**Base**") for element in app.error)
    assert button(app, "new_run_launch").disabled


def test_launch_runs_a_worker_and_the_progress_view_follows_it_to_done(tiny_pair, afterburn_home):
    base, trained = tiny_pair
    app = open_app()
    app.text_input(key="new_run_base").input(str(base))
    app.text_input(key="new_run_trained").input(str(trained))
    app.selectbox(key="new_run_method").select("dpo")
    # Every stage runs; one short suite keeps it to seconds (random weights never stop early).
    app.multiselect(key="new_run_suites").set_value(["math"])
    app.number_input(key="new_run_max_new_tokens").set_value(16).run()

    button(app, "new_run_launch").click().run()

    assert not app.exception
    with RunStore(afterburn_home) as store:
        [record] = store.list_runs()
        assert record.base_reference == str(base)
        config = AnalysisConfig.from_json(record.config_json)
        assert (config.method, config.suites, config.max_new_tokens) == ("dpo", ("math",), 16)
        assert app.query_params["active"] == record.run_id
        deadline = time.monotonic() + HANG_S  # stops a hung worker only: a busy machine is slow, not wrong
        while store.get_run(record.run_id).is_active and time.monotonic() < deadline:
            time.sleep(0.2)
        assert store.get_run(record.run_id).status == "done"

    app.run()
    assert [element.value for element in app.success if element.value == "Done."] == ["Done."]
    assert [bar.value for bar in app.get("progress")] == [100] * len(stage_names())
    # The finished run is now the one the sidebar offers.
    assert app.sidebar.selectbox[0].value == record.run_id

    button(app, f"open_{record.run_id}").click().run()
    assert not app.exception
    assert app.title[0].value == "Checkpoints"


def test_analysis_settings_reach_the_run_config(afterburn_home, monkeypatch):
    import afterburn_core.jobs

    monkeypatch.setattr(afterburn_core.jobs, "launch_worker", lambda store, run_id: None)  # record only
    app = open_app()
    app.multiselect(key="new_run_suites").set_value(["math", "sycophancy"])
    app.number_input(key="new_run_max_new_tokens").set_value(48)
    app.number_input(key="new_run_seed").set_value(7)
    app.toggle(key="new_run_exact_spectra").set_value(True).run()
    button(app, "new_run_launch").click().run()

    assert not app.exception and not app.error
    with RunStore(afterburn_home) as store:
        [record] = store.list_runs()
    config = AnalysisConfig.from_json(record.config_json)
    assert (config.suites, config.max_new_tokens, config.seed, config.exact_spectra) == (
        ("math", "sycophancy"), 48, 7, True)


def test_a_bad_suite_file_or_no_suite_is_one_line_and_no_run(afterburn_home, tmp_path):
    bad = tmp_path / "suite.yaml"
    bad.write_text("name: mine\nprompts: [{id: a}]\n")
    app = open_app()
    app.text_input(key="new_run_suite_files").input(str(bad)).run()
    button(app, "new_run_launch").click().run()
    assert not app.exception
    assert len(app.error) == 1 and str(bad) in app.error[0].value.replace("\\", "")

    app.text_input(key="new_run_suite_files").input("")
    app.multiselect(key="new_run_suites").set_value([]).run()
    button(app, "new_run_launch").click().run()
    assert [e.value for e in app.error] == ["choose at least one prompt suite under Analysis settings"]
    with RunStore(afterburn_home) as store:
        assert store.list_runs() == []


def test_progress_survives_a_reload_cancels_and_shows_a_failure_as_one_line(afterburn_home):
    # A stand-in worker process: alive, so the run is not reaped; it reports through the store.
    worker = subprocess.Popen(["sleep", "60"])
    try:
        with RunStore(afterburn_home) as store:
            run_id = create_run(store, "demo:base", "demo:trained", AnalysisConfig())
            store.mark_started(run_id, worker.pid)
            store.update_stage(run_id, "resolve", "running", 1, 4, "fingerprinting base")

            app = open_app()  # a new session: no state, the run is found as the newest active one
            bar, *others = app.get("progress")
            assert len(others) == len(stage_names()) - 1 and all(other.value == 0 for other in others)
            assert bar.value == 25
            assert bar.proto.text == "**Checkpoints resolved** · running — fingerprinting base"
            assert [other.proto.text.split("**")[1] for other in others] == [
                stage_title(stage) for stage in stage_names()[1:]]  # titles, never internal names like token_kl
            assert "Token divergence" in [stage_title(stage) for stage in stage_names()]
            assert app.query_params["active"] == run_id  # so a reload keeps following it

            button(app, f"cancel_{run_id}").click().run()
            assert store.cancel_requested(run_id)
            assert worker.wait(timeout=10) == -signal.SIGTERM

            store.finish_run(run_id, "failed", "the demo model demo:trained is missing")
            app = open_app(active=run_id)  # a reload of a link that names the run
    finally:
        worker.kill()
        worker.wait()

    assert "the demo model demo\\:trained is missing" in [element.value for element in app.error]
    # The history says why the run ended, beside it.
    assert "the demo model demo\\:trained is missing" in [element.value for element in app.caption]


def test_history_lists_runs_and_refuses_to_delete_an_active_one(tiny_pair, afterburn_home):
    base, trained = tiny_pair
    with RunStore(afterburn_home) as store:
        done_id = finished_run(store, base, trained)
        # Queued after the slow part: a queued run no worker takes within QUEUED_STALE_S is reaped as failed.
        queued_id = create_run(store, "demo:base", "demo:control", AnalysisConfig())

        app = open_app()

        rows = texts(app)
        assert f"{queued_id[:8]} · demo:base → demo:control" in rows
        assert f"{done_id[:8]} · {base} → {trained}" in rows
        assert "in progress" in [line.split("] ")[-1] for line in (element.value for element in app.markdown)]
        assert button(app, f"history_delete_{queued_id}").disabled
        assert button(app, f"history_open_{queued_id}").disabled
        assert not button(app, f"history_open_{done_id}").disabled

        button(app, f"history_delete_{done_id}").click().run()

        assert not app.exception
        assert [record.run_id for record in store.list_runs()] == [queued_id]
        assert not any(done_id[:8] in text for text in texts(app))


# --- Checkpoints ---------------------------------------------------------------------------------


def test_checkpoints_page_without_a_run_points_to_new_run():
    app = open_app(OVERVIEW)

    assert app.title[0].value == "Checkpoints"
    [info] = app.info
    assert "New run" in info.value
    assert not app.get("arrow_data_frame")


def test_checkpoints_page_renders_the_stored_inventory(resized_pair, afterburn_home):
    base, trained = resized_pair
    with RunStore(afterburn_home) as store:
        run_id = finished_run(store, base, trained)
        inventory = load_result(store, run_id, InventoryResult)

    app = open_app(OVERVIEW)

    assert not app.exception
    # The verdict first: what differs in the architecture, and how the tensors pair.
    assert app.markdown[0].value == ":material/insights: " + escape_markdown(
        f"Architectures differ: vocab size 64 → 72; {inventory.shared_tensors} tensors pair up; 2 reshaped.")
    side_by_side, reshaped = (frame.value for frame in app.dataframe)
    rows = dict(zip(side_by_side[""], zip(side_by_side["Base"], side_by_side["Post-trained"])))
    assert rows["Reference"] == (str(base), str(trained))
    assert rows["Kind"] == ("local folder", "local folder")
    assert rows["Architecture"] == ("LlamaForCausalLM", "LlamaForCausalLM")
    assert rows["Vocab size"] == ("64", "72")
    assert rows["Layers"] == ("2", "2")
    assert rows["Fingerprint"] == (
        inventory.base.checkpoint.fingerprint[:12],
        inventory.trained.checkpoint.fingerprint[:12],
    )
    metrics = {metric.label: metric.value for metric in app.metric}
    assert metrics["Shared tensors"] == str(inventory.shared_tensors)
    assert metrics["Reshaped"] == "2"
    assert metrics["Base only"] == metrics["Post-trained only"] == "0"
    # Names are shown as the files store them, the normalized key the core pairs by beside them.
    assert sorted(reshaped["Tensor"]) == ["lm_head.weight", "model.embed_tokens.weight"]
    assert sorted(reshaped["Key"]) == ["embed_tokens.weight", "lm_head.weight"]
    assert set(reshaped["Base shape"]) == {"64 × 16"}
    assert set(reshaped["Post-trained shape"]) == {"72 × 16"}


def test_checkpoints_page_names_an_adapter_and_its_base(tiny_pair, tmp_path, afterburn_home):
    from checkpoint_factories import build_lora_adapter

    base, _ = tiny_pair
    adapter = build_lora_adapter(base, tmp_path / "adapter")
    with RunStore(afterburn_home) as store:
        run_id = finished_run(store, base, adapter)

    app = open_app(OVERVIEW, run=run_id)

    side_by_side = app.dataframe[0].value
    rows = dict(zip(side_by_side[""], zip(side_by_side["Base"], side_by_side["Post-trained"])))
    assert rows["Kind"] == ("local folder", "LoRA adapter")
    assert rows["Adapter base"] == ("—", str(base))
    trained_only = app.dataframe[2].value
    assert all(".lora_" in name for name in trained_only["Tensor"])


def _checkpoint(reference: str, tensors: int) -> CheckpointSummary:
    return CheckpointSummary(
        checkpoint=ResolvedCheckpoint(
            reference=reference,
            kind="local_dir",
            root="/models/<b>x</b>",
            weight_files=("/models/model.safetensors",),
            weight_format="safetensors",
            config_path=None,
            fingerprint="f" * 64,
        ),
        architecture="**Bold**<script>alert(1)</script>",
        model_type=None,
        num_layers=None,
        hidden_size=None,
        vocab_size=None,
        num_tensors=tensors,
        num_parameters=10,
        parameters_by_dtype={"bfloat16": 10},
        size_bytes=20,
    )


def test_checkpoints_page_shows_model_strings_as_plain_text(afterburn_home):
    hostile_name = "[click](javascript:alert(1)) <img src=x onerror=alert(1)> :red[x] $x$"
    inventory = InventoryResult(
        base=_checkpoint("base_*model*", 2),
        trained=_checkpoint("trained_`model`", 2),
        shared_tensors=1,
        base_only=(TensorEntry(hostile_name, (3,), "BF16"),),
        trained_only=(TensorEntry("extra", (), "F32"),),
        shape_changed=(),
        dtype_changed=0,
    )
    with RunStore(afterburn_home) as store:
        run_id = create_run(store, "base_*model*", "trained_`model`", AnalysisConfig())
        store.put_result(run_id, "test-inventory", InventoryResult.KIND, InventoryResult.SCHEMA_VERSION,
                         to_jsonable(inventory))
        store.finish_run(run_id, "done")

    app = open_app(OVERVIEW, run=run_id)

    assert not app.exception
    side_by_side, base_only, trained_only = (frame.value for frame in app.dataframe)
    # An inventory stored before stored names were recorded shows its keys.
    assert list(base_only["Tensor"]) == list(base_only["Key"]) == [hostile_name]
    assert list(trained_only["Shape"]) == ["()"]
    assert "**Bold**<script>alert(1)</script>" in list(side_by_side["Base"])
    # Markdown elements carry the references escaped, so they show as typed.
    assert any("base\\_\\*model\\*" in element.value for element in app.caption)
    assert all("<script>" not in element.value for element in (*app.markdown, *app.caption))


def test_run_link_selects_the_run_and_the_picker_switches(tiny_pair, afterburn_home):
    base, trained = tiny_pair
    with RunStore(afterburn_home) as store:
        older = finished_run(store, base, trained)
        newer = finished_run(store, trained, base)

    app = open_app(OVERVIEW)
    assert app.sidebar.selectbox[0].value == newer  # newest first, and picked by default
    assert app.query_params["run"] == newer

    app = open_app(OVERVIEW, run=older)
    assert app.sidebar.selectbox[0].value == older
    assert app.sidebar.selectbox[0].options[0].endswith(f" · {base}")  # newer's post-trained side is base
    assert any(element.value.startswith(f"{older[:8]} · ") for element in app.sidebar.caption)  # the picked id
    assert app.dataframe[0].value["Base"][0] == str(base)

    app.sidebar.selectbox[0].select(newer).run()
    assert app.query_params["run"] == newer
    assert app.dataframe[0].value["Base"][0] == str(trained)


def test_the_sidebar_opens_on_the_newest_complete_run_not_a_newer_partial_one(tiny_pair, afterburn_home):
    base, trained = tiny_pair
    with RunStore(afterburn_home) as store:
        complete = finished_run(store, base, trained)
        partial = create_run(store, str(trained), str(base), AnalysisConfig(), analyses=("inventory",))
        assert execute_run(store, partial) == "done"

    app = open_app(OVERVIEW)
    assert app.sidebar.selectbox[0].value == complete
    assert app.sidebar.selectbox[0].options[0].endswith(f" · {base}")  # the partial run, still first: newest first


def test_a_page_whose_analysis_the_run_lacks_says_why_and_computes_it(afterburn_home):
    with RunStore(afterburn_home) as store:
        partial = create_run(store, "demo:base", "demo:trained", AnalysisConfig(), analyses=("inventory",))
        assert execute_run(store, partial) == "done"

    app = open_app("pages/weights.py", run=partial)
    [info] = app.info
    assert info.value == escape_markdown(
        "No result: this run did not include the weight diff (it included the checkpoint inventory).")
    [compute] = app.button
    assert compute.label == "Compute the weight diff for this pair"
    compute.click().run()
    assert not app.exception
    with RunStore(afterburn_home) as store:
        started = app.query_params["active"]
        record = store.get_run(started)
        assert (record.base_reference, record.trained_reference) == ("demo:base", "demo:trained")
        assert [stage.stage for stage in record.stages] == ["resolve", "weights"]
        deadline = time.monotonic() + HANG_S  # stops a hung worker only: a busy machine is slow, not wrong
        while store.get_run(started).is_active and time.monotonic() < deadline:
            time.sleep(0.2)
        assert store.get_run(started).status == "done"


def test_a_page_run_without_app_py_says_how_to_start_the_dashboard():
    app = AppTest.from_file(APP.parent / OVERVIEW, default_timeout=RUN_TIMEOUT_S).run()

    assert not app.exception
    assert [element.value for element in app.error] == [
        "Start the dashboard with `streamlit run app.py`, not a page file."
    ]


def test_an_unusable_store_is_one_error_line_not_a_traceback(tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("AFTERBURN_HOME", str(blocker / "home"))

    app = open_app()

    [error] = app.error
    assert error.value.startswith("cannot create the run store folder")
    assert "\n" not in error.value


def test_the_checkpoints_verdict_names_identical_and_same_architecture_pairs() -> None:
    from afterburn_core.checkpoints.pairing import build_inventory
    from afterburn_core.checkpoints import resolve
    from afterburn_core.views.inventory import verdict

    base = resolve("demo:base")
    assert verdict(build_inventory(base, base)) == (
        f"The two checkpoints are identical (fingerprint {base.fingerprint[:12]}): every analysis will read no change.")
    assert verdict(build_inventory(base, resolve("demo:trained"))) == (
        "Same architecture (LlamaForCausalLM, 4 layers, hidden 128, vocab 1,024); all 39 tensors pair up with the "
        "same shapes and dtypes.")
