"""Turn the generation benchmark's runs into rows, target verdicts and a markdown report.

Contract:

- ``real_tokens(ids, eos_ids) -> int`` — the one definition of a real token used
  for every tool: the generated ids up to AND including the first EOS (as our
  ``n_tokens`` counts), all of them when there is none; padding after EOS never counts.
- ``summarize(key, label, kind, runs, eos_ids, reference) -> dict`` — one table
  row from repeated runs of one step (``runs``: the harness ``Measurement``
  and the driver's JSON payload of each): best generation-only seconds and best
  wall seconds (the same statistic for every tool: on a shared machine other
  work only adds time), largest peak RSS, real and claimed token totals, how
  many rows stopped on EOS, and how many answers equal ``reference``'s (ours);
  plus the forward passes the batches needed and the share of computed rows
  that were real tokens (``forward_passes``), which split a tokens/s ratio into
  rows per pass, rows busy, and seconds per pass.
- ``not_run_row(key, label, kind, reason) -> dict`` — the row of a step that was not
  run (the vLLM engine's without a vLLM venv), printed with its reason.
- ``evaluate_targets(rows) -> list[dict]`` and ``render_markdown(...) -> str``.

The target (issue 5, item 9): ours ≥ 5× afterburn 0.6.3's real tokens/s on the
demo pair, with greedy outputs identical to our own unbatched run; issue 19,
item 4: the vLLM engine's greedy answers equal the transformers engine's token
for token (0 differ), its speed shown beside ours and the floor. It measures
nothing itself.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Issue 5, item 9: our real tokens/s over afterburn 0.6.3's, on the demo pair.
REAL_TOKENS_PER_S_OVER_PEER_AT_LEAST = 5.0
MIB = 1024**2


def real_tokens(ids: Sequence[int], eos_ids: Sequence[int]) -> int:
    """Generated tokens up to and including the first EOS; all of them when none is EOS."""
    eos = set(eos_ids)
    for position, token in enumerate(ids):
        if token in eos:
            return position + 1
    return len(ids)


def forward_passes(payload: dict, batch_size: int) -> tuple[int, int]:
    """(forward passes, row-steps) of a run, rebuilt from its answers: a batch runs as many passes
    as its longest answer has tokens (the first is the prefill), and computes every row at every
    pass, finished or not. Batches are the tool's own: sorted by prompt length when the driver
    returns prompt ids (ours, the floor), else consecutive prompts (afterburn)."""
    passes = row_steps = 0
    for model in payload["models"]:
        answers = model["new_token_ids"]
        prompt_ids = model.get("prompt_token_ids")
        order = list(range(len(answers)))
        if prompt_ids is not None:
            order.sort(key=lambda index: (len(prompt_ids[index]), index))
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            longest = max(len(answers[index]) for index in rows)
            passes += longest
            row_steps += longest * len(rows)
    return passes, row_steps


def _answers(payload: dict, eos_ids) -> list[tuple[int, ...]]:
    """Every answer of every model of one run, cut after its first EOS."""
    return [tuple(ids[: real_tokens(ids, eos_ids)]) for model in payload["models"] for ids in model["new_token_ids"]]


def summarize(key: str, label: str, kind: str, runs: list[tuple], eos_ids, reference: dict | None = None) -> dict:
    """One row from the runs of one step; ``runs`` is a list of (Measurement, payload or None)."""
    done = [(measurement, payload) for measurement, payload in runs if measurement.ok and payload]
    row = {
        "key": key, "label": label, "kind": kind, "ok": bool(done),
        "runs": [
            {
                "wall_s": measurement.wall_s,
                "peak_rss_mib": measurement.peak_rss_bytes / MIB,
                "generation_s": sum(m["generation_seconds"] for m in payload["models"]) if payload else None,
                "ok": measurement.ok and payload is not None,
                "log": measurement.log_path,
            }
            for measurement, payload in runs
        ],
        "peak_rss_mib": max(measurement.peak_rss_bytes for measurement, _ in runs) / MIB,
    }
    if not done:
        return row
    first = done[0][1]
    answers = _answers(first, eos_ids)
    claimed = [m["claimed_tokens"] for m in first["models"]]
    generated = [len(ids) for model in first["models"] for ids in model["new_token_ids"]]
    row.update(
        wall_s=min(measurement.wall_s for measurement, _ in done),
        generation_s=min(sum(m["generation_seconds"] for m in payload["models"]) for _, payload in done),
        batch_size=first.get("batch_size"),
        threads=first.get("threads"),
        models=len(first["models"]),
        answers=len(answers),
        real_tokens=sum(len(answer) for answer in answers),
        generated_block_tokens=sum(generated),
        claimed_tokens=None if any(c is None for c in claimed) else sum(sum(c) for c in claimed),
        eos_rows=sum(1 for answer in answers if answer and answer[-1] in set(eos_ids)),
        deterministic=all(_answers(payload, eos_ids) == answers for _, payload in done),
        padding_side=first["models"][0].get("padding_side"),
    )
    if row["batch_size"]:
        row["forward_passes"], row["row_steps"] = forward_passes(first, row["batch_size"])
        row["ms_per_pass"] = 1000 * row["generation_s"] / max(row["forward_passes"], 1)
        row["rows_busy"] = row["real_tokens"] / max(row["row_steps"], 1)
    row["real_tps"] = row["real_tokens"] / row["generation_s"]
    row["real_tps_wall"] = row["real_tokens"] / row["wall_s"]
    row["mean_answer_tokens"] = row["real_tokens"] / max(row["answers"], 1)
    if reference is not None and reference.get("answers_cut") is not None:
        same = sum(1 for mine, theirs in zip(answers, reference["answers_cut"]) if mine == theirs)
        row["same_as_ours"] = [same, len(answers)]
    row["answers_cut"] = answers
    return row


def not_run_row(key: str, label: str, kind: str, reason: str) -> dict:
    """A row for a step this run skipped, saying why."""
    return {"key": key, "label": label, "kind": kind, "ok": False, "not_run": reason, "runs": []}


def _ratio(numerator: dict | None, denominator: dict | None, field: str) -> float | None:
    if not (numerator and denominator and numerator.get("ok") and denominator.get("ok")):
        return None
    return numerator[field] / denominator[field]


def evaluate_targets(rows: dict) -> list[dict]:
    """The issue's target and its companion checks, each with the measured value and met True / False / None."""
    targets = []
    ours, peer = rows.get("ours"), rows.get("peer")
    ratio = _ratio(ours, peer, "real_tps")
    targets.append({
        "target": "demo pair: ours real tokens/s over afterburn 0.6.3's (generation only)",
        "measured": "not measured" if ratio is None else f"{ratio:.2f}x",
        "wanted": f">= {REAL_TOKENS_PER_S_OVER_PEER_AT_LEAST}x",
        "met": None if ratio is None else ratio >= REAL_TOKENS_PER_S_OVER_PEER_AT_LEAST,
    })
    wall = _ratio(ours, peer, "real_tps_wall")
    targets.append({
        "target": "demo pair: the same, whole process (imports + loads + generation)",
        "measured": "not measured" if wall is None else f"{wall:.2f}x",
        "wanted": "— (reported)",
        "met": None,
    })
    targets += vllm_targets(rows)
    unbatched = rows.get("ours_unbatched")
    if unbatched and unbatched.get("same_as_ours"):
        same, total = unbatched["same_as_ours"]
        targets.append({
            "target": "demo pair: greedy answers identical to our own unbatched run (batch_size=1)",
            "measured": f"{same}/{total} answers identical",
            "wanted": f"{total}/{total}",
            "met": same == total,
        })
    return targets


