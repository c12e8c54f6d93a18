"""Download ADEChallengeData2016.zip, verify its SHA-1, convert to 150-class label PNGs, simulate points.

python data_scripts/ade20k.py --root data                  # ~0.9 GB download
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import main  # noqa: E402

if __name__ == "__main__":
    main("ade20k", __doc__)
