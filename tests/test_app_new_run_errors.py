"""Every bad input typed into the New run page is one ``st.error`` line with the core's own sentence.

Never Streamlit's exception box: the references (a missing path, a file that
is no checkpoint, an empty folder, an adapter whose base is itself, two
adapters naming each other, a name longer than a file system takes) and the suite files (not a suite, not YAML, a
config file, the values that crashed the YAML loader) each get a real bad
value, and the page must show exactly the message ``afterburn_core`` raises
for it, escaped for markdown, and record no run. The numeric settings need
no case: Streamlit itself keeps a number input within its bounds.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from ui_helpers import open_app

from afterburn_core.checkpoints import resolve
from afterburn_core.errors import AfterburnError, BadCheckpoint
from afterburn_core.generation.suites import load_suites
from afterburn_core.store import RunStore
from pages.common import escape_markdown

pytestmark = pytest.mark.usefixtures("navigation_as_on_a_server", "fresh_streamlit_caches")

#: Longest file name ext4, XFS, APFS and NTFS take (bytes); one more is refused by the file system.
NAME_MAX = 255
BOXES = {"new_run_base": "Base", "new_run_trained": "Post-trained"}


@pytest.fixture(autouse=True)
def no_worker(monkeypatch: pytest.MonkeyPatch):
    """A launch that got through by mistake records its run but starts no analysis."""
    import afterburn_core.jobs

    monkeypatch.setattr(afterburn_core.jobs, "launch_worker", lambda store, run_id: None)


def core_message(call, *args, **kwargs) -> str:
    """The one-line message ``afterburn_core`` raises for this input (the test fails if it raises anything else)."""
    with pytest.raises(AfterburnError) as raised:
        call(*args, **kwargs)
    return str(raised.value)


def assert_one_error(app: AppTest, expected: str) -> None:
    assert not app.exception, [exception.value for exception in app.exception]
    assert [element.value for element in app.error] == [expected]


@pytest.fixture(scope="module")
def bad_references(tmp_path_factory: pytest.TempPathFactory, tiny_pair) -> dict[str, Path]:
    """References a user could type that name no usable checkpoint, each built for real."""
    from checkpoint_factories import build_lora_adapter, set_adapter_base

    base, _ = tiny_pair
    root = tmp_path_factory.mktemp("bad-references")
    not_a_checkpoint = root / "notes.safetensors"
    not_a_checkpoint.write_text("these are my notes, not tensors")
    (root / "empty").mkdir()
    self_based = build_lora_adapter(base, root / "self-based")
    set_adapter_base(self_based, str(self_based))
    first, second = build_lora_adapter(base, root / "first"), build_lora_adapter(base, root / "second")
    set_adapter_base(first, str(second))
    set_adapter_base(second, str(first))
    return {"missing": root / "no-such-model", "not a checkpoint": not_a_checkpoint, "empty folder": root / "empty",
            "adapter of itself": self_based, "cycle of two adapters": first,
            "a name too long for the file system": root / ("x" * (NAME_MAX + 1))}


@pytest.mark.parametrize("box", list(BOXES))
@pytest.mark.parametrize("case", ["missing", "not a checkpoint", "empty folder", "adapter of itself",
                                  "cycle of two adapters", "a name too long for the file system"])
def test_a_bad_reference_is_the_cores_one_line_error(bad_references, box, case):
    reference = str(bad_references[case])
    with pytest.raises(BadCheckpoint if "adapter" in case else AfterburnError) as raised:
        resolve(reference)
    app = open_app()

    app.text_input(key=box).input(reference).run()

    assert_one_error(app, f"**{BOXES[box]}** · {escape_markdown(str(raised.value))}")
    assert app.button(key="new_run_launch").disabled


#: Suite files a stranger could hand over; the last three are the values the audit found crashing the YAML loader.
SUITE_FILES = {
    "not a suite": ("suite.yaml", "name: mine\nprompts: [{id: a}]\n"),
    "not YAML": ("broken.yaml", "name: [unclosed\n"),
    "a bad JSONL line": ("suite.jsonl", '{"id": "a", "text": "fine"}\n{"id": "b", "text": \n'),
    "not a suite file type": ("suite.txt", "id: a\n"),
    "a config file typed as a suite": ("config.yaml", "method: sft\nmax_new_tokens: 64\n"),
    "a 5000-digit integer": ("digits.yaml", f"name: digits\nprompts:\n  - {{id: {'9' * 5000}, text: hi}}\n"),
    "deep nesting": ("deep.yaml", "name: deep\nprompts: " + "[" * 100_000 + "]" * 100_000 + "\n"),
    "mixed key types": ("keys.yaml", "name: keys\nprompts:\n  - {id: a, text: hi, 1: one, [x]: list}\n"),
}


@pytest.mark.parametrize("case", [*SUITE_FILES, "missing"])
def test_a_bad_suite_file_is_the_cores_one_line_error_and_no_run(afterburn_home, tmp_path, case):
    if case == "missing":
        path = tmp_path / "nowhere.yaml"
    else:
        name, text = SUITE_FILES[case]
        path = tmp_path / name
        path.write_text(text)
    expected = core_message(load_suites, (str(path),))
    app = open_app()

    app.text_input(key="new_run_suite_files").input(str(path)).run()
    app.button(key="new_run_launch").click().run()

    assert_one_error(app, escape_markdown(expected))
    with RunStore(afterburn_home) as store:
        assert store.list_runs() == []



@pytest.mark.skipif(__import__("importlib").util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_an_engine_that_is_not_installed_is_the_cores_one_line_error_and_no_run(afterburn_home):
    from afterburn_core.device import choose_device
    from afterburn_core.generation.backends import chosen_backend

    expected = core_message(chosen_backend, "vllm", choose_device("auto"))
    app = open_app()

    app.selectbox(key="new_run_backend").select("vllm").run()
    app.button(key="new_run_launch").click().run()

    assert_one_error(app, escape_markdown(expected))
    with RunStore(afterburn_home) as store:
        assert store.list_runs() == []


@pytest.mark.parametrize("budget", ["cpu=lots", "gpu9=1GiB"])
def test_a_bad_memory_budget_is_the_cores_one_line_error_and_no_run(afterburn_home, budget):
    from afterburn_core.config import AnalysisConfig

    expected = core_message(AnalysisConfig, max_memory=budget)
    app = open_app()

    app.text_input(key="new_run_max_memory").input(budget).run()
    app.button(key="new_run_launch").click().run()

    assert_one_error(app, escape_markdown(expected))
    with RunStore(afterburn_home) as store:
        assert store.list_runs() == []
