"""The registry of noise kinds and the built-in kinds.

A kind is one function ``apply(example, rng) -> dict | None``: it receives a *validated* GREAT example
(see ``docs/varmisuse-format.md``) and an :class:`~trainstats.noise.rng.ExampleRandom`, and returns
the noised example as a new dict (never mutating its input), or ``None`` when the example is
*ineligible* for the kind (it is then never noised by it). An optional cheap ``eligible(example)``
predicate must agree with ``apply(...) is not None``; the pipeline uses it to scan whole splits.

Unless registered with ``needs_edges=True``, a kind must neither read nor change ``edges`` (the
pipeline hands it a placeholder and writes the original edges bytes back verbatim).

Adding a kind::

    @register_kind("drop-candidates", description="...", eligible=lambda ex: True)
    def _drop(example, rng):
        return dict(example, repair_candidates=[])
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Callable

from trainstats.noise.rng import ExampleRandom

__all__ = ["NoiseKind", "register_kind", "get_kind", "available_kinds",
           "TARGET_TOKEN", "BUGGY_TOKEN", "NONBUGGY_TOKEN"]

TARGET_TOKEN = "TARGET"
BUGGY_TOKEN = "BUGGY"
NONBUGGY_TOKEN = "NONBUGGY"

ApplyFn = Callable[[dict, ExampleRandom], "dict | None"]


@dataclass(frozen=True)
class NoiseKind:
    """One registered noise kind (see the module docstring for the contract)."""

    name: str
    apply: ApplyFn
    description: str
    changes_labels: bool
    eligible: Callable[[dict], bool] | None = None
    needs_edges: bool = False

    def is_eligible(self, example: dict) -> bool:
        """Whether :attr:`apply` would noise ``example`` (uses :attr:`eligible` when given)."""
        if self.eligible is not None:
            return bool(self.eligible(example))
        return self.apply(example, _NullRandom()) is not None


class _NullRandom(ExampleRandom):
    """Deterministic stand-in used only to probe eligibility of kinds without a predicate."""

    def __init__(self) -> None:  # no key needed: every word is 0
        pass

    def word(self) -> int:
        return 0


_REGISTRY: dict[str, NoiseKind] = {}


def register_kind(name: str, *, description: str, changes_labels: bool = False,
                  eligible: Callable[[dict], bool] | None = None,
                  needs_edges: bool = False) -> Callable[[ApplyFn], ApplyFn]:
    """Decorator registering ``apply`` as noise kind ``name`` (lower-case, ``-`` separated)."""
    if not isinstance(name, str) or not name or name != name.strip().lower() or " " in name:
        raise ValueError(f"kind names are non-empty lower-case words joined by '-', received {name!r}")

    def decorate(fn: ApplyFn) -> ApplyFn:
        if name in _REGISTRY and _REGISTRY[name].apply is not fn:
            raise ValueError(f"noise kind {name!r} is already registered")
        _REGISTRY[name] = NoiseKind(name, fn, description, changes_labels, eligible, needs_edges)
        return fn

    return decorate


def get_kind(name: str) -> NoiseKind:
    """Return the registered kind ``name``; ValueError listing the known kinds otherwise."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown noise kind {name!r}; expected one of {available_kinds()}") from None


def available_kinds() -> list[str]:
    """Names of the registered kinds, sorted."""
    return sorted(_REGISTRY)


# ----------------------------------------------------------------------------------------- helpers
def _int_candidates(example: dict) -> list[int]:
    """Integer repair candidates (variable-use positions), without position 0 (the no-bug slot)."""
    return sorted({c for c in example["repair_candidates"] if type(c) is int and c != 0})   # not bools


def _candidate_names(example: dict) -> list[str]:
    tokens = example["source_tokens"]
    return list(dict.fromkeys(tokens[c] for c in _int_candidates(example)))


def _named_candidates(tokens: list[str], ints: list[int]) -> list:
    """Bug-free layout of ``repair_candidates``: each run of same-variable positions, then its name.

    Real bug-free GREAT examples list candidates this way (``[4, 20, 64, "key", 2, 31, "self"]``);
    buggy ones list the positions only. (A few real bug-free examples also name variables without
    positions; those names cannot be recovered.)
    """
    out: list = []
    for i, c in enumerate(ints):
        out.append(c)
        if i + 1 == len(ints) or tokens[ints[i + 1]] != tokens[c]:
            out.append(tokens[c])
    return out


