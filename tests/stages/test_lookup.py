"""Journal lookups: events read as models and kept on the Store, signer checked on the body."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ledger.errors import IntegrityError
from ledger.keys import generate_key
from ledger.manifest import freeze
from ledger.store import Store
from stages.lookup import current_manifest
from tests.ledger.conftest import make_plan


def test_a_manifest_whose_freezer_is_not_its_signer_is_not_used(tmp_path) -> None:
    store = Store.init(tmp_path / ".ledger", host="h1")
    key, other = generate_key("signer"), generate_key("named")
    body = {
        **make_plan(),
        "frozen_at": datetime.now(UTC).isoformat(),
        "freezer": other.key_id,  # a valid signature by `key`, naming `other`
        "amends": None,
    }
    mid = store.put_signed("manifest", body, key)
    store.journal().append("manifest_frozen", object=mid)
    with pytest.raises(IntegrityError) as caught:
        current_manifest(store, "t", "screen")
    assert str(caught.value) == (f"manifest {mid}: freezer is not the key that signed it: not used")


def test_lookups_follow_the_journal_on_one_store_object(tmp_path) -> None:
    """The events kept on the store are read again when a journal changes; a line of
    another shape is not an event (verify names it), a line that is not JSON is refused."""
    store = Store.init(tmp_path / ".ledger", host="h1")
    key = generate_key("signer")
    assert current_manifest(store, "t", "screen") is None
    first = freeze(store, make_plan(), key)
    assert current_manifest(store, "t", "screen").id == first  # type: ignore[union-attr]
    journal = store.journal().path
    with journal.open("ab") as fh:
        fh.write(b'{"seq": 99, "kind": "manifest_frozen", "edited": true}\n')
    assert current_manifest(store, "t", "screen").id == first  # type: ignore[union-attr]
    lines = len(journal.read_bytes().splitlines())
    with journal.open("ab") as fh:
        fh.write(b"not json\n")
    with pytest.raises(IntegrityError, match=rf"line {lines + 1} is not valid JSON"):
        current_manifest(store, "t", "screen")
