"""GREAT-format dev shards the suite builds itself, so a clone without ``../shared`` tests everything.

:func:`build_dev_shards` writes two dev shards shaped like the real ones in ``shared/data/great/dev``
(two files, about 550 lines each, ``json.dumps`` layout): ~1,100 examples that
:func:`trainstats.varmisuse.builder.build_varmisuse` builds from a fixed list of standard-library
modules, plus the hand-written lines of :data:`QUIRKS`. The builder never writes those quirks, but
the real GREAT data has them and code must handle them (see docs/varmisuse-format.md):

* a buggy example with no repair targets (the right variable occurs nowhere else as a plain token);
* a buggy example whose repair target is not among the candidates (a ``def name(`` token);
* a bug-free example whose candidates name variables that have no position of their own
  (``**kwargs``, nested ``def`` names) and whose positions all belong to one variable (so the
  ``label`` noise kind cannot make it buggy);
* non-ASCII string tokens, written as ``\\uXXXX`` on disk.

Each quirk's tokens and edges come from the builder's own tokenizer and graph for the hand-written
source (in GREAT's printed style, so the tokens equal GREAT's); the label fields are written by hand,
as GREAT has them for the real example each one copies. The build takes about two seconds.
"""
from __future__ import annotations

import ast
import json
import shutil
import textwrap
from dataclasses import dataclass
from pathlib import Path

from trainstats.varmisuse import shard_name, validate_example
from trainstats.varmisuse.builder import build_varmisuse, default_source_dir
from trainstats.varmisuse.builder.anchors import Anchors
from trainstats.varmisuse.builder.edges import FunctionGraph
from trainstats.varmisuse.builder.examples import function_span
from trainstats.varmisuse.builder.scopes import Scopes
from trainstats.varmisuse.builder.tokens import function_tokens, tokenize_source
from trainstats.varmisuse.builder.tree import Tree

__all__ = ["MODULES", "QUIRKS", "Quirk", "build_dev_shards", "copy_stdlib_modules", "quirk_example"]

#: standard-library modules the built shards come from (present in every CPython >= 3.10)
MODULES = ["argparse.py", "textwrap.py", "shlex.py", "json/decoder.py", "json/encoder.py", "fnmatch.py",
           "glob.py", "colorsys.py", "bisect.py", "heapq.py", "csv.py", "getopt.py", "string.py",
           "calendar.py", "difflib.py", "ipaddress.py", "base64.py", "pprint.py", "reprlib.py", "netrc.py"]


@dataclass(frozen=True)
class Quirk:
    """A hand-written GREAT line: source (one function) and its label fields as GREAT writes them."""

    name: str
    source: str
    has_bug: bool
    error_location: int
    repair_targets: list[int]
    repair_candidates: list


QUIRKS = [
    # real: dev-00024:1 style ``def f(self, **kwargs)``; GREAT replaced ``kwargs`` in ``**kwargs`` of the
    # call by ``self``. ``kwargs`` has no other plain token (``**kwargs`` in the def is one token),
    # so the example has no repair target.
    Quirk("buggy-without-targets",
          "def add_get_speech(self, **kwargs):\n    return self.append(GetSpeech(**self))\n",
          has_bug=True, error_location=17, repair_targets=[], repair_candidates=[2, 10, 17]),
    # real: ``return ret`` became ``return meth``; the target is the ``def ret(`` token, which is not
    # a candidate.
    Quirk("target-not-a-candidate",
          "def _meth_factory(meth, name):\n    def ret(self, *args, **kwargs):\n"
          "        return self._wrap(meth, *args, **kwargs)\n    return meth\n",
          has_bug=True, error_location=36, repair_targets=[9], repair_candidates=[2, 25, 36, 4]),
    # real: every position is ``app``; ``not_found`` / ``add_org`` only occur in ``def name(`` tokens
    # but are still listed by name. One variable with positions: ``label`` cannot flip it.
    Quirk("names-without-positions",
          "def FlaskApp():\n    app = Flask(__name__)\n    @app.errorhandler(404)\n    def not_found(e):\n"
          "        return make_response('404 Page', 404)\n    @app.route('/', methods=['GET'])\n"
          "    def add_org():\n        return 'Flask Example'\n    return app\n",
          has_bug=False, error_location=0, repair_targets=[], repair_candidates=[6, 14, 37, 60, "app",
                                                                                 "not_found", "add_org"]),
    # real: dev-00038:492 has a table of non-ASCII string literals (escaped as \uXXXX on disk).
    Quirk("non-ascii-strings",
          "def strip_marks(text, table):\n    table = dict(table)\n"
          "    table.update({ord('ș'): 's', ord('ț'): 't', ord('가'): 'ga'})\n    return text.translate(table)\n",
          has_bug=False, error_location=0, repair_targets=[],
          repair_candidates=[2, 45, "text", 4, 9, 13, 16, 49, "table"]),
]


def quirk_example(quirk: Quirk) -> dict:
    """The GREAT example of ``quirk``: the builder's tokens and edges of its source, its own labels."""
    text = textwrap.dedent(quirk.source)
    tree = Tree(ast.parse(text))
    src = tokenize_source(text)
    func = tree.root.body[0]
    ft = function_tokens(src, *function_span(src, func))
    anchors = Anchors(src, ft, func, tree)
    graph = FunctionGraph(func, anchors, Scopes(func, anchors))
    ex = {
        "has_bug": quirk.has_bug,
        "bug_kind": int(quirk.has_bug),
        "bug_kind_name": "VARIABLE_MISUSE" if quirk.has_bug else "NONE",
        "source_tokens": ft.tokens,
        "edges": graph.edges(ft.tokens),
        "error_location": quirk.error_location,
        "repair_targets": list(quirk.repair_targets),
        "repair_candidates": list(quirk.repair_candidates),
        "provenances": [{"datasetProvenance": {"datasetName": "trainstats-tests", "filepath": f"quirks/{quirk.name}",
                                               "license": "Apache-2.0", "note": "hand-written quirk line"}}],
    }
    validate_example(ex)
    return ex


def copy_stdlib_modules(modules: list[str], dest: Path) -> Path:
    """Copy the running interpreter's standard-library files ``modules`` (paths relative to it; missing
    ones skipped) into ``dest``, keeping their relative paths; returns ``dest``."""
    stdlib = default_source_dir()
    for rel in modules:
        if (stdlib / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(stdlib / rel, dest / rel)
    return dest


def build_dev_shards(work: Path, *, seed: int = 0) -> Path:
    """Write ``work/dev/`` with two GREAT dev shards (built examples + :data:`QUIRKS`); return it.

    Deterministic for a Python version (the modules are the running interpreter's).
    """
    src = copy_stdlib_modules(MODULES, work / "src")
    built = work / "built"
    build_varmisuse(src, built, seed=seed, workers=1, split_fractions=(0.0, 1.0, 0.0), max_tokens=2000,
                    examples_per_shard=10**6)
    lines = (built / "dev" / shard_name("dev", 0, 1)).read_bytes().splitlines(keepends=True)
    quirks = [json.dumps(quirk_example(q)).encode() + b"\n" for q in QUIRKS]
    # each quirk twice, spread over both shards (every 150th line)
    for i, raw in enumerate(quirks + quirks):
        lines.insert(min(len(lines), 40 + 150 * i), raw)
    half = len(lines) // 2
    out = work / "dev"
    out.mkdir(parents=True, exist_ok=True)
    for index, part in enumerate((lines[:half], lines[half:])):
        (out / shard_name("dev", index, 2)).write_bytes(b"".join(part))
    shutil.rmtree(src)
    shutil.rmtree(built)
    return out
