"""`taizhang audit verify|keygen|seal|prove|check`: the tamper-evident log and its proofs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from commands import clock, files
from commands.cli.assess import audit
from commands.context import Env, MalformedInput, Refused, pass_env
from commands.output import render_json
from commands.output import say as _say
from commands.progress import Progress
from infra import checkpoint as cpt
from infra.checkpoint import shown

FILE = click.Path(dir_okay=False, path_type=Path)
FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True, help="Output format."
)


def _public_key(path: Path) -> Any:
    files.check_input(path, "--public-key", files.MAX_KEY_BYTES)
    try:
        return cpt.load_public_key(path)
    except cpt.KeyFileProblem as e:
        raise MalformedInput(str(e)) from None


def _checkpoint(path: Path, public: Any) -> cpt.Checkpoint:
    files.check_input(path, "--checkpoint", files.MAX_CHECKPOINT_BYTES)
    try:
        return cpt.load_checkpoint_file(path, public)
    except cpt.KeyFileProblem as e:
        raise MalformedInput(str(e)) from None
    except cpt.ProofError as e:
        raise Refused(f"--checkpoint {shown(path)}: {e}") from None


def _write_new(path: Path, data: bytes, option: str, force: bool) -> None:
    with files.output_file(path, option, force=force) as f:  # mode 0600, never through a link
        f.write(data)


def _report(result: dict[str, Any], fmt: str, line: str) -> None:
    if fmt != "json":
        line = _say(line)
    click.echo(render_json(result) if fmt == "json" else line)


@audit.command("verify")
@click.option("--community", metavar="CODE", help="Check only this community's stream.")
@click.option("--checkpoint", type=FILE, metavar="FILE", help="Also prove the log extends this sealed checkpoint.")
@click.option(
    "--public-key", "public_key", type=FILE, metavar="FILE", help="The sealing office's public key (with --checkpoint)."
)
@click.option("--views", is_flag=True, help="Also recompute every view from the log and compare them, table by table.")
@FORMAT
@pass_env
def audit_verify(
    env: Env, community: str | None, checkpoint: Path | None, public_key: Path | None, views: bool, fmt: str
) -> None:
    """Recompute the hash chain over the whole log; exit 1 naming the first bad position.

    Every stored event is chained to the one before it when it is stored. Any changed
    byte, deleted, inserted or reordered event, or tampered chain entry, is found; so is
    a stored value in a non-canonical form, a repeated or missing version of an
    aggregate, or a recorded time earlier than the one before it. The access log has a
    chain of its own, checked too.
    With --checkpoint, also prove that the log is an append-only extension of the
    sealed one: someone who rewrote history and recomputed the chain is caught too.
    The views are not evidence: with --views, every projection is replayed from the log
    into a scratch copy up to where the views stand, and any row that differs is named
    (with --checkpoint, the views at the sealed position are also compared with the
    digest the checkpoint recorded).

    \b
    Example:
      taizhang audit verify
      taizhang audit verify --community HZ-001
      taizhang audit verify --checkpoint 2026-03.checkpoint --public-key office.key.pub
      taizhang audit verify --views
    """
    from commands import audit_chain

    if (checkpoint is None) != (public_key is None):
        raise MalformedInput("--checkpoint and --public-key: give both (a checkpoint never vouches for itself)")
    if community is not None and checkpoint is not None:
        raise MalformedInput("--community: cannot be combined with --checkpoint (a checkpoint covers the whole log)")
    if community is not None and views:
        raise MalformedInput("--community: cannot be combined with --views (the views cover the whole log)")
    sealed = _checkpoint(checkpoint, _public_key(public_key)) if checkpoint and public_key else None
    service = env.service()
    if community is not None:
        result = audit_chain.verify_community(service, community)
        line = f"intact: community {community}, {result['events']} events chained"
    elif sealed is not None:
        result = audit_chain.verify_against(service, sealed)
        line = (
            f"intact: {result['events']} events; the {sealed.log_size} sealed at {result['sealed_at'].iso()} are unchanged "
            f"and {result['appended_since']} were appended since"
        )
    else:
        result = audit_chain.verify_log(service)
        line = (
            f"intact: {result['events']} events chained, up to position {result['last_position']}; "
            f"{result['access_entries']} access-log entries chained"
        )
    if views:
        from commands import views_audit

        if sealed is not None and sealed.views is not None:
            result["sealed_views"] = _sealed_views(service, sealed)
            line += f"\nthe views at the sealed position {sealed.last_position}: {result['sealed_views']}"
        with Progress("recomputing the views", 0) as bar:
            digest = views_audit.verify_views(service, lambda done, total: bar.set(done, total))
        result["views"] = {"position": digest.position, "digest": digest.hex, "rows": digest.rows}
        line += (
            f"\nviews: all {len(digest.tables)} tables equal the views recomputed from the log up to position "
            f"{digest.position} (digest {digest.hex})"
        )
    _report(result, fmt, line)


def _views_at(service: Any, position: int) -> dict[str, Any]:
    from commands import views_audit

    with Progress("recomputing the views", 0) as bar:
        digest, versions = views_audit.views_digest(service, position, lambda done, total: bar.set(done, total))
    return {"digest": digest.hex, "versions": versions}


def _sealed_views(service: Any, sealed: cpt.Checkpoint) -> str:
    """Recompute the views at the checkpoint's position and compare them with its digest."""
    from commands import audit_chain, views_audit

    assert sealed.views is not None
    with Progress("recomputing the sealed views", 0) as bar:
        digest, versions = views_audit.views_digest(
            service, sealed.last_position, lambda done, total: bar.set(done, total)
        )
    if versions != sealed.views["versions"]:
        return "not comparable (the projections have changed version since sealing)"
    if digest.hex != sealed.views["digest"]:
        raise audit_chain.VerificationFailed(
            f"the views recomputed at the sealed position {sealed.last_position} do not match the digest sealed at "
            f"{clock.text(sealed.sealed_at, service.tz)}"
        )
    return f"match the digest sealed (digest {digest.hex})"


