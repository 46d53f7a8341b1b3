-- The service_endpoints table, the same on SQLite and Corrosion. Written within
-- Corrosion's schema rules (CREATE TABLE/INDEX only, non-null columns with defaults, no
-- unique index beyond the primary key); put this file in Corrosion's schema paths.
CREATE TABLE IF NOT EXISTS service_endpoints (
    service_id TEXT NOT NULL DEFAULT '',
    container_id TEXT NOT NULL DEFAULT '',
    host_id TEXT NOT NULL DEFAULT '',
    namespace TEXT NOT NULL DEFAULT '',
    container_name TEXT NOT NULL DEFAULT '',
    ip TEXT NOT NULL DEFAULT '',
    port INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL DEFAULT '',
    health TEXT NOT NULL DEFAULT 'unknown',
    updated_at INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (service_id, container_id)
);
CREATE INDEX IF NOT EXISTS service_endpoints_host ON service_endpoints (host_id);
CREATE INDEX IF NOT EXISTS service_endpoints_serving ON service_endpoints (state, health);
