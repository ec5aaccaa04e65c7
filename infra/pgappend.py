"""The one way to append to a PostgreSQL store: SECURITY DEFINER functions owned by the store's owner.

No login but the owner may INSERT into the events, commits and chain tables or the side
tables (community_units, data_keys). Writers call `taizhang_append` with
arrays of events (one call per chunk, all in one transaction). The function, running with
the owner's rights:

- takes the events table's EXCLUSIVE lock (commit order = log order);
- refuses an event whose `actor` (in its stored JSON) is not an active actor bound to the
  calling login (`session_user`), read from the `Actors` events themselves; an `Actors`
  event or a community's `Established` event only from a login bound to an admin; on a
  store without actors only the owner may append at all;
- stamps the recorded time (one per transaction, never decreasing along the log) and
  writes the commit row;
- reads back the rows it stored and chains them with sha256() in the encoding of
  infra.chain.entry/link, so `audit verify` checks these entries like the Python-made ones;
- derives `record_state` / `record_people` from the service events it stored, from their
  own JSON (`taizhang_record_state`, the SQL twin of infra.recordstate): no caller supplies
  those rows, so none can forge them. Its primary key is the store-wide claim on a record id
  (one community records it; docs/decisions/0027).

The side rows of the same transaction go through sibling functions that accept a row only
when an event of this transaction accounts for it: a community unit its Established event, a data key an event that names its key id. A
continuation (a later chunk, or the side rows) is recognised by the commit row's `xmin`
being this transaction's id, which no caller can fake.
"""

from __future__ import annotations

from domain.actors import ACTORS_ID

EVENTS = "taizhang_events"
FUNCTIONS = (
    "taizhang_append(uuid[], bigint[], text[], bytea[])",
    "taizhang_append_units(text[], text[], text[])",
    "taizhang_append_keys(text[], text[], bytea[])",
)
# Helpers the functions call with the owner's rights; nobody else needs them.
HELPERS = (
    "taizhang_own_commit()",
    "taizhang_login_actors()",
    "taizhang_record_state(bigint, bigint)",
    "taizhang_record_state(bigint, bigint, bigint[], jsonb[])",
    "taizhang_chunk_first(bigint)",
)
CHUNK_FIRST = "taizhang.chunk_first"  # a transaction-local setting: see taizhang_chunk_first
# Tables only the functions (and the owner) write.
FUNCTION_WRITTEN = (
    "taizhang_events",
    "taizhang_commits",
    "taizhang_chain",
    "community_units",
    "data_keys",
    "record_state",
    "record_people",
)

_DEFINER = "LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, {schema}, pg_temp"


def function_statements(schema: str) -> list[str]:
    """CREATE OR REPLACE statements of the append functions (run by the owner, idempotent)."""
    definer = _DEFINER.format(schema=schema)
    return [
        # (first, last) of this transaction's commit row; none when it has not appended yet.
        "CREATE OR REPLACE FUNCTION taizhang_own_commit(OUT first_position bigint, OUT last_position bigint,"
        " OUT recorded_at timestamptz) LANGUAGE sql STABLE"
        f" SET search_path = pg_catalog, {schema}, pg_temp AS $$"
        # Under the events lock the newest commit row is either this transaction's or another's.
        " SELECT c.first_position, c.last_position, c.recorded_at FROM (SELECT first_position, last_position,"
        " recorded_at, xmin FROM taizhang_commits ORDER BY first_position DESC LIMIT 1) c"
        " WHERE c.xmin::text::bigint = pg_current_xact_id()::text::bigint % 4294967296 $$",
        # The active actors bound to the calling login, and which of them are admins;
        # controlled is false on a store without actors.
        "CREATE OR REPLACE FUNCTION taizhang_login_actors(OUT controlled boolean, OUT names text[],"
        " OUT admins text[]) LANGUAGE sql STABLE"
        f" SET search_path = pg_catalog, {schema}, pg_temp AS $$"
        f" WITH a AS (SELECT e.topic, convert_from(e.state, 'UTF8')::jsonb AS j FROM {EVENTS} e"
        f"  WHERE e.originator_id = '{ACTORS_ID}'),"
        " bound AS (SELECT g.j->>'name' AS name, g.j->>'role' AS role FROM a g"
        "  WHERE g.topic = 'taizhang:Actors.Granted' AND g.j->>'login' = session_user"
        "  AND NOT EXISTS (SELECT 1 FROM a r WHERE r.topic = 'taizhang:Actors.Revoked'"
        "   AND r.j->>'name' = g.j->>'name'))"
        " SELECT EXISTS (SELECT 1 FROM a),"
        " coalesce((SELECT array_agg(name) FROM bound), '{}'),"
        " coalesce((SELECT array_agg(name) FROM bound WHERE role = 'admin'), '{}') $$",
        # Where the events of the rows being added begin: the transaction's first position, or later
        # when the writer says so (CHUNK_FIRST, set by the writer before adding a chunk's data
        # keys): an import's later chunks are then checked against their own events, not against
        # every event of the transaction again (quadratic). A writer can only narrow the check.
        "CREATE OR REPLACE FUNCTION taizhang_chunk_first(first_position bigint) RETURNS bigint LANGUAGE sql STABLE"
        f" SET search_path = pg_catalog, {schema}, pg_temp AS $$"
        f" SELECT greatest(first_position, coalesce(nullif(current_setting('{CHUNK_FIRST}', true), '')::bigint,"
        " first_position)) $$",
        _RECORD_STATE.format(definer=definer, events=EVENTS),
        # The record state of the events at these positions, each payload parsed here.
        "CREATE OR REPLACE FUNCTION taizhang_record_state(first bigint, last bigint) RETURNS void"
        f" {definer} AS $fn$ BEGIN PERFORM taizhang_record_state(first, last, NULL, NULL); END $fn$",
        _APPEND.format(definer=definer, events=EVENTS, actors=ACTORS_ID),
        _UNITS.format(definer=definer, events=EVENTS),
        _KEYS.format(definer=definer, events=EVENTS),
    ]


