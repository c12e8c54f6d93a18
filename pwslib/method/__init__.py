"""What the poster adds to MaskFormer, in the order a training step uses it.

- ``targets``: per-image targets (base masks, novel clicks, the ignore region R);
- ``matching``: the label assignment (assignment costs, Hungarian matching per image);
- ``losses``: every loss term of a step (the table ``LOSS_TERMS``: name, weight field, function);
- ``memory_bank``: the confident memory bank of L_ctl;
- ``pseudo_labels``: ``keypoint_pseudo``'s second stage (keypoint class masks turned into pseudo labels).

Callers import the module they need: ``from pwslib.method.losses import WeakShotCriterion``.
"""
