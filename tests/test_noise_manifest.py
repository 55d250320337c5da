"""The manifest writer builds Arrow arrays from buffers (no pandas import): same table as pyarrow's own."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from trainstats.noise.manifest import MANIFEST_SCHEMA, ManifestWriter
from trainstats.noise.shardwork import MANIFEST_FIELDS


def _chunk(ids, **over):
    n = len(ids)
    cols = {"sample_id": ids, "split": ["dev"] * n, "noise_kind": ["label"] * n, "level": [0.25] * n,
            "seed": [2**62] * n, "orig_has_bug": [i % 2 == 0 for i in range(n)],
            "new_has_bug": [i % 2 == 1 for i in range(n)], "orig_error_location": list(range(n)),
            "new_error_location": [0] * n, "orig_repair_targets": [[i, i + 1][: i % 3] for i in range(n)],
            "new_repair_targets": [[] for _ in range(n)], "changed_tokens": [i * 7 for i in range(n)]}
    cols.update(over)
    assert list(cols) == list(MANIFEST_FIELDS)
    return cols


def test_written_table_equals_pyarrow_from_pydict(tmp_path):
    chunks = [_chunk([f"shard-ü:{i}" for i in range(1, 11)]), _chunk([]),
              _chunk(["s:1", "s:2"], orig_repair_targets=[[], []], new_repair_targets=[[3, 4, 5], []])]
    path = tmp_path / "m.parquet"
    writer = ManifestWriter(path, metadata={"k": "v"})
    for c in chunks:
        writer.write(c)
    writer.close()
    got = pq.read_table(path)
    expected = pa.concat_tables([pa.Table.from_pydict(c, schema=MANIFEST_SCHEMA) for c in chunks])
    assert writer.rows == 12 == got.num_rows
    assert got.schema.metadata[b"k"] == b"v"
    assert got.cast(MANIFEST_SCHEMA).equals(expected)


def test_writing_a_manifest_does_not_import_pandas(tmp_path):
    code = ("import sys; from trainstats.noise.manifest import ManifestWriter; "
            "from tests.test_noise_manifest import _chunk; "
            f"w = ManifestWriter({str(tmp_path / 'm.parquet')!r}); w.write(_chunk(['a:1', 'a:2'])); w.close(); "
            "assert 'pandas' not in sys.modules, 'pandas was imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 0, proc.stderr
