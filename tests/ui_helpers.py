"""Hand-built results for the dashboard tests: realistic numbers, no analysis run.

``weight_diff_result`` builds a ``WeightDiffResult`` shaped like the bundled
demo pair (4 layers, hidden 128, 4 query heads over 2 kv heads, MLP 352,
vocabulary 1024, untied head) with what the demo plants: a rank-2 edit of
layer 1's ``q_proj``, layer 2's ``post_attention_layernorm`` scaled by 1.25
and 8 embedding rows moved far. Every number is deterministic, so a test can
assert what a page derives from it. ``store_result`` files it under a finished
run through the same store calls the runner uses.

``demo_generation_results`` runs the real generation, token-KL and behaviour
analyses on the demo pair once per process; ``hostile_generation_results``
is a copy of them whose one prompt answers with markup, for the escaping tests.

``open_app`` opens the dashboard under Streamlit's AppTest, as the page tests do;
``markdown_strings`` lists every string of it that Streamlit renders as markdown.

It fakes the analysis, never the store or the page: the AppTest and browser
tests read it back through ``afterburn_core.store.load_result``.
"""

from __future__ import annotations

import atexit
import functools
import math
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path

from streamlit.testing.v1 import AppTest

from waits import HANG_S

from afterburn_core.behaviour.types import BehaviourStats
from afterburn_core.config import AnalysisConfig
from afterburn_core.generation.results import GenerationsResult, TokenKLResult
from afterburn_core.generation.scorer import TOP_N_TOKENS
from afterburn_core.generation.results import PromptDivergence, TokenDivergence
from afterburn_core.jobs import create_run
from afterburn_core.runner import execute_run
from afterburn_core.store import load_result
from afterburn_core.serde import to_jsonable
from afterburn_core.store import RunStore
from afterburn_core.types import CheckpointRef
from afterburn_core.weights.types import (
    Concentration,
    Diagnosis,
    EmbeddingDrift,
    Finding,
    HeadScores,
    LayerModuleCell,
    NormShift,
    TensorDiff,
    TokenDrift,
    WeightDiffResult,
)

NUM_LAYERS = 4
HIDDEN = 128
NUM_HEADS = 4
NUM_KV_HEADS = 2
HEAD_DIM = HIDDEN // NUM_HEADS
MLP = 352
VOCAB = 1024
SPECTRUM_TOP_K = 16
ERROR_BOUND = 2.5e-4

EDITED_PROJECTION = "model.layers.1.self_attn.q_proj.weight"
RESCALED_NORM = "model.layers.2.post_attention_layernorm.weight"
EMBEDDING = "model.embed_tokens.weight"
HEAD = "lm_head.weight"
#: Relative change of every fine-tuned 2-D tensor but the edited one (a diffuse change).
DIFFUSE_CHANGE = 0.05
EDITED_CHANGE = 0.42
#: Shares of the edited tensor's ‖ΔW‖² in its two planted directions (the rest is the fine-tune's tail).
EDIT_ENERGY = (0.62, 0.37)
MOVED_TOKENS = ("ing", "tion", " wh", "ck", "ou", "ment", "ly", " pro")
MOVED_DRIFT = 1.47
MEDIAN_DRIFT = 0.098

_PROJECTIONS = {  # module -> (suffix, shape)
    "q": ("self_attn.q_proj.weight", (HIDDEN, HIDDEN)),
    "k": ("self_attn.k_proj.weight", (NUM_KV_HEADS * HEAD_DIM, HIDDEN)),
    "v": ("self_attn.v_proj.weight", (NUM_KV_HEADS * HEAD_DIM, HIDDEN)),
    "o": ("self_attn.o_proj.weight", (HIDDEN, HIDDEN)),
    "gate": ("mlp.gate_proj.weight", (MLP, HIDDEN)),
    "up": ("mlp.up_proj.weight", (MLP, HIDDEN)),
    "down": ("mlp.down_proj.weight", (HIDDEN, MLP)),
}
_NORMS = ("input_layernorm.weight", "post_attention_layernorm.weight")


APP = Path(__file__).resolve().parent.parent / "app.py"
#: A page script run's bound (the first imports pandas / pyarrow; later ones take well under a second): a hang's.
RUN_TIMEOUT_S = HANG_S


def open_app(page: str | None = None, **query_params: str) -> AppTest:
    """The dashboard under AppTest, on ``page`` (default: the first), with no exception shown."""
    app = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT_S)
    app.query_params.update(query_params)
    app.run()
    if page is not None:
        app.switch_page(page).run()
    assert not app.exception, [exception.value for exception in app.exception]
    return app


