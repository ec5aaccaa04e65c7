"""commands/names.py without a store: how names are normalised, and how an import's name
refusals combine with the problems its validation found."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from commands.names import RowProblem, normalise, settle

NAMES = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=12)
SPACES = st.text(alphabet=" \t\u3000\u00a0", min_size=1, max_size=3)


@given(NAMES)
def test_normalising_twice_changes_nothing(name: str) -> None:
    assert normalise(normalise(name)) == normalise(name)


@given(NAMES, st.integers(min_value=0, max_value=12), SPACES)
def test_spaces_anywhere_in_a_name_do_not_matter(name: str, at: int, spaces: str) -> None:
    at = min(at, len(name))
    assert normalise(name[:at] + spaces + name[at:]) == normalise(name)


def test_full_width_and_case_do_not_matter() -> None:
    assert normalise("Ｌｉ　Ｈｕａ") == normalise("li hua") == "lihua"
    assert normalise("王  芳") == normalise("王芳")
    assert normalise("张秀英") != normalise("张秀兰")


@dataclass
class _P:
    row: int
    field: str
    problem: str
    malformed: bool


@dataclass
class _V:
    row: int


def test_settle_lets_malformed_cells_win_and_replaces_what_validation_said_of_the_name() -> None:
    named = [RowProblem(2, "residents", "no such name"), RowProblem(3, "residents", "no such name"),
             RowProblem(4, "providers", "two of them")]  # fmt: skip
    malformed = [_P(2, "minutes", "not a whole number", True), _P(3, "residents", "code has a space", True)]
    valid, problems = settle(named, [_V(1), _V(4), _V(5)], malformed, _P)
    assert [v.row for v in valid] == [1, 5]
    assert [(p.row, p.field, p.malformed) for p in problems] == [
        (2, "minutes", True),  # malformed input first: the name of row 2 is not reported
        (3, "residents", False),  # the refused name, not "code has a space"
        (4, "providers", False),
    ]


def test_settle_without_names_changes_nothing() -> None:
    valid, malformed = [_V(1)], [_P(2, "minutes", "x", True)]
    assert settle([], valid, malformed, _P) == (valid, malformed)
