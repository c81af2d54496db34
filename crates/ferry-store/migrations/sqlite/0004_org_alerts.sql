-- Alert channels: destinations that get the organization's alerts.
ALTER TABLE orgs ADD COLUMN alert_destinations TEXT NOT NULL DEFAULT '[]';
