-- fraised PostgreSQL outbox, schema version 1.
--
-- Idempotent: running it again (by `fraised pg install`, by hand with
-- `psql -v ON_ERROR_STOP=1 -f install.sql`, or by a migration tool) leaves an
-- installed schema as it is and replaces the functions with this version's.
-- It runs as one transaction and takes an advisory lock, so two installs
-- started at once do not interleave.
BEGIN;

SELECT pg_advisory_xact_lock(1718772072, 0);

CREATE SCHEMA IF NOT EXISTS fraised;
-- Functions are executable by PUBLIC by default; nobody without USAGE on the
-- schema can reach them, and the schema grants nothing to PUBLIC.
REVOKE ALL ON SCHEMA fraised FROM PUBLIC;

-- One row: the installed schema version and the number of commit-order
-- shards (fixed for the life of the schema, see fraised.publish).
CREATE TABLE IF NOT EXISTS fraised.meta (
	singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
	version   integer NOT NULL,
	shards    integer NOT NULL
);
INSERT INTO fraised.meta (version, shards) VALUES (1, 16)
	ON CONFLICT (singleton) DO NOTHING;
-- carry_key signs the events fraised.publish carries in its notifications
-- (see fraised.publish): any session of the database may NOTIFY any
-- channel, so without it anyone connected could make a reader deliver an
-- event of their own, and move its position past real ones. Only the
-- schema's owner (fraised.publish runs as it) and the reader, which needs
-- SELECT on fraised.meta, may read it. gen_random_uuid draws from
-- PostgreSQL's strong random source (two of them: 244 random bits).
ALTER TABLE fraised.meta ADD COLUMN IF NOT EXISTS carry_key text NOT NULL
	DEFAULT (gen_random_uuid()::text || gen_random_uuid()::text);