def grant_statements(writer: str) -> list[str]:
    """What the writer group may do to append: call the functions, and no longer INSERT itself."""
    return [
        f"REVOKE INSERT ON {', '.join(FUNCTION_WRITTEN)} FROM {writer}",
        f"REVOKE EXECUTE ON FUNCTION taizhang_lock_events() FROM {writer}",
        *(f"REVOKE ALL ON FUNCTION {f} FROM PUBLIC" for f in (*FUNCTIONS, *HELPERS)),
        *(f"GRANT EXECUTE ON FUNCTION {f} TO {writer}" for f in FUNCTIONS),
        # The log's positions are taken by the function; a writer has no use for the sequence.
        f"DO $$ BEGIN EXECUTE format('REVOKE USAGE, UPDATE ON SEQUENCE %s FROM {writer}',"
        f" pg_get_serial_sequence('{EVENTS}', 'notification_id')); END $$",
    ]


_APPEND = """
CREATE OR REPLACE FUNCTION taizhang_append(ids uuid[], versions bigint[], topics text[], states bytea[])
RETURNS bigint[] {definer} AS $fn$
DECLARE
  who record;
  own record;
  bad record;
  recorded timestamptz;
  tail bytea;
  prev bytea;
  tb bytea;
  r record;
  positions bigint[] := '{{}}';
  hashes bytea[] := '{{}}';
  i integer := 0;
  in_order boolean := true;
  docs jsonb[];
  n integer := coalesce(cardinality(ids), 0);
BEGIN
  IF n = 0 THEN
    RETURN '{{}}';
  END IF;
  IF cardinality(versions) IS DISTINCT FROM n OR cardinality(topics) IS DISTINCT FROM n
     OR cardinality(states) IS DISTINCT FROM n THEN
    RAISE EXCEPTION USING ERRCODE = '22023', MESSAGE = 'taizhang_append: the four arrays differ in length';
  END IF;
  LOCK TABLE {events} IN EXCLUSIVE MODE;
  SELECT * INTO who FROM taizhang_login_actors();
  IF NOT who.controlled THEN
    IF NOT pg_has_role(session_user, (SELECT relowner FROM pg_class WHERE oid = '{events}'::regclass), 'MEMBER') THEN
      RAISE EXCEPTION USING ERRCODE = '42501',
        MESSAGE = format('login %s may not append: this store has no actors yet, so only its owner writes', session_user);
    END IF;
  ELSE
    -- Each payload parsed once, in order (the first that is not JSON fails first), and kept for record_state.
    docs := ARRAY(SELECT CASE WHEN u.s IS NULL THEN NULL ELSE convert_from(u.s, 'UTF8')::jsonb END
                    FROM unnest(states) WITH ORDINALITY AS u(s, n) ORDER BY u.n);
    SELECT x.n, x.t, x.j->>'actor' AS actor, jsonb_typeof(x.j->'actor') AS kind,
           (x.i = '{actors}' OR x.t LIKE 'taizhang:Actors.%' OR x.t = 'taizhang:Community.Established') AS privileged
      INTO bad
      FROM unnest(ids, topics, docs) WITH ORDINALITY AS x(i, t, j, n)
     WHERE x.j IS NULL OR jsonb_typeof(x.j) <> 'object' OR jsonb_typeof(x.j->'actor') IS DISTINCT FROM 'string'
        OR NOT ((x.j->>'actor') = ANY (CASE WHEN x.i = '{actors}' OR x.t LIKE 'taizhang:Actors.%'
                                             OR x.t = 'taizhang:Community.Established'
                                        THEN who.admins ELSE who.names END))
     ORDER BY x.n LIMIT 1;
    IF FOUND THEN
      IF bad.kind IS DISTINCT FROM 'string' THEN
        RAISE EXCEPTION USING ERRCODE = '42501',
          MESSAGE = format('login %s may not append event %s (%s): it names no actor', session_user, bad.n, bad.t);
      ELSIF bad.privileged AND bad.actor = ANY (who.names) THEN
        RAISE EXCEPTION USING ERRCODE = '42501',
          MESSAGE = format('login %s may not append %s: actor %s is not an admin', session_user, bad.t, bad.actor);
      ELSE
        RAISE EXCEPTION USING ERRCODE = '42501',
          MESSAGE = format('login %s may not append an event of actor %s: the login is bound to %s',
                           session_user, bad.actor, coalesce(nullif(array_to_string(who.names, ', '), ''), 'no actor'));
      END IF;
    END IF;
  END IF;
  IF EXISTS (SELECT 1 FROM unnest(topics, states) AS u(t, s) WHERE u.t IS NULL OR u.s IS NULL) THEN
    RAISE EXCEPTION USING ERRCODE = '22004', MESSAGE = 'taizhang_append: an event without topic or state';
  END IF;
  SELECT * INTO own FROM taizhang_own_commit();
  IF own.first_position IS NULL THEN
    recorded := greatest(date_trunc('milliseconds', clock_timestamp()),
                         coalesce((SELECT c.recorded_at FROM taizhang_commits c ORDER BY c.first_position DESC LIMIT 1)
                                  + interval '1 millisecond', '-infinity'));
  ELSE
    recorded := own.recorded_at;
  END IF;
  prev := coalesce((SELECT c.hash FROM taizhang_chain c ORDER BY c.position DESC LIMIT 1), decode(repeat('00', 32), 'hex'));
  tb := convert_to(to_char(recorded AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 'UTF8');
  tail := int4send(length(tb)) || tb;
  -- The entries' bytes but the previous hash are made by the query; the loop only folds sha256 along them.
  FOR r IN
    WITH ins AS (
      INSERT INTO {events} AS e (originator_id, originator_version, topic, state)
      SELECT u.i, u.v, u.t, u.s FROM unnest(ids, versions, topics, states) WITH ORDINALITY AS u(i, v, t, s, n) ORDER BY u.n
      RETURNING e.notification_id, e.originator_id, e.originator_version, e.topic, e.state)
    SELECT o.notification_id AS p, o.originator_id = ids[o.k] AND o.originator_version = versions[o.k] AS same,
           int8send(o.notification_id) || uuid_send(o.originator_id) || int8send(o.originator_version)
           || int4send(octet_length(o.tb)) || o.tb || int4send(length(o.state)) || o.state || tail AS body
      FROM (SELECT ins.*, convert_to(ins.topic, 'UTF8') AS tb, row_number() OVER (ORDER BY ins.notification_id) AS k
              FROM ins OFFSET 0) o
     ORDER BY o.notification_id
  LOOP
    prev := sha256(prev || r.body);
    i := i + 1;
    positions[i] := r.p;
    hashes[i] := prev;
    in_order := in_order AND r.same;
  END LOOP;
  INSERT INTO taizhang_chain (position, hash) SELECT * FROM unnest(positions, hashes);
  PERFORM taizhang_record_state(positions[1], positions[n], CASE WHEN in_order THEN positions END,
                              CASE WHEN in_order THEN docs END);
  IF own.first_position IS NULL THEN
    INSERT INTO taizhang_commits (first_position, last_position, recorded_at)
    VALUES (positions[1], positions[n], recorded);
  ELSE
    UPDATE taizhang_commits SET last_position = positions[n] WHERE first_position = own.first_position;
  END IF;
  IF in_order THEN
    RETURN positions;  -- the k-th position went to the k-th event asked (the usual case: the INSERT kept the order)
  END IF;
  RETURN ARRAY(
    SELECT e.notification_id FROM unnest(ids, versions) WITH ORDINALITY AS u(i, v, n)
      JOIN {events} e ON e.originator_id = u.i AND e.originator_version = u.v
     ORDER BY u.n);
END
$fn$
"""

