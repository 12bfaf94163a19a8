"""Every test a group of the behaviour result holds, in one order: what the tables and reports list.

``group_tests(group)`` flattens a ``GroupStats`` into ``(area, measure,
shift)`` rows — length, strategy, each format feature, accuracy, refusal and
benign refusal when present, the reasoning markers, diversity, and the sycophancy rates when
the group has probes — so the Behaviour page, the reports and the tests list
the same tests under the same names. Measures are plain words (``fenced non
code``); ``shift_cells`` writes a row's base, trained and change the way every
table shows them. Data and wording only: no statistics here.
"""

from __future__ import annotations

from afterburn_core.behaviour.types import GroupStats, NumericShift, ProportionShift, SetMetricShift, StrategyShift

Shift = NumericShift | ProportionShift | SetMetricShift | StrategyShift


def group_tests(group: GroupStats) -> list[tuple[str, str, Shift]]:
    """Every test of the group: (area, measure, shift)."""
    tests: list[tuple[str, str, Shift]] = [("Length", "output tokens", group.length),
                                           ("Strategy", "strategy mix", group.strategy)]
    tests += [("Format", feature.replace("_", " "), shift) for feature, shift in group.format.items()]
    for measure, outcome in (("accuracy", group.accuracy), ("refusal rate", group.refusal_rate),
                             ("refusal rate, benign prompts", group.benign_refusal_rate)):
        if outcome is not None:
            tests.append(("Outcome", measure, outcome))
    tests += [("Reasoning", "chain-of-thought depth", group.reasoning.cot_depth),
              ("Reasoning", "self-correction", group.reasoning.self_correction),
              ("Reasoning", "verification", group.reasoning.verification),
              ("Diversity", "distinct-1", group.diversity.distinct_1),
              ("Diversity", "distinct-2", group.diversity.distinct_2),
              ("Diversity", "repeated openings", group.diversity.repeated_openings)]
    if group.sycophancy is not None:
        for measure, rate in (("agrees with a wrong assertion", group.sycophancy.wrong_agreement),
                              ("agrees with a right assertion", group.sycophancy.right_agreement),
                              ("flips to a wrong assertion", group.sycophancy.flips)):
            if rate is not None:
                tests.append(("Sycophancy", measure, rate))
    return tests


def shift_cells(shift: Shift) -> tuple[str, str, str]:
    """Base, post-trained and change of one test, as every table writes them."""
    if isinstance(shift, NumericShift):
        return f"median {shift.base_median:.3g}", f"median {shift.trained_median:.3g}", f"{shift.median_shift:+.3g}"
    if isinstance(shift, StrategyShift):
        return (f"entropy {shift.entropy_base:.2f} bits", f"entropy {shift.entropy_trained:.2f} bits",
                f"TVD {shift.effect_size:.2f}")
    if isinstance(shift, ProportionShift):
        return f"{shift.base:.0%}", f"{shift.trained:.0%}", f"{shift.difference * 100:+.0f} pts"
    return f"{shift.base:.3g}", f"{shift.trained:.3g}", f"{shift.difference:+.3g}"
