"""Every architecture of ``architecture_factories`` run through the real stages once, and what the table says of it.

``evaluate(spec, folder) -> Evaluation`` builds the pair and runs it as a user's
run would: the weight diff (``analyze_weights``) of the planted and of the
identical copy, then generation, token KL and behaviour (``generate_pair``,
``score_pair``, ``compare_behaviour``: what the registered stages call) on the
planted pair over ``SUITE`` (3 prompts, ``MAX_NEW_TOKENS`` new tokens, greedy,
CPU), and the internals analysis (``analyze_internals``) of the planted and the
identical pair on ``INTERNALS_PASSAGES`` neutral passages and the suite. With ``gguf_quant`` the three folders are first converted to GGUF files
the way llama.cpp's converter writes them (``gguf_factories``, Llama-family
specs only) and every stage reads those files instead. ``criteria(evaluation)`` reads the issue's checks off those results,
each with the value it measured; ``table_markdown`` draws them as the table
``scripts/architecture_table.py`` puts in the README, and ``test_architectures``
asserts the README holds the rows of the very results it checked.
``packed_refusal_row(folder)`` is the row of a GPTQ-packed safetensors
checkpoint: refused in one line, nothing measured. ``evaluate_moe`` runs the
same stages on ``moe_factories``' pairs (per expert and stacked), whose
``moe_criteria`` are their own: the planted expert tops its layer with rank₉₀
2, the routing finding names the planted router's layer, no module "other",
the identical copy clean, the stages complete, internals read as for the dense ones.

Cost per architecture on 2 CPU cores: about 2 s (two weight diffs, four model loads,
six short generations).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from architecture_factories import LAYERS, MOVED_ROWS, NORM_FACTOR, Q_HEAD, Q_LAYER, Spec, build_pair
from moe_factories import EXPERT, EXPERT_LAYER, LAYOUTS, ROUTER_LAYER, MoeSpec, build_moe

from afterburn_core.behaviour.types import BehaviourStats
from afterburn_core.checkpoints import normalize_tensor_name, resolve
from afterburn_core.config import AnalysisConfig
from afterburn_core.generation.results import GenerationsResult, TokenKLResult
from afterburn_core.internals.types import InternalsResult
from afterburn_core.weights.analysis import analyze_weights
from afterburn_core.weights.types import WeightDiffResult

MAX_NEW_TOKENS = 4
#: The internals sample of the table: enough neutral passages for every position statistic, small enough
#: that two internals runs add well under a second per architecture.
INTERNALS_PASSAGES, INTERNALS_TOKENS = 12, 16
SUITE = """\
name: architectures
version: 1
description: Three short prompts every tiny architecture answers.
prompts:
  - {id: add, category: math, text: "What is two plus three?", expected_answer: "5"}
  - {id: poem, category: writing, text: "Write a short poem about the sea."}
  - {id: sky, category: facts, text: "Name a colour of the sky."}
