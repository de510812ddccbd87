-- One automatic incident per service at a time, however many exporters, Prometheus replicas or
-- Alertmanagers report the outage: the key names the alert and the service (`ServiceDown:linker`)
-- and is unique among open incidents only, so the next outage opens a new one.
ALTER TABLE incidents DROP CONSTRAINT incidents_alert_key_key;
CREATE UNIQUE INDEX incidents_open_alert_key ON incidents (alert_key) WHERE resolved_at IS NULL;

-- When the alert ended (its endsAt), so a late copy of a notification about an outage that is
-- already over does not open it again.
ALTER TABLE incidents ADD COLUMN alert_ended_at timestamptz;

-- Open automatic incidents move to the new key: the oldest one per service (keys per alert
-- fingerprint could open several; the others stay open until resolved by hand).
UPDATE incidents AS open
   SET alert_key = 'ServiceDown:' || open.services[1]
 WHERE open.alert_key IS NOT NULL AND open.resolved_at IS NULL
   AND cardinality(open.services) = 1
   AND open.id = (SELECT min(other.id) FROM incidents AS other
                   WHERE other.alert_key IS NOT NULL AND other.resolved_at IS NULL
                     AND other.services = open.services);
