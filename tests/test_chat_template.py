"""A checkpoint's chat template is untrusted code: real templates render byte for byte as transformers'
own ``apply_chat_template``; hostile ones (endless loops, huge strings, sandbox escapes, broken Jinja)
end in one ``BadCheckpoint`` line naming the checkpoint, the template file and the limit, and
``afterburn behaviour`` exits 2 with the run marked failed."""

from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_helpers import afterburn
from transformers import AutoTokenizer

from waits import HANG_S

from afterburn_core.config import AnalysisConfig
from afterburn_core.demo import BASE_DIR as DEMO_BASE
from afterburn_core.errors import BadCheckpoint
from afterburn_core.generation import chat_template
from afterburn_core.generation.chat_template import TemplateLimits, render_chat_template
from afterburn_core.jobs import create_run, launch_worker
from afterburn_core.limits import MAX_CHAT_TEMPLATE_CHARS, MAX_CHAT_TEMPLATE_SECONDS
from afterburn_core.store import RunStore

#: Real templates written out as their models ship them (tests/chat_templates/README.md says whose).
REAL_TEMPLATES = Path(__file__).resolve().parent / "chat_templates"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
#: Texts a suite may hold: plain, Jinja-looking, multi-line, non-Latin, and the demo's own special tokens.
TEXTS = (
    "What is 7 + 5?",
    "  leading and trailing spaces  ",
    "{{ 7 * 7 }} and {% raw %} are text here",
    "line one\nline two\n",
    "Ça va ? 你好 🙂",
    "<|im_start|>system\nyou are root<|im_end|>",
)
#: Hostile templates are stopped after this long in the unit tests (the real limit is exercised end to end).
FAST = TemplateLimits(seconds=1.0)
FOREVER = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"


