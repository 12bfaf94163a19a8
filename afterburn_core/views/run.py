"""What a report says of the whole run, whatever its format: sections, summary, findings, examples, provenance.

Every writer (HTML, Markdown, PDF) shows the same selection in the same order,
so it is made once here from a ``RunReport``: the section titles, the
executive summary's facts, every finding of every analysis ranked by
severity, the prompts whose answers diverged most, the provenance, and the
one line that says why a section is absent. The per-analysis tables and chart
data are the per-analysis views' (``weights``, ``behaviour``, ``reward_hack``);
how numbers read is ``wording``'s.

It selects and ranks what the analyses stored; it escapes nothing (each
writer escapes for its syntax) and draws nothing. Cost: linear in the results.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from typing import TYPE_CHECKING

from afterburn_core.generation.results import TokenDivergence
from afterburn_core.views.behaviour import shift_rows, significance_fact
from afterburn_core.views.theme import BAND_COLORS, PROFILE_COLORS, SEVERITY_ORDER
from afterburn_core.views.wording import (
    p_value,
    percent,
    seconds,
    when,
)
from afterburn_core.analyses import detector_title, in_detector_order
from afterburn_core.generation.types import Completion, Prompt
from afterburn_core.types import RunRecord

if TYPE_CHECKING:  # the bundle is the reports' container; a view only reads it
    from afterburn_core.reports.bundle import RunReport

#: Section ids and titles, in reading order; every writer uses these titles (the tests look for them).
SECTIONS = {
    "summary": "Executive summary",
    "findings": "Findings",
    "weights": "Weights",
    "behaviour": "Behaviour",
    "reward_hack": "Reward hacking",
    "internals": "Internals",
    "examples": "Example prompts",
    "provenance": "Provenance",
}
ANALYSIS_NAMES = {
    "inventory": "the checkpoint inventory", "weights": "the weight diff", "generations": "generation",
    "token_kl": "token-level KL", "behaviour": "the behaviour analysis", "reward_hack": "the reward-hack analysis",
    "internals": "the internals analysis",
}
NO_FINDINGS = "No analysis of this run reported a finding."
#: Findings the executive summary lists; the Findings section lists them all.
SUMMARY_FINDINGS = 5
#: Example prompts shown side by side: enough to see a pattern, few enough to read.
EXAMPLES = 3


@dataclass(frozen=True)
class Fact:
    """One labelled value (a summary card, a provenance row); ``color`` tints a value that is a verdict."""

    label: str
    value: str
    note: str = ""
    color: str = ""


@dataclass(frozen=True)
class ReportFinding:
    """A finding of any analysis, in one shape so the report can rank them together."""

    source: str
    severity: str
    title: str
    detail: str
    recommendation: str = ""


@dataclass(frozen=True)
class Example:
    """A prompt answered by both models, chosen because the answers diverged; ``why`` says by how much."""

    prompt: Prompt
    base: Completion
    trained: Completion
    why: str
    top_tokens: tuple[TokenDivergence, ...] = ()

    @property
    def link(self) -> str:
        return f"{self.prompt.suite}/{self.prompt.prompt_id}"


def title_line(report: RunReport) -> str:
    return f"{report.run.base_reference} → {report.run.trained_reference}"


# --- absence --------------------------------------------------------------------------------------


def default_run(finished: list[RunRecord]) -> RunRecord | None:
    """The run a dashboard opens on when none is picked: the newest finished run that included every analysis,
    else the newest finished run. ``finished`` is newest first. A partial run (a ``hack-check``, one
    analysis computed from a page, a trajectory's step) would open most pages on "no result"."""
    from afterburn_core.analyses import stage_names

    every = set(stage_names())
    return next((run for run in finished if every <= {stage.stage for stage in run.stages}),
                finished[0] if finished else None)


def absence(report: RunReport, kind: str) -> str:
    """One sentence saying why the run holds no ``kind`` result (``missing_line`` of the report's run)."""
    return missing_line(report.run, kind)


def missing_line(run: RunRecord, kind: str) -> str:
    """Why ``run`` holds no ``kind`` result, read off its own stage records: skipped (with the reason), the run
    failed or was cancelled before it, never asked for (naming what the run did include), or computed but
    its stored result since removed or unreadable."""
    name = ANALYSIS_NAMES.get(kind, kind)
    stage = next((stage for stage in run.stages if stage.stage == kind), None)
    if stage is not None and stage.status == "skipped":
        return f"No result: {name} was skipped" + (f" ({stage.message})." if stage.message else ".")
    if stage is not None and run.status in ("failed", "cancelled") and stage.status != "done":
        reason = f": {run.error}" if run.error else ""
        return f"No result: the run {run.status} before {name} finished{reason}."
    if stage is not None and stage.status == "done":
        return f"No result: {name} ran, but its stored result was removed or could not be read."
    if stage is not None:
        return f"No result: {name} never finished (its stage is {stage.status})."
    included = [ANALYSIS_NAMES[stage.stage] for stage in run.stages if stage.stage in ANALYSIS_NAMES]
    listed = f" (it included {', '.join(included)})" if included else ""
    return f"No result: this run did not include {name}{listed}."


# --- summary and findings -------------------------------------------------------------------------


def summary_facts(report: RunReport) -> tuple[Fact, ...]:
    """The executive summary's cards: weight profile, composite risk, behaviour, what was compared."""
    facts = []
    if report.weights is not None:
        concentration = report.weights.concentration
        profile = report.weights.diagnosis.profile
        facts.append(Fact("Weight profile", profile,
                          f"{concentration.tensors_with_change} tensors changed; top 10% hold "
                          f"{percent(concentration.top_decile_share)} of the change", PROFILE_COLORS.get(profile, "")))
    else:
        facts.append(Fact("Weight profile", "–", absence(report, "weights")))
    if report.reward_hack is not None:
        composite = report.reward_hack.composite
        flagged = [detector_title(name) for name, detector in in_detector_order(report.reward_hack.detectors)
                   if detector.flagged]
        facts.append(Fact("Composite risk", f"{composite.score:.0f} · {composite.band}",
                          f"out of 100, method {report.reward_hack.method}; flagged: {', '.join(flagged) or 'none'}",
                          BAND_COLORS.get(composite.band, "")))
    else:
        facts.append(Fact("Composite risk", "–", absence(report, "reward_hack")))
    if report.behaviour is not None:
        facts.append(Fact("Behaviour shifts", *significance_fact(report.behaviour)))
    else:
        facts.append(Fact("Behaviour shifts", "–", absence(report, "behaviour")))
    if report.generations is not None:
        suites = ", ".join(suite.name for suite in report.generations.suites)
        facts.append(Fact("Prompts compared", str(len(report.generations.prompts)),
                          f"suites {suites}; up to {report.generations.max_new_tokens} new tokens"))
    else:
        facts.append(Fact("Prompts compared", "–", absence(report, "generations")))
    return tuple(facts)


def findings(report: RunReport) -> tuple[ReportFinding, ...]:
    """Every finding of the run, warnings first, then notable, then info (reward hacking, weights, behaviour)."""
    collected: list[ReportFinding] = []
    if report.reward_hack is not None:
        collected += [
            ReportFinding("reward hacking", item.severity, item.title, item.detail, item.recommendation)
            for item in report.reward_hack.findings
        ]
    if report.weights is not None:
        collected += [ReportFinding("weights", item.severity, item.title, item.detail)
                      for item in report.weights.diagnosis.findings]
    collected += [
        ReportFinding("behaviour", "notable", f"{row.area}: {row.measure} ({row.suite})",
                      f"{row.base} → {row.trained} ({row.change}; corrected p = {p_value(row.p_adjusted)})")
        for row in (shift_rows(report.behaviour) if report.behaviour is not None else ()) if row.significant
    ]
    return tuple(sorted(collected, key=lambda finding: SEVERITY_ORDER.get(finding.severity, len(SEVERITY_ORDER))))


# --- examples -------------------------------------------------------------------------------------


def examples(report: RunReport, limit: int = EXAMPLES) -> tuple[Example, ...]:
    """The prompts whose answers diverged most: by mean token KL when scored, else by length change."""
    generations = report.generations
    if generations is None:
        return ()
    scored = {} if report.token_kl is None else {scores.prompt_id: scores for scores in report.token_kl.scores.prompts}
    candidates = []
    for prompt, base, trained in zip(generations.prompts, generations.base, generations.trained):
        divergence = scored.get(f"{prompt.suite}/{prompt.prompt_id}")
        length_change = trained.n_tokens - base.n_tokens
        if divergence is not None:
            rank = (divergence.mean_kl, abs(length_change))
            why = f"mean KL {divergence.mean_kl:.3g} nats per token; length {length_change:+d} tokens"
            candidates.append((rank, Example(prompt, base, trained, why, divergence.top_tokens)))
        else:
            rank = (float("-inf"), abs(length_change))
            candidates.append((rank, Example(prompt, base, trained, f"length {length_change:+d} tokens")))
    candidates.sort(key=lambda candidate: candidate[0], reverse=True)
    return tuple(example for _, example in candidates[:limit])


# --- provenance -----------------------------------------------------------------------------------


def _batch(batch_size: int) -> str:
    # The stored setting: 0 is "pick by free memory" (generator.auto_batch_size), not a batch of 0.
    return f"batch {batch_size}" if batch_size else "batch size chosen by free memory"


def _setting(name: str, value, report: RunReport) -> Fact:
    """One stored setting as the run used it: the settings whose stored value means "choose for me" (no
    suites, batch size 0, threads 0) say what was chosen, with the stored value as the note."""
    from afterburn_core.generation.suites import DEFAULT_SUITES

    if name == "suites" and not value:
        used = [suite.name for suite in report.generations.suites] if report.generations is not None else DEFAULT_SUITES
        return Fact(name, ", ".join(used), "none named: the default set")
    if name == "batch_size" and value == 0:
        return Fact(name, "chosen by each model from free memory", "setting 0")
    if name == "threads" and value == 0:
        return Fact(name, "chosen from the CPUs this process may use", "setting 0")
    if isinstance(value, str):
        return Fact(name, value)
    if isinstance(value, list):
        return Fact(name, ", ".join(str(item) for item in value) if value else "none")
    return Fact(name, json.dumps(value))


def provenance(report: RunReport) -> tuple[tuple[str, tuple[Fact, ...]], ...]:
    """Where the numbers come from: models, run, compute and timings, config, suites (groups of facts)."""
    run = report.run
    inventory = report.inventory
    models = []
    for label, reference, fingerprint, summary in (
        ("Base", run.base_reference, run.base_fingerprint, inventory.base if inventory else None),
        ("Post-trained", run.trained_reference, run.trained_fingerprint, inventory.trained if inventory else None),
    ):
        models.append(Fact(f"{label} reference", reference))
        models.append(Fact(f"{label} fingerprint", fingerprint or "–", "sha256 over weights, config and tokenizer"))
        if summary is not None:
            checkpoint = summary.checkpoint
            models.append(Fact(f"{label} revision", checkpoint.revision or "–", checkpoint.kind))
            models.append(Fact(f"{label} model", f"{summary.architecture or summary.model_type or 'unknown'}, "
                                                 f"{summary.num_parameters:,} parameters, {summary.num_layers} layers"))
    run_facts = [
        Fact("Run id", run.run_id), Fact("Status", run.status, run.error or ""),
        Fact("Created", when(run.created_at)), Fact("Finished", when(run.finished_at)),
        Fact("Wall time", seconds(run.duration_s)),
        Fact("Report by", f"afterburn {report.afterburn_version}", when(report.generated_at)),
    ]
    compute = [Fact(f"Stage {stage.stage}", stage.status if stage.seconds is None
                    else f"{stage.status} in {seconds(stage.seconds)}", stage.message) for stage in run.stages]
    if report.weights is not None:
        compute.append(Fact("Weight pass", seconds(report.weights.seconds),
                            f"on {report.weights.device}; spectra top {report.weights.spectrum_top_k}"
                            f"{', exact' if report.weights.exact else ', randomized'}"))
    if report.generations is not None:
        compute.append(Fact("Generation", f"{seconds(report.generations.seconds_base)} base, "
                                          f"{seconds(report.generations.seconds_trained)} post-trained",
                            f"on {report.generations.device}; {_batch(report.generations.batch_size)}; "
                            f"chat template {'yes' if report.generations.chat_template else 'no'}"))
    if report.token_kl is not None:
        compute.append(Fact("Token KL", report.token_kl.scores.method,
                            f"error bound {report.token_kl.scores.kl_error_bound:.2g} nats"))
    config = tuple(_setting(name, value, report) for name, value in sorted(json.loads(run.config_json).items()))
    groups = [("Models", tuple(models)), ("Run", tuple(run_facts)), ("Compute and timings", tuple(compute)),
              ("Configuration", config)]
    if report.generations is not None:
        groups.append(("Prompt suites", tuple(
            Fact(suite.name, f"version {suite.version}, {suite.n_prompts} prompts",
                 f"{suite.source}; sha256 {suite.content_hash[:16]}…")
            for suite in report.generations.suites)))
    return tuple(groups)
