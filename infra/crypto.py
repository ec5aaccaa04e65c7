"""Personal data at rest: AES-GCM envelopes under data keys wrapped by a master key.

- The master key lives in a key file outside the database. `init` creates it;
  nothing ever overwrites one.
- Each resident has a data key (`res:COMMUNITY/CODE`) for name and birth date;
  each record has one (`note:RECORD_ID`) for its note. Wrapped data keys live in
  the `data_keys` table, never in the event log, so destroying a key erases the
  data without touching history.
- An envelope is {"v", "alg", "key_id", "nonce", "ct"}. Version 2 binds the key id,
  the community, the subject (resident code or record id) and the field into the
  associated data, so an envelope copied to another person, record or field does
  not open. Version 1 (no "v": stores written before) bound only the key id; it
  still opens, where its key id is the one its place calls for.
- The store keeps a check value of the master key (`master_key_check`): a key
  file whose key id is right but whose key is not is refused before it wraps or
  unwraps anything.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

ALG = "A256GCM"
ENVELOPE_VERSION = 2
NOTE = "note"  # the field of a record's note; every other field belongs to a resident
PAYEE = "payee"  # the field of a spend's payee (commands.funds): keyed per community and year
_AAD_LABEL = b"taizhang/envelope/2"
_LENGTH = struct.Struct(">I")  # 4 bytes, big-endian: each part's length in the associated data
_CHECK_LABEL = b"taizhang/master-key-check/1"


class KeyFileError(Exception):
    """The key file is missing, unreadable or not a taizhang key file."""


class DamagedKey(KeyFileError):
    """The key file names the store's master key but holds other key material."""


class Unopenable(KeyFileError):
    """An envelope that does not belong where it was found, or whose ciphertext fails its tag."""


class RotatedKey(KeyFileError):
    """A writer sealed with a master key the store no longer uses (it was rotated meanwhile)."""


def check_master(current: str | None, data_keys: Sequence[tuple[str, str, bytes]]) -> None:
    """Refuse new data keys wrapped by another master key than the store's current one."""
    stale = {master for _key_id, master, _wrapped in data_keys if current and master != current}
    if stale:
        raise RotatedKey(
            f"the store's data keys are wrapped by master key {current}, not {', '.join(sorted(stale))} "
            "(a wrong key file, or the master key was rotated: use the new key file)"
        )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"), validate=True)


@dataclass(frozen=True)
class MasterKey:
    key_id: str
    key: bytes = field(repr=False)

    @cached_property
    def _aead(self) -> AESGCM:
        return AESGCM(self.key)  # one cipher object for the many keys an import wraps

    def wrap(self, key_id: str, data_key: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, data_key, key_id.encode())

    def unwrap(self, key_id: str, wrapped: bytes) -> bytes:
        try:
            return self._aead.decrypt(wrapped[:12], wrapped[12:], key_id.encode())
        except InvalidTag:
            raise KeyFileError(f"data key {key_id} was not wrapped by master key {self.key_id}") from None


def key_check(master: MasterKey) -> str:
    """The store's check value of a master key: an HMAC of a fixed label, which reveals nothing of the key."""
    digest = hmac.new(master.key, _CHECK_LABEL + b"\x00" + master.key_id.encode(), hashlib.sha256).hexdigest()
    return "1:" + digest


def check_matches(master: MasterKey, stored: str) -> bool:
    return hmac.compare_digest(key_check(master).encode(), stored.encode())


