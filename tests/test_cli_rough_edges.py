"""What a new user hits first: closed pipes, levels that look like fractions, no matplotlib,
progress bars that stop short, margin units that differ between compared runs."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from trainstats.cli import BROKEN_PIPE_STATUS, main
from trainstats.commands.percent import parse_percentages
from trainstats.noise import count_for_level, load_manifest
from trainstats.store import RunWriter, ValueColumn
from trainstats.varmisuse import iter_examples, list_shards

REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def write_run(run_dir: Path, *, margin_unit: str = "logit", epochs: int = 3, n: int = 8) -> Path:
    """A small run with loss, gold_prob, correct and margin; the last two samples noisy."""
    ids = [f"train.txt:{i + 1}" for i in range(n)]
    cols = [ValueColumn("loss", "float32", head="output", stat="loss", unit="nats"),
            ValueColumn("gold_prob", "float32", head="output", stat="gold_prob", unit="[0, 1]"),
            ValueColumn("correct", "bool", head="output", stat="correct"),
            ValueColumn("margin", "float32", head="output", stat="margin", unit=margin_unit)]
    rng = np.random.default_rng(0)
    with RunWriter(run_dir, cols, config={"noise_level": 0.25}, noise_manifest={ids[-1]: "label", ids[-2]: "label"}) as w:
        keys = w.register_samples(ids)
        for e in range(epochs):
            gp = np.clip(rng.random(n) * 0.5 + 0.1 * e, 0.01, 0.99)
            gp[-2:] = 0.05
            w.write(split="train", epoch=e, step=e, batch=0, sample_key=keys,
                    values={"loss": -np.log(gp), "gold_prob": gp, "correct": gp > 0.5, "margin": np.log(gp / (1 - gp))})
            w.write(split="dev", epoch=e, step=e, batch=0, sample_key=keys[:3],
                    values={"loss": -np.log(gp[:3]), "gold_prob": gp[:3], "correct": gp[:3] > 0.5,
                            "margin": gp[:3] - 0.5})
    return run_dir


# ---------------------------------------------------------------------------------- closed pipes
def _closed_stdout(args: list[str]) -> subprocess.CompletedProcess:
    """Run ``trainstats ARGS`` with its stdout pipe closed before it writes anything."""
    proc = subprocess.Popen([sys.executable, "-m", "trainstats", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=ENV)
    proc.stdout.close()
    err = proc.stderr.read().decode()
    return subprocess.CompletedProcess(args, proc.wait(timeout=120), "", err)


@pytest.fixture(scope="module")
def small_shards(tmp_path_factory, built_great_dev_dir):
    folder = tmp_path_factory.mktemp("small") / "in"
    folder.mkdir()
    shard = list_shards(built_great_dev_dir)[0]
    (folder / shard.name).write_bytes(b"".join(shard.read_bytes().splitlines(keepends=True)[:80]))
    return folder


def test_every_command_exits_quietly_when_its_output_pipe_closes(tmp_path, small_shards):
    run = write_run(tmp_path / "run")
    src = tmp_path / "src"
    src.mkdir()
    (src / "m.py").write_text("def f(a, b):\n    c = a + b\n    return c * a\n")
    commands = [
        ["inspect", str(run)],
        ["inspect", "--json", str(run)],
        ["noise", str(small_shards), str(tmp_path / "noised"), "--kind", "label", "--level", "10", "--seed", "0",
         "--quiet", "--workers", "1"],
        ["build-varmisuse", str(src), str(tmp_path / "built")],
        ["analyze", str(run), "--out", str(tmp_path / "report"), "--no-plots", "--quiet"],
    ]
    for args in commands:
        done = _closed_stdout(args)
        assert done.returncode == BROKEN_PIPE_STATUS, (args, done.stderr)
        assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, (args, done.stderr)
    # the work itself was done: only the printing was cut short
    assert (tmp_path / "noised" / "noise_manifest.parquet").is_file()
    assert (tmp_path / "report" / "scores.parquet").is_file()


def test_inspect_piped_into_head(tmp_path):
    run = write_run(tmp_path / "run", epochs=40)      # more output than one pipe buffer read
    done = subprocess.run(f"{sys.executable} -m trainstats inspect {run} | head -2", shell=True,
                          capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 0 and done.stderr == ""
    assert len(done.stdout.splitlines()) == 2 and done.stdout.startswith("run ")


# ---------------------------------------------------------------------------------- levels
@pytest.mark.parametrize("text, expected", [
    ("25", [0.25]), ("0,25,50", [0.0, 0.25, 0.5]), ("1", [0.01]), ("100", [1.0]), ("0.0", [0.0]),
    ("0.25%", [0.0025]), ("0.5 %", [0.005]), ("12.5", [0.125]), ("25%,10", [0.25, 0.1]),
])
def test_percentages_are_read_as_percent(text, expected):
    assert parse_percentages(text, flag="--level") == pytest.approx(expected)


@pytest.mark.parametrize("text, message", [
    ("0.25", r"--level 0.25 looks like a fraction, but levels are percentages: write 25 for 25 %, "
             r"or 0.25% for 0.25 percent"),
    ("25,.5", r"--level .5 looks like a fraction.*write 50 for 50 %"),
    ("1.0", r"--level 1.0 looks like a fraction.*write 100 for 100 %"),
    ("250", r"--level is a percent in \[0, 100\], received 250"),
    ("x", r"--level expects percentages such as 25 or 0,25,50; received 'x'"),
    ("", r"--level expects percentages"),
])
def test_fraction_looking_levels_are_refused(text, message):
    with pytest.raises(ValueError, match=message):
        parse_percentages(text, flag="--level")


def test_noise_cli_refuses_a_fraction_and_takes_an_explicit_percent(small_shards, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["noise", str(small_shards), str(out), "--kind", "label", "--level", "0.25", "--seed", "1",
                 "--quiet", "--workers", "1"]) == 1
    assert "--level 0.25 looks like a fraction" in capsys.readouterr().err
    assert not out.exists()
    # 12.5%: an explicit percent that is not a round number
    assert main(["noise", str(small_shards), str(out), "--kind", "label", "--level", "12.5%", "--seed", "1",
                 "--quiet", "--workers", "1"]) == 0
    n_buggy = sum(ex["has_bug"] for _, ex in iter_examples(small_shards))
    expected = count_for_level(0.125, n_buggy) + count_for_level(0.125, 80 - n_buggy)
    assert len(load_manifest(out)) == expected
    assert f"noised {expected} of 80 examples" in capsys.readouterr().out


def test_demo_refuses_fraction_levels_before_doing_anything(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["demo", "--levels", "0,0.25,0.5", "--out", str(tmp_path / "demo")])
    assert exc.value.code == 2
    assert "--levels 0.25 looks like a fraction" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()


# ---------------------------------------------------------------------------------- no matplotlib
_NO_MATPLOTLIB = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name == "matplotlib" or name.startswith("matplotlib."):
            raise ImportError("No module named 'matplotlib' (blocked by the test)")
        return None
sys.meta_path.insert(0, _Block())
from trainstats.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_analyze_no_plots_works_without_matplotlib(tmp_path):
    run = write_run(tmp_path / "run")
    done = subprocess.run([sys.executable, "-c", _NO_MATPLOTLIB, "analyze", str(run), "--out", str(tmp_path / "t"),
                           "--no-plots", "--quiet"], capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode == 0, done.stderr
    assert {p.name for p in (tmp_path / "t").iterdir()} >= {"scores.parquet", "metrics.csv", "detection.csv",
                                                           "runs.csv", "messages.txt"}
    assert "matplotlib" not in done.stderr
    # with plots, the missing dependency is named with its pip extra, and nothing is written
    done = subprocess.run([sys.executable, "-c", _NO_MATPLOTLIB, "analyze", str(run), "--out", str(tmp_path / "r"),
                           "--quiet"], capture_output=True, text=True, env=ENV, timeout=120)
    assert done.returncode != 0
    assert "pip install 'trainstats[report]'" in done.stderr and "--no-plots" in done.stderr
    assert not (tmp_path / "r").exists()


# ---------------------------------------------------------------------------------- progress bars
def _last_bar_state(stderr: str, desc: str) -> str:
    states = [s for s in re.split(r"[\r\n]", stderr) if s.startswith(desc)]
    assert states, stderr
    return states[-1]


def test_build_progress_bar_ends_at_the_files_it_read(tmp_path, capfd):
    from trainstats.varmisuse.builder import build_varmisuse

    src = tmp_path / "src"
    src.mkdir()
    for i in range(12):
        (src / f"m{i:02d}.py").write_text(f"def f{i}(a, b):\n    c = a + b\n    return c * a\n")
    summary = build_varmisuse(src, tmp_path / "out", max_functions=3, workers=1, progress=True)
    bar = _last_bar_state(capfd.readouterr().err, "build-varmisuse")
    assert summary.n_files == 12 and summary.n_files_used == 3
    assert "100%" in bar and " 3/3 " in bar, bar
    build_varmisuse(src, tmp_path / "all", workers=1, progress=True)
    assert " 12/12 " in _last_bar_state(capfd.readouterr().err, "build-varmisuse")


def test_noise_progress_bar_ends_at_100_percent(small_shards, tmp_path, capfd):
    assert main(["noise", str(small_shards), str(tmp_path / "out"), "--kind", "label", "--level", "10",
                 "--seed", "1", "--workers", "1"]) == 0
    bar = _last_bar_state(capfd.readouterr().err, "noise:")
    assert "100%" in bar, bar


# ---------------------------------------------------------------------------------- margin units
def test_margin_units_are_shown_and_differences_warned(tmp_path, caplog):
    from trainstats.analysis import analyze_runs
    from trainstats.report import write_tables

    a = write_run(tmp_path / "noise25-logit", margin_unit="logit")
    b = write_run(tmp_path / "noise25-prob", margin_unit="probability")
    c = write_run(tmp_path / "noise25-logit-2", margin_unit="logit")
    same = analyze_runs([a, c])
    assert same.warnings == []
    assert list(same.runs["margin_units"]) == ["output=logit", "output=logit"]
    with caplog.at_level("WARNING"):
        mixed = analyze_runs([a, b])
    assert mixed.warnings == [
        "margins (and so AUM) are in different units across the compared runs and not comparable: "
        "logit: noise25-logit head output; probability: noise25-prob head output"]
    assert mixed.warnings[0] in caplog.text
    paths = write_tables(mixed, tmp_path / "tables")
    assert "output=probability" in paths["runs"].read_text()
    assert paths["messages"].read_text().startswith("warning: margins (and so AUM)")


# ---------------------------------------------------------------------------------- one source of figures
def test_quick_demo_figure_has_one_source(capsys):
    from trainstats.demo.settings import MEASURED_SECONDS, expected_duration

    assert expected_duration("quick") == f"about {round(MEASURED_SECONDS['quick'] / 10) * 10} s"
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"a smoke run, {expected_duration('quick')} on 2 CPU cores" in help_text
    assert f"the full demo takes {expected_duration('default')}" in help_text
    # every duration the docs give for the demo is the measured one
    duration = re.compile(r"(?:about|~|≈)\s*\d+(?:[.–-]\d+)?\s*(?:s|min|minutes|seconds)\b")
    found = {"quick": 0, "default": 0}
    for doc in ("README.md", "docs/demo.md"):
        for line in (REPO / doc).read_text(encoding="utf-8").splitlines():
            for m in duration.finditer(line):
                preset = "quick" if "--quick" in line else "default" if "demo" in line else None
                if preset is None:
                    continue
                assert m.group(0) == expected_duration(preset), (doc, line)
                found[preset] += 1
    assert found["quick"] >= 1 and found["default"] >= 2, found
