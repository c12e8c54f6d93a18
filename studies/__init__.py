"""Studies: one investigation per module, each a command that writes its report to ``reports/``.

Run from the repository root, e.g. ``python -m studies.convergence``. They import ``pwslib`` as a user would;
``pwslib`` never imports them (``tests/test_imports.py``).
"""
