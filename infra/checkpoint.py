"""Signed checkpoints and offline proof bundles (Certificate-Transparency style). No database here.

Keys: Ed25519 (`cryptography`). The private key is a PKCS#8 PEM file (mode 0600), the
public key a SubjectPublicKeyInfo PEM beside it (`PATH.pub`); the key id is the hex
SHA-256 of the raw 32-byte public key.

A checkpoint (JSON, canonical: sorted keys, no spaces, ASCII; hashes in lowercase
hex, the signature in base64) is

    format        "taizhang-checkpoint/1"
    log_size      events in the log when sealed (n)
    last_position the log position of the n-th event
    head_hash     its chain hash (infra.chain)
    log_root      RFC 6962 Merkle root over the n chain hashes in log order
                  (leaf = SHA-256(0x00 ‖ chain hash))
    records_size  service records among those n events, and funding lines (keyed `line:<line id>`)
    records_root  Merkle root over one leaf per record, sorted by record id:
                  u32 len ‖ record id (UTF-8) ‖ u64 events of the record ‖ u64 position of
                  its latest event ‖ that event's chain hash
    sealed_at     UTC time of sealing;  key_id
    signature     Ed25519 over the canonical JSON of every other field

and, optionally (a checkpoint sealed before they existed has none and verifies as before):

    access_size   entries in the access log when sealed (infra.access_chain)
    access_head   the access chain's hash after them (32 zero bytes for none)
    views         {"digest": the views recomputed from the log at last_position
                   (commands.views_audit), "versions": {projection: version}}

A bundle ("taizhang-bundle/1") proves one record (or one funding line, record_id `line:<line id>`): each of its events (the stored
bytes, the chain hash before it, its index in the log and an inclusion proof into
`log_root`), the record's leaf with its inclusion proof into `records_root` (its
count shows no event of the record is left out), and the checkpoint. `check_bundle`
needs only the bundle and the public key; the file must be exactly the canonical
serialisation, so no byte of it can change without the check failing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import sqlite3
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from infra import chain, merkle

CHECKPOINT_FORMAT = "taizhang-checkpoint/1"
BUNDLE_FORMAT = "taizhang-bundle/1"
CHECKPOINT_FIELDS = {
    "format",
    "log_size",
    "last_position",
    "head_hash",
    "log_root",
    "records_size",
    "records_root",
    "sealed_at",
    "key_id",
    "signature",
}
OPTIONAL_FIELDS = {"access_size", "access_head", "views"}
BUNDLE_FIELDS = {"format", "record_id", "checkpoint", "events", "record"}
EVENT_FIELDS = {
    "index",
    "position",
    "originator_id",
    "originator_version",
    "topic",
    "state",
    "recorded_at",
    "prev_hash",
    "proof",
}
RECORD_FIELDS = {"index", "count", "latest_position", "latest_hash", "proof"}
_HEX32 = re.compile(r"[0-9a-f]{64}\Z")
_HEX16 = re.compile(r"[0-9a-f]{32}\Z")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")


class ProofError(Exception):
    """A checkpoint, bundle or key does not verify (exit 1)."""


class KeyFileProblem(Exception):
    """A key file cannot be written or read (the message names the file)."""


def shown(path: Path) -> str:
    """A file name for a message: printable even when it is not valid UTF-8."""
    return os.fsencode(path).decode("utf-8", "replace")


# ---- keys --------------------------------------------------------------------------------
def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def public_pem(public: Ed25519PublicKey) -> str:
    return public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()


def create_signing_key(path: Path) -> tuple[Path, Ed25519PublicKey]:
    """Write a new private key (mode 0600) and PATH.pub; never overwrite either."""
    pub_path = path.with_name(path.name + ".pub")
    for existing in (path, pub_path):
        try:
            found = existing.exists()
        except OSError as e:  # a name the file system cannot hold (too long), say
            raise KeyFileProblem(f"--key-file: cannot create {shown(existing)}: {e.strerror}") from None
        if found:
            raise FileExistsError(f"--key-file: {shown(existing)} already exists; it is never overwritten")
    private = Ed25519PrivateKey.generate()
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise FileExistsError(f"--key-file: {shown(path)} already exists; it is never overwritten") from None
    except OSError as e:
        raise KeyFileProblem(f"--key-file: cannot create {shown(path)}: {e.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public = private.public_key()
    try:
        fd = os.open(pub_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except OSError as e:
        path.unlink()
        raise KeyFileProblem(f"--key-file: cannot create {shown(pub_path)}: {e.strerror}") from None
    with os.fdopen(fd, "w") as f:
        f.write(public_pem(public))
    return pub_path, public


def load_signing_key(path: Path, option: str = "--key-file") -> Ed25519PrivateKey:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KeyFileProblem(f"{option}: cannot read {shown(path)}: {e.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise KeyFileProblem(
            f"{option}: {shown(path)} is not an Ed25519 signing key (make one with audit keygen)"
        ) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileProblem(f"{option}: {shown(path)} is not an Ed25519 signing key (make one with audit keygen)")
    return key


def load_public_key(path: Path, option: str = "--public-key") -> Ed25519PublicKey:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KeyFileProblem(f"{option}: cannot read {shown(path)}: {e.strerror}") from None
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError):
        raise KeyFileProblem(
            f"{option}: {shown(path)} is not an Ed25519 public key (the .pub file audit keygen wrote)"
        ) from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileProblem(f"{option}: {shown(path)} is not an Ed25519 public key (the .pub file audit keygen wrote)")
    return key


# ---- canonical JSON ------------------------------------------------------------------------
def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def document(obj: Any) -> bytes:
    """The bytes of a checkpoint or bundle file."""
    return canonical(obj) + b"\n"


def parse_document(data: bytes, what: str) -> dict[str, Any]:
    try:
        obj = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise ProofError(f"{what} is not JSON") from None
    if not isinstance(obj, dict) or document(obj) != data:
        raise ProofError(f"{what} is not in canonical form (it was changed after it was written)")
    return obj


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: Any, name: str) -> bytes:
    if not isinstance(text, str):
        raise ProofError(f"{name}: not base64 text")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise ProofError(f"{name}: not base64") from None
    if b64(raw) != text:
        raise ProofError(f"{name}: not canonical base64")
    return raw


def _hex(text: Any, name: str, pattern: re.Pattern[str] = _HEX32) -> bytes:
    if not isinstance(text, str) or not pattern.match(text):
        raise ProofError(f"{name}: not a lowercase hex hash")
    return bytes.fromhex(text)


def _int(value: Any, name: str, minimum: int = 0) -> int:
    if type(value) is not int or value < minimum:
        raise ProofError(f"{name}: not a whole number ≥ {minimum}")
    return value


def _fields(obj: Any, expected: set[str], what: str) -> dict[str, Any]:
    if not isinstance(obj, dict) or set(obj) != expected:
        raise ProofError(f"{what}: unexpected fields")
    return obj


# ---- records ------------------------------------------------------------------------------
def record_leaf(record_id: str, count: int, latest_position: int, latest_hash: bytes) -> bytes:
    rid = record_id.encode()
    return struct.pack(">I", len(rid)) + rid + struct.pack(">QQ", count, latest_position) + latest_hash


class SpilledTips:
    """The latest event of every service record, kept in a private temporary SQLite database (on
    disk, with SQLite's small page cache) rather than in memory: `add` is a walk's `records_spill`;
    `root()` is the records tree's size and root, its leaves read back in record-id order."""

    def __init__(self) -> None:
        self.db = sqlite3.connect("")  # "": a private temporary database, removed when closed
        self.db.execute(
            "CREATE TABLE tips (record_id TEXT PRIMARY KEY, count INTEGER NOT NULL, position INTEGER NOT NULL,"
            " hash BLOB NOT NULL) WITHOUT ROWID"
        )

    def add(self, tips: dict[str, chain.RecordTip]) -> None:
        """A batch of tips, later in the log than every batch before it."""
        self.db.executemany(
            "INSERT INTO tips (record_id, count, position, hash) VALUES (?, ?, ?, ?) ON CONFLICT (record_id)"
            " DO UPDATE SET count = count + excluded.count, position = excluded.position, hash = excluded.hash",
            [(r, tip.count, tip.position, tip.hash) for r, tip in tips.items()],
        )

    def leaves(self) -> Iterator[bytes]:
        """The records tree's leaf hashes, in record-id order (UTF-8 byte order is code point order)."""
        cursor = self.db.execute("SELECT record_id, count, position, hash FROM tips ORDER BY record_id")
        while batch := cursor.fetchmany(5000):
            for record_id, count, position, hash_ in batch:
                yield merkle.leaf_hash(record_leaf(record_id, count, position, bytes(hash_)))

    def root(self) -> tuple[int, bytes]:
        """(size, root) of records_tree over every tip added."""
        builder = merkle.RootBuilder()
        for leaf in self.leaves():
            builder.add(leaf)
        return builder.size, builder.root()

    def tip(self, record_id: str) -> chain.RecordTip | None:
        found = self.db.execute("SELECT count, position, hash FROM tips WHERE record_id = ?", (record_id,)).fetchone()
        return chain.RecordTip(found[0], found[1], bytes(found[2])) if found else None

    def proof(self, record_id: str) -> tuple[int, int, list[bytes]]:
        """(index, size, inclusion proof) of a record's leaf in records_tree, its leaves read once."""
        index = self.db.execute("SELECT count(*) FROM tips WHERE record_id < ?", (record_id,)).fetchone()[0]
        size = self.db.execute("SELECT count(*) FROM tips").fetchone()[0]
        return index, size, merkle.streamed_inclusion_proof(self.leaves(), index, size)

    def close(self) -> None:
        self.db.close()


def records_tree(tips: dict[str, chain.RecordTip]) -> tuple[list[str], merkle.Tree]:
    order = sorted(tips)
    tree = merkle.Tree(merkle.leaf_hash(record_leaf(r, tips[r].count, tips[r].position, tips[r].hash)) for r in order)
    return order, tree


def log_tree(leaves: bytes | bytearray, size: int) -> merkle.Tree:
    view = memoryview(leaves)
    return merkle.Tree(merkle.leaf_hash(bytes(view[i * 32 : (i + 1) * 32])) for i in range(size))


# ---- checkpoints --------------------------------------------------------------------------
def sign_checkpoint(body: dict[str, Any], private: Ed25519PrivateKey) -> dict[str, Any]:
    signed = {**body, "format": CHECKPOINT_FORMAT, "key_id": key_id(private.public_key())}
    signed["signature"] = b64(private.sign(canonical(signed)))
    return signed


@dataclass(frozen=True)
class Checkpoint:
    log_size: int
    last_position: int
    head_hash: bytes
    log_root: bytes
    records_size: int
    records_root: bytes
    sealed_at: str
    key_id: str
    raw: dict[str, Any]
    access_size: int | None = None
    access_head: bytes | None = None
    views: dict[str, Any] | None = None


def read_checkpoint(obj: Any, public: Ed25519PublicKey | None) -> Checkpoint:
    """The checkpoint's fields, checked; its signature too when a public key is given."""
    if not isinstance(obj, dict) or not CHECKPOINT_FIELDS <= set(obj) <= CHECKPOINT_FIELDS | OPTIONAL_FIELDS:
        raise ProofError("checkpoint: unexpected fields")
    cp = obj
    if ("access_size" in cp) != ("access_head" in cp):
        raise ProofError("checkpoint: access_size and access_head go together")
    if cp["format"] != CHECKPOINT_FORMAT:
        raise ProofError(f"checkpoint: format {cp['format']!r} is not {CHECKPOINT_FORMAT}")
    sealed_at = cp["sealed_at"]
    if not isinstance(sealed_at, str) or not _TIME.match(sealed_at):
        raise ProofError("checkpoint: sealed_at is not a UTC time")
    result = Checkpoint(
        log_size=_int(cp["log_size"], "checkpoint log_size", 1),
        last_position=_int(cp["last_position"], "checkpoint last_position", 1),
        head_hash=_hex(cp["head_hash"], "checkpoint head_hash"),
        log_root=_hex(cp["log_root"], "checkpoint log_root"),
        records_size=_int(cp["records_size"], "checkpoint records_size"),
        records_root=_hex(cp["records_root"], "checkpoint records_root"),
        sealed_at=sealed_at,
        key_id=_hex(cp["key_id"], "checkpoint key_id").hex(),
        raw=cp,
        access_size=_int(cp["access_size"], "checkpoint access_size") if "access_size" in cp else None,
        access_head=_hex(cp["access_head"], "checkpoint access_head") if "access_head" in cp else None,
        views=_views(cp["views"]) if "views" in cp else None,
    )
    signature = _unb64(cp["signature"], "checkpoint signature")
    if public is not None:
        if key_id(public) != result.key_id:
            raise ProofError(f"checkpoint was sealed with key {result.key_id[:16]}…, not with this public key")
        body = {k: v for k, v in cp.items() if k != "signature"}
        try:
            public.verify(signature, canonical(body))
        except InvalidSignature:
            raise ProofError("checkpoint signature does not verify: it was changed after sealing") from None
    return result


def _views(value: Any) -> dict[str, Any]:
    views = _fields(value, {"digest", "versions"}, "checkpoint views")
    _hex(views["digest"], "checkpoint views digest")
    versions = views["versions"]
    if not isinstance(versions, dict) or not all(isinstance(k, str) and type(v) is int for k, v in versions.items()):
        raise ProofError("checkpoint views: versions are not projection names and numbers")
    return views


def load_checkpoint_file(path: Path, public: Ed25519PublicKey | None) -> Checkpoint:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise KeyFileProblem(f"--checkpoint: cannot read {shown(path)}: {e.strerror}") from None
    return read_checkpoint(parse_document(data, f"checkpoint {shown(path)}"), public)


# ---- bundles ------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckedEvent:
    position: int
    topic: str
    recorded_at: str
    payload: dict[str, Any]


def check_bundle(data: bytes, public: Ed25519PublicKey) -> tuple[str, Checkpoint, list[CheckedEvent]]:
    """Verify a bundle offline; returns (record id, checkpoint, its events) or raises ProofError."""
    import orjson

    bundle = _fields(parse_document(data, "bundle"), BUNDLE_FIELDS, "bundle")
    if bundle["format"] != BUNDLE_FORMAT:
        raise ProofError(f"bundle: format {bundle['format']!r} is not {BUNDLE_FORMAT}")
    record_id = bundle["record_id"]
    if not isinstance(record_id, str) or not record_id:
        raise ProofError("bundle: record_id missing")
    cp = read_checkpoint(bundle["checkpoint"], public)
    events = bundle["events"]
    if not isinstance(events, list) or not events:
        raise ProofError("bundle: no events")
    checked: list[CheckedEvent] = []
    last_index = last_position = -1
    latest = b""
    for n, item in enumerate(events, 1):
        ev = _fields(item, EVENT_FIELDS, f"event {n}")
        index = _int(ev["index"], f"event {n} index")
        position = _int(ev["position"], f"event {n} position", 1)
        if index <= last_index or position <= last_position:
            raise ProofError(f"event {n}: events are not in log order")
        last_index, last_position = index, position
        if index >= cp.log_size:
            raise ProofError(f"event {n}: index {index} is beyond the checkpoint's {cp.log_size} events")
        topic = ev["topic"]
        recorded_at = ev["recorded_at"]
        if not isinstance(topic, str) or not isinstance(recorded_at, str):
            raise ProofError(f"event {n}: topic or recorded_at is not text")
        state = _unb64(ev["state"], f"event {n} state")
        try:
            payload = orjson.loads(state)
        except orjson.JSONDecodeError:
            raise ProofError(f"event {n}: the payload is not JSON") from None
        originator = _hex(ev["originator_id"], f"event {n} originator_id", _HEX16)
        if chain.record_id_of(topic, state, originator) != record_id:
            raise ProofError(f"event {n} (position {position}) is not an event of record {record_id}")
        proof = ev["proof"]
        if not isinstance(proof, list):
            raise ProofError(f"event {n}: proof is not a list")
        path = [_hex(p, f"event {n} proof") for p in proof]
        hash_ = chain.link(
            _hex(ev["prev_hash"], f"event {n} prev_hash"),
            position,
            originator,
            _int(ev["originator_version"], f"event {n} originator_version", 1),
            topic,
            state,
            recorded_at,
        )
        if not merkle.verify_inclusion(merkle.leaf_hash(hash_), index, cp.log_size, path, cp.log_root):
            raise ProofError(
                f"event {n} (position {position}) is not in the sealed log: its bytes or its proof were changed"
            )
        latest = hash_
        checked.append(CheckedEvent(position, topic, recorded_at, payload))
    rec = _fields(bundle["record"], RECORD_FIELDS, "record")
    count = _int(rec["count"], "record count", 1)
    latest_position = _int(rec["latest_position"], "record latest_position", 1)
    latest_hash = _hex(rec["latest_hash"], "record latest_hash")
    if count != len(checked):
        raise ProofError(f"the sealed log holds {count} events of record {record_id}; the bundle has {len(checked)}")
    if latest_position != last_position or latest_hash != latest:
        raise ProofError(f"the record's latest sealed event is at position {latest_position}, not the bundle's last")
    rpath = rec["proof"]
    if not isinstance(rpath, list):
        raise ProofError("record: proof is not a list")
    rindex = _int(rec["index"], "record index")
    leaf = merkle.leaf_hash(record_leaf(record_id, count, latest_position, latest_hash))
    if not merkle.verify_inclusion(
        leaf, rindex, cp.records_size, [_hex(p, "record proof") for p in rpath], cp.records_root
    ):
        raise ProofError(f"record {record_id}: its completeness proof does not verify against the checkpoint")
    return record_id, cp, checked