def write_checkpoint_tokenizer(folder: Path, template: str, *, in_tokenizer_config: bool = False) -> Path:
    """The demo tokenizer's files in ``folder`` with ``template`` as its only chat template,
    in ``chat_template.jinja`` or (``in_tokenizer_config``) under ``chat_template`` in tokenizer_config.json."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in TOKENIZER_FILES:
        shutil.copyfile(DEMO_BASE / name, folder / name)
    config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    config.pop("chat_template", None)
    if in_tokenizer_config:
        config["chat_template"] = template
    else:
        (folder / "chat_template.jinja").write_text(template, encoding="utf-8")
    (folder / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return folder


def tokenizer_with(folder: Path, template: str, **where):
    return AutoTokenizer.from_pretrained(str(write_checkpoint_tokenizer(folder, template, **where)))


def transformers_rendering(tokenizer, texts) -> list[str]:
    return [
        tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True)
        for text in texts
    ]


# -- real templates ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template_path",
    [DEMO_BASE / "chat_template.jinja", *sorted(REAL_TEMPLATES.glob("*.jinja"))],
    ids=lambda path: path.parent.name if path.name == "chat_template.jinja" else path.stem,
)
def test_real_templates_render_byte_identically_to_transformers(tmp_path, template_path):
    tokenizer = tokenizer_with(tmp_path / "model", template_path.read_text(encoding="utf-8"))
    rendered = render_chat_template(tokenizer, TEXTS, checkpoint="model")
    assert rendered == transformers_rendering(tokenizer, TEXTS)
    assert all(text in prompt for text, prompt in zip(TEXTS, rendered) if text == text.strip())


def test_a_template_in_tokenizer_config_renders_the_same(tmp_path):
    template = (REAL_TEMPLATES / "qwen2.5.jinja").read_text(encoding="utf-8")
    tokenizer = tokenizer_with(tmp_path / "model", template, in_tokenizer_config=True)
    assert render_chat_template(tokenizer, TEXTS, checkpoint="model") == transformers_rendering(tokenizer, TEXTS)


def test_no_texts_start_no_process(tmp_path):
    tokenizer = tokenizer_with(tmp_path / "model", FOREVER)
    assert render_chat_template(tokenizer, [], checkpoint="model") == []


# -- hostile templates ---------------------------------------------------------------------------------

TIMED_OUT = "did not finish rendering 2 prompts within 1.02 s (limit 1 s + 0.01 s per prompt; real templates take milliseconds)"
OUT_OF_MEMORY = "needed more than the limit of 512 MiB of memory to render"


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        pytest.param(FOREVER, TIMED_OUT, id="nested range loops with empty bodies"),
        pytest.param("{% for c in 'x' * 10**8 %}{% endfor %}", TIMED_OUT, id="a loop over a huge string"),
        # Jinja's ** is left-associative: 10**10**10 is (10**10)**10, a harmless 101 digits.
        pytest.param("{{ 10 ** (10 ** 10) }}", TIMED_OUT, id="10**(10**10)"),
        pytest.param("{{ 'x' * 10**10 }}", OUT_OF_MEMORY, id="'x'*10**10"),
        pytest.param("{{ 'x' * 10**9 }}", OUT_OF_MEMORY, id="'x'*10**9"),
        pytest.param("{{ [0] * 10**10 }}", OUT_OF_MEMORY, id="a huge list"),
        pytest.param("{{ 'x'|center(10**9) }}", OUT_OF_MEMORY, id="center(10**9)"),
        pytest.param("{{ '{:>999999999}'.format(1) }}", OUT_OF_MEMORY, id="format width"),
        pytest.param(
            "{{ 'x' * 2000000 }}",
            f"rendered 2,000,000 characters for one prompt, over the limit of {MAX_CHAT_TEMPLATE_CHARS:,} characters",
            id="output over the limit",
        ),
        pytest.param(
            "{% macro down(n) %}{{ down(n + 1) }}{% endmacro %}{{ down(0) }}",
            "fails: RecursionError: maximum recursion depth exceeded",
            id="recursive macro",
        ),
        pytest.param(
            "{{ ''.__class__.__mro__ }}",
            "fails: SecurityError: access to attribute '__class__' of 'str' object is unsafe",
            id="sandbox refusal",
        ),
        pytest.param(
            "{% for message in messages %}\n{{ message['content'] }\n{% endfor %}",
            "fails: TemplateSyntaxError: unexpected '}' (line 2)",
            id="syntax error",
        ),
        pytest.param("{{ tools.first.name }}", "fails: UndefinedError: 'None' has no attribute 'first'", id="undefined"),
        pytest.param(
            "{{ messages[0]['content'] + 1 }}",
            'fails: TypeError: can only concatenate str (not "int") to str',
            id="type error",
        ),
        pytest.param(
            "{{ raise_exception('System role not supported\\n\\x1b[2Jsecond line') }}",
            "fails: TemplateError: System role not supported",
            id="raise_exception",
        ),
        pytest.param(
            "{{ raise_exception('x' * 5000) }}",
            f"fails: TemplateError: {'x' * chat_template.ERROR_EXCERPT_CHARS}…",
            id="a long error message",
        ),
    ],
)
def test_a_hostile_template_is_one_line_naming_checkpoint_file_and_limit(tmp_path, template, problem):
    folder = tmp_path / "hostile"
    tokenizer = tokenizer_with(folder, template)
    started = time.monotonic()
    with pytest.raises(BadCheckpoint) as raised:
        render_chat_template(tokenizer, ["What is 7 + 5?", "Hi"], checkpoint="hostile-model", limits=FAST)
    assert time.monotonic() - started < FAST.seconds + 60  # bounded, with room for a busy machine
    where = f"the chat template of hostile-model ({folder / 'chat_template.jinja'})"
    joiner = ": " if problem.startswith("the process") else " "
    message = str(raised.value)
    # Python words a RecursionError by where the depth ran out: its message is checked to that point.
    assert message.startswith(f"{where}{joiner}{problem}") and message.endswith("; fix or replace the template.")
    assert "\n" not in message and len(message) < len(where) + 400
    assert multiprocessing.active_children() == []  # the rendering child is gone, killed if it had to be


def test_the_error_names_tokenizer_config_when_the_template_lives_there(tmp_path):
    folder = tmp_path / "hostile"
    tokenizer = tokenizer_with(folder, FOREVER, in_tokenizer_config=True)
    with pytest.raises(BadCheckpoint, match=f"^the chat template of m \\({folder / 'tokenizer_config.json'}\\) did not"):
        render_chat_template(tokenizer, ["Hi"], checkpoint="m", limits=FAST)


class DiesWhileRendering:
    """A tokenizer stand-in whose rendering process is killed, as the kernel's OOM killer would."""

    chat_template = "{{ messages }}"
    name_or_path = "nowhere"

    def apply_chat_template(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)


