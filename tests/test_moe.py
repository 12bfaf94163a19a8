"""Mixture-of-experts weight diffs: routers as their own module, experts per expert and per layer, stacked slices' spectra.

Each model of ``moe_factories`` (Mixtral, Qwen3-MoE, Qwen2-MoE with its shared
expert) is built from its own config class, saved by ``save_pretrained`` (per
expert) and rewritten stacked (``mlp.experts.gate_up_proj`` [E, 2I, H]), then run
through the real engine (``analyze_weights``) against an identical copy and a
copy with a rank-2 change in one expert and a changed router. Both layouts
must tell the same story: the planted expert first in its layer's experts
table with rank 2 (from the stacked slice's own spectrum when stacked), the
router finding naming the planted layer, no tensor module "other", and a
clean identical copy. The HTML and Markdown reports and ``afterburn
weight-diff`` draw the planted layer's experts table with the planted expert
first and a stranger's matrix name inert; the README's MoE rows
(``architecture_criteria.evaluate_moe``) pass every check with generation,
token KL and behaviour run. The models are built once per module.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jsonschema
import pytest
import torch
from safetensors import safe_open
from moe_factories import (
    EXPERT,
    EXPERT_LAYER,
    EXPERT_RELATIVE,
    EXPERTS,
    LAYOUTS,
    MOE_NAMES,
    ROUTER_LAYER,
    ROUTER_RELATIVE,
    build_moe,
    expert_name,
    moe_spec,
    stacked_name,
)

from afterburn_core.checkpoints import resolve
from afterburn_core.checkpoints.architecture import architecture_map
from afterburn_core.checkpoints.naming import classify, expert_index, is_expert_stack, is_shared_expert
from afterburn_core.config import AnalysisConfig
from afterburn_core.serde import from_jsonable, to_jsonable
from afterburn_core.types import ModelDescription
from afterburn_core.views import weights_detail
from afterburn_core.weights.analysis import analyze_weights
from afterburn_core.weights.types import WeightDiffResult

SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "weight-diff.schema.json"


def analyze(base: Path, trained: Path) -> WeightDiffResult:
    return analyze_weights(resolve(str(base)), resolve(str(trained)), AnalysisConfig(device="cpu"))


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict:
    """Per (architecture, layout): the folders and the (planted, identical) results, computed once."""
    found = {}
    for name in MOE_NAMES:
        pairs = build_moe(moe_spec(name), tmp_path_factory.mktemp(name))
        for layout in LAYOUTS:
            pair = pairs[layout]
            found[name, layout] = (pair, analyze(pair.base, pair.trained), analyze(pair.base, pair.identical))
    return found


CASES = [(name, layout) for name in MOE_NAMES for layout in LAYOUTS]


def test_save_pretrained_writes_per_expert_and_the_stacked_rewrite_loads_into_transformers(models) -> None:
    """The two layouts on disk hold the same model: transformers loads both to the same logits."""
    import transformers

    def shapes(folder: Path) -> dict[str, list[int]]:
        with safe_open(str(folder / "model.safetensors"), "pt") as handle:
            return {key: handle.get_slice(key).get_shape() for key in handle.keys()}

    for name in MOE_NAMES:
        item = moe_spec(name)
        per_expert, stacked = models[name, "per_expert"][0], models[name, "stacked"][0]
        saved = shapes(per_expert.base)
        assert saved[expert_name(item, 0, 3, 0)] == [48, 64] and stacked_name(0, "gate_up_proj") not in saved
        rewritten = shapes(stacked.base)
        assert rewritten[stacked_name(0, "gate_up_proj")] == [EXPERTS, 96, 64]
        assert rewritten[stacked_name(0, "down_proj")] == [EXPERTS, 64, 48]
        ids = torch.tensor([[3, 4, 5, 6, 7, 8]])
        logits = {}
        for label, folder in (("per_expert", per_expert.trained), ("stacked", stacked.trained),
                              ("base", stacked.base)):
            with torch.no_grad():
                logits[label] = transformers.AutoModelForCausalLM.from_pretrained(folder)(ids).logits
        assert torch.equal(logits["per_expert"], logits["stacked"])
        assert not torch.equal(logits["stacked"], logits["base"])  # the plants load too: the check can fail


@pytest.mark.parametrize(("name", "layout"), CASES)
def test_planted_expert_ranks_first_in_its_layers_experts_table(models, name: str, layout: str) -> None:
    result = models[name, layout][1]
    assert [moe.layer for moe in result.experts] == [0, 1]
    moe = result.experts[EXPERT_LAYER]
    routed = [change for change in moe.experts if not change.shared]
    assert [change.expert for change in routed] == list(range(EXPERTS))
    top = max(routed, key=lambda change: change.relative_change)
    assert top.expert == EXPERT and top.share > 0.999 and moe.top_share == top.share
    assert moe.gini == pytest.approx(0.75, abs=1e-3)  # one of four holds it all: (n - 1) / n
    assert top.rank_90 == 2 and top.low_rank
    assert top.top_matrix == (f"{stacked_name(EXPERT_LAYER, 'gate_up_proj')}[{EXPERT}]" if layout == "stacked"
                              else expert_name(moe_spec(name), EXPERT_LAYER, EXPERT, 0))
    view = weights_detail.experts(result.experts)
    assert view.layers[view.default].layer == EXPERT_LAYER
    table = view.layers[view.default].table
    assert table["Expert"][0] == str(EXPERT) and table["rank₉₀"][0] == 2
    assert view.layers[view.default].reading.startswith(f"Expert {EXPERT} changed most in layer {EXPERT_LAYER}: ")
    finding = next(f for f in result.diagnosis.findings if f.title.startswith("Expert change concentrates"))
    assert finding.title == f"Expert change concentrates: layer {EXPERT_LAYER} expert {EXPERT}"
    assert "in 2 directions (low-rank)" in finding.detail


@pytest.mark.parametrize("name", MOE_NAMES)
def test_both_layouts_give_the_same_expert_numbers(models, name: str) -> None:
    per_expert, stacked = models[name, "per_expert"][1], models[name, "stacked"][1]
    for left, right in zip(per_expert.experts, stacked.experts, strict=True):
        for a, b in zip(left.experts, right.experts, strict=True):
            assert (a.expert, a.shared) == (b.expert, b.shared)
            assert a.frob_norm_delta == pytest.approx(b.frob_norm_delta, rel=1e-6)
            assert a.relative_change == pytest.approx(b.relative_change, rel=1e-6)
        assert left.router_relative_change == pytest.approx(right.router_relative_change, rel=1e-6)
    cells = {layout: {(cell.layer, cell.module): cell.relative_change for cell in result.layers}
             for layout, result in (("per_expert", per_expert), ("stacked", stacked))}
    for key in (cell for cell in cells["per_expert"] if cell[1] in ("gate", "up", "down")):
        assert cells["per_expert"][key] == pytest.approx(cells["stacked"][key], rel=1e-6)


@pytest.mark.parametrize("name", MOE_NAMES)
def test_stacked_tensors_get_a_spectrum_per_expert_slice(models, name: str) -> None:
    result = models[name, "stacked"][1]
    stacked = [tensor for tensor in result.tensors if is_expert_stack(tensor.name)]
    assert len(stacked) == 4 and all(len(tensor.shape) == 3 for tensor in stacked)
    for tensor in stacked:
        assert tensor.singular_values is None  # E separate matrices have no joint spectrum
        assert [part.expert for part in tensor.expert_slices] == list(range(EXPERTS))
        assert all(part.singular_values and part.shape == tensor.shape[1:] for part in tensor.expert_slices)
    planted = next(t for t in stacked if t.name == f"layers.{EXPERT_LAYER}.mlp.experts.gate_up_proj")
    part = planted.expert_slices[EXPERT]
    assert part.rank_90 == 2 and part.low_rank
    # The plant is rank 2 with σ 2:1 on the gate half; the rest of the slice moved only by the 1e-3 noise.
    assert part.singular_values[1] / part.singular_values[0] == pytest.approx(0.5, rel=0.01)
    assert part.singular_values[2] < 0.01 * part.singular_values[0]
    gate_norm = part.frob_norm_delta / EXPERT_RELATIVE  # ‖ΔW‖ = 0.5 ‖W_gate‖ (noise aside)
    assert part.relative_change == pytest.approx(gate_norm * EXPERT_RELATIVE / part.frob_norm_base, rel=1e-6)
    by_name = weights_detail.spectrum_tensors(tuple(result.tensors))
    chosen = by_name[f"model.layers.{EXPERT_LAYER}.mlp.experts.gate_up_proj[{EXPERT}]"]
    assert chosen.rank_90 == 2
    assert weights_detail.spectrum(chosen).reading.endswith("90% of it lies in 2 of 64 possible directions.")
    # The rank finding reads the slices as the matrices they are.
    low = [f.title for f in result.diagnosis.findings if f.title.startswith("Low-rank change")]
    assert low == [f"Low-rank change: model.layers.{EXPERT_LAYER}.mlp.experts.gate_up_proj[{EXPERT}]"]


@pytest.mark.parametrize(("name", "layout"), CASES)
def test_router_is_its_own_module_and_the_finding_names_the_planted_layer(models, name: str, layout: str) -> None:
    result = models[name, layout][1]
    routers = [t for t in result.tensors if t.module == "router"]
    assert {t.layer for t in routers} == {0, 1}
    cells = {(cell.layer, cell.module): cell for cell in result.layers}
    assert cells[ROUTER_LAYER, "router"].relative_change > 100 * cells[1 - ROUTER_LAYER, "router"].relative_change
    finding = next(f for f in result.diagnosis.findings if f.title.startswith("Routing moved"))
    assert finding.title == f"Routing moved: layer {ROUTER_LAYER}'s router changed most"
    assert finding.severity == "notable"
    assert f"‖ΔW‖/‖W‖ by layer: layer {ROUTER_LAYER} " in finding.detail
    moe = result.experts[ROUTER_LAYER]
    expected = ROUTER_RELATIVE if name != "qwen2_moe" else None  # Qwen2-MoE's shared_expert_gate counts too
    if expected is not None:
        assert moe.router_relative_change == pytest.approx(expected, rel=0.01)
    assert finding.value == pytest.approx(moe.router_relative_change, rel=1e-9)


@pytest.mark.parametrize(("name", "layout"), CASES)
def test_no_tensor_is_other_and_experts_fill_the_mlp_cells(models, name: str, layout: str) -> None:
    result = models[name, layout][1]
    assert [t.name for t in result.tensors if t.module == "other"] == []
    modules = {cell.module for cell in result.layers}
    assert {"router", "gate", "up", "down"} <= modules and not modules & {"gate_up", "other"}
    if layout == "per_expert":
        experts = [t for t in result.tensors if t.expert is not None]
        assert sorted({t.expert for t in experts}) == list(range(EXPERTS))
        assert len(experts) == 2 * EXPERTS * 3
    gate = {cell.layer: cell for cell in result.layers if cell.module == "gate"}
    assert gate[EXPERT_LAYER].relative_change > 10 * gate[1 - EXPERT_LAYER].relative_change


@pytest.mark.parametrize("layout", LAYOUTS)
def test_shared_expert_is_its_own_group(models, layout: str) -> None:
    result = models["qwen2_moe", layout][1]
    for moe in result.experts:
        shared = [change for change in moe.experts if change.shared]
        assert len(shared) == 1 and shared[0].expert is None and shared[0].share is None
        assert shared[0].tensors == 3 and moe.experts[-1] is shared[0]
    assert all(t.module == "router" for t in result.tensors if t.name.endswith("shared_expert_gate.weight"))
    table = weights_detail.experts(result.experts).layers[EXPERT_LAYER].table
    assert table["Expert"][-1] == "shared"


@pytest.mark.parametrize(("name", "layout"), CASES)
def test_identical_copy_is_clean(models, name: str, layout: str) -> None:
    result = models[name, layout][2]
    assert result.diagnosis.profile == "identical"
    assert [f.title for f in result.diagnosis.findings] == ["No tensor changed"]
    assert all(t.frob_norm_delta == 0 for t in result.tensors)
    assert all(part.frob_norm_delta == 0 and part.singular_values is None
               for t in result.tensors for part in t.expert_slices)
    for moe in result.experts:
        assert moe.top_share == 0 and moe.gini == 0 and moe.router_relative_change == 0
        assert all(change.frob_norm_delta == 0 and change.top_matrix is None for change in moe.experts)
    assert weights_detail.experts(result.experts).reading == "2 MoE layers; no routed expert changed."


@pytest.mark.parametrize("layout", LAYOUTS)
def test_result_round_trips_and_validates_against_the_schema(models, layout: str) -> None:
    result = models["qwen2_moe", layout][1]
    document = json.loads(json.dumps(to_jsonable(result)))
    jsonschema.validate(document, json.loads(SCHEMA.read_text()))
    assert from_jsonable(WeightDiffResult, document) == result
    # A result stored before experts existed still loads, as a dense one.
    for tensor in document["tensors"]:
        for field in ("expert", "shared_expert", "expert_slices"):
            tensor.pop(field)
    document.pop("experts")
    old = from_jsonable(WeightDiffResult, document)
    assert old.experts == () and all(t.expert_slices == () for t in old.tensors)


def test_names_routers_experts_and_stacks() -> None:
    """Routers were module "other" and experts had no index before; the names of each family."""
    routers = ("layers.1.mlp.gate.weight", "layers.1.block_sparse_moe.gate.weight", "layers.1.mlp.router.weight",
               "layers.1.mlp.router.bias", "layers.1.feed_forward.router.weight",
               "layers.1.block_sparse_moe.router.layer.weight", "layers.1.mlp.shared_expert_gate.weight",
               "layers.1.mlp.gate.e_score_correction_bias")
    assert [classify(name) for name in routers] == [(1, "router")] * len(routers)
    assert classify("layers.1.block_sparse_moe.experts.3.w1.weight") == (1, "gate")
    assert classify("layers.1.block_sparse_moe.experts.3.w2.weight") == (1, "down")
    assert classify("layers.1.mlp.experts.gate_up_proj") == (1, "gate_up")
    assert classify("layers.1.mlp.experts.gate_up_proj_bias") == (1, "gate_up")
    assert classify("layers.1.mlp.experts.down_proj_bias") == (1, "down")
    assert classify("layers.1.mlp.gate_proj.weight") == (1, "gate")
    assert expert_index("layers.1.block_sparse_moe.experts.3.w1.weight") == 3
    assert expert_index("layers.1.mlp.experts.17.gate_proj.weight") == 17
    assert expert_index("layers.1.mlp.experts.gate_up_proj") is None
    assert is_expert_stack("layers.1.mlp.experts.gate_up_proj") and is_expert_stack("layers.1.mlp.experts.down_proj")
    assert not is_expert_stack("layers.1.mlp.experts.3.gate_proj.weight")
    assert is_shared_expert("layers.1.mlp.shared_experts.up_proj.weight")
    assert not is_shared_expert("layers.1.mlp.shared_expert_gate.weight")


def test_stacked_layouts_are_read_from_the_experts_class() -> None:
    """Mixtral / Qwen: out × in, gate|up halves; gpt-oss: in × out, interleaved; Llama 4: in × out, halves."""
    def split(model_type: str, name: str, shape: tuple[int, ...]):
        found = architecture_map(ModelDescription(model_type=model_type)).expert_split(name, shape)
        return found and (found[0], {role: list(indices) for role, indices in found[1].items()})

    assert split("mixtral", "layers.0.mlp.experts.gate_up_proj", (4, 3)) == (0, {"gate": [0, 1], "up": [2, 3]})
    assert split("qwen3_moe", "layers.0.mlp.experts.gate_up_proj", (4, 3)) == (0, {"gate": [0, 1], "up": [2, 3]})
    assert split("gpt_oss", "layers.0.mlp.experts.gate_up_proj", (3, 4)) == (1, {"gate": [0, 2], "up": [1, 3]})
    assert split("gpt_oss", "layers.0.mlp.experts.gate_up_proj_bias", (4,)) == (0, {"gate": [0, 2], "up": [1, 3]})
    assert split("llama4_text", "layers.0.feed_forward.experts.gate_up_proj", (3, 4)) == (
        1, {"gate": [0, 1], "up": [2, 3]})
    # Without the model code: out × in halves (nn.Linear's convention); an odd output width does not split.
    assert split("mystery_moe", "layers.0.mlp.experts.gate_up_proj", (4, 3)) == (0, {"gate": [0, 1], "up": [2, 3]})
    assert split("mystery_moe", "layers.0.mlp.experts.gate_up_proj", (3, 4)) is None


# --- the experts table in the reports and the terminal ------------------------------------------------------

HOSTILE_MATRIX = "model.layers.1.mlp.experts.[bold]x[/]<script>alert(1)</script>|**y**\x1b[31m"


def moe_report(afterburn_home: Path, result: WeightDiffResult):
    """The report of a finished run whose one result is ``result``, read back from a real store."""
    from ui_helpers import store_result

    from afterburn_core.reports.bundle import load_report
    from afterburn_core.store import RunStore

    with RunStore(afterburn_home) as store:
        return load_report(store, store_result(store, result))


def hostile(result: WeightDiffResult) -> WeightDiffResult:
    """``result`` with the planted expert's most-changed matrix named by a stranger."""
    from dataclasses import replace

    layers = tuple(replace(moe, experts=tuple(replace(change, top_matrix=HOSTILE_MATRIX) if change.expert == EXPERT
                                              else change for change in moe.experts))
                   if moe.layer == EXPERT_LAYER else moe for moe in result.experts)
    return replace(result, experts=layers)


