"""Turn the benchmark's measured rows into target verdicts and a markdown report.

Contract: ``evaluate_targets(rows, pair, twin, args) -> list[dict]`` (one dict
per target of the issue: what it asks, the measured value, met True / False /
None when a row is missing) and ``render_markdown(...) -> str``. Rows are the
dicts ``weight_diff.py`` builds (``wall_s``, ``peak_rss_gib``, ``measurement``,
``output`` for ours and the floors, ``verdict`` for the peers).

The targets (issue 4, "Targets"): ours default ≤ 1.25× the randomized floor;
≥ 6× faster than afterburn 0.6.3 and ≥ 12× faster than modeldelta 0.4.4;
every tensor reported, both planted edits ranked first; ``--exact`` ≤ 1.1×
the fp64 Gram floor and faster than modeldelta's full svdvals; peak RSS ≤ 1.0
GiB on the pair and on its twin of equal width. A peer stopped at its timeout
gives a lower bound on its time: its ratio is printed as "≥" and meets a "≥"
target only if the bound already does.

It measures nothing itself.
"""

from __future__ import annotations

#: The issue's targets; change them there first.
DEFAULT_VS_RANDOMIZED_FLOOR = 1.25
EXACT_VS_GRAM_FLOOR = 1.1
AFTERBURN_SLOWER_AT_LEAST = 6.0
MODELDELTA_SLOWER_AT_LEAST = 12.0
PEAK_RSS_GIB_AT_MOST = 1.0


def _ok(row: dict | None) -> bool:
    return row is not None and row["measurement"].ok


def _target(name: str, measured: str, target: str, met: bool | None) -> dict:
    return {"target": name, "measured": measured, "wanted": target, "met": met}


def evaluate_targets(rows: dict, pair: dict, twin: dict, args) -> list[dict]:
    targets: list[dict] = []
    ours, floor_lowrank = rows.get("ours_default"), rows.get("floor_lowrank")
    if _ok(ours) and _ok(floor_lowrank):
        ratio = ours["wall_s"] / floor_lowrank["wall_s"]
        targets.append(_target("default run vs randomized floor", f"{ratio:.2f}x", f"<= {DEFAULT_VS_RANDOMIZED_FLOOR}x", ratio <= DEFAULT_VS_RANDOMIZED_FLOOR))
    else:
        targets.append(_target("default run vs randomized floor", "not measured", f"<= {DEFAULT_VS_RANDOMIZED_FLOOR}x", None))
    if _ok(ours) and ours.get("output"):
        output = ours["output"]
        every = output["tensors_covered"] == pair["tensors"]
        targets.append(
            _target(
                "default run reports every tensor and ranks both planted edits first",
                f"{output['tensors_covered']}/{pair['tensors']} tensors; planted ranks "
                f"{output['planted_ranks']['projection']} (o_proj), {output['planted_ranks']['norm']} (norm)",
                f"{pair['tensors']}/{pair['tensors']}; ranks 1 and 2",
                every and output["planted_first"],
            )
        )
    for peer, at_least in (("afterburn", AFTERBURN_SLOWER_AT_LEAST), ("modeldelta", MODELDELTA_SLOWER_AT_LEAST)):
        row = rows.get(peer)
        if row is None or not _ok(ours):
            targets.append(_target(f"default run faster than {peer}", "not measured", f">= {at_least}x", None))
            continue
        ratio = row["wall_s"] / ours["wall_s"]
        stopped = row["measurement"].timed_out
        failed = not stopped and not row["measurement"].ok
        measured = f"{'>= ' if stopped else ''}{ratio:.1f}x" + (" (peer failed)" if failed else "")
        # A stopped peer's ratio is a lower bound: it proves the target when it reaches it, nothing when not.
        met = None if failed or (stopped and ratio < at_least) else ratio >= at_least
        targets.append(_target(f"default run faster than {peer}", measured, f">= {at_least}x", met))
    exact, floor_gram = rows.get("ours_exact"), rows.get("floor_gram")
    if _ok(exact) and _ok(floor_gram):
        ratio = exact["wall_s"] / floor_gram["wall_s"]
        targets.append(_target("--exact vs fp64 Gram floor", f"{ratio:.2f}x", f"<= {EXACT_VS_GRAM_FLOOR}x", ratio <= EXACT_VS_GRAM_FLOOR))
    elif not args.no_exact:
        targets.append(_target("--exact vs fp64 Gram floor", "not measured", f"<= {EXACT_VS_GRAM_FLOOR}x", None))
    modeldelta = rows.get("modeldelta")
    if _ok(exact) and modeldelta is not None and (modeldelta["measurement"].ok or modeldelta["measurement"].timed_out):
        bound = ">= " if modeldelta["measurement"].timed_out else ""
        faster = exact["wall_s"] < modeldelta["wall_s"]
        # A stopped modeldelta only bounds its full time from below: slower than that bound proves nothing.
        met = faster if (faster or not bound) else None
        targets.append(
            _target("--exact faster than modeldelta's full svdvals", f"{exact['wall_s']:.0f} s vs {bound}{modeldelta['wall_s']:.0f} s", "faster", met)
        )
    for key, label in (("ours_default", f"{pair['layers']}-layer pair, default"), ("ours_exact", f"{pair['layers']}-layer pair, --exact"), ("ours_twin", f"{twin['layers']}-layer twin, default")):
        row = rows.get(key)
        if _ok(row):
            rss = row["peak_rss_gib"]
            targets.append(_target(f"peak RSS, {label}", f"{rss:.2f} GiB", f"<= {PEAK_RSS_GIB_AT_MOST} GiB", rss <= PEAK_RSS_GIB_AT_MOST))
    if _ok(rows.get("ours_default")) and _ok(rows.get("ours_twin")):
        big, small = rows["ours_default"]["peak_rss_gib"], rows["ours_twin"]["peak_rss_gib"]
        targets.append(
            _target(
                "peak RSS flat in depth",
                f"{small:.2f} GiB at {twin['layers']} layers, {big:.2f} GiB at {pair['layers']} ({big - small:+.2f})",
                f"both <= {PEAK_RSS_GIB_AT_MOST} GiB",
                max(big, small) <= PEAK_RSS_GIB_AT_MOST,
            )
        )
    return targets


