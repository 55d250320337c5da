"""One source file -> JSON lines of GREAT examples (runs in worker processes)."""
from __future__ import annotations

import ast
import random
import tokenize
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from trainstats.varmisuse.builder.examples import function_examples
from trainstats.varmisuse.builder.tokens import tokenize_source
from trainstats.varmisuse.builder.tree import Tree

__all__ = ["FileJob", "FileResult", "process_file", "iter_functions"]


@dataclass(frozen=True)
class FileJob:
    """What a worker needs for one file (picklable)."""

    path: str  # absolute path
    relpath: str  # POSIX path relative to the source root (used in provenances and seeds)
    seed: int
    max_tokens: int
    dataset_name: str
    license: str


@dataclass
class FileResult:
    """Examples of one file, per function, in source order; ``error`` when the file was skipped."""

    relpath: str
    functions: list[tuple[str, list[str]]] = field(default_factory=list)  # (qualname, json lines)
    skipped_functions: dict[str, int] = field(default_factory=dict)  # reason -> count
    function_errors: list[str] = field(default_factory=list)  # "file:line: what went wrong"
    n_functions: int = 0
    error: str | None = None


def iter_functions(tree: Tree) -> list[tuple[str, ast.AST]]:
    """``(qualname, node)`` for every (async) function and method of ``tree``, in source order."""
    stack: list[tuple[ast.AST, str]] = [(tree.root, "")]
    out = []
    while stack:
        node, prefix = stack.pop()
        for child in tree.children[node]:
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                qual = prefix + child.name
                out.append((qual, child))
                stack.append((child, qual + ".<locals>."))
            elif isinstance(child, ast.ClassDef):
                stack.append((child, prefix + child.name + "."))
            else:
                stack.append((child, prefix))
    out.sort(key=lambda qn: (qn[1].lineno, qn[1].col_offset))
    return out


def _read(path: str) -> str:
    with open(path, "rb") as fh:
        encoding, _ = tokenize.detect_encoding(fh.readline)
        fh.seek(0)
        raw = fh.read()
    text = raw.decode(encoding)
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def process_file(job: FileJob) -> FileResult:
    """Parse, tokenize and turn every function of ``job.path`` into examples (never raises)."""
    import json

    res = FileResult(job.relpath)
    try:
        text = _read(job.path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # SyntaxWarning for invalid escapes in old code
            tree = Tree(ast.parse(text, filename=job.relpath))
        src = tokenize_source(text)
    except SyntaxError as e:
        res.error = f"{job.relpath}:{e.lineno or 1}: SyntaxError: {e.msg}"
        return res
    except (UnicodeDecodeError, LookupError) as e:
        res.error = f"{job.relpath}:1: cannot decode: {type(e).__name__}: {e}"
        return res
    except (tokenize.TokenError, ValueError, RecursionError, MemoryError, OSError) as e:
        res.error = f"{job.relpath}:1: {type(e).__name__}: {e}"
        return res
    for qual, func in iter_functions(tree):
        res.n_functions += 1
        provenance = {"datasetProvenance": {
            "datasetName": job.dataset_name, "filepath": job.relpath, "license": job.license,
            "note": f"function: {qual} (line {func.lineno}); built by trainstats build-varmisuse",
            "function": qual, "line": func.lineno,
        }}
        rng = random.Random(f"{job.seed}:{job.relpath}:{qual}:{func.lineno}")
        try:
            fr = function_examples(src, tree, func, rng=rng, max_tokens=job.max_tokens, provenance=provenance)
        except Exception as e:  # noqa: BLE001 - one odd function must not lose the file; reported
            res.function_errors.append(f"{job.relpath}:{func.lineno}: {qual}: {type(e).__name__}: {e}")
            res.skipped_functions["internal error"] = res.skipped_functions.get("internal error", 0) + 1
            continue
        if fr.skipped is not None:
            res.skipped_functions[fr.skipped] = res.skipped_functions.get(fr.skipped, 0) + 1
            continue
        res.functions.append((qual, [json.dumps(ex) for ex in fr.examples]))
    return res


def source_files(root: Path, exclude_dirs: frozenset[str]) -> list[tuple[str, str]]:
    """``(absolute path, POSIX relative path)`` of every ``*.py`` under ``root``, sorted."""
    import os

    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in exclude_dirs and not d.startswith("."))
        for f in sorted(filenames):
            if f.endswith(".py"):
                full = os.path.join(dirpath, f)
                out.append((full, Path(os.path.relpath(full, root)).as_posix()))
    out.sort(key=lambda x: x[1])
    return out