@pytest.mark.parametrize(("name", "layout"), [("mixtral", "stacked"), ("qwen2_moe", "per_expert")])
def test_markdown_report_shows_the_planted_layers_experts_first(models, afterburn_home, name, layout) -> None:
    from afterburn_core.reports import render
    from afterburn_core.reports.markdown import escape

    result = models[name, layout][1]
    document = render(moe_report(afterburn_home, result), "md").decode("utf-8")
    section = document.split(f"### Experts: layer {EXPERT_LAYER}\n", 1)[1]
    rows = re.search(r"(?:^\|.*\n)+", section, re.MULTILINE).group(0).splitlines()
    assert rows[0].startswith("| expert | ‖ΔW‖/‖W‖ |")
    data = [row.split(" | ") for row in rows[2:]]
    assert data[0][0] == f"| {EXPERT}" and data[0][-2:] == ["2", "yes |"]
    labels = [cells[0][2:] for cells in data]
    assert sorted(labels) == sorted([*map(str, range(EXPERTS)), *(["shared"] if name == "qwen2_moe" else [])])
    assert labels[-1] == ("shared" if name == "qwen2_moe" else labels[-1])
    assert escape(weights_detail.experts(result.experts).layers[EXPERT_LAYER].reading) in section
    markdown = render(moe_report(afterburn_home, hostile(result)), "md").decode("utf-8")
    assert escape(HOSTILE_MATRIX) in markdown and "<script>" not in markdown


