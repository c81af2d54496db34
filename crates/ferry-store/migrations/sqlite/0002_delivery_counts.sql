-- Keeps `delivery_counts` (created in 0001) in step with the deliveries
-- table, so that the queue-depth metrics read six rows instead of counting a
-- large table. Databases created before this migration start from a full
-- count.

UPDATE delivery_counts
SET n = (SELECT COUNT(*) FROM deliveries d WHERE d.status = delivery_counts.status);

CREATE TRIGGER deliveries_count_insert AFTER INSERT ON deliveries
BEGIN
    UPDATE delivery_counts SET n = n + 1 WHERE status = NEW.status;
END;

CREATE TRIGGER deliveries_count_update AFTER UPDATE OF status ON deliveries
    WHEN OLD.status <> NEW.status
BEGIN
    UPDATE delivery_counts SET n = n - 1 WHERE status = OLD.status;
    UPDATE delivery_counts SET n = n + 1 WHERE status = NEW.status;
END;

CREATE TRIGGER deliveries_count_delete AFTER DELETE ON deliveries
BEGIN
    UPDATE delivery_counts SET n = n - 1 WHERE status = OLD.status;
END;
