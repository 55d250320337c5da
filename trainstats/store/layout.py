"""Where every file of a run directory lives: the only module that knows the layout's names.

Schema version 2 (written by this trainstats)::

    RUN/split=train/epoch=3/part-a0002-w0-000001.parquet     rows: the plain Parquet dataset
    RUN/_trainstats/run.json                                 run metadata
    RUN/_trainstats/attempts/attempt-0002.json               one per attempt
    RUN/_trainstats/writers/a0002-w0.json                    one per writer of an attempt
    RUN/_trainstats/tmp/part-a0002-w0-000003.parquet.tmp     parts being written (never data)
    RUN/_trainstats/lock                                     advisory lock for publishing and archiving
    RUN/_trainstats/monitor/…                                the live monitor's TensorBoard events and tables
    RUN/_trainstats/files/…                                  a recorder's own files (e.g. the demo's vocab.json)
    RUN/_superseded/split=train/epoch=1/part-a0001-w0-000002.parquet.superseded

Parquet readers skip folders whose name starts with ``_`` or ``.`` (pandas, pyarrow), and only the
partition folders hold files ending in ``.parquet`` (DuckDB's and Polars' ``RUN/split=*/epoch=*/*.parquet``
globs), so the dataset view is exactly the row parts.

Schema version 1 (older trainstats; read, and upgraded by ``trainstats migrate``)::

    RUN/run.json  RUN/attempts/*.json  RUN/writers/*.json  RUN/samples/part-*.parquet
    RUN/rows/split=train/epoch=3/part-*.parquet
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Layout", "PartName", "RUN_FILE", "LEGACY_VERSION"]

RUN_FILE = "run.json"
LEGACY_VERSION = 1
_META = "_trainstats"
_SUPERSEDED = "_superseded"
_SUPERSEDED_SUFFIX = ".superseded"
_TMP_SUFFIX = ".tmp"
_PART = re.compile(r"^part-a(\d{4,})-w([A-Za-z0-9_.-]+)-(\d{6,})\.parquet$")
_SPLIT_DIR = re.compile(r"^split=([A-Za-z0-9_-]+)$")
_EPOCH_DIR = re.compile(r"^epoch=(\d+)$")
_ATTEMPT_FILE = re.compile(r"^attempt-(\d{4,})\.json$")


@dataclass(frozen=True)
class PartName:
    """The parts of a row-part file name ``part-a<attempt>-w<writer>-<seq>.parquet``."""

    attempt: int
    writer: str
    seq: int

    @classmethod
    def parse(cls, name: str) -> "PartName | None":
        m = _PART.match(name)
        return cls(int(m.group(1)), m.group(2), int(m.group(3))) if m else None

    def __str__(self) -> str:
        return f"part-a{self.attempt:04d}-w{self.writer}-{self.seq:06d}.parquet"


@dataclass(frozen=True)
class Layout:
    """Paths of one run directory. ``legacy`` is true for a schema-version-1 directory (``run.json`` at
    the top), including one that ``trainstats migrate`` stopped halfway through."""

    root: Path

    # ---------------------------------------------------------------- detection
    @property
    def legacy(self) -> bool:
        return (self.root / RUN_FILE).is_file()

    @property
    def run_file(self) -> Path:
        return self.root / RUN_FILE if self.legacy else self.meta_dir / RUN_FILE

    def exists(self) -> bool:
        """True when the folder holds a run of either layout."""
        return (self.root / RUN_FILE).is_file() or (self.meta_dir / RUN_FILE).is_file()

    # ---------------------------------------------------------------- version 2
    @property
    def meta_dir(self) -> Path:
        return self.root / _META

    @property
    def monitor_dir(self) -> Path:
        return self.meta_dir / "monitor"

    @property
    def files_dir(self) -> Path:
        return self.meta_dir / "files"

    @property
    def attempts_dir(self) -> Path:
        return self.meta_dir / "attempts"

    @property
    def writers_dir(self) -> Path:
        return self.meta_dir / "writers"

    @property
    def tmp_dir(self) -> Path:
        return self.meta_dir / "tmp"

    @property
    def lock_file(self) -> Path:
        return self.meta_dir / "lock"

    @property
    def superseded_dir(self) -> Path:
        return self.root / _SUPERSEDED

    def attempt_file(self, attempt: int) -> Path:
        return self.attempts_dir / f"attempt-{attempt:04d}.json"

    def writer_file(self, attempt: int, writer: str) -> Path:
        return self.writers_dir / f"a{attempt:04d}-w{writer}.json"

    def partition_dir(self, split: str, epoch: int) -> Path:
        return self.root / f"split={split}" / f"epoch={epoch}"

    def part_file(self, split: str, epoch: int, name: PartName) -> Path:
        return self.partition_dir(split, epoch) / str(name)

    def tmp_part(self, name: PartName) -> Path:
        return self.tmp_dir / f"{name}{_TMP_SUFFIX}"

    def superseded_file(self, part: Path) -> Path:
        """Where a visible row part goes when a later attempt supersedes it (its partition kept)."""
        rel = part.relative_to(part.parents[2])  # split=…/epoch=…/part-….parquet
        return self.superseded_dir / rel.parent / f"{rel.name}{_SUPERSEDED_SUFFIX}"

    def make_dirs(self) -> None:
        for d in (self.attempts_dir, self.writers_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------- listing
    def attempt_files(self, legacy: bool = False) -> list[Path]:
        folder = self.legacy_attempts_dir if legacy else self.attempts_dir
        return _matching(folder, _ATTEMPT_FILE)

    def writer_files(self, legacy: bool = False) -> list[Path]:
        folder = self.legacy_writers_dir if legacy else self.writers_dir
        return sorted(p for p in folder.glob("a*-w*.json")) if folder.is_dir() else []

    def attempt_numbers(self) -> list[int]:
        return sorted(int(_ATTEMPT_FILE.match(p.name).group(1)) for p in self.attempt_files())

    def parts(self, split: str | None = None, epoch: int | None = None, *, base: Path | None = None
              ) -> list[tuple[str, int, Path]]:
        """``(split, epoch, path)`` of every row part under ``base`` (default: the dataset root),
        in a stable order (split, epoch, name)."""
        base = self.root if base is None else base
        out = []
        if not base.is_dir():
            return out
        for sdir in sorted(base.iterdir()):
            ms = _SPLIT_DIR.match(sdir.name)
            if not ms or (split is not None and ms.group(1) != split) or not sdir.is_dir():
                continue
            for edir in sorted(sdir.iterdir()):
                me = _EPOCH_DIR.match(edir.name)
                if not me or (epoch is not None and int(me.group(1)) != epoch) or not edir.is_dir():
                    continue
                for f in sorted(edir.iterdir()):
                    if PartName.parse(f.name) is not None:
                        out.append((ms.group(1), int(me.group(1)), f))
        return out

    def visible_parts(self, split: str | None = None, epoch: int | None = None) -> list[tuple[str, int, Path]]:
        """The row parts a reader of this layout sees. A legacy directory's ``rows/`` come first; a part
        already moved to the top by an interrupted migration is listed once, at its new place."""
        if not self.legacy:
            return self.parts(split, epoch)
        moved = self.parts(split, epoch)
        names = {p.name for _, _, p in moved}
        old = [(s, e, p) for s, e, p in self.parts(split, epoch, base=self.legacy_rows_dir) if p.name not in names]
        return old + moved

    def stale_tmp_parts(self) -> list[tuple[PartName, Path]]:
        if not self.tmp_dir.is_dir():
            return []
        out = []
        for p in self.tmp_dir.iterdir():
            if p.name.endswith(_TMP_SUFFIX):
                name = PartName.parse(p.name[: -len(_TMP_SUFFIX)])
                if name is not None:
                    out.append((name, p))
        return out

    # ---------------------------------------------------------------- version 1 (legacy)
    @property
    def legacy_rows_dir(self) -> Path:
        return self.root / "rows"

    @property
    def legacy_samples_dir(self) -> Path:
        return self.root / "samples"

    @property
    def legacy_attempts_dir(self) -> Path:
        return self.root / "attempts"

    @property
    def legacy_writers_dir(self) -> Path:
        return self.root / "writers"

    @property
    def migrated_samples_dir(self) -> Path:
        """Where ``migrate`` keeps a legacy run's ``samples/`` side table (suffix ``.v1``: no glob reads it)."""
        return self.meta_dir / "v1-samples"

    def legacy_sample_files(self) -> list[Path]:
        files = sorted(self.legacy_samples_dir.glob("part-*.parquet")) if self.legacy_samples_dir.is_dir() else []
        if self.migrated_samples_dir.is_dir():
            have = {p.name for p in files}
            files += sorted(p for p in self.migrated_samples_dir.glob("part-*.parquet.v1")
                            if p.name[:-3] not in have)
        return files


def _matching(folder: Path, pattern: re.Pattern) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if pattern.match(p.name))