_RECORD_STATE = """
-- parsed[k]: the JSON of the stored event at positions[k], when taizhang_append has parsed it already
-- (from the very bytes it stored, for the actor check): not parsed a second time here. The positions
-- are then all of first..last: the events lock let no other event in between.
CREATE OR REPLACE FUNCTION taizhang_record_state(first bigint, last bigint, positions bigint[], parsed jsonb[])
RETURNS void {definer} AS $fn$
DECLARE
  r record;
  ch jsonb;
  rid text;
BEGIN
  -- New records, set-based (an import records tens of thousands in one call); each payload parsed once.
  WITH rec AS MATERIALIZED (
    SELECT e.originator_id AS c, e.originator_version AS v, d.j
      FROM unnest(positions, parsed) AS d(p, j) JOIN {events} e ON e.notification_id = d.p
     WHERE parsed IS NOT NULL AND e.topic = 'taizhang:Community.ServiceRecorded'
    UNION ALL
    SELECT e.originator_id, e.originator_version, convert_from(e.state, 'UTF8')::jsonb
      FROM {events} e
     WHERE parsed IS NULL AND e.notification_id BETWEEN first AND last
       AND e.topic = 'taizhang:Community.ServiceRecorded'),
  states AS (
    INSERT INTO record_state (record_id, community_id, status, revision, digest, occurred_at, day, kind, minutes,
                              place, note_mac, entered_on, residents, providers, first_version, version)
    SELECT j->>'record_id', c, 'active', 1, j->>'digest', j->>'occurred_at', left(j->>'occurred_at', 10),
           j->>'kind', (j->>'minutes')::integer, j->>'place', j->>'note_mac', j->>'entered_on', j->'residents',
           j->'providers', v, v
      FROM rec)
  INSERT INTO record_people (community_id, role, code, record_id, current)
  SELECT rec.c, p.role, p.code, rec.j->>'record_id', 1
    FROM rec CROSS JOIN LATERAL (SELECT 'r' AS role, x AS code FROM jsonb_array_elements_text(rec.j->'residents') x
                                 UNION SELECT 'p', x FROM jsonb_array_elements_text(rec.j->'providers') x) p;
  -- Corrections and voids, in log order.
  FOR r IN
    SELECT e.originator_id AS c, e.originator_version AS v, e.topic AS t, convert_from(e.state, 'UTF8')::jsonb AS j
      FROM {events} e
     WHERE e.notification_id BETWEEN first AND last
       AND e.topic IN ('taizhang:Community.ServiceCorrected', 'taizhang:Community.ServiceVoided')
     ORDER BY e.notification_id
  LOOP
    rid := r.j->>'record_id';
    IF r.t = 'taizhang:Community.ServiceVoided' THEN
      UPDATE record_state SET status = 'voided', version = r.v WHERE record_id = rid AND community_id = r.c;
    ELSE
      ch := r.j->'changes';
      UPDATE record_state SET
        kind = CASE WHEN ch ? 'kind' THEN ch->>'kind' ELSE kind END,
        occurred_at = CASE WHEN ch ? 'occurred_at' THEN ch->>'occurred_at' ELSE occurred_at END,
        day = CASE WHEN ch ? 'occurred_at' THEN left(ch->>'occurred_at', 10) ELSE day END,
        minutes = CASE WHEN ch ? 'minutes' THEN (ch->>'minutes')::integer ELSE minutes END,
        place = CASE WHEN ch ? 'place' THEN ch->>'place' ELSE place END,
        note_mac = CASE WHEN ch ? 'note_mac' THEN ch->>'note_mac' ELSE note_mac END,
        residents = CASE WHEN ch ? 'residents' THEN ch->'residents' ELSE residents END,
        providers = CASE WHEN ch ? 'providers' THEN ch->'providers' ELSE providers END,
        revision = revision + 1, version = r.v
       WHERE record_id = rid AND community_id = r.c;
    END IF;
    IF NOT FOUND THEN
      RAISE EXCEPTION USING ERRCODE = '23503',
        MESSAGE = format('record %s: changed by an event of a community that never recorded it', rid);
    END IF;
    IF r.t = 'taizhang:Community.ServiceCorrected' THEN
      IF ch ? 'residents' THEN
        UPDATE record_people SET current = 0 WHERE community_id = r.c AND role = 'r' AND record_id = rid;
        INSERT INTO record_people (community_id, role, code, record_id, current)
        SELECT r.c, 'r', c, rid, 1 FROM jsonb_array_elements_text(ch->'residents') c
        ON CONFLICT (community_id, role, code, record_id) DO UPDATE SET current = 1;
      END IF;
      IF ch ? 'providers' THEN
        UPDATE record_people SET current = 0 WHERE community_id = r.c AND role = 'p' AND record_id = rid;
        INSERT INTO record_people (community_id, role, code, record_id, current)
        SELECT r.c, 'p', c, rid, 1 FROM jsonb_array_elements_text(ch->'providers') c
        ON CONFLICT (community_id, role, code, record_id) DO UPDATE SET current = 1;
      END IF;
    END IF;
  END LOOP;
END
$fn$
"""