def create_key_file(path: Path) -> MasterKey:
    """Write a new master key to `path` (mode 0600); refuse if anything is there."""
    key = MasterKey(key_id="mk-" + secrets.token_hex(8), key=AESGCM.generate_key(bit_length=256))
    document = {
        "format": "taizhang-master-key",
        "version": 1,
        "key_id": key.key_id,
        "key": _b64(key.key),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")
    return key


def load_key_file(path: Path) -> MasterKey:
    try:
        document = orjson.loads(path.read_bytes())
        if document.get("format") != "taizhang-master-key":
            raise ValueError("not a taizhang master key file")
        key = _unb64(document["key"])
        if len(key) != 32:
            raise ValueError("key is not 256 bits")
        return MasterKey(key_id=str(document["key_id"]), key=key)
    except FileNotFoundError:
        raise KeyFileError(f"no key file at {path}") from None
    except (OSError, ValueError, KeyError, TypeError, orjson.JSONDecodeError) as e:
        raise KeyFileError(f"key file {path} is unreadable: {e}") from None


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


@dataclass(frozen=True)
class Binding:
    """Where an envelope belongs: its community, its subject (a resident code or a record id), its field."""

    community: str
    subject: str
    field: str
    key: str = ""  # a key id other than the field's own (a payee's: `payee:COMMUNITY/YEAR`)

    @property
    def key_id(self) -> str:
        if self.key:
            return self.key
        if self.field == NOTE:
            return note_key_id(self.subject)
        return resident_key_id(self.community, self.subject)

    def associated_data(self) -> bytes:
        parts = [p.encode("utf-8") for p in (self.key_id, self.community, self.subject, self.field)]
        return _AAD_LABEL + b"".join([_LENGTH.pack(len(b)) + b for b in parts])


def resident_field(community: str, code: str, field_name: str) -> Binding:
    return Binding(community, code, field_name)


def note_of(community: str, record_id: str) -> Binding:
    return Binding(community, record_id, NOTE)


def payee_of(community: str, spend_id: str, year: int) -> Binding:
    """Where a spend's payee (收款人) belongs: the spend, under its community's payee key of that year."""
    return Binding(community, spend_id, PAYEE, key=payee_key_id(community, year))


def seal(where: Binding, data_key: bytes, plaintext: str) -> dict[str, Any]:
    """A version-2 envelope, which opens only where `where` says it belongs."""
    nonce = os.urandom(12)
    ct = AESGCM(data_key).encrypt(nonce, plaintext.encode("utf-8"), where.associated_data())
    return {"v": ENVELOPE_VERSION, "alg": ALG, "key_id": where.key_id, "nonce": _b64(nonce), "ct": _b64(ct)}


def belongs(envelope: dict[str, Any], where: Binding) -> bool:
    """Whether the envelope's key id is the one its place calls for (checked before any key is fetched)."""
    return envelope.get("key_id") == where.key_id


def open_sealed(envelope: dict[str, Any], data_key: bytes, where: Binding) -> str:
    """The clear text of an envelope found at `where`; Unopenable when it belongs elsewhere or was altered."""
    field_name, subject, community = where.field, where.subject, where.community
    if not belongs(envelope, where):
        raise Unopenable(f"the {field_name} of {subject} in community {community} is sealed for another place")
    if envelope.get("alg") != ALG:
        raise Unopenable(f"unknown envelope algorithm {envelope.get('alg')!r}")
    version = envelope.get("v", 1)
    if version == 1:
        aad = where.key_id.encode()  # version 1 bound only the key id (checked above to be this place's)
    elif version == ENVELOPE_VERSION:
        aad = where.associated_data()
    else:
        raise Unopenable(f"unknown envelope version {version!r}")
    try:
        return AESGCM(data_key).decrypt(_unb64(envelope["nonce"]), _unb64(envelope["ct"]), aad).decode()
    except (InvalidTag, ValueError, KeyError, TypeError, AttributeError):
        raise Unopenable(f"the {field_name} of {subject} in community {community} does not open with its key") from None


def mac(data_key: bytes, text: str) -> str:
    """A keyed digest of a note, so the same note can be recognised without storing it."""
    mac_key = hashlib.sha256(b"taizhang/note-mac\x00" + data_key).digest()
    return hmac.digest(mac_key, text.encode("utf-8"), "sha256").hex()[:32]  # hmac.new(…).hexdigest(), in C


def resident_key_id(community: str, code: str) -> str:
    return f"res:{community}/{code}"


def note_key_id(record_id: str) -> str:
    return f"note:{record_id}"


def payee_key_id(community: str, year: int) -> str:
    """One data key per community and year seals the payees of its spends: destroying it erases
    that year's payee names (the retention period), and the next year's spends get a new key."""
    return f"payee:{community}/{year:04d}"
