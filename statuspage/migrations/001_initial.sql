-- Incidents, their updates, maintenance windows and daily uptime rollups.

CREATE TABLE incidents (
    id           bigserial PRIMARY KEY,
    title        text        NOT NULL,
    impact       text        NOT NULL CHECK (impact IN ('none', 'minor', 'major', 'critical')),
    status       text        NOT NULL
                 CHECK (status IN ('investigating', 'identified', 'monitoring', 'resolved')),
    services     text[]      NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    -- Set on incidents opened by the Alertmanager webhook: fingerprint and start of the alert,
    -- so a retried or repeated notification never opens a second incident.
    alert_key    text UNIQUE
);
CREATE INDEX incidents_unresolved ON incidents (created_at DESC) WHERE resolved_at IS NULL;
CREATE INDEX incidents_created ON incidents (created_at DESC);

CREATE TABLE incident_updates (
    id           bigserial PRIMARY KEY,
    incident_id  bigint      NOT NULL REFERENCES incidents (id) ON DELETE CASCADE,
    status       text        NOT NULL
                 CHECK (status IN ('investigating', 'identified', 'monitoring', 'resolved')),
    body         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX incident_updates_incident ON incident_updates (incident_id, created_at DESC);

CREATE TABLE maintenance_windows (
    id           bigserial PRIMARY KEY,
    title        text        NOT NULL,
    body         text        NOT NULL DEFAULT '',
    services     text[]      NOT NULL DEFAULT '{}',
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL CHECK (ends_at > starts_at),
    silence_id   text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX maintenance_windows_ends ON maintenance_windows (ends_at);

CREATE TABLE daily_uptime (
    service      text             NOT NULL,
    day          date             NOT NULL,
    ratio        double precision NOT NULL CHECK (ratio >= 0 AND ratio <= 1),
    PRIMARY KEY (service, day)
);
CREATE INDEX daily_uptime_day ON daily_uptime (day);
