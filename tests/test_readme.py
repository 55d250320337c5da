"""The README's code blocks run, so its examples cannot break silently.

Python blocks are executed, in order, in one namespace inside a temporary folder; the few names a
snippet leaves to the reader (``x``, ``y``, ``ids``, ``model`` ...) are bound to a tiny real Keras
problem first, and the run folders the reading examples open are recorded by real tiny fits.
In the shell blocks every ``trainstats`` command is parsed by the real CLI parser (flags and
sub-commands must exist); the ones that need no long job (``analyze``) are also run. Installing,
the full demo, a GREAT checkout and building from the whole standard library are not run here
(the demo and the builder have their own tests).
"""
from __future__ import annotations

import glob
import os
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from trainstats.cli import build_parser, main  # noqa: E402

pytestmark = [pytest.mark.tf, pytest.mark.slow,
              pytest.mark.filterwarnings("ignore:`shuffle=True` was passed:UserWarning")]

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
#: shell commands that are run, not only parsed
RUN = {"analyze"}


def code_blocks(path: Path) -> list[tuple[str, str, int]]:
    """``(language, code, first line number)`` of every fenced block."""
    blocks, lang, start, lines = [], None, 0, []
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        m = re.match(r"^```(\w*)\s*$", line)
        if m and lang is None:
            lang, start, lines = m.group(1) or "text", no + 1, []
        elif line.startswith("```") and lang is not None:
            blocks.append((lang, "\n".join(lines) + "\n", start))
            lang = None
        elif lang is not None:
            lines.append(line)
    return blocks


def shell_commands(code: str) -> list[list[str]]:
    """The ``trainstats`` commands of a shell block (continuations joined, comments and
    ``[optional]`` placeholders dropped; ``.venv/bin/trainstats`` counts)."""
    out = []
    for line in code.replace("\\\n", " ").splitlines():
        line = re.sub(r"\s#.*$|^#.*$", "", line)
        for part in re.split(r"&&|;", line):
            words = shlex.split(re.sub(r"\[[^\]]*\]", "", part))
            if words and Path(words[0]).name == "trainstats":
                out.append(words[1:])
    return out


def _resolve(words: list[str], tmp: Path) -> list[str]:
    """A command's words as a shell in the clone's folder would see them: globs expanded, and
    ``../shared/...`` files pointed at the shared folder; where it is absent (a user's clone), the
    study's CSV becomes the shipped headline table written in its format (real figures, epoch 50)."""
    out = []
    for w in words:
        if w.startswith("../shared/"):
            shared = Path(os.environ.get("TRAINSTATS_SHARED") or REPO.parent / "shared")
            path = shared / w[len("../shared/"):]
            if not path.exists() and w.endswith("varmisuse_results.csv"):
                from trainstats.analysis.paper import HEADLINE, PUBLISHED_COLUMNS

                path = tmp / "paper.csv"
                rows = [",".join(PUBLISHED_COLUMNS)] + [
                    f"great,{kind},{metric},{head},{split},50,{level},{value}"
                    for (kind, metric, head, split), values in HEADLINE.items()
                    for level, value in zip((0, 25, 50, 75, 100), values) if value is not None]
                path.write_text("\n".join(rows) + "\n")
            out.append(str(path))
        elif any(c in w for c in "*?["):
            out += sorted(glob.glob(w)) or [w]
        else:
            out.append(w)
    return out


def _tiny_problem():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(256, 8)).astype("float32")
    y = (x[:, 0] > 0).astype("int64") + (x[:, 1] > 0)
    xv, yv = x[:64] + 0.1, y[:64]
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3, name="label")])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    return {"tf": tf, "x": x, "y": y, "xv": xv, "yv": yv, "model": model,
            "ids": [f"train:{i}" for i in range(len(x))], "val_ids": [f"dev:{i}" for i in range(len(xv))]}


def _record_runs(names: list[str]) -> None:
    """Runs the reading examples open, recorded by real tiny fits (noise flags on every 4th sample)."""
    from trainstats.keras import PerSampleStats, with_ids

    p = _tiny_problem()
    for name in names:
        noisy = np.arange(len(p["x"])) % 4 == 0 if "noise50" in name else None
        ds = with_ids(tf.data.Dataset.from_tensor_slices((p["x"], p["y"])), p["ids"], noise=noisy,
                      noise_kind=None if noisy is None else "label").batch(64)
        p["model"].fit(ds, epochs=2, verbose=0, validation_data=with_ids((p["xv"], p["yv"]), p["val_ids"]),
                       callbacks=[PerSampleStats(name)])


def test_readme_has_the_blocks_this_test_expects():
    langs = [lang for lang, _, _ in code_blocks(README)]
    assert langs.count("python") >= 2 and langs.count("bash") >= 3, langs


def test_readme_code_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = code_blocks(README)
    python = "\n".join(code for lang, code, _ in blocks if lang == "python")
    opened = sorted(set(re.findall(r"[\"'](runs/[\w.-]+)[\"']", python)))
    commands = [words for lang, code, _ in blocks if lang in ("bash", "sh", "shell") for words in shell_commands(code)]
    run_dirs = [w for words in commands if words and words[0] in RUN for w in words
                if w.startswith("runs/") and not any(c in w for c in "*?[")]
    written = set(re.findall(r"PerSampleStats\([\"'](runs/[\w.-]+)", python))
    _record_runs(sorted((set(opened) | set(run_dirs)) - written))
    namespace = _tiny_problem()
    for lang, code, line in blocks:
        if lang == "python":
            exec(compile(code, f"README.md:{line}", "exec"), namespace)   # noqa: S102 - the README's own code
    assert len(namespace["rows"]) == 10 * 256 and set(namespace["dev"]["split"]) == {"dev"}
    for words in commands:
        args = build_parser(words).parse_args(words)     # every documented flag exists
        assert args.command == words[0]
        if words[0] in RUN:
            words = _resolve(words, tmp_path)
            assert main(words) == 0, words
    report = tmp_path / "report"
    assert (report / "scores.parquet").is_file() and (report / "index.html").is_file()


def test_shell_command_extraction():
    code = "a && .venv/bin/trainstats demo  # comment\ntrainstats great train --checkout P D \\\n  -m M [--seed N]\n"
    assert shell_commands(code) == [["demo"], ["great", "train", "--checkout", "P", "D", "-m", "M"]]