"""
SUITE_PROMPTS = 3
#: The columns of the table, in order (the format column comes first).
COLUMNS = ("planted q head ranks first", f"norm reads ×{NORM_FACTOR:g}", "moved rows are the top tokens",
           'no module "other"', "identical copy clean", "generation, token KL, behaviour",
           "internals: every layer read, identical reads 0")


@dataclass(frozen=True)
class Evaluation:
    """One architecture's results: the two weight diffs and the planted pair's generation-side stages."""

    spec: Spec
    planted: WeightDiffResult
    identical: WeightDiffResult
    generations: GenerationsResult
    token_kl: TokenKLResult
    behaviour: BehaviourStats
    internals: InternalsResult
    internals_identical: InternalsResult
    gguf_quant: str | None = None


@dataclass(frozen=True)
class Criterion:
    """One cell: whether the check holds, and what was measured."""

    passed: bool
    measured: str

    def cell(self) -> str:
        return f"{'✓' if self.passed else '✗'} {self.measured}"


def _as_gguf(folder: Path, quant: str) -> Path:
    from gguf_factories import write_llama_gguf

    target = folder.parent / f"{folder.name}-gguf"
    target.mkdir()
    return write_llama_gguf(folder, target / f"{folder.name}-{quant}.gguf", quant)


def _run(folder: Path, sides: tuple[Path, Path, Path]):
    """Weight diffs of (base, trained) and (base, identical), then generation, token KL and behaviour on the first."""
    from afterburn_core.behaviour.analysis import compare_behaviour
    from afterburn_core.generation.pipeline import generate_pair, score_pair
    from afterburn_core.internals.analysis import analyze_internals

    suite = folder / "suite.yaml"
    suite.write_text(SUITE, encoding="utf-8")
    config = AnalysisConfig(device="cpu", suites=(str(suite),), max_new_tokens=MAX_NEW_TOKENS)
    base, trained, identical = (resolve(str(side)) for side in sides)
    generations = generate_pair(base, trained, config)
    internals_config = config.replace(internals_passages=INTERNALS_PASSAGES, internals_tokens=INTERNALS_TOKENS)
    return dict(
        internals=analyze_internals(base, trained, internals_config, generations),
        internals_identical=analyze_internals(base, identical, internals_config, generations),
        planted=analyze_weights(base, trained, config),
        identical=analyze_weights(base, identical, config),
        generations=generations,
        token_kl=score_pair(base, trained, generations, config),
        behaviour=compare_behaviour(generations.prompts, generations.base, generations.trained, seed=config.seed),
    )


def evaluate(spec: Spec, folder: Path, gguf_quant: str | None = None) -> Evaluation:
    """Build ``spec``'s pair under ``folder`` and run every stage on it (see the module docstring)."""
    pair = build_pair(spec, folder)
    sides = (pair.base, pair.trained, pair.identical)
    if gguf_quant is not None:
        sides = tuple(_as_gguf(side, gguf_quant) for side in sides)
    return Evaluation(spec=spec, gguf_quant=gguf_quant, **_run(folder, sides))


def head_argmax(matrix) -> tuple[int, int]:
    """``(layer, head)`` of the largest score of a layers × heads grid (NaN read as lowest)."""
    values = np.nan_to_num(np.array(matrix, dtype=np.float64), nan=-1.0)
    layer, head = np.unravel_index(int(np.argmax(values)), values.shape)
    return int(layer), int(head)


def _q_head(result: WeightDiffResult) -> Criterion:
    if result.heads is None:
        return Criterion(False, f"no heads: {result.heads_reason}")
    q_first = head_argmax(result.heads.per_projection["q"])
    combined_first = head_argmax(result.heads.scores)
    score = result.heads.per_projection["q"][q_first[0]][q_first[1]]
    passed = q_first == combined_first == (Q_LAYER, Q_HEAD)
    return Criterion(passed, f"layer {q_first[0]} head {q_first[1]} ({score:.2f})")


def _norm(result: WeightDiffResult, spec: Spec) -> Criterion:
    key = normalize_tensor_name(spec.norm)
    shift = next((shift for shift in result.norms if shift.name == key), None)
    if shift is None:
        return Criterion(False, f"{spec.norm} not read as a norm")
    offset = " of 1 + w" if shift.offset else ""
    return Criterion(abs(shift.mean_ratio - NORM_FACTOR) < 1e-4, f"×{shift.mean_ratio:.3f}{offset}")


def _rows(result: WeightDiffResult) -> Criterion:
    if result.embeddings is None:
        return Criterion(False, "no embedding drift")
    top = [token.token_id for token in result.embeddings.top_tokens[:len(MOVED_ROWS)]]
    return Criterion(top == sorted(MOVED_ROWS, reverse=True), "rows " + ", ".join(map(str, top)))


def _modules(result: WeightDiffResult) -> Criterion:
    other = sum(tensor.module == "other" for tensor in result.tensors)
    return Criterion(other == 0, f"{other} of {len(result.tensors)} tensors")


def _clean(result: WeightDiffResult) -> Criterion:
    return Criterion(result.diagnosis.profile == "identical", f"profile {result.diagnosis.profile}")


