-- Roles of the platform's own service accounts: `notifier` (notifications reads people's contact
-- details from intake) and `gateway` (the provider gateway relays delivery reports and inbound
-- messages to notifications).
ALTER TABLE role_bindings DROP CONSTRAINT role_bindings_role_check;
ALTER TABLE role_bindings ADD CONSTRAINT role_bindings_role_check
    CHECK (role IN ('admin', 'program_manager', 'officer', 'reviewer', 'coach', 'finance_officer', 'finance_checker',
                    'auditor', 'beneficiary', 'partner_system', 'notifier', 'gateway'));