_OWN_EVENTS = """
  SELECT * INTO own FROM taizhang_own_commit();
  IF own.first_position IS NULL THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('login %s may not add %s rows: they go with the events of the same transaction', session_user, '{what}');
  END IF;
"""

_UNITS = (
    """
CREATE OR REPLACE FUNCTION taizhang_append_units(codes text[], counties text[], townships text[])
RETURNS void {definer} AS $fn$
DECLARE
  own record;
  bad text;
BEGIN
"""
    + _OWN_EVENTS.replace("{what}", "community_units")
    + """
  -- First the rows, so a lost race fails as a unique violation (the application retries it).
  INSERT INTO community_units (code, county, township) SELECT * FROM unnest(codes, counties, townships);
  SELECT x.code INTO bad FROM (
    SELECT c.code, c.county, c.township FROM unnest(codes, counties, townships) AS c(code, county, township)
    EXCEPT
    SELECT x.j->>'code', x.j->>'county', x.j->>'township' FROM {events} e
     CROSS JOIN LATERAL (SELECT convert_from(e.state, 'UTF8')::jsonb AS j) x
     WHERE e.notification_id BETWEEN own.first_position AND own.last_position
       AND e.topic = 'taizhang:Community.Established' AND e.originator_version = 1) x
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('community unit %s: no community of this transaction establishes it', bad);
  END IF;
END
$fn$
"""
)

