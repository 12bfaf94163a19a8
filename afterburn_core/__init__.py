"""Afterburn's headless core: what post-training did to a model.

The dashboard (``app.py``), the CLI (``afterburn``) and this Python API are
three doors into the same functions and the same run store.
"""

from afterburn_core.config import AnalysisConfig, load_config_file
from afterburn_core.errors import AfterburnError
from afterburn_core.store import RunStore

__version__ = "0.1.0"

__all__ = ["AfterburnError", "AnalysisConfig", "RunStore", "__version__", "load_config_file"]