@pytest.mark.parametrize(("name", "layout"), [("mixtral", "stacked"), ("qwen2_moe", "per_expert")])
def test_html_report_shows_the_planted_layers_experts_first(models, afterburn_home, name, layout) -> None:
    import html

    from afterburn_core.reports import render

    result = models[name, layout][1]
    document = render(moe_report(afterburn_home, result), "html").decode("utf-8")
    section = document.split(f"<h3>Experts · layer {EXPERT_LAYER}</h3>", 1)[1].split("</table>", 1)[0]
    experts = re.findall(r"<tr><td>([^<]*)</td>", section)
    assert experts[0] == str(EXPERT)
    assert sorted(experts) == sorted([*map(str, range(EXPERTS)), *(["shared"] if name == "qwen2_moe" else [])])
    assert experts[-1] == ("shared" if name == "qwen2_moe" else experts[-1])
    assert weights_detail.experts(result.experts).layers[EXPERT_LAYER].reading in html.unescape(section)
    hostile_document = render(moe_report(afterburn_home, hostile(result)), "html").decode("utf-8")
    assert "<script>alert(1)" not in hostile_document
    assert "[bold]x[/]&lt;script&gt;alert(1)&lt;/script&gt;" in hostile_document


def test_weight_diff_in_the_terminal_shows_the_planted_layers_experts_first(models, afterburn_home) -> None:
    from cli_helpers import afterburn

    pair = models["mixtral", "stacked"][0]
    shown = afterburn("weight-diff", "--base", str(pair.base), "--trained", str(pair.trained), "--device", "cpu")
    assert shown.returncode == 0, shown.stderr
    assert "2 MoE layers of up to 4 expert groups; layer 1 holds the most-changed expert." in shown.stdout
    table = shown.stdout.split(f"Experts of layer {EXPERT_LAYER}", 1)[1]
    assert table.splitlines()[2].split("┃")[1].strip() == "expert"
    rows = [line.split("│") for line in table.splitlines() if line.startswith("│")]
    assert rows[0][1].strip() == str(EXPERT)
    assert rows[0][6].strip() == f"{stacked_name(EXPERT_LAYER, 'gate_up_proj')}[{EXPERT}]"
    assert f"Expert {EXPERT} changed most in layer {EXPERT_LAYER}: " in table


