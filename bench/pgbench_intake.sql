-- The ceiling: the equivalent intake transaction (event + first timeline entry), run by
-- pgbench -M prepared. :user_id is passed with -D; uuidv7() is PostgreSQL 18's.
\set urgent random(0, 19)
BEGIN;
INSERT INTO event (id, ref, status, title, description, channel, reported_at, urgent,
    reporter_name, reporter_email, created_by, involved_departments, involved_people,
    intake_department, cooperating_departments, plan_discussed_with, respond_by, version,
    created_at, updated_at)
VALUES (uuidv7(), 'EV-' || extract(year FROM now())::int || '-'
            || lpad(nextval('event_ref_seq')::text, 6, '0'),
        'reported', 'Printer offline on floor 3', 'The printer on floor 3 stops after every job; third time this week.',
        'hotline', now(), :urgent = 0, 'Bench Reporter', 'reporter@example.com', :user_id,
        ARRAY['IT'], '{}', 'CS', '{}', '{}', now() + interval '24 hours', 1, now(), now())
RETURNING id AS event_id \gset
INSERT INTO timeline_entry (id, event_id, seq, at, actor_id, action, after, prev_hash, hash)
VALUES (uuidv7(), :event_id, 1, now(), :user_id, 'intake', '{"status": "reported"}',
        repeat('0', 64), encode(sha256(convert_to(:event_id::text, 'UTF8')), 'hex'));
END;
