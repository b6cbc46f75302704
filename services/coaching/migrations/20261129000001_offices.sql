-- The incubator and partner offices where coaching happens. Extended by the coaching capability.
CREATE TABLE offices (
    code      text PRIMARY KEY CHECK (code ~ '^[a-z][a-z0-9_]*$'),
    name      text NOT NULL,
    zone      text NOT NULL,
    operator  text NOT NULL,
    address   text NOT NULL,
    time_zone text NOT NULL DEFAULT 'Africa/Casablanca'
);