-- The events. id is the delivery order within a shard (see fraised.publish);
-- payload has no size limit of its own (jsonb allows up to 255 MB; the
-- fraised server's --max-payload is the limit that applies).
CREATE TABLE IF NOT EXISTS fraised.outbox (
	id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	shard      smallint NOT NULL,
	topic      text NOT NULL,
	payload    jsonb NOT NULL,
	created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS outbox_shard_id ON fraised.outbox (shard, id);
CREATE INDEX IF NOT EXISTS outbox_created_at ON fraised.outbox (created_at);

-- Where each reading fraised source (one name per node) has got to, per
-- shard: every event of that shard with an id <= last_id has been handed to
-- the node's pipeline.
CREATE TABLE IF NOT EXISTS fraised.position (
	source     text NOT NULL,
	shard      smallint NOT NULL,
	last_id    bigint NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT now(),
	PRIMARY KEY (source, shard)
);

-- The highest id retention has deleted, per shard, so a node whose position
-- is below it knows (and logs) that it missed events.
CREATE TABLE IF NOT EXISTS fraised.pruned (
	shard      smallint PRIMARY KEY,
	through_id bigint NOT NULL
);

-- fraised.publish(topic, payload) records an event in the caller's
-- transaction: it exists if and only if that transaction commits.
--
-- Commit order. A reader that takes "every id above the last one I read"
-- loses a row when a transaction that took a lower id commits after one that
-- took a higher id (the reader has already moved past the lower id when it
-- becomes visible). fraised prevents that with shards and a
-- transaction-level advisory lock per shard:
--
--   * A transaction publishes into one shard only: pg_backend_pid() % shards,
--     so it ever holds one shard lock and two publishing transactions can
--     never deadlock on them (SET LOCAL fraised.shard = n chooses the shard
--     explicitly; a transaction that switches shards between calls takes two
--     locks and can deadlock with another doing the same in reverse).
--   * Before taking an id the function takes pg_advisory_xact_lock on its
--     shard. The lock is held until the transaction ends, and PostgreSQL
--     releases it only after the commit is visible to new snapshots. So
--     within a shard, ids are handed out in commit order: a transaction
--     that takes an id after another's in the same shard waited for that
--     other to commit or roll back. When a reader sees id n of shard s, every
--     lower id of shard s is already visible or never will be.
--   * The reader keeps one position per shard and reads each shard in id
--     order from its position, so nothing is skipped. Transactions in
--     different shards do not wait for each other; their events are
--     delivered in id order as far as they are visible together, and an event
--     whose transaction committed before another one began is always
--     delivered before that other one's.
--
-- The cost: publishing transactions of one shard serialise from their first
-- publish to their commit. Publish late in a transaction (after its slow
-- work); with 16 shards, 16 connections publish at once.
--
-- The function also sends NOTIFY fraised_outbox to wake readers. A small
-- event (topic and payload text within carry_limit bytes) travels in the
-- notification itself, as 'shard:id:topic_bytes:mac:topic' followed by
-- the payload text, so a reader that has read the table up to date
-- delivers it without reading the table; mac is the first 16 bytes (hex)
-- of sha256(carry_key || the notification without ':mac'), which only a
-- holder of carry_key can compute (cut to 16 bytes, a seen mac gives no
-- way to extend a message either); a larger one sends only the shard's number
-- (folded per transaction), and the reader reads that shard. Readers poll
-- every shard as well, so a lost notification only delays. The table stays
-- the record: a reader that was disconnected, or behind, reads it.
--
-- It runs with its owner's rights (SECURITY DEFINER, fixed search_path), so
-- an application role needs only USAGE on the schema and EXECUTE on this
-- function, never INSERT on the outbox:
--   GRANT USAGE ON SCHEMA fraised TO app;
--   GRANT EXECUTE ON FUNCTION fraised.publish(text, jsonb) TO app;
CREATE OR REPLACE FUNCTION fraised.publish(topic text, payload jsonb)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SECURITY DEFINER SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
	n_shards constant integer := 16;
	chosen   text := current_setting('fraised.shard', true);
	-- carry_limit bounds an event carried in its notification (bytes of
	-- topic and payload text): by default 2000, well under NOTIFY's 8000
	-- bytes and small enough that the notification queue (8 GB, shared by
	-- the database cluster) fills slowly even while a stuck listener holds
	-- it back. The setting fraised.carry_limit changes it (0 carries
	-- nothing; at most 7000), for example
	--   ALTER DATABASE appdb SET fraised.carry_limit = 0;
	carry_text  text := current_setting('fraised.carry_limit', true);
	carry_limit integer := 2000;
	s        integer;
	new_id   bigint;
	body     text;
	head     text;
	note     text;
BEGIN
	IF topic IS NULL OR topic = '' THEN
		RAISE EXCEPTION 'fraised.publish: topic must not be empty'
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF octet_length(topic) > 1024 THEN
		RAISE EXCEPTION 'fraised.publish: topic is % bytes, the limit is 1024', octet_length(topic)
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF payload IS NULL OR jsonb_typeof(payload) <> 'object' THEN
		RAISE EXCEPTION 'fraised.publish: payload must be a JSON object, not %', coalesce(jsonb_typeof(payload), 'NULL')
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF chosen IS NULL OR chosen = '' THEN
		s := pg_backend_pid() % n_shards;
	ELSIF chosen ~ '^[0-9]+$' AND chosen::integer < n_shards THEN
		s := chosen::integer;
	ELSE
		RAISE EXCEPTION 'fraised.publish: fraised.shard is %, it must be a number from 0 to %', chosen, n_shards - 1
			USING ERRCODE = 'invalid_parameter_value';
	END IF;
	IF carry_text IS NOT NULL AND carry_text <> '' THEN
		IF carry_text !~ '^[0-9]{1,4}$' OR carry_text::integer > 7000 THEN
			RAISE EXCEPTION 'fraised.publish: fraised.carry_limit is %, it must be a number of bytes from 0 to 7000', carry_text
				USING ERRCODE = 'invalid_parameter_value';
		END IF;
		carry_limit := carry_text::integer;
	END IF;
	PERFORM pg_advisory_xact_lock(1718772073, s);
	INSERT INTO fraised.outbox (shard, topic, payload)
		VALUES (s, publish.topic, publish.payload)
		RETURNING id INTO new_id;
	-- The notification names the shard, so the reader reads that shard
	-- alone (an empty payload, from an older install, means every shard),
	-- and carries a small event whole (see above). pg_column_size is a
	-- cheap first test: a large payload is never turned into text here.
	note := s::text;
	IF pg_column_size(publish.payload) <= carry_limit THEN
		body := publish.payload::text;
		IF octet_length(body) + octet_length(publish.topic) <= carry_limit THEN
			head := s || ':' || new_id || ':' || octet_length(publish.topic) || ':';
			note := head || left(encode(sha256(convert_to(
					(SELECT carry_key FROM fraised.meta) || head || publish.topic || body, 'UTF8')), 'hex'), 32)
				|| ':' || publish.topic || body;
		END IF;
	END IF;
	PERFORM pg_notify('fraised_outbox', note);
	RETURN new_id;
END
$fn$;

-- fraised.row_event(template) is a row trigger that publishes every INSERT,
-- UPDATE and DELETE of its table through fraised.publish. The argument is the
-- topic template: {column} is replaced by that column's value in the new row
-- (the old row for DELETE), as text. For example
--
--   CREATE TRIGGER orders_events AFTER INSERT OR UPDATE OR DELETE ON orders
--     FOR EACH ROW EXECUTE FUNCTION fraised.row_event('orders.{customer_id}');
--
-- publishes to orders.42 for customer 42. The payload is
--   {"op": "INSERT"|"UPDATE"|"DELETE", "schema": ..., "table": ...,
--    "new": row or null, "old": row or null}
-- A template naming a column the table does not have, or whose value is
-- NULL, raises an error and so aborts the statement: an event is never sent
-- to a wrong topic.
CREATE OR REPLACE FUNCTION fraised.row_event()
RETURNS trigger
LANGUAGE plpgsql VOLATILE
AS $fn$
DECLARE
	tmpl    text;
	r       jsonb;
	topic   text;
	col     text;
	val     text;
	new_row jsonb;
	old_row jsonb;
BEGIN
	IF TG_NARGS <> 1 THEN
		RAISE EXCEPTION 'fraised.row_event: give one argument, the topic template (for example ''orders.{customer_id}''), trigger % on %.% has %',
			TG_NAME, TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_NARGS;
	END IF;
	IF TG_LEVEL <> 'ROW' THEN
		RAISE EXCEPTION 'fraised.row_event: trigger % must be FOR EACH ROW', TG_NAME;
	END IF;
	tmpl := TG_ARGV[0];
	IF TG_OP IN ('INSERT', 'UPDATE') THEN
		new_row := to_jsonb(NEW);
	END IF;
	IF TG_OP IN ('UPDATE', 'DELETE') THEN
		old_row := to_jsonb(OLD);
	END IF;
	r := coalesce(new_row, old_row);
	topic := tmpl;
	FOR col IN SELECT (regexp_matches(tmpl, '\{([^{}]+)\}', 'g'))[1] LOOP
		IF NOT r ? col THEN
			RAISE EXCEPTION 'fraised.row_event: topic template % names column %, which %.% does not have',
				tmpl, col, TG_TABLE_SCHEMA, TG_TABLE_NAME;
		END IF;
		val := r ->> col;
		IF val IS NULL THEN
			RAISE EXCEPTION 'fraised.row_event: column % is NULL, so template % gives no topic', col, tmpl;
		END IF;
		topic := replace(topic, '{' || col || '}', val);
	END LOOP;
	PERFORM fraised.publish(topic, jsonb_build_object(
		'op', TG_OP, 'schema', TG_TABLE_SCHEMA, 'table', TG_TABLE_NAME,
		'new', new_row, 'old', old_row));
	RETURN NULL;
END
$fn$;

-- fraised.prune(max_age, max_count, max_rows) deletes events older than
-- max_age and all but the newest max_count (NULL disables either rule), at
-- most max_rows per call so no call holds locks long; it returns how many it
-- deleted (call again while that equals max_rows) and records the highest
-- deleted id per shard in fraised.pruned.
CREATE OR REPLACE FUNCTION fraised.prune(max_age interval, max_count bigint, max_rows integer)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
AS $fn$
DECLARE
	cutoff  bigint;
	deleted bigint;
BEGIN
	IF max_count IS NOT NULL THEN
		SELECT o.id INTO cutoff FROM fraised.outbox o
			ORDER BY o.id DESC OFFSET max_count LIMIT 1;
	END IF;
	WITH victims AS (
		SELECT o.id FROM fraised.outbox o
		WHERE (max_age IS NOT NULL AND o.created_at < now() - max_age)
		   OR (cutoff IS NOT NULL AND o.id <= cutoff)
		ORDER BY o.id
		LIMIT max_rows
	), gone AS (
		DELETE FROM fraised.outbox o USING victims v
		WHERE o.id = v.id
		RETURNING o.shard, o.id
	), marked AS (
		INSERT INTO fraised.pruned (shard, through_id)
		SELECT g.shard, max(g.id) FROM gone g GROUP BY g.shard
		ON CONFLICT (shard) DO UPDATE
			SET through_id = GREATEST(fraised.pruned.through_id, EXCLUDED.through_id)
		RETURNING 1
	)
	SELECT count(*) INTO deleted FROM gone;
	RETURN deleted;
END
$fn$;

COMMIT;
