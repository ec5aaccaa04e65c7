"""Units of accountability and assessment periods.

Units are written `county:NAME`, `township:COUNTY/NAME` or `community:CODE`.
Periods are `YYYY-MM`, `YYYY-Qn` or `YYYY`.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date

LEVELS = ("county", "township", "community")


@dataclass(frozen=True, order=True)
class UnitRef:
    level: str
    county: str = ""
    township: str = ""
    community: str = ""

    def __str__(self) -> str:
        if self.level == "county":
            return f"county:{self.county}"
        if self.level == "township":
            return f"township:{self.county}/{self.township}"
        return f"community:{self.community}"

    def name(self) -> str:
        """The unit as people name it: 八步区贺街镇, 八步区, or a community's code.

        A township is written after its county, run together as Chinese place names are;
        names in Latin letters keep a space between them (`Babu District Hejie`).
        """
        if self.level == "county":
            return self.county
        if self.level == "township":
            joined = _is_cjk(self.county[-1:]) and _is_cjk(self.township[:1])
            return f"{self.county}{'' if joined else ' '}{self.township}"
        return self.community

    def contains(self, other: UnitRef) -> bool:
        """Whether `other` lies strictly inside this unit (a township in a county, …).

        A community is placed by its county and township, which `community:CODE` alone
        does not say: the store fills them in before asking.
        """
        if self.level == "county":
            return other.level in ("township", "community") and other.county == self.county
        if self.level == "township":
            return other.level == "community" and (other.county, other.township) == (self.county, self.township)
        return False


def _is_cjk(char: str) -> bool:
    return bool(char) and ("\u3400" <= char <= "\u9fff" or "\uf900" <= char <= "\ufaff" or char >= "\U00020000")


def parse_unit(text: str) -> UnitRef:
    """`county:NAME`, `township:COUNTY/NAME` or `community:CODE`; ValueError names what is wrong."""
    level, sep, rest = text.strip().partition(":")
    rest = rest.strip()
    if not sep or level not in LEVELS or not rest:
        raise ValueError(f"expected county:NAME, township:COUNTY/NAME or community:CODE, got {text!r}")
    if level == "county":
        if "/" in rest:
            raise ValueError(f"a county name has no '/': {text!r}")
        return UnitRef("county", county=rest)
    if level == "township":
        county, slash, township = rest.partition("/")
        if not slash or not county.strip() or not township.strip():
            raise ValueError(f"expected township:COUNTY/NAME, got {text!r}")
        return UnitRef("township", county=county.strip(), township=township.strip())
    return UnitRef("community", community=rest)


@dataclass(frozen=True)
class Period:
    text: str
    first: date
    last: date

    def __str__(self) -> str:
        return self.text

    def contains(self, day: date) -> bool:
        return self.first <= day <= self.last


_PERIOD = re.compile(r"^(\d{4})(?:-(\d{2})|-Q([1-4]))?$")


def parse_period(text: str) -> Period:
    """`YYYY-MM`, `YYYY-Qn` or `YYYY`."""
    match = _PERIOD.match(text.strip())
    if not match:
        raise ValueError(f"expected YYYY-MM, YYYY-Qn or YYYY, got {text!r}")
    year = int(match.group(1))
    if match.group(2):
        month = int(match.group(2))
        if not 1 <= month <= 12:
            raise ValueError(f"no month {month} in {text!r}")
        return Period(f"{year:04d}-{month:02d}", date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1]))
    if match.group(3):
        quarter = int(match.group(3))
        first_month = 3 * (quarter - 1) + 1
        last_month = first_month + 2
        return Period(
            f"{year:04d}-Q{quarter}",
            date(year, first_month, 1),
            date(year, last_month, calendar.monthrange(year, last_month)[1]),
        )
    return Period(f"{year:04d}", date(year, 1, 1), date(year, 12, 31))
