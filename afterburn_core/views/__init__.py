"""Result → what every door shows: grids, ranked tables, readings made of numbers, labels, colours, bands.

One module per analysis (``inventory``, ``weights`` and ``weights_detail``,
``prompts`` for generations and token KL, ``behaviour`` and
``behaviour_readings``, ``reward_hack``), ``run`` for what a report says of a
whole run, and the shared ``theme``, ``wording`` and ``text``. Each kind's
view is named in the registry (``afterburn_core.analyses``). The pages,
``reports/`` and ``terminal.py`` only draw what these return; nothing here
draws or escapes for a syntax.
"""