@audit.command("keygen")
@click.option(
    "--key-file",
    "key_file",
    type=FILE,
    required=True,
    metavar="PATH",
    help="Where to write the signing key (never overwritten).",
)
@FORMAT
def audit_keygen(key_file: Path, fmt: str) -> None:
    """Create an Ed25519 signing key for sealing checkpoints, and print its public key.

    The private key goes to PATH (readable by its owner only) and the public key to
    PATH.pub. Keep the private key in the office that seals, not with the store or
    on clerks' machines; give auditors the public key.

    \b
    Example:
      taizhang audit keygen --key-file office-seal.key
    """
    try:
        pub_path, public = cpt.create_signing_key(key_file)
    except FileExistsError as e:
        raise Refused(str(e)) from None
    except cpt.KeyFileProblem as e:
        raise MalformedInput(str(e)) from None
    result = {
        "key_file": shown(key_file),
        "public_key_file": shown(pub_path),
        "key_id": cpt.key_id(public),
        "public_key": cpt.public_pem(public),
    }
    _report(
        result,
        fmt,
        f"key id {result['key_id']}\nwrote {shown(key_file)} (private) and {shown(pub_path)}:\n{result['public_key']}".rstrip(),
    )


@audit.command("seal")
@click.option(
    "--key-file", "key_file", type=FILE, required=True, metavar="PATH", help="The signing key from audit keygen."
)
@click.option(
    "--output", type=FILE, metavar="FILE", help="Write the checkpoint here (a new file) instead of printing it."
)
@click.option("--force", is_flag=True, help=files.FORCE_HELP)
@pass_env
def audit_seal(env: Env, key_file: Path, output: Path | None, force: bool) -> None:
    """Verify the log and write a signed checkpoint of it: size, Merkle roots, time, key id.

    The checkpoint also records the access log's size and chain head, and the digest of
    the views recomputed from the log at its position (see audit verify --views).

    \b
    Example:
      taizhang audit seal --key-file office-seal.key --output 2026-03.checkpoint
    """
    from commands import audit_chain

    files.check_input(key_file, "--key-file", files.MAX_KEY_BYTES)
    try:
        private = cpt.load_signing_key(key_file)
    except cpt.KeyFileProblem as e:
        raise MalformedInput(str(e)) from None
    if output is not None:
        files.check_output(output, "--output", force=force)
    service = env.service()
    signed = audit_chain.seal(service, private, lambda position: _views_at(service, position))
    data = cpt.document(signed)
    if output is None:
        click.echo(data.decode(), nl=False)
        return
    _write_new(output, data, "--output", force)
    click.echo(
        _say(f"sealed {signed['log_size']} events (up to position {signed['last_position']}) into {shown(output)}"),
        err=True,
    )