def test_terminal_expert_names_are_safe_text(models) -> None:
    import io

    from rich.console import Console

    from afterburn_core.terminal import print_experts

    console = Console(file=io.StringIO(), width=400, color_system=None)
    print_experts(console, hostile(models["mixtral", "stacked"][1]))
    printed = console.file.getvalue()
    # Markup prints as text; the escape sequence is removed, not obeyed.
    assert "[bold]x[/]<script>alert(1)</script>|**y** │" in printed and "\x1b" not in printed


def test_generation_token_kl_and_behaviour_run_on_the_moe_pairs_and_every_table_check_holds(tmp_path: Path) -> None:
    """The rows of the README's MoE table (scripts/architecture_table.py), stacked layout: every check passes."""
    from architecture_criteria import MOE_ARCHITECTURES, MOE_COLUMNS, SUITE_PROMPTS, evaluate_moe, moe_criteria

    for name in MOE_ARCHITECTURES:
        [found] = evaluate_moe(moe_spec(name), tmp_path / name, ("stacked",))
        cells = moe_criteria(found)
        assert [cell.passed for cell in cells] == [True] * len(MOE_COLUMNS), [cell.measured for cell in cells]
        assert cells[0].measured == f"layer {EXPERT_LAYER} expert {EXPERT} (100% of the layer, rank₉₀ 2)"
        assert cells[1].measured.startswith(f"layer {ROUTER_LAYER}'s router changed most (")
        assert len(found.generations.prompts) == found.behaviour.n_prompts == SUITE_PROMPTS


def test_pdf_report_shows_the_planted_layers_experts_first(models, afterburn_home) -> None:
    import io

    from pypdf import PdfReader

    from afterburn_core.reports import render

    result = models["mixtral", "stacked"][1]
    document = render(moe_report(afterburn_home, hostile(result)), "pdf")
    text = " ".join(" ".join(page.extract_text().split()) for page in PdfReader(io.BytesIO(document)).pages)
    section = text.split(f"Experts · layer {EXPERT_LAYER}", 1)[1]
    assert section.split("low rank", 1)[1].split()[0] == str(EXPERT)  # the planted expert heads the table
    # The hostile matrix name is text in the PDF, its markup neither drawn nor dropped.
    assert "<script>alert(1)</script>" in section.replace(" ", "")