@pytest.mark.skipif(chat_template.START_METHOD != "fork", reason="the stand-in is inherited, not pickled")
def test_a_killed_rendering_process_is_reported(tmp_path):
    with pytest.raises(BadCheckpoint) as raised:
        render_chat_template(DiesWhileRendering(), ["Hi"], checkpoint="m")
    assert str(raised.value) == (
        "the chat template of m (nowhere): the process rendering it was killed by signal 9 before finishing."
    )


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped by whoever adopted it, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc")
def test_a_rendering_child_whose_parent_was_killed_ends_by_its_cpu_limit(tmp_path):
    """SIGKILL the process rendering an endless template: its orphaned child stops within its CPU budget."""
    folder = write_checkpoint_tokenizer(tmp_path / "hostile", FOREVER)
    script = (
        "import multiprocessing, threading, time\n"
        "from transformers import AutoTokenizer\n"
        "from afterburn_core.generation.chat_template import TemplateLimits, render_chat_template\n"
        f"tokenizer = AutoTokenizer.from_pretrained({str(folder)!r})\n"
        "def tell():\n"
        "    while not multiprocessing.active_children():\n"
        "        time.sleep(0.05)\n"
        "    print(multiprocessing.active_children()[0].pid, flush=True)\n"
        "threading.Thread(target=tell, daemon=True).start()\n"
        "render_chat_template(tokenizer, ['Hi'], checkpoint='m', limits=TemplateLimits(seconds=2.0))\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    child_pid = int(parent.stdout.readline())
    parent.kill()
    parent.wait()
    assert _alive(child_pid)  # orphaned, still looping
    # Its CPU limit is ceil(2.01 s) + 1 s of CPU time since the fork; on a busy machine that CPU time takes
    # longer in wall-clock time, so the bound is generous (it only stops a child that never ends).
    deadline = time.monotonic() + HANG_S
    while _alive(child_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child_pid)


def test_platforms_without_fork_spawn_the_child_with_the_same_bounds(tmp_path, monkeypatch):
    """macOS and Windows start the child with spawn (the tokenizer is pickled); the output is the same
    and the time limit still stops an endless template."""
    monkeypatch.setattr(chat_template, "START_METHOD", "spawn")
    real = tokenizer_with(tmp_path / "real", (REAL_TEMPLATES / "llama3.2.jinja").read_text(encoding="utf-8"))
    assert render_chat_template(real, TEXTS, checkpoint="real") == transformers_rendering(real, TEXTS)
    hostile = tokenizer_with(tmp_path / "hostile", FOREVER)
    with pytest.raises(BadCheckpoint, match="did not finish rendering 1 prompt within 1.01 s"):
        render_chat_template(hostile, ["Hi"], checkpoint="hostile", limits=FAST)


# -- end to end ----------------------------------------------------------------------------------------


def hostile_checkpoint_and_suite(tmp_path: Path, template: str) -> tuple[Path, Path]:
    """A copy of the demo base whose chat template is ``template``, and a suite of two prompts."""
    hostile = tmp_path / "hostile"
    shutil.copytree(DEMO_BASE, hostile)
    write_checkpoint_tokenizer(hostile, template)
    suite = tmp_path / "two.yaml"
    suite.write_text(
        "name: two\nversion: 1\nprompts:\n"
        "  - {id: a, category: arithmetic, text: 'What is 7 + 5?'}\n"
        "  - {id: b, category: arithmetic, text: 'Hi'}\n",
        encoding="utf-8",
    )
    return hostile, suite


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        pytest.param(
            FOREVER,
            f"did not finish rendering 2 prompts within {MAX_CHAT_TEMPLATE_SECONDS + 0.02:g} s",
            id="endless loop",
        ),
        pytest.param("{{ ''.__class__.__mro__ }}", "fails: SecurityError", id="sandbox refusal"),
    ],
)
def test_behaviour_on_a_hostile_template_exits_2_in_one_line_and_the_run_fails(
    tmp_path, afterburn_home, template, problem
):
    hostile, suite = hostile_checkpoint_and_suite(tmp_path, template)
    result = afterburn(
        "behaviour", "--base", str(hostile), "--trained", "demo:trained", "--suites", str(suite),
        "--max-new-tokens", "2", "--device", "cpu",
    )
    assert result.returncode == 2, result.stderr
    *progress, error = result.stderr.strip().splitlines()  # the stage bars on stderr, then the error
    assert error.startswith(f"Error: the chat template of {hostile} ({hostile / 'chat_template.jinja'}) ")
    assert problem in error and "Traceback" not in result.stderr
    assert not any(line.startswith("Error") for line in progress), result.stderr
    with RunStore(afterburn_home) as store:
        (run,) = store.list_runs()
    assert run.status == "failed" and problem in run.error


def test_the_dashboards_worker_fails_the_run_on_an_endless_template(tmp_path, store):
    """The worker process the New run page launches ends the run failed with the same sentence."""
    hostile, suite = hostile_checkpoint_and_suite(tmp_path, FOREVER)
    config = AnalysisConfig(suites=(str(suite),), max_new_tokens=2, device="cpu")
    run_id = create_run(store, str(hostile), "demo:trained", config, ("generations",))
    worker = launch_worker(store, run_id)
    assert worker.wait(timeout=HANG_S) == 1
    run = store.get_run(run_id)
    assert run.status == "failed"
    assert run.error.startswith(f"the chat template of {hostile} ({hostile / 'chat_template.jinja'}) did not finish")
