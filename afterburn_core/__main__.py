"""``python -m afterburn_core`` is the ``afterburn`` command."""

from afterburn_core.cli import main

main()
