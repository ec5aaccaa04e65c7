"""CSV formula marks, as properties: any text survives export→import, and no piece of an exported
cell starts like a formula — the cell itself, nor any list item after `;`, `；` or `、`.

The export is the real CSV writer of every query (commands.output.render_csv) and the import
the real reader (commands.tabular.read_table, then split_list for list columns), through a
file on disk. Texts are drawn with the characters that matter over-represented: the triggers,
the separators, apostrophes and spaces.
"""

from __future__ import annotations

import csv
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from commands import formulas, models, tabular
from commands.output import render_csv

SPECIAL = list("=+-@|\t\r\n;；、' \u3000＝＋－＠") + ["\x00"]
texts = st.text(alphabet=st.one_of(st.sampled_from(SPECIAL), st.characters()), max_size=40)

PROPERTY = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _safe(cell: str) -> bool:
    return not any(formulas.starts_like_formula(piece) for piece in formulas.pieces(cell))


@PROPERTY
@given(texts)
def test_quoting_is_undone_exactly_and_leaves_no_piece_that_starts_a_formula(text: str) -> None:
    quoted = formulas.quote(text)
    assert formulas.unquote(quoted) == text
    assert _safe(quoted), quoted


def _note(text: str) -> str | None:
    """The note as the store keeps it (None when it would refuse the text)."""
    try:
        return models.optional_text(text, multiline=True, what="note")
    except ValueError:
        return None


def _code(text: str) -> str | None:
    try:
        return models.clean_code(text)
    except ValueError:
        return None


PRINTABLE = st.characters(blacklist_categories=("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))
# What a note or a place can be once the store has it: stripped, no control character but tab and newline.
notes = (
    st.text(alphabet=st.one_of(st.sampled_from(list("=+-@|\t\n;；、' \u3000＝＋－＠")), PRINTABLE), min_size=1, max_size=40)
    .map(_note)
    .filter(lambda v: v is not None)
)
# A code: no space, `/` or list separator, and it may well start like a formula (`-R2`).
codes = (
    st.text(alphabet=st.one_of(st.sampled_from(list("=+-@|'＝＠")), PRINTABLE), min_size=1, max_size=12)
    .map(_code)
    .filter(lambda v: v is not None)
)


@PROPERTY
@given(note=notes, place=notes, residents=st.lists(codes, min_size=1, max_size=4))
def test_any_note_place_and_list_of_codes_round_trips_through_a_csv_export(
    tmp_path_factory: pytest.TempPathFactory, note: str, place: str, residents: list[str]
) -> None:
    row = {
        "community": "HZ-001",
        "kind": "life_care",
        "residents": residents,
        "providers": ["P1"],
        "occurred_at": "2026-03-05T09:30:00+08:00",
        "minutes": 45,
        "place": place,
        "note": note,
    }
    exported = render_csv([row], list(row))
    path = tmp_path_factory.mktemp("csv") / "services.csv"
    path.write_text(exported, encoding="utf-8", newline="")
    for cells in list(csv.reader(io.StringIO(exported, newline="")))[1:]:
        assert all(_safe(cell) for cell in cells), cells
    table = tabular.read_table(path, "services")
    assert len(table.rows) == 1
    values = table.rows[0].values
    assert values["note"] == note
    assert values["place"] == place
    assert tabular.split_list(values["residents"]) == residents
