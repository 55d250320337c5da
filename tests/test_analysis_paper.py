"""The study's cited headline table and the reader of its per-epoch CSV."""
from __future__ import annotations

from pathlib import Path

import pytest

from trainstats.analysis.paper import HEADLINE, PUBLISHED_COLUMNS, headline, load_published, published_series


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_headline_lookup_by_fraction_and_split_alias():
    assert headline("label", "accuracy", "loc", "heldout", 0.0) == 0.8516
    assert headline("label", "accuracy", "loc", "dev", 1.0) == 0.0006
    assert headline("inject-repair", "gini_loss", "loc", "train", 1.0) == 1.0
    assert headline("label", "accuracy", "loc", "train", 0.3) is None  # not a level of the study
    assert headline("rename", "accuracy", "loc", "train", 0.5) is None  # not a kind of the study


def test_reader_and_series_roundtrip(tmp_path):
    csv_path = _write(tmp_path / "r.csv", [",".join(PUBLISHED_COLUMNS),
                                           "great,label,accuracy,loc,heldout,2,50,0.4",
                                           "great,label,accuracy,loc,heldout,1,50,0.3",
                                           "ggnn,label,accuracy,loc,heldout,1,50,0.9"])
    df = load_published(csv_path)
    assert list(df.columns) == list(PUBLISHED_COLUMNS) and len(df) == 3
    s = published_series(df, noise_kind="label", metric="accuracy", head="loc", split="dev", noise_level=0.5)
    assert s["epoch"].tolist() == [1, 2] and s["value"].tolist() == [0.3, 0.4]
    assert published_series(df, noise_kind="label", metric="accuracy", head="loc", split="dev",
                            noise_level=0.25).empty


@pytest.mark.parametrize("lines, match", [
    (["model,kind"], r"r\.csv:1: expected the header"),
    ([",".join(PUBLISHED_COLUMNS), "great,label,accuracy,loc,heldout,one,50,0.4"], r"r\.csv:2: epoch and noise"),
    ([",".join(PUBLISHED_COLUMNS), "great,label,accuracy"], r"r\.csv:2: expected 8 fields"),
])
def test_reader_errors_name_file_and_line(tmp_path, lines, match):
    with pytest.raises(ValueError, match=match):
        load_published(_write(tmp_path / "r.csv", lines))
    with pytest.raises(ValueError, match="no such file"):
        load_published(tmp_path / "missing.csv")


def test_headline_table_matches_the_published_csv(shared_paper_csv):
    """The shipped table is the published CSV's GREAT figures at epoch 50 (checked where the CSV exists:
    ``shared_paper_csv`` is ``../shared/paper/varmisuse_results.csv``, the test is not collected without it)."""
    df = load_published(shared_paper_csv)
    for (kind, metric, head, split), values in HEADLINE.items():
        for level, value in zip((0, 25, 50, 75, 100), values):
            s = published_series(df, noise_kind=kind, metric=metric, head=head, split=split, noise_level=level / 100)
            assert s.loc[s["epoch"] == 50, "value"].item() == pytest.approx(value, abs=1e-12)
