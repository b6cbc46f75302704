-- One database per service, created on the first start of the compose PostgreSQL (empty data
-- directory). Each service still uses a schema named after itself inside its database; the
-- suite creates the schema and applies migrations when started with `serve --migrate`.
CREATE DATABASE work4life_identity;
CREATE DATABASE work4life_intake;
CREATE DATABASE work4life_grants;
CREATE DATABASE work4life_coaching;
CREATE DATABASE work4life_notifications;
