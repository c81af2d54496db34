-- A delivery keeps its event's type (an event never changes), so that a
-- list filtered by type and an export of deliveries or attempts read no
-- event: joining every delivery to its event was most of an export's
-- reading time. Deliveries made before this migration get theirs here,
-- once.
ALTER TABLE deliveries ADD COLUMN event_type TEXT NOT NULL DEFAULT '';
UPDATE deliveries
   SET event_type = COALESCE(
       (SELECT e.event_type FROM events e WHERE e.id = deliveries.event_id), '');
