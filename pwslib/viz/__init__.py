"""Pictures of data, runs and tables; they read models and data, never train.

- ``figures``: label maps in a fixed palette, clicks over images, proposals, training curves, the charts of
  Tables 1-3, the visual comparison, the convergence and annotation-budget figures.
- ``explorer``: the keypoint-mask explorer of notebook 03 (``KeypointMaskExplorer``), headless ``compute``
  and an interactive ``show``.

Callers import the module they need: ``from pwslib.viz.figures import table_chart``.
"""