#: Proto fields the frontend renders as markdown: bodies (markdown, captions, alerts, headings), labels
#: (widgets, links, expanders), tooltips, placeholders and progress-bar text.
MARKDOWN_FIELDS = frozenset({"body", "label", "help", "text", "placeholder"})
#: Elements whose body is shown verbatim (``st.text``, ``st.code``) or is not the page's (the exception box).
PLAIN_ELEMENTS = frozenset({"text", "code", "exception", "json"})


def markdown_strings(app: AppTest) -> list[str]:
    """Every string on the page, sidebar included, that Streamlit renders as markdown.

    Read from the element protos, so a new element, label or tooltip a page adds is
    covered without naming it here; tables, charts and option lists are plain text and
    are left out.
    """
    found: list[str] = []

    def visit(node) -> None:
        if node.type not in PLAIN_ELEMENTS and node.proto is not None:
            found.extend(_markdown_fields(node.proto))
        for child in getattr(node, "children", {}).values():
            visit(child)

    visit(app.main)
    visit(app.sidebar)
    return found


def _markdown_fields(message) -> list[str]:
    strings = []
    for field, value in message.ListFields():
        if field.type == field.TYPE_MESSAGE and field.message_type.GetOptions().map_entry:
            continue  # maps hold settings (a chart's config, a widget's options by id), not shown text
        values = value if field.is_repeated else (value,)
        if field.type == field.TYPE_MESSAGE:
            strings += [text for item in values for text in _markdown_fields(item)]
        elif field.type == field.TYPE_STRING and field.name in MARKDOWN_FIELDS:
            strings += list(values)
    return strings


def _diffuse_spectrum(delta_norm: float, size: int) -> tuple[float, ...]:
    """Top-k singular values of a diffuse change: a slow decay whose squares sum to under ‖ΔW‖²."""
    decay = [1.0 / math.sqrt(1 + index / 4) for index in range(size)]
    scale = delta_norm * 0.2 / decay[0]
    return tuple(round(scale * value, 6) for value in decay[:SPECTRUM_TOP_K])


def _matrix(name: str, module: str, layer: int | None, shape: tuple[int, int], change: float,
            seed: int) -> TensorDiff:
    base_norm = round(math.sqrt(shape[0] * shape[1]) * 0.02 * (1 + 0.03 * seed), 6)
    if name == EDITED_PROJECTION:
        delta_norm = round(base_norm * EDITED_CHANGE, 6)
        tail = math.sqrt((1 - sum(EDIT_ENERGY)) / (SPECTRUM_TOP_K + 8)) * delta_norm
        singular_values = (
            *(round(math.sqrt(share) * delta_norm, 6) for share in EDIT_ENERGY),
            *(round(tail * (1.2 - 0.03 * index), 6) for index in range(SPECTRUM_TOP_K - 2)),
        )
        effective_rank, stable_rank, rank_90, rank_99, low_rank = 2.3, 1.6, 2, 3, True
    else:
        delta_norm = round(base_norm * change * (1 + 0.02 * seed), 6)
        singular_values = _diffuse_spectrum(delta_norm, min(shape))
        effective_rank, stable_rank = round(0.45 * min(shape) + seed % 5, 3), round(0.2 * min(shape), 3)
        rank_90, rank_99, low_rank = None, None, False
    energy_top_k = min(1.0, round(sum(value * value for value in singular_values) / delta_norm**2, 6))
    return TensorDiff(
        name=name, shape=shape, status="changed", module=module, layer=layer,
        dtype_base="F32", dtype_trained="F32",
        frob_norm_base=base_norm, frob_norm_delta=delta_norm,
        relative_change=round(delta_norm / base_norm, 6),
        cosine_similarity=round(1 - (delta_norm / base_norm) ** 2 / 2, 6), fraction_unchanged=0.0,
        singular_values=singular_values, spectrum_method="randomized", spectrum_error_bound=ERROR_BOUND,
        effective_rank=effective_rank, stable_rank=stable_rank, rank_90=rank_90, low_rank=low_rank,
        frob_norm_trained=round(math.hypot(base_norm, delta_norm), 6), max_abs_delta=round(delta_norm / 20, 6),
        fraction_unchanged_within_resolution=0.0, rank_99=rank_99, energy_top_k=energy_top_k,
    )