def _yes(value) -> str:
    return "—" if value is None else ("yes" if value else "**no**")


def _planted(row: dict) -> str:
    if row["kind"] == "peer":
        verdict = row["verdict"]
        return f"{_yes(verdict.get('planted_first'))}: {verdict['note']}"
    output = row.get("output") or {}
    if "planted_first" in output and row["kind"] == "ours":
        ranks = output["planted_ranks"]
        return f"{_yes(output['planted_first'])} (ranks {ranks['projection']}, {ranks['norm']}; {output['tensors_covered']}/{output['tensors_stored']} tensors)"
    if "planted_first" in output:
        return _yes(output["planted_first"])
    return "—"


def _cell_ratio(numerator: dict | None, denominator: dict | None, what: str, bound: bool = False) -> str:
    if not (numerator and denominator and denominator["measurement"].ok):
        return "—"
    return f"{'>= ' if bound else ''}{numerator['wall_s'] / denominator['wall_s']:.2f}x {what}"


def render_markdown(rows, targets, pair, twin, args, facts, facts_end, started, finished) -> str:
    target_by_name = {target["target"]: target for target in targets}

    def met(name: str) -> str:
        target = target_by_name.get(name)
        return _yes(target["met"]) if target else "—"

    k = args.top_k
    specs = [
        ("floor_read", "floor: read both files", None, "", "—"),
        ("floor_cheap", "floor: + fp32 ΔW + cheap metrics", None, "", "—"),
        ("floor_lowrank", f"floor: + svd_lowrank(q={k + 10}, niter=2) of every 2-D ΔW", None, "", "—"),
        ("floor_gram", "floor: + fp64 Gram eigvalsh of every 2-D ΔW (no svd_lowrank)", None, "", "—"),
        ("ours_default", f"**ours, default (k={k})**", ("floor_lowrank", "randomized floor"), f"<= {DEFAULT_VS_RANDOMIZED_FLOOR}x", met("default run vs randomized floor")),
        ("ours_exact", "**ours, --exact**", ("floor_gram", "Gram floor"), f"<= {EXACT_VS_GRAM_FLOOR}x", met("--exact vs fp64 Gram floor")),
        ("afterburn", "afterburn 0.6.3 `weight-diff`", ("ours_default", "ours default"), f">= {AFTERBURN_SLOWER_AT_LEAST}x", met("default run faster than afterburn")),
        ("modeldelta", "modeldelta 0.4.4", ("ours_default", "ours default"), f">= {MODELDELTA_SLOWER_AT_LEAST}x", met("default run faster than modeldelta")),
        ("ours_twin", f"ours, default, {twin['layers']}-layer twin", None, f"RSS <= {PEAK_RSS_GIB_AT_MOST} GiB", met("peak RSS flat in depth")),
        ("ours_cli", "ours via CLI (`afterburn weight-diff`)", ("ours_default", "ours API"), "", "—"),
    ]
    lines = [
        f"# Weight-diff benchmark, {started:%Y-%m-%d %H:%M}",
        "",
        (f"Pair: Qwen2.5-0.5B-shaped, {pair['layers']} layers, {pair['tensors']} tensors, bf16, seed {pair['seed']} "
        f"(planted: `{pair['planted_projection']}` rank-2, relative change {pair['planted_projection_relative_change']:.3f}; "
        f"`{pair['planted_norm']}` x1.5, relative change {pair['planted_norm_relative_change']:.3f})."),
        (f"Machine: {facts['cpu_count']} CPU cores, load average {facts['load_average']} at start, {facts_end['load_average']} at end; "
        f"Python {facts['python']}. Runs: {args.repeats} of the fast group, {args.exact_repeats} of the exact pair, "
        f"{0 if args.skip_peers else args.peer_repeats} of each peer (best wall time kept, largest RSS). Peer timeout {args.peer_timeout:.0f} s."),
        "",
        "| tool | wall s | peak RSS GiB | ratio | target | met? | planted edits first? |",
        "| --- | ---: | ---: | --- | --- | --- | --- |",
    ]
    for key, label, versus, wanted, is_met in specs:
        row = rows.get(key)
        if row is None:
            continue
        measurement = row["measurement"]
        wall = f"{row['wall_s']:.1f}" + (" (stopped)" if measurement.timed_out else "" if measurement.ok else " (failed)")
        ratio = "—"
        if versus:
            ratio = _cell_ratio(row, rows.get(versus[0]), versus[1], bound=measurement.timed_out)
        lines.append(f"| {label} | {wall} | {row['peak_rss_gib']:.2f} | {ratio} | {wanted or '—'} | {is_met} | {_planted(row)} |")
    lines += ["", "| target | measured | wanted | met? |", "| --- | --- | --- | --- |"]
    lines += [f"| {t['target']} | {t['measured']} | {t['wanted']} | {_yes(t['met'])} |" for t in targets]
    lines += ["", f"Finished {finished:%Y-%m-%d %H:%M} ({(finished - started).total_seconds() / 60:.0f} min).", ""]
    return "\n".join(lines)
