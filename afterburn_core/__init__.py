"""Afterburn's headless core: what post-training did to a model.

The dashboard (``app.py``), the CLI (``afterburn``) and this Python API are
three doors into the same functions and the same run store::

    from afterburn_core import Diagnoser
    Diagnoser("demo:base", "demo:trained", method="sft").run().save("report.html")

Each CLI verb is an API function here too (``weight-diff`` → ``weight_diff``);
``behaviour`` and ``internals`` are ``afterburn_core.api.behaviour`` / ``.internals``,
since ``afterburn_core.behaviour`` and ``afterburn_core.internals`` are the packages
that compute them.
"""

from typing import Any

from afterburn_core.config import AnalysisConfig, load_config_file
from afterburn_core.errors import AfterburnError
from afterburn_core.store import RunStore

__version__ = "0.1.0"

_API = frozenset({
    "Diagnoser", "DiagnosedRun", "delete_run", "diagnose", "hack_check", "inspect", "list_runs", "load_run",
    "weight_diff",
})

__all__ = ["AfterburnError", "AnalysisConfig", "RunStore", "__version__", "load_config_file", *sorted(_API)]


def __getattr__(name: str) -> Any:
    # PEP 562: the API pulls in the reports; importing afterburn_core for its config alone stays light.
    if name in _API:
        from afterburn_core import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
