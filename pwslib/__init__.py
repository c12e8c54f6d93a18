"""pwslib: pointly-supervised weak-shot semantic segmentation.

Base classes are learned from full pixel masks, novel classes from a few clicked points; the
"point -> mask" mapping learned on base classes transfers to the novel ones. The README has the method in
one screen; the docstrings of model/keypoint_head.py, method/matching.py, method/losses.py and method/memory_bank.py its equations.
"""

__version__ = "0.1.0"
