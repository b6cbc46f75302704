-- Request ids of Create and money-moving calls: a replay returns the stored response, the same id
-- with another request is refused. The row is written in the same transaction as the effect, so
-- a request has its effect exactly once; a concurrent duplicate waits on the primary key.
CREATE TABLE idempotency_keys (
    scope        text        NOT NULL,
    request_id   text        NOT NULL,
    request_hash bytea       NOT NULL,
    response     bytea       NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scope, request_id)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);