def _stages(evaluation: Evaluation) -> Criterion:
    generations, scores = evaluation.generations, evaluation.token_kl.scores
    answered = sum(1 <= len(c.output_token_ids) <= MAX_NEW_TOKENS for c in generations.base + generations.trained)
    kl = [value for prompt in scores.prompts for value in prompt.kl_per_token]
    passed = (len(generations.prompts) == SUITE_PROMPTS and answered == 2 * SUITE_PROMPTS
              and scores.n_positions == len(kl) > 0 and all(np.isfinite(kl)) and min(kl) >= 0
              and evaluation.behaviour.n_prompts == SUITE_PROMPTS)
    return Criterion(passed, f"{answered} answers, {len(kl)} tokens scored")


def _internals(evaluation) -> Criterion:
    """The internals analysis reads every decoder block: the planted pair differs at each, the identical copy
    reads exactly 0 (relative norm and logit-lens KL on every input set) and promotes no token."""
    planted, identical = evaluation.internals, evaluation.internals_identical
    layers = len(planted.layers)
    moved = sum(layer.relative_norm > 0 and layer.logit_lens_kl > 0 for layer in planted.layers)
    zero = all(stats.relative_norm == 0 and stats.logit_lens_kl == 0
               for entry in identical.input_sets for stats in entry.layers)
    silent = all(not reading.promoted for reading in identical.adl)
    passed = layers == LAYERS and moved == layers and zero and silent and len(identical.input_sets) == 2
    return Criterion(passed, f"{moved} of {layers} layers moved, identical {'0' if zero and silent else '≠ 0'}")


def criteria(evaluation: Evaluation) -> tuple[Criterion, ...]:
    """The cells of ``COLUMNS`` for one evaluated architecture."""
    planted = evaluation.planted
    return (_q_head(planted), _norm(planted, evaluation.spec), _rows(planted), _modules(planted),
            _clean(evaluation.identical), _stages(evaluation), _internals(evaluation))


def format_note(spec: Spec, gguf_quant: str | None = None) -> str:
    """What of the on-disk layout the architecture exercises, from its spec."""
    if gguf_quant is not None:
        return f"GGUF {gguf_quant} of the safetensors pair (llama.cpp names, q/k rows permuted)"
    parts = ["safetensors"]
    if spec.conv1d:
        parts.append("Conv1D (in × out)")
    component = spec.q_weight.split(".")[-2]
    if component != "q_proj":
        parts.append(f"fused `{component}`")
    if spec.offset_norm:
        parts.append("offset norms (1 + w)")
    if spec.note:
        parts.append(spec.note)
    return ", ".join(parts)


def table_row(evaluation: Evaluation) -> str:
    spec = evaluation.spec
    cells = [f"`{spec.name}`", format_note(spec, evaluation.gguf_quant),
             *(criterion.cell() for criterion in criteria(evaluation))]
    return "| " + " | ".join(cells) + " |"


def table_markdown(evaluations, extra_rows: tuple[str, ...] = ()) -> str:
    """The table: a header, one row per evaluation, then ``extra_rows`` (already drawn)."""
    header = "| architecture | format | " + " | ".join(COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 2)]
    lines += [table_row(evaluation) for evaluation in evaluations]
    lines += list(extra_rows)
    return "\n".join(lines) + "\n"


#: A GPTQ checkpoint's packed tensors (AutoGPTQ / optimum names) and the config entry naming the method.
GPTQ_TENSORS = ("qweight", "qzeros", "scales", "g_idx")
GPTQ_CONFIG = {"quant_method": "gptq", "bits": 4, "group_size": 128}


def packed_refusal_row(spec: Spec, folder: Path) -> str:
    """The row of ``spec``'s model saved GPTQ-packed: ``resolve`` refuses it in one line (the folder shown as <folder>)."""
    import json

    import torch
    from safetensors.torch import save_file

    from afterburn_core.errors import BadCheckpoint

    packed = folder / "gptq"
    packed.mkdir(parents=True)
    config = json.loads(spec.config().to_json_string())
    (packed / "config.json").write_text(json.dumps({**config, "quantization_config": GPTQ_CONFIG}), encoding="utf-8")
    prefix = spec.q_weight.format(0).removesuffix(".weight")
    save_file({f"{prefix}.{name}": torch.zeros(4, 4, dtype=torch.int32) for name in GPTQ_TENSORS},
              str(packed / "model.safetensors"))
    try:
        resolve(str(packed))
    except BadCheckpoint as error:
        cell = f"✓ refused in one line: `{str(error).replace(str(packed), '<folder>')}`"
    else:
        cell = "✗ read as if its packed integers were weights"
    dashes = " | ".join("—" for _ in COLUMNS[1:])
    return f"| `{spec.name}` | safetensors, GPTQ-packed ({', '.join(f'`{name}`' for name in GPTQ_TENSORS)}) | {cell} | {dashes} |"


