"""Many runs and their tables: Tables 1-3 as functions of (datasets, split, seeds, schedule).

- ``tables``: every table's rows (row name -> method and config overrides);
- ``schedules``: how much to train (``Schedule``) and the presets of runs (``SCHEDULES``, ``PRESET_TABLES``);
- ``grid``: a table's runs trained or reused from the cache, in parallel processes;
- ``report``: mean ± std over seeds, Welch's t-test, the Markdown and CSV files with provenance;
- ``analysis``: readers of finished tables for the notebooks' narratives;
- ``notebook``: what the notebooks' first cells call (``setup``, the trained runs, the visual comparison);
- ``cli``: ``python -m pwslib.experiments <table>``.
"""
