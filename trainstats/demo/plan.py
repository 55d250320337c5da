"""The demo's runs (one shared clean run per seed, one run per noise kind and level) and its state file.

The state file ``OUT/demo_state.json`` records, per run, a fingerprint of everything the run depends
on (settings, data, kind, level, seed) and whether it finished; a re-run into the same folder skips
finished runs with the same fingerprint, resumes an unfinished one from its last epoch, and starts
again any run whose fingerprint changed.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

__all__ = ["PlannedRun", "plan_runs", "run_name", "fingerprint", "DemoState"]


@dataclass(frozen=True)
class PlannedRun:
    """One training run of the study: its name, noise kind (None for the clean run), level and seed."""

    name: str
    kind: str | None
    level: float
    seed: int


def run_name(kind: str | None, level: float, seed: int) -> str:
    """``label-noise025-seed0`` for a noised run, ``clean-seed0`` for the clean run (level 0)."""
    if level == 0 or kind is None:
        return f"clean-seed{seed}"
    return f"{kind}-noise{round(level * 100):03d}-seed{seed}"


def plan_runs(kinds: Sequence[str], levels: Sequence[float], seeds: Sequence[int]) -> list[PlannedRun]:
    """The runs of a study, in training order: per seed the clean run (if 0 is a level), then every
    kind at every non-zero level. The clean run is shared by all kinds."""
    runs = []
    for seed in seeds:
        if any(lv == 0 for lv in levels):
            runs.append(PlannedRun(run_name(None, 0.0, seed), None, 0.0, seed))
        for kind in kinds:
            for level in levels:
                if level > 0:
                    runs.append(PlannedRun(run_name(kind, level, seed), kind, float(level), seed))
    return runs


def fingerprint(*parts: Any) -> str:
    """A short hash of JSON-serialisable parts (sorted keys): equal inputs give equal fingerprints."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode("utf-8")
    return hashlib.blake2b(blob, digest_size=10).hexdigest()


class DemoState:
    """``OUT/demo_state.json``: ``{"data": fingerprint, "runs": {name: {"fingerprint", "done", ...}}}``.

    Written atomically (temporary file, then rename) after every change, so a killed demo leaves a
    readable state behind.
    """

    def __init__(self, out_dir: Path) -> None:
        self.path = Path(out_dir) / "demo_state.json"
        try:
            self.data = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.data = {}
        self.data.setdefault("runs", {})

    def _save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def get(self, key: str) -> Any:
        return self.data.get(key)

    def set(self, key: str, value: Any) -> None:
        self.data[key] = value
        self._save()

    def run(self, name: str) -> dict:
        return self.data["runs"].get(name, {})

    def set_run(self, name: str, **fields: Any) -> None:
        self.data["runs"][name] = fields
        self._save()