# --- mixture of experts: a planted expert and router instead of a q head, a norm and rows --------------------

#: The MoE architectures of the table, each run in both on-disk layouts (per expert, stacked).
MOE_ARCHITECTURES = ("mixtral", "qwen3_moe")
#: The columns of the MoE table (the format column comes first).
MOE_COLUMNS = ("planted expert ranks first", "router finding names the planted layer", 'no module "other"',
               "identical copy clean", "generation, token KL, behaviour", COLUMNS[-1])


@dataclass(frozen=True)
class MoeEvaluation:
    """One MoE architecture in one on-disk layout: the two weight diffs and the planted pair's generation stages."""

    spec: MoeSpec
    layout: str
    planted: WeightDiffResult
    identical: WeightDiffResult
    generations: GenerationsResult
    token_kl: TokenKLResult
    behaviour: BehaviourStats
    internals: InternalsResult
    internals_identical: InternalsResult


def evaluate_moe(item: MoeSpec, folder: Path, layouts: tuple[str, ...] = LAYOUTS) -> list[MoeEvaluation]:
    """Build ``item``'s pairs under ``folder`` once and run every stage on each of ``layouts``."""
    pairs = build_moe(item, folder)
    return [MoeEvaluation(spec=item, layout=layout,
                          **_run(folder / layout, (pairs[layout].base, pairs[layout].trained, pairs[layout].identical)))
            for layout in layouts]


def _planted_expert(result: WeightDiffResult) -> Criterion:
    moe = next((moe for moe in result.experts if moe.layer == EXPERT_LAYER), None)
    if moe is None:
        return Criterion(False, f"no experts table for layer {EXPERT_LAYER}")
    top = max((change for change in moe.experts if not change.shared), key=lambda change: change.relative_change)
    return Criterion(top.expert == EXPERT and top.rank_90 == 2,
                     f"layer {moe.layer} expert {top.expert} ({top.share:.0%} of the layer, rank₉₀ {top.rank_90})")


def _router(result: WeightDiffResult) -> Criterion:
    routing = next((f for f in result.diagnosis.findings if f.title.startswith("Routing moved")), None)
    if routing is None:
        return Criterion(False, "no routing finding")
    expected = f"Routing moved: layer {ROUTER_LAYER}'s router changed most"
    return Criterion(routing.title == expected, f"{routing.title.removeprefix('Routing moved: ')} ({routing.value:.2f})")


def moe_criteria(evaluation: MoeEvaluation) -> tuple[Criterion, ...]:
    """The cells of ``MOE_COLUMNS`` for one evaluated MoE architecture and layout."""
    planted = evaluation.planted
    return (_planted_expert(planted), _router(planted), _modules(planted), _clean(evaluation.identical),
            _stages(evaluation), _internals(evaluation))


def moe_format_note(evaluation: MoeEvaluation) -> str:
    if evaluation.layout == "stacked":
        return "safetensors, stacked experts (`mlp.experts.gate_up_proj` [E, 2I, H])"
    first = evaluation.spec.projections[0]
    return f"safetensors, per expert (`{evaluation.spec.block}.experts.E.{first}`)"


def moe_table_row(evaluation: MoeEvaluation) -> str:
    cells = [f"`{evaluation.spec.name}`", moe_format_note(evaluation),
             *(criterion.cell() for criterion in moe_criteria(evaluation))]
    return "| " + " | ".join(cells) + " |"


def moe_table_markdown(evaluations) -> str:
    header = "| architecture | format | " + " | ".join(MOE_COLUMNS) + " |"
    lines = [header, "|" + "---|" * (len(MOE_COLUMNS) + 2), *map(moe_table_row, evaluations)]
    return "\n".join(lines) + "\n"
