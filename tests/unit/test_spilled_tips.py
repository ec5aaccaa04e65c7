"""`audit seal` keeps the records' tips on disk: the same records root as the tips held in memory."""

from __future__ import annotations

import random

import pytest

from infra import chain
from infra.checkpoint import SpilledTips, records_tree


@pytest.mark.parametrize("records", [0, 1, 7, 300])
def test_spilled_tips_give_the_records_tree_of_the_tips_kept_whole(records: int) -> None:
    rng = random.Random(records)
    ids = [f"{rng.getrandbits(128):032x}" for _ in range(records)]
    whole: dict[str, chain.RecordTip] = {}
    spilled = SpilledTips()
    batch: dict[str, chain.RecordTip] = {}
    for position in range(1, 4 * records + 1):
        record_id = rng.choice(ids)
        digest = rng.getrandbits(256).to_bytes(32, "big")
        for tips in (whole, batch):
            tip = tips.get(record_id)
            if tip is None:
                tips[record_id] = chain.RecordTip(1, position, digest)
            else:
                tip.count, tip.position, tip.hash = tip.count + 1, position, digest
        if len(batch) >= 5:  # as the walk hands them over: each batch later in the log
            spilled.add(batch)
            batch = {}
    spilled.add(batch)
    _order, tree = records_tree(whole)
    try:
        assert spilled.root() == (tree.size, tree.root())
    finally:
        spilled.close()


@pytest.mark.parametrize("records", [1, 2, 7, 300])
def test_a_record_s_proof_from_the_spill_is_the_one_of_the_tree_kept_whole(records: int) -> None:
    """`audit prove` reads a record's path of the records tree from the spill, its leaves once."""
    rng = random.Random(records)
    whole = {
        f"{rng.getrandbits(128):032x}": chain.RecordTip(1, p, rng.getrandbits(256).to_bytes(32, "big"))
        for p in range(records)
    }
    spilled = SpilledTips()
    try:
        spilled.add(whole)
        order, tree = records_tree(whole)
        for index in sorted({0, records - 1, rng.randrange(records)}):
            assert spilled.proof(order[index]) == (index, records, tree.inclusion_proof(index))
            assert spilled.tip(order[index]) == whole[order[index]]
        assert spilled.tip("not a record") is None
    finally:
        spilled.close()