_KEYS = (
    """
CREATE OR REPLACE FUNCTION taizhang_append_keys(key_ids text[], masters text[], wrapped bytea[])
RETURNS void {definer} AS $fn$
DECLARE
  own record;
  bad text;
BEGIN
"""
    + _OWN_EVENTS.replace("{what}", "data_keys")
    + """
  -- First the rows, so a lost race fails as a unique violation (the application retries it).
  INSERT INTO data_keys (key_id, master_key_id, wrapped) SELECT * FROM unnest(key_ids, masters, wrapped);
  SELECT x.k INTO bad FROM (
    SELECT k.k FROM unnest(key_ids) AS k(k)
    EXCEPT
    SELECT p #>> '{{}}' FROM {events} e
     -- A field named key_id is spelled so in the bytes, or with an escape (a backslash): an event with
     -- neither names no key and is only checked to be JSON, without building its jsonb (most events).
     CROSS JOIN LATERAL jsonb_path_query(
       CASE WHEN position('key_id'::bytea IN e.state) > 0 OR position(decode('5c', 'hex') IN e.state) > 0
            THEN convert_from(e.state, 'UTF8')::jsonb
            WHEN convert_from(e.state, 'UTF8')::json IS NOT NULL THEN '{{}}'::jsonb END,
       'strict $.**.key_id') AS p
     WHERE e.notification_id BETWEEN taizhang_chunk_first(own.first_position) AND own.last_position) x
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION USING ERRCODE = '42501',
      MESSAGE = format('data key %s: no event of this transaction is sealed with it', bad);
  END IF;
END
$fn$
"""
)
