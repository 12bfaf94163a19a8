"""The threads a run computes with: chosen from the CPUs this process may use and the pair's size, or given by
``--threads``; applied whichever door starts the run (API, CLI, the dashboard's worker); never part of a cache key.

Which count a stage saw is read by a probe analysis that records ``torch.get_num_threads()`` as its result,
registered in this process and, through a ``sitecustomize.py`` on ``PYTHONPATH``, in a real worker process.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import textwrap
from pathlib import Path

import pytest
import torch

from cli_helpers import afterburn

from afterburn_core.analyses import unregister_analysis
from afterburn_core.api import Diagnoser
from afterburn_core.checkpoints import resolve_pair
from afterburn_core.config import AnalysisConfig
from afterburn_core.jobs import create_run, launch_worker
from afterburn_core.store import RunStore
from afterburn_core.threads import (
    PARALLEL_MIN_WEIGHT_BYTES, cgroup_cpu_quota, computing_with, thread_count, usable_cpus,
)

AFFINITY = len(os.sched_getaffinity(0))

_PROBE = textwrap.dedent(
    """
    import dataclasses
    from typing import ClassVar

    import torch

    from afterburn_core.analyses import AnalysisKind, register_analysis

    @dataclasses.dataclass(frozen=True)
    class ThreadsSeen:
        KIND: ClassVar[str] = "thread_probe"
        SCHEMA_VERSION: ClassVar[int] = 1
        threads: int

    def probe(context, progress):
        return ThreadsSeen(torch.get_num_threads())

    # Keyed by the seed, so a test recomputes it under another seed instead of reading the cached count.
    register_analysis(AnalysisKind("thread_probe", "Thread probe", ThreadsSeen, probe, config_fields=("seed",),
                                   depends_on=("inventory",)))
    """
)


@pytest.fixture
def probe_kind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The probe analysis, registered here and in every worker started from now on; unregistered after the test."""
    site = tmp_path / "probe-site"
    site.mkdir()
    (site / "thread_probe.py").write_text(_PROBE)
    (site / "sitecustomize.py").write_text("import thread_probe\n")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    spec = importlib.util.spec_from_file_location("thread_probe", site / "thread_probe.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    yield "thread_probe"
    unregister_analysis("thread_probe")


def _threads_seen(store: RunStore, run_id: str) -> int:
    return store.get_result(store.run_result_keys(run_id)["thread_probe"])["threads"]


def _cgroup(tmp_path: Path, files: dict[str, str], membership: str) -> tuple[Path, Path]:
    """A cgroup mount holding ``files`` and a /proc/self/cgroup saying ``membership``."""
    root = tmp_path / "cgroup"
    root.mkdir(parents=True)
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    self_cgroup = root.parent / "self-cgroup"
    self_cgroup.write_text(membership)
    return root, self_cgroup


@pytest.mark.parametrize(("files", "membership", "quota"), [
    ({"cpu.max": "150000 100000\n"}, "0::/\n", 1.5),  # v2 in a container: its limit at the namespace's root
    ({"cpu.max": "max 100000\n"}, "0::/\n", None),
    ({"a/cpu.max": "100000 100000\n", "a/b/cpu.max": "max 100000\n"}, "0::/a/b\n", 1.0),  # a parent's limit binds
    ({"a/cpu.max": "400000 100000\n", "a/b/cpu.max": "200000 100000\n"}, "0::/a/b\n", 2.0),  # the tightest one
    ({"unified/job/cpu.max": "300000 100000\n"}, "1:cpu:/\n0::/job\n", 3.0),  # v2 beside v1 (hybrid)
    ({"cpu,cpuacct/job/cpu.cfs_quota_us": "250000\n", "cpu,cpuacct/job/cpu.cfs_period_us": "100000\n"},
     "4:cpu,cpuacct:/job\n0::/\n", 2.5),  # v1
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, "1:cpu:/\n", None),  # v1, no limit
    ({"cpu.max": "garbage\n"}, "0::/\n", None),
    ({}, "0::/\n", None),
])
def test_cgroup_quota_is_the_tightest_limit_on_the_way_to_the_root(
    tmp_path: Path, files: dict[str, str], membership: str, quota: float | None
) -> None:
    assert cgroup_cpu_quota(*_cgroup(tmp_path, files, membership)) == quota


