-- The grants schema starts with the platform tables only (outbox, inbox, idempotency, audit);
-- its domain tables come with the grants capability.
SELECT 1;
