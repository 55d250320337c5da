"""Drop-in replacement for GREAT's ``running/run_model.py`` that also records per-sample statistics.

Copy this file into the ``running/`` folder of a GREAT checkout (VHellendoorn/ICLR20-Great) and run it
from the checkout root exactly like ``run_model.py``, adding ``--stats RUN_DIR``::

    cp run_model_stats.py /path/to/great/running/
    cd /path/to/great
    python running/run_model_stats.py DATA vocab.txt config.yml -m MODELS -l log.txt --stats runs/great-1

Needs ``pip install 'trainstats[great]'``. See integrations/great/README.md.
"""
import os
import sys

os.environ["TF_USE_LEGACY_KERAS"] = "1"  # before anything imports TensorFlow: GREAT needs tf-keras

if __name__ == "__main__":
    from pathlib import Path

    from trainstats.great.main import main

    sys.exit(main(sys.argv[1:], checkout=Path(__file__).resolve().parents[1]))