def vllm_targets(rows: dict, scope: str = "demo pair") -> list[dict]:
    """The vLLM engine against the transformers engine (``rows["ours"]``) on ``scope``'s prompts: same greedy
    answers, and its speed over ours and the floor (``rows["floor"]``)."""
    vllm = rows.get("vllm")
    if vllm is None:
        return []
    if not vllm.get("ok"):
        why = vllm.get("not_run") or "failed"
        return [{"target": f"{scope}: vLLM engine's greedy answers equal the transformers engine's, token for token",
                 "measured": why, "wanted": "0 differ", "met": None}]
    same, total = vllm["same_as_ours"]
    targets = [{
        "target": f"{scope}: vLLM engine's greedy answers equal the transformers engine's, token for token",
        "measured": f"{total - same} of {total} answers (prompt x model) differ", "wanted": "0 differ",
        "met": same == total,
    }]
    for other, name in (("ours", "ours (transformers engine)"), ("floor", "the transformers floor")):
        ratio = _ratio(vllm, rows.get(other), "real_tps")
        targets.append({
            "target": f"{scope}: vLLM engine real tokens/s over {name} (generation only)",
            "measured": "not measured" if ratio is None else f"{ratio:.2f}x",
            "wanted": "— (reported)", "met": None,
        })
    return targets


