"""Money at the edges: fen (int) as yuan text (`12,000.00`) and as Chinese capitals (人民币壹万贰仟元整).

Amounts are integers in fen everywhere inside; these only print them. The capitals follow the
rules banks and accountants apply to 大写金额 (中国人民银行《正确填写票据和结算凭证的基本规定》):

- `人民币` first; digits 零壹贰叁肆伍陆柒捌玖, units 拾佰仟 inside a group of four, 万 and 亿 between
  groups; a ten is written 壹拾 (never 拾 alone, so nothing can be written in front of it);
- zeros in the middle are read as one 零, however many there are, also across a whole group
  (¥10,500 → 壹万零伍佰元整, ¥100,000,500 → 壹亿零伍佰元整); zeros at the end of a group are not read;
- `元` after the yuan; `整` after 元 or 角 when there are no fen; after 分 nothing;
- 角 zero but 分 not: 零 after 元 (¥10.05 → 壹拾元零伍分); 元 digit zero but 角 not: no 零
  (¥1,680.32 → 壹仟陆佰捌拾元叁角贰分, one of the two forms the rules allow);
- under one yuan, no 元 (¥0.50 → 人民币伍角整); nothing at all is 人民币零元整.
"""

from __future__ import annotations

DIGITS = "零壹贰叁肆伍陆柒捌玖"
SMALL_UNITS = ("", "拾", "佰", "仟")  # inside a group of four digits
GROUP_UNITS = ("", "万", "亿")  # 10^0, 10^4, 10^8: up to 9999亿 yuan, above domain.funds.MAX_AMOUNT


def yuan(fen: int) -> str:
    """`1200000` -> `12,000.00`; negative amounts keep their sign (`-0.05`)."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    return f"{sign}{whole:,}.{cents:02d}"


def _group(value: int) -> str:
    """A group of four digits (1–9999) in capitals, inner zeros as one 零, no leading or trailing 零."""
    out: list[str] = []
    zero = False
    for power in range(3, -1, -1):
        digit = value // 10**power % 10
        if digit == 0:
            zero = bool(out)  # a zero after a written digit: read once, if something follows
            continue
        if zero:
            out.append("零")
            zero = False
        out.append(DIGITS[digit] + SMALL_UNITS[power])
    return "".join(out)


def _whole(yuan_part: int) -> str:
    groups: list[int] = []
    while yuan_part:
        yuan_part, group = divmod(yuan_part, 10_000)
        groups.append(group)
    if len(groups) > len(GROUP_UNITS):
        raise ValueError("amount too large for capitals")
    out: list[str] = []
    pending_zero = False
    for index in range(len(groups) - 1, -1, -1):
        group = groups[index]
        if group == 0:
            pending_zero = bool(out)
            continue
        if out and (pending_zero or group < 1000):
            out.append("零")
        pending_zero = False
        out.append(_group(group) + GROUP_UNITS[index])
    return "".join(out)


def capitals(fen: int) -> str:
    """`1200000` -> `人民币壹万贰仟元整`; `1005` -> `人民币壹拾元零伍分`."""
    if isinstance(fen, bool) or not isinstance(fen, int):
        raise TypeError(f"fen must be an int, got {fen!r}")
    sign = "负" if fen < 0 else ""
    whole, cents = divmod(abs(fen), 100)
    jiao, fen_digit = divmod(cents, 10)
    head = _whole(whole)
    parts = [f"{head}元"] if head else []
    if jiao:
        parts.append(f"{DIGITS[jiao]}角")
    elif fen_digit and head:
        parts.append("零")
    if fen_digit:
        parts.append(f"{DIGITS[fen_digit]}分")
    else:
        parts.append("整")
    if not head and not cents:
        parts = ["零元整"]
    return f"人民币{sign}{''.join(parts)}"