@audit.command("prove")
@click.argument("record_id", required=False)
@click.option(
    "--line",
    metavar="LINE",
    help="Prove a funding line instead (its id, or DEPARTMENT/文号): every event of the line up to the checkpoint.",
)
@click.option("--checkpoint", type=FILE, required=True, metavar="FILE", help="The sealed checkpoint to prove against.")
@click.option("--output", type=FILE, required=True, metavar="BUNDLE", help="Where to write the bundle (a new file).")
@click.option(
    "--community",
    metavar="CODE",
    help="The record's community: an auditor of a township or community proves the records inside its scope.",
)
@click.option("--force", is_flag=True, help=files.FORCE_HELP)
@pass_env
def audit_prove(
    env: Env,
    record_id: str | None,
    line: str | None,
    checkpoint: Path,
    output: Path,
    community: str | None,
    force: bool,
) -> None:
    """Write a bundle proving a record's complete history up to a checkpoint, for audit check.

    With --line, the bundle proves a funding line instead: every event of the line up to
    the checkpoint (allocation, transfers, spends, reversals, returns), and that none is
    left out.

    \b
    Example:
      taizhang audit prove 0f8c…-record-id --checkpoint 2026-03.checkpoint --output record.bundle
      taizhang audit prove 0f8c…-record-id --community HZ-001 --checkpoint 2026-03.checkpoint --output r.bundle
      taizhang audit prove --line 民政局/贺民发〔2026〕12号 --checkpoint 2026-03.checkpoint --output line.bundle
    """
    from commands import audit_chain
    from commands.funds_history import MalformedLine, find_line, parse_line

    if (record_id is None) == (line is None):
        raise MalformedInput("RECORD_ID or --line: give exactly one")
    if line is not None and community is not None:
        raise MalformedInput("--community: only with a RECORD_ID, not with --line")
    if line is not None:
        try:
            parse_line(line)
        except MalformedLine as e:
            raise MalformedInput(f"--line: {e}") from None
    sealed = _checkpoint(checkpoint, None)
    files.check_output(output, "--output", force=force)
    service = env.service()
    if line is not None:
        found, _events = find_line(service, line)
        bundle = audit_chain.prove_line(service, found.id, sealed, found.name)
        done = _say(f"wrote {shown(output)}: {len(bundle['events'])} events of funding line {found.name}")
    else:
        assert record_id is not None
        bundle = audit_chain.prove(service, record_id.strip(), sealed, community.strip() if community else None)
        done = _say(f"wrote {shown(output)}: {len(bundle['events'])} events of record {record_id}")
    _write_new(output, cpt.document(bundle), "--output", force)
    click.echo(done, err=True)


@audit.command("check")
@click.argument("bundle", type=FILE)
@click.option(
    "--public-key", "public_key", type=FILE, required=True, metavar="FILE", help="The sealing office's public key."
)
@FORMAT
def audit_check(bundle: Path, public_key: Path, fmt: str) -> None:
    """Check a proof bundle with no database: only the bundle and the sealing office's public key.

    \b
    Example:
      taizhang audit check record.bundle --public-key office-seal.key.pub
    """
    public = _public_key(public_key)
    data = files.read_input(bundle, "BUNDLE", files.MAX_BUNDLE_BYTES)
    try:
        record_id, sealed, events = cpt.check_bundle(data, public)
    except cpt.ProofError as e:
        raise Refused(f"bundle {shown(bundle)} does not verify: {e}") from None
    listed = [
        {
            "position": e.position,
            "event": e.topic.rsplit(".", 1)[-1],
            "recorded_at": e.recorded_at,
            "actor": e.payload.get("actor"),
        }
        for e in events
    ]
    # No store here: times are shown in TAIZHANG_TZ (default Asia/Shanghai), the zone of the county's stores.
    tz = Env.default_zone()
    clock.localise(listed, tz)
    result = {
        "verified": True,
        "record_id": record_id,
        "sealed_at": clock.shown(sealed.sealed_at, tz),
        "log_size": sealed.log_size,
        "key_id": sealed.key_id,
        "events": listed,
    }
    lines = [
        f"verified: record {record_id} has exactly these {len(events)} event(s) in the log sealed at {result['sealed_at'].iso()} "
        f"({sealed.log_size} events, key {sealed.key_id[:16]})"
    ]
    lines += [
        f"  position {e['position']}: {e['event']} recorded {e['recorded_at'].iso()} by {e['actor']}" for e in listed
    ]
    _report(result, fmt, "\n".join(lines))
