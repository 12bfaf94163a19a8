"""A stacked tensor's peers: the same tensor in every layer, and the median change it is measured against.

``peer_key`` names a tensor with its layer index replaced by ``*``;
``peer_medians`` groups the compared tensors by it and gives each its peers'
median ‖ΔW‖/‖W‖. The diagnosis's outlier finding and the Weights page's norm
reading both read a tensor "N× the median of its peers" from here, so the
two print one number. Pure Python over the stored ``TensorDiff`` records (no
numpy, so a view may import it). Cost: linear in the tensors.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import median

from afterburn_core.weights.types import TensorDiff

#: Fewest peers (the tensor included) for a median worth comparing against: below three, the
#: "median" is the tensor itself or the mean of two.
MIN_PEERS = 3


@dataclass(frozen=True)
class Peers:
    """The tensors that share a tensor's ``key`` (its name, layer as ``*``): how many, and their median ‖ΔW‖/‖W‖."""

    key: str
    count: int
    median: float


def peer_key(tensor: TensorDiff) -> str | None:
    """The tensor's name with its layer index replaced by ``*`` (None outside the stack)."""
    if tensor.layer is None:
        return None
    key, count = re.subn(rf"(?<![0-9]){tensor.layer}(?![0-9])", "*", tensor.name, count=1)
    return key if count else None


def peer_medians(tensors: Iterable[TensorDiff]) -> dict[str, Peers]:
    """Each compared tensor's peers by tensor name, where there are ``MIN_PEERS`` of them.

    A tensor is compared when it has a ‖ΔW‖/‖W‖: one-sided and tied tensors have none.
    """
    groups: dict[str, list[TensorDiff]] = defaultdict(list)
    for tensor in tensors:
        key = peer_key(tensor)
        if key is not None and tensor.relative_change is not None:
            groups[key].append(tensor)
    return {tensor.name: Peers(key, len(members), float(median(t.relative_change for t in members)))
            for key, members in groups.items() if len(members) >= MIN_PEERS for tensor in members}
