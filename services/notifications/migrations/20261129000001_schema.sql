-- The notifications schema starts with the platform tables only (outbox, inbox, idempotency, audit);
-- its domain tables come with the notifications capability.
SELECT 1;