# -------------------------------------------------------------------------------------------- label
def _label_eligible(example: dict) -> bool:
    if example["has_bug"]:
        return True
    tokens = example["source_tokens"]   # at least two distinct names among the integer candidates != 0
    names = {tokens[c] for c in example["repair_candidates"]
             if c.__class__ is int and c or (isinstance(c, int) and not isinstance(c, bool) and c)}
    return len(names) >= 2


@register_kind(
    "label", changes_labels=True, eligible=_label_eligible,
    description="output noise: flip the label. buggy -> bug-free (has_bug false, error_location 0, no "
                "repair targets, bug_kind 0/NONE, candidate names added as in real bug-free examples); "
                "bug-free -> buggy at a uniformly chosen variable-use position (an integer repair "
                "candidate) whose repair targets are all candidate positions of one uniformly chosen "
                "*other* candidate variable (bug_kind 1/VARIABLE_MISUSE, candidate names dropped as in "
                "real buggy examples). Tokens and candidate positions unchanged. A bug-free example "
                "with fewer than two distinct candidate variables is ineligible.")
def _label(example: dict, rng: ExampleRandom) -> dict | None:
    new = dict(example)
    tokens = example["source_tokens"]
    ints = [c for c in example["repair_candidates"] if type(c) is int]   # positions (not bools, not names)
    if example["has_bug"]:
        new.update(has_bug=False, error_location=0, repair_targets=[])
        if len(ints) == len(example["repair_candidates"]):  # positions only: add names like real data
            new["repair_candidates"] = _named_candidates(tokens, ints)
        if "bug_kind" in new:
            new["bug_kind"] = 0
        if "bug_kind_name" in new:
            new["bug_kind_name"] = "NONE"
        return new
    cands = _int_candidates(example)
    names = list(dict.fromkeys(tokens[c] for c in cands))
    if len(names) < 2:
        return None
    loc = rng.choice(cands)
    others = [n for n in names if n != tokens[loc]]
    correct = rng.choice(others)
    new.update(has_bug=True, error_location=loc, repair_targets=[c for c in cands if tokens[c] == correct],
               repair_candidates=ints)
    if "bug_kind" in new:
        new["bug_kind"] = 1
    if "bug_kind_name" in new:
        new["bug_kind_name"] = "VARIABLE_MISUSE"
    return new


# ------------------------------------------------------------------------------------ inject-repair
def _inject_eligible(example: dict) -> bool:
    return not example["has_bug"] or bool(example["repair_targets"])


@register_kind(
    "inject-repair", eligible=_inject_eligible,
    description=f"input noise (the study's 'inject repair'): in a buggy example every token equal to the "
                f"repair-target variable becomes {TARGET_TOKEN!r} and the token at error_location becomes "
                f"{BUGGY_TOKEN!r}; in a bug-free example every occurrence of its most frequent token "
                f"(ties: the earliest) becomes {NONBUGGY_TOKEN!r}. Labels unchanged. Buggy examples "
                f"without repair targets are ineligible.")
def _inject_repair(example: dict, rng: ExampleRandom) -> dict | None:
    tokens = example["source_tokens"]
    if example["has_bug"]:
        targets = example["repair_targets"]
        if not targets:
            return None
        names = {tokens[t] for t in targets}
        new_tokens = [TARGET_TOKEN if t in names else t for t in tokens]
        new_tokens[example["error_location"]] = BUGGY_TOKEN
    else:
        counts = Counter(tokens)
        top = max(counts.values())
        frequent = next(t for t in tokens if counts[t] == top)
        new_tokens = [NONBUGGY_TOKEN if t == frequent else t for t in tokens]
    return dict(example, source_tokens=new_tokens)


# ------------------------------------------------------------------------------------------- rename
def _rename_eligible(example: dict) -> bool:
    return bool(_int_candidates(example))


@register_kind(
    "rename", eligible=_rename_eligible,
    description="input noise (identifier renaming): every candidate variable (token at an integer repair "
                "candidate) is renamed consistently, at every occurrence, to a fresh name VAR_<j> not "
                "otherwise in the example; names are assigned in a random order. Positions, labels, "
                "edges and which occurrences share a name are unchanged, so the task stays solvable "
                "from structure alone. Examples without integer candidates are ineligible.")
def _rename(example: dict, rng: ExampleRandom) -> dict | None:
    tokens = example["source_tokens"]
    names = _candidate_names(example)
    if not names:
        return None
    taken = set(tokens)
    fresh: list[str] = []
    j = 0
    while len(fresh) < len(names):
        candidate = f"VAR_{j}"
        if candidate not in taken:
            fresh.append(candidate)
        j += 1
    rng.shuffle(fresh)
    mapping = dict(zip(names, fresh))
    return dict(example, source_tokens=[mapping.get(t, t) for t in tokens])