def test_usable_cpus_are_the_affinity_capped_by_the_quota_rounded_down(tmp_path: Path) -> None:
    assert usable_cpus(*_cgroup(tmp_path, {"cpu.max": "50000 100000\n"}, "0::/\n")) == 1  # half a CPU: still one
    assert usable_cpus(tmp_path / "no-cgroup", tmp_path / "no-self-cgroup") == AFFINITY
    wide, self_cgroup = _cgroup(tmp_path / "wide", {"cpu.max": f"{100000 * (AFFINITY + 8)} 100000\n"}, "0::/\n")
    assert usable_cpus(wide, self_cgroup) == AFFINITY


def test_small_pairs_compute_with_one_thread_large_ones_with_every_usable_cpu(tmp_path: Path) -> None:
    base, trained = resolve_pair("demo:base", "demo:trained")
    assert thread_count(0, base, trained) == 1  # 4 MB of weights
    assert thread_count(3, base, trained) == 3  # asked for
    large_file = tmp_path / "model.safetensors"
    with open(large_file, "wb") as sparse:
        sparse.truncate(PARALLEL_MIN_WEIGHT_BYTES)
    large = dataclasses.replace(base, weight_files=(str(large_file),))
    assert thread_count(0, base, large) == usable_cpus()
    adapter_of_large = dataclasses.replace(trained, adapter_base=large)  # the base an adapter loads counts
    assert thread_count(0, base, adapter_of_large) == usable_cpus()


def test_computing_with_puts_the_previous_count_back_even_after_an_error() -> None:
    before = torch.get_num_threads()
    with pytest.raises(RuntimeError), computing_with(before + 1):
        assert torch.get_num_threads() == before + 1
        raise RuntimeError("stage failed")
    assert torch.get_num_threads() == before


def test_api_runs_compute_with_the_chosen_threads_and_leave_the_callers_setting(
    probe_kind: str, afterburn_home: Path, tiny_pair
) -> None:
    before = torch.get_num_threads()
    automatic = Diagnoser(*tiny_pair).run(probe_kind)
    with RunStore(afterburn_home) as store:
        assert _threads_seen(store, automatic.run_id) == 1
    assert torch.get_num_threads() == before
    given = Diagnoser(*tiny_pair, threads=3, seed=1).run(probe_kind)  # another seed: not the cached count
    with RunStore(afterburn_home) as store:
        assert _threads_seen(store, given.run_id) == 3


def test_the_dashboards_worker_computes_with_the_runs_threads(probe_kind: str, store: RunStore, tiny_pair) -> None:
    run_id = create_run(store, str(tiny_pair[0]), str(tiny_pair[1]), AnalysisConfig(threads=3), (probe_kind,))
    assert launch_worker(store, run_id).wait() == 0
    assert store.get_run(run_id).status == "done" and _threads_seen(store, run_id) == 3


def test_threads_option_is_on_every_pair_verb_and_not_in_the_cache_key(afterburn_home: Path, tiny_pair) -> None:
    base, trained = map(str, tiny_pair)
    for verb in ("diagnose", "weight-diff", "behaviour", "hack-check", "internals"):
        assert "--threads INTEGER" in afterburn(verb, "--help").stdout
    first = afterburn("weight-diff", "--base", base, "--trained", trained, "--threads", "1")
    assert first.returncode == 0, first.stderr
    second = afterburn("weight-diff", "--base", base, "--trained", trained, "--threads", "2")
    assert second.returncode == 0 and "cached" in second.stderr
    run_id = second.stderr.split("run ", 1)[1].split()[0]
    assert json.loads(afterburn("runs", "show", "--json", run_id).stdout)["run"]["config"]["threads"] == 2


def test_a_bad_thread_count_is_one_line_and_exit_2(afterburn_home: Path) -> None:
    refused = afterburn("weight-diff", "--base", "demo:base", "--trained", "demo:trained", "--threads", "-1")
    assert refused.returncode == 2
    assert refused.stderr == "Error: config: threads: -1 must be a whole number from 0 to 1024\n"
