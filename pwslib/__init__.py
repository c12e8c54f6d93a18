"""pwslib: pointly-supervised weak-shot semantic segmentation.

Base classes are learned from full pixel masks, novel classes from a few clicked points; the
"point -> mask" mapping learned on base classes transfers to the novel ones. See DESIGN in the
README for the equations this package implements.
"""

__version__ = "0.1.0"
