-- The destination's own reference to a delivered attempt (JSON object).
ALTER TABLE attempts ADD COLUMN receipt TEXT;
