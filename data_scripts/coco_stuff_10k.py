"""Download cocostuff-10k-v1.1.zip, verify it, convert to 171-class label PNGs, simulate points.

python data_scripts/coco_stuff_10k.py --root data          # ~2 GB download, ~10 min to convert
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import main  # noqa: E402

if __name__ == "__main__":
    main("coco_stuff_10k", __doc__)
