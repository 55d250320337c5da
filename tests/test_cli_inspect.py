"""The CLI dispatcher and ``trainstats inspect`` on a real run directory."""
from __future__ import annotations

import subprocess
import sys

from trainstats.cli import main
from trainstats.store import RunWriter, ValueColumn


def test_inspect_prints_columns_attempts_and_counts(tmp_path, capsys):
    run = tmp_path / "run"
    with RunWriter(run, [ValueColumn("loss", "float32", head="output", stat="loss", unit="nats")],
                   noise_manifest={"a:1": "label"}, config={"lr": 0.5}) as w:
        keys = w.register_samples(["a:1", "a:2", "a:3"])
        w.write(split="train", epoch=0, step=0, batch=0, sample_key=keys, values={"loss": [1, 2, 3]})
        w.write(split="dev", epoch=0, step=1, batch=0, sample_key=keys[:2], values={"loss": [1, 2]})
    assert main(["inspect", str(run)]) == 0
    out = capsys.readouterr().out
    assert "loss" in out and "nats" in out and '"lr": 0.5' in out
    assert "train epoch   0:          3 rows, 1 noisy" in out
    assert "dev   epoch   0:          2 rows, 1 noisy" in out


def test_inspect_refuses_a_folder_that_is_not_a_run(tmp_path, capsys):
    assert main(["inspect", str(tmp_path)]) == 2
    assert "is not a trainstats run directory: no run.json" in capsys.readouterr().err


def test_help_does_not_import_tensorflow():
    code = "import sys; from trainstats.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass\nprint('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().endswith("False"), out.stdout + out.stderr
