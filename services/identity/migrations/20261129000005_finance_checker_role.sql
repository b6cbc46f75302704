-- The checker of payments (grants' maker-checker): a role of its own, apart from the maker's
-- `finance_officer`, so that one binding never holds both rights.
ALTER TABLE role_bindings DROP CONSTRAINT role_bindings_role_check;
ALTER TABLE role_bindings ADD CONSTRAINT role_bindings_role_check
    CHECK (role IN ('admin', 'program_manager', 'officer', 'reviewer', 'coach', 'finance_officer', 'finance_checker',
                    'auditor', 'beneficiary', 'partner_system'));
