//! Plans per window: the milestones an engagement works through (code, title, days after the
//! engagement opens) and its budget of coaching hours. Grants releases tranches on these codes.

/// A milestone of a plan template.
#[derive(Clone, Copy, Debug)]
pub struct Step {
    /// Code, shared with grants' tranche conditions.
    pub code: &'static str,
    /// What it is.
    pub title: &'static str,
    /// Due this many days after the engagement opens.
    pub due_after_days: i64,
}

const STARTUP: &[Step] = &[
    Step { code: "business_plan_validated", title: "Business plan validated", due_after_days: 30 },
    Step { code: "legal_registration", title: "Legal registration of the business", due_after_days: 60 },
    Step { code: "bank_account_opened", title: "Business bank account opened", due_after_days: 75 },
    Step { code: "first_sale", title: "First sale", due_after_days: 120 },
    Step { code: "three_months_active", title: "Three months of activity", due_after_days: 180 },
    Step { code: "six_months_active", title: "Six months of activity", due_after_days: 270 },
];

const JOB_PLACEMENT: &[Step] = &[
    Step { code: "contract_signed", title: "Work contract signed", due_after_days: 15 },
    Step { code: "first_month_completed", title: "First month of work completed", due_after_days: 45 },
    Step { code: "three_months_completed", title: "Three months of work completed", due_after_days: 105 },
    Step { code: "six_months_completed", title: "Six months of work completed", due_after_days: 195 },
];

const ASSOCIATION: &[Step] = &[
    Step { code: "diagnosis_done", title: "Organisational diagnosis done", due_after_days: 30 },
    Step { code: "action_plan_validated", title: "Action plan validated", due_after_days: 60 },
    Step { code: "governance_updated", title: "Statutes and governance documents updated", due_after_days: 120 },
];

const MARKETING: &[Step] = &[
    Step { code: "marketing_plan_validated", title: "Marketing plan validated", due_after_days: 30 },
    Step { code: "first_campaign", title: "First campaign run", due_after_days: 75 },
];

const LABOUR_LAW: &[Step] = &[Step { code: "advice_given", title: "Advice given and contract reviewed", due_after_days: 30 }];

/// Window codes an engagement may have.
pub const WINDOWS: [&str; 6] = [
    "collective_startup",
    "individual_startup",
    "job_placement",
    "association_professionalisation",
    "enterprise_marketing",
    "labour_law_advice",
];

/// The plan and default hours budget of `window`, if it is one.
pub fn plan(window: &str) -> Option<(&'static [Step], i32)> {
    Some(match window {
        "collective_startup" => (STARTUP, 40),
        "individual_startup" => (STARTUP, 30),
        "job_placement" => (JOB_PLACEMENT, 10),
        "association_professionalisation" => (ASSOCIATION, 16),
        "enterprise_marketing" => (MARKETING, 8),
        "labour_law_advice" => (LABOUR_LAW, 4),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_window_has_a_plan_in_due_order() {
        for window in WINDOWS {
            let (steps, hours) = plan(window).expect(window);
            assert!(!steps.is_empty() && hours > 0, "{window}");
            assert!(steps.windows(2).all(|w| w[0].due_after_days < w[1].due_after_days), "{window}");
        }
        assert!(plan("gardening").is_none());
    }
}