def _yes(value) -> str:
    return "—" if value is None else ("yes" if value else "**no**")


def _row_line(row: dict, ours: dict | None) -> str:
    if row.get("not_run"):
        return f"| {row['label']} | {row['not_run']} |" + " — |" * 12
    if not row.get("ok"):
        return f"| {row['label']} | — | — | — | — | — | — | — | — | — | {row['peak_rss_mib']:.0f} | failed (see {row['runs'][-1]['log']}) | — |"
    claimed = "—" if row["claimed_tokens"] is None else f"{row['claimed_tokens']}"
    versus = "—" if row is ours or ours is None or not ours.get("ok") else f"{ours['real_tps'] / row['real_tps']:.2f}x"
    same = "—" if "same_as_ours" not in row or row is ours else f"{row['same_as_ours'][0]}/{row['same_as_ours'][1]}"
    return (
        f"| {row['label']} | {row['batch_size']} | {row['real_tokens']} ({row['mean_answer_tokens']:.1f}/answer, "
        f"{row['eos_rows']}/{row['answers']} EOS) | {claimed} | {row.get('forward_passes', '—')} | "
        f"{row.get('ms_per_pass', float('nan')):.2f} | {100 * row.get('rows_busy', float('nan')):.0f}% | "
        f"{row['generation_s']:.2f} | **{row['real_tps']:.0f}** | "
        f"{row['wall_s']:.1f} | {row['real_tps_wall']:.0f} | {row['peak_rss_mib']:.0f} | {versus} | {same} |"
    )


HEADER = [
    "| tool | batch | real tokens (mean/answer, stopped on EOS) | claimed tokens | passes | ms/pass | rows busy | gen s | real tok/s | wall s | real tok/s (wall) | peak RSS MiB | ours ÷ this (tok/s) | same answers as ours |",
    "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
]


def render_section(title: str, note: str, rows: list[dict], ours: dict | None) -> list[str]:
    lines = [f"## {title}", "", note, "", *HEADER]
    lines += [_row_line(row, ours) for row in rows]
    return lines + [""]


def render_markdown(sections: list[tuple[str, str, list[dict], dict | None]], targets: list[dict], extras: list[str],
                    header: list[str]) -> str:
    lines = list(header)
    for title, note, rows, ours in sections:
        lines += render_section(title, note, rows, ours)
    lines += ["## Targets", "", "| target | measured | wanted | met? |", "| --- | --- | --- | --- |"]
    lines += [f"| {t['target']} | {t['measured']} | {t['wanted']} | {_yes(t['met'])} |" for t in targets]
    return "\n".join(lines + [""] + extras + [""])
