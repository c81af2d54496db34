-- Alert settings: an organization's, and a destination's overrides of them.
ALTER TABLE orgs ADD COLUMN alert_settings TEXT NOT NULL DEFAULT '{}';
ALTER TABLE destinations ADD COLUMN alert_settings TEXT NOT NULL DEFAULT '{}';
