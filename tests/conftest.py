import subprocess
import sys

import numpy as np
import pytest
import torch

from pwslib.data.splits import ClassSplit

SMALL_TOY = {"num_train": 24, "num_test": 8}


@pytest.fixture(autouse=True)
def _single_thread_and_seed():
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory):
    """A data root with a small toy-stuff benchmark (24 train / 8 test images)."""
    from pwslib.data.toy import load_toy

    root = tmp_path_factory.mktemp("data")
    load_toy("toy-stuff", 0, root, progress=False, **SMALL_TOY)
    return root


@pytest.fixture
def tiny_split():
    """Five classes: 0, 1, 2 base; 3, 4 novel."""
    return ClassSplit(("sky", "grass", "water", "boat", "cow"), (3, 4))


def lock_holder(folder) -> subprocess.Popen:
    """A process that holds ``folder``'s run lock for a minute, started once it holds it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom pwslib.runs import run_lock\nwith run_lock(sys.argv[1]):\n"
         "    print('held', flush=True)\n    time.sleep(60)", str(folder)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "held"
    return holder