def _norm(name: str, layer: int | None, scale: float, seed: int) -> tuple[TensorDiff, NormShift]:
    base_norm = math.sqrt(HIDDEN)
    relative = abs(scale - 1) if scale != 1 else round(0.01 + 0.003 * seed, 6)
    tensor = TensorDiff(
        name=name, shape=(HIDDEN,), status="changed", module="norm", layer=layer,
        dtype_base="F32", dtype_trained="F32", frob_norm_base=round(base_norm, 6),
        frob_norm_delta=round(base_norm * relative, 6), relative_change=round(relative, 6),
        cosine_similarity=0.9999, fraction_unchanged=0.0,
    )
    shift = NormShift(
        name=name, layer=layer, kind="gamma", mean_base=1.0,
        mean_trained=round(scale if scale != 1 else 1 + relative / 2, 6),
        mean_ratio=round(scale if scale != 1 else 1 + relative / 2, 6),
        relative_change=round(relative, 6), max_abs_delta=round(relative * 1.8, 6),
    )
    return tensor, shift


def _cells(tensors: list[TensorDiff]) -> tuple[LayerModuleCell, ...]:
    groups: dict[tuple[int | None, str], list[TensorDiff]] = {}
    for tensor in tensors:
        if tensor.frob_norm_delta is not None:
            groups.setdefault((tensor.layer, tensor.module), []).append(tensor)
    cells = []
    for (layer, module), members in groups.items():
        base = math.sqrt(sum(member.frob_norm_base**2 for member in members))
        delta = math.sqrt(sum(member.frob_norm_delta**2 for member in members))
        ranks = [member.effective_rank for member in members if member.effective_rank is not None]
        energies = [member.energy_top_k for member in members if member.energy_top_k is not None]
        cells.append(LayerModuleCell(
            layer=layer, module=module, tensors=len(members), frob_norm_base=round(base, 6),
            frob_norm_delta=round(delta, 6), relative_change=round(delta / base, 6) if base else 0.0,
            effective_rank=ranks[0] if len(ranks) == 1 else None,
            energy_top_k=energies[0] if len(energies) == 1 else None,
        ))
    return tuple(cells)


def _heads(edited_layer: int = 1) -> HeadScores:
    def grid(projection: str) -> tuple[tuple[float, ...], ...]:
        rows = []
        for layer in range(NUM_LAYERS):
            row = []
            for head in range(NUM_HEADS):
                score = DIFFUSE_CHANGE * (1 + 0.05 * ((layer * NUM_HEADS + head) % 7))
                if projection == "q" and layer == edited_layer and head in (0, 2):
                    score = 0.61 if head == 0 else 0.48
                row.append(round(score, 6))
            rows.append(tuple(row))
        return tuple(rows)

    per_projection = {projection: grid(projection) for projection in ("q", "k", "v", "o")}
    combined = tuple(
        tuple(round(sum(per_projection[p][layer][head] for p in per_projection) / 4, 6) for head in range(NUM_HEADS))
        for layer in range(NUM_LAYERS)
    )
    return HeadScores(NUM_LAYERS, NUM_HEADS, NUM_KV_HEADS, tuple(range(NUM_LAYERS)), combined, per_projection)


def _embedding_drift(token_strings: tuple[str, ...]) -> EmbeddingDrift:
    moved = tuple(
        TokenDrift(token_id=517 + 31 * index, token=token, drift=round(MOVED_DRIFT - 0.01 * index, 6),
                   relative_drift=round((MOVED_DRIFT - 0.01 * index) / 0.24, 6))
        for index, token in enumerate(token_strings)
    )
    ordinary = tuple(
        TokenDrift(token_id=40 + index, token=token, drift=round(0.21 - 0.01 * index, 6),
                   relative_drift=round((0.21 - 0.01 * index) / 0.24, 6))
        for index, token in enumerate(("Great", " question", "!", "```"))
    )
    head = tuple(
        TokenDrift(token_id=40 + index, token=token, drift=round(0.35 - 0.02 * index, 6),
                   relative_drift=round((0.35 - 0.02 * index) / 0.3, 6))
        for index, token in enumerate(("Great", " question", " helps", "```"))
    )
    return EmbeddingDrift(
        tensor=EMBEDDING, rows_compared=VOCAB, rows_added=0, rows_unchanged=0, median_drift=MEDIAN_DRIFT,
        top_tokens=moved + ordinary, head_tensor=HEAD, head_top_tokens=head,
    )


def _findings() -> tuple[Finding, ...]:
    return (
        Finding("Low-rank edit", f"{EDITED_PROJECTION}: 2 directions hold 99% of its change "
                "(effective rank 2.3, relative change 0.42, 8.4× the median tensor).", 2.3, "warning"),
        Finding("Norm rescaled", f"{RESCALED_NORM}: mean gain ×1.25.", 1.25, "notable"),
        Finding("Embedding rows moved", f"8 rows of {EMBEDDING} drifted 15× the median row drift.", 15.0,
                "notable"),
        Finding("Change is concentrated", "The top 10% of tensors hold 62% of ‖ΔW‖².", 0.62, "info"),
    )


def weight_diff_result(*, token_strings: tuple[str, ...] = MOVED_TOKENS, unpaired: bool = False) -> WeightDiffResult:
    """A demo-shaped weight diff of a full fine-tune (see the module docstring).

    ``token_strings`` are the decoded tokens of the moved embedding rows (a test
    passes hostile ones). ``unpaired`` adds one tensor of each kind that is not
    compared one to one: base only, post-trained only, resized (a vocabulary
    grown by 8 rows) and tied (the head to the embedding).
    """
    tensors: list[TensorDiff] = []
    norms: list[NormShift] = []
    seed = 0
    for layer in range(NUM_LAYERS):
        for module, (suffix, shape) in _PROJECTIONS.items():
            name = f"model.layers.{layer}.{suffix}"
            tensors.append(_matrix(name, module, layer, shape, DIFFUSE_CHANGE, seed))
            seed += 1
        for suffix in _NORMS:
            name = f"model.layers.{layer}.{suffix}"
            tensor, shift = _norm(name, layer, 1.25 if name == RESCALED_NORM else 1.0, seed)
            tensors.append(tensor)
            norms.append(shift)
            seed += 1
    final_tensor, final_shift = _norm("model.norm.weight", None, 1.0, seed)
    tensors.append(final_tensor)
    norms.append(final_shift)
    embedding = _matrix(EMBEDDING, "embed", None, (VOCAB, HIDDEN), 0.09, 3)
    head = _matrix(HEAD, "head", None, (VOCAB, HIDDEN), 0.06, 4)
    if unpaired:
        embedding = replace(embedding, status="resized", trained_shape=(VOCAB + 8, HIDDEN), added_rows=8)
        head = replace(head, status="tied", tied_to=EMBEDDING, frob_norm_delta=None, relative_change=None,
                       singular_values=None, spectrum_method=None, effective_rank=None, energy_top_k=None)
        tensors += [
            TensorDiff("model.layers.0.self_attn.rotary_emb.inv_freq", (HEAD_DIM // 2,), "base_only", "other", 0,
                       "F32", None, 1.7, None, None, None, None),
            TensorDiff("score.weight", (2, HIDDEN), "trained_only", "other", None, None, "F32", None, None, None,
                       None, None),
        ]
    tensors += [embedding, head]
    return WeightDiffResult(
        base=CheckpointRef("demo:base", "b" * 64, "local_dir"),
        trained=CheckpointRef("demo:trained", "t" * 64, "local_dir"),
        tensors=tuple(tensors),
        layers=_cells(tensors),
        heads=_heads(),
        norms=tuple(norms),
        embeddings=_embedding_drift(token_strings),
        concentration=Concentration(
            top_decile_share=0.62, gini=0.71,
            tensors_with_change=sum(tensor.status in ("changed", "resized") for tensor in tensors),
        ),
        diagnosis=Diagnosis("surgical", _findings()),
        spectrum_top_k=SPECTRUM_TOP_K,
        exact=False,
        device="cpu",
        seconds=3.2,
    )


def adapter_result(rank: int = 8) -> WeightDiffResult:
    """A demo-shaped LoRA adapter (``q_proj``, ``v_proj``, ``o_proj`` of every layer, rank ``rank``)."""
    tensors: list[TensorDiff] = []
    for layer in range(NUM_LAYERS):
        for module, (suffix, shape) in _PROJECTIONS.items():
            name = f"model.layers.{layer}.{suffix}"
            base_norm = round(math.sqrt(shape[0] * shape[1]) * 0.02, 6)
            if module not in ("q", "v", "o"):
                tensors.append(TensorDiff(name, shape, "unchanged", module, layer, "F32", "F32", base_norm, 0.0, 0.0,
                                          1.0, 1.0))
                continue
            singular_values = tuple(round(0.3 * (1 + layer / 4) / (1 + index), 6) for index in range(rank))
            delta_norm = round(math.sqrt(sum(value * value for value in singular_values)), 6)
            tensors.append(TensorDiff(
                name, shape, "changed", module, layer, "F32", "F32", base_norm, delta_norm,
                round(delta_norm / base_norm, 6), 0.999, 0.0, singular_values=singular_values,
                spectrum_method="lora_factors", spectrum_error_bound=0.0, effective_rank=round(rank * 0.6, 3),
                stable_rank=1.9, rank_90=4, low_rank=True, rank_99=7, energy_top_k=1.0,
            ))
    return WeightDiffResult(
        base=CheckpointRef("demo:base", "b" * 64, "local_dir"),
        trained=CheckpointRef("demo:lora", "l" * 64, "adapter"),
        tensors=tuple(tensors),
        layers=_cells(tensors),
        heads=None,
        norms=(),
        embeddings=None,
        concentration=Concentration(top_decile_share=0.31, gini=0.77, tensors_with_change=3 * NUM_LAYERS),
        diagnosis=Diagnosis("surgical", (
            Finding("Adapter", f"A rank-{rank} LoRA adapter on q_proj, v_proj and o_proj of {NUM_LAYERS} layers.",
                    float(rank), "info"),
        )),
        spectrum_top_k=SPECTRUM_TOP_K,
        exact=False,
        device="cpu",
        seconds=0.4,
        is_adapter=True,
    )


def store_result(store: RunStore, result: WeightDiffResult) -> str:
    """A finished run of ``result``'s pair whose ``weights`` result is ``result``; its run id."""
    run_id = create_run(store, result.base.reference, result.trained.reference, AnalysisConfig())
    store.put_result(run_id, f"test-weights-{run_id}", WeightDiffResult.KIND, WeightDiffResult.SCHEMA_VERSION,
                     to_jsonable(result))
    store.finish_run(run_id, "done")
    return run_id


# --- behaviour and prompts: the real demo run, and hostile copies of it ---------------------------

#: What Streamlit's markdown turns into something else (an icon, a colour, LaTeX, bold, a tag,
#: an emoji, an arrow) when a page renders a model's words as markdown.
DIRECTIVES = (":material/warning:", ":red[x]", "$x$", "**b**", "<b>", ":smile:", "a -> b")
#: A model answer that would become markup if any page rendered it as markdown or HTML.
HOSTILE_OUTPUT = (
    "<script>alert(1)</script> <img src=x onerror=alert(1)> [click](javascript:alert(1)) "
    f":red[red] **bold** $x^2$ {' '.join(DIRECTIVES)} \u202eevil\nnext line"
)
HOSTILE_BASE_OUTPUT = "<b>base</b> [home](http://example.com) :red[red] **bold**"
HOSTILE_PROMPT = f"Say <img src=x onerror=alert(2)> and [this](javascript:alert(2)) {' '.join(DIRECTIVES)}"
HOSTILE_CATEGORY = f"<img src=x onerror=alert(3)> {' '.join(DIRECTIVES)}"
#: The demo prompt whose answers the hostile copy replaces.
HOSTILE_PROMPT_LINK = "math/math-arith-01"
DEMO_CONFIG = {"max_new_tokens": 96}


@functools.lru_cache(maxsize=1)
def demo_generation_results() -> tuple[GenerationsResult, TokenKLResult, BehaviourStats]:
    """The real generations, token KL and behaviour statistics of the demo pair, computed once per process.

    The run lives in its own throwaway store (~15 s on 2 cores); tests file
    copies of its results in their own store with ``store_generation_results``.
    """
    home = Path(tempfile.mkdtemp(prefix="afterburn-demo-run-"))
    atexit.register(shutil.rmtree, home, ignore_errors=True)
    with RunStore(home) as store:
        run_id = create_run(store, "demo:base", "demo:trained", AnalysisConfig(**DEMO_CONFIG),
                            analyses=("token_kl", "behaviour"))
        status = execute_run(store, run_id)
        assert status == "done", store.get_run(run_id).error
        return (load_result(store, run_id, GenerationsResult), load_result(store, run_id, TokenKLResult),
                load_result(store, run_id, BehaviourStats))


def store_generation_results(store: RunStore, *results, skipped: dict[str, str] | None = None) -> str:
    """A finished demo run holding ``results`` (any of generations, token KL, behaviour); its run id.

    ``skipped`` marks stages as skipped with their reason, as the runner does for one that does not apply.
    """
    run_id = create_run(store, "demo:base", "demo:trained", AnalysisConfig(**DEMO_CONFIG))
    for result in results:
        store.put_result(run_id, f"test-{result.KIND}-{run_id}", result.KIND, result.SCHEMA_VERSION,
                         to_jsonable(result))
    for stage, reason in (skipped or {}).items():
        store.update_stage(run_id, stage, "skipped", 0, 0, reason)
    store.finish_run(run_id, "done")
    return run_id


def _hostile_tokens() -> tuple[str, ...]:
    """``HOSTILE_OUTPUT`` cut into token-sized pieces (they join back to the text)."""
    pieces, current = [], ""
    for char in HOSTILE_OUTPUT:
        current += char
        if char in " >\n" or len(current) >= 6:
            pieces.append(current)
            current = ""
    return tuple(pieces + ([current] if current else []))


def hostile_generation_results() -> tuple[GenerationsResult, TokenKLResult, BehaviourStats]:
    """The demo run's results with ``HOSTILE_PROMPT_LINK``'s prompt and answers replaced by markup.

    The trained answer's tokens carry rising KLs, so the most divergent token is
    the last; the prompt's category is renamed ``HOSTILE_CATEGORY`` (in the
    statistics and in all its prompts).
    """
    generations, token_kl, behaviour = demo_generation_results()
    suite, prompt_id = HOSTILE_PROMPT_LINK.split("/")
    index = next(i for i, prompt in enumerate(generations.prompts)
                 if prompt.suite == suite and prompt.prompt_id == prompt_id)
    tokens = _hostile_tokens()
    token_ids = tuple(range(100, 100 + len(tokens)))
    trained = replace(generations.trained[index], text=HOSTILE_OUTPUT, output_token_ids=token_ids,
                      n_tokens=len(tokens), token_logprobs=tuple(-0.5 for _ in tokens))
    base = replace(generations.base[index], text=HOSTILE_BASE_OUTPUT)
    math = behaviour.suites[suite]
    renamed = generations.prompts[index].category

    def hostile_prompt(i: int, prompt):
        if prompt.suite == suite and prompt.category == renamed:
            prompt = replace(prompt, category=HOSTILE_CATEGORY)
        return replace(prompt, text=HOSTILE_PROMPT) if i == index else prompt

    generations = replace(
        generations,
        prompts=tuple(hostile_prompt(i, prompt) for i, prompt in enumerate(generations.prompts)),
        base=tuple(base if i == index else completion for i, completion in enumerate(generations.base)),
        trained=tuple(trained if i == index else completion for i, completion in enumerate(generations.trained)),
    )
    kl = tuple(round(0.5 + position * 0.25, 3) for position in range(len(tokens)))
    logprob_base = tuple(-3.0 for _ in tokens)
    logprob_trained = tuple(-0.5 for _ in tokens)
    ranked = sorted(range(len(tokens)), key=lambda position: -kl[position])[:TOP_N_TOKENS]
    scored = PromptDivergence(
        prompt_id=HOSTILE_PROMPT_LINK, token_ids=token_ids, tokens=tokens, kl_per_token=kl,
        logprob_base=logprob_base, logprob_trained=logprob_trained,
        logprob_shift=tuple(t - b for t, b in zip(logprob_trained, logprob_base)),
        mean_kl=sum(kl) / len(kl),
        top_tokens=tuple(TokenDivergence(p, token_ids[p], tokens[p], kl[p], logprob_base[p], logprob_trained[p])
                         for p in ranked),
        kl_error_bound=0.0,
    )
    token_kl = replace(token_kl, scores=replace(token_kl.scores, prompts=tuple(
        scored if prompt.prompt_id == HOSTILE_PROMPT_LINK else prompt for prompt in token_kl.scores.prompts)))
    categories = {HOSTILE_CATEGORY if name == renamed else name:
                  replace(group, category=HOSTILE_CATEGORY) if name == renamed else group
                  for name, group in math.categories.items()}
    behaviour = replace(behaviour, suites={**behaviour.suites, suite: replace(math, categories=categories)})
    return generations, token_kl, behaviour


def finished_run(store: RunStore, base: Path, trained: Path) -> str:
    """A run of every analysis on ``base`` / ``trained``, computed here to the end."""
    run_id = create_run(store, str(base), str(trained), AnalysisConfig(method="sft"))
    assert execute_run(store, run_id) == "done"
    return run_id
