//! The program's rules, free of I/O: windows, eligibility (every failing rule at once, per
//! member, with the field and the reason), the application state machine, and review totals.

use serde::{Deserialize, Serialize};
use time::Date;
use work4life_platform::ServiceError;
use work4life_proto::intake::{Outcome, Window};

/// Windows as stored (the `windows` table's codes) and on the wire.
pub const WINDOWS: [(Window, &str); 6] = [
    (Window::CollectiveStartup, "collective_startup"),
    (Window::IndividualStartup, "individual_startup"),
    (Window::JobPlacement, "job_placement"),
    (Window::AssociationProfessionalisation, "association_professionalisation"),
    (Window::EnterpriseMarketing, "enterprise_marketing"),
    (Window::LabourLawAdvice, "labour_law_advice"),
];

/// The stored code of a wire window, if it is one.
pub fn window_code(window: i32) -> Option<&'static str> {
    WINDOWS.iter().find(|(w, _)| *w as i32 == window).map(|(_, c)| *c)
}

/// The wire window of a stored code.
pub fn window_of(code: &str) -> Window {
    WINDOWS.iter().find(|(_, c)| *c == code).map_or(Window::Unspecified, |(w, _)| *w)
}

/// Eligibility rules, stored as JSON on the call.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Eligibility {
    /// Youngest age on the opening day; 0: none.
    pub min_age: i32,
    /// Oldest age on the opening day; 0: none.
    pub max_age: i32,
    /// Nationalities that may not apply.
    pub excluded_nationalities: Vec<String>,
    /// Fewest members; 0: the window's default.
    pub min_team_size: i32,
    /// Most members; 0: the window's default.
    pub max_team_size: i32,
    /// Supporting documents the application must list.
    pub required_documents: Vec<String>,
    /// Whether each member needs an identity document.
    pub identity_document_required: bool,
}

impl Eligibility {
    /// Fewest and most members for `window`.
    pub fn team_size(&self, window: &str) -> (usize, usize) {
        let (min, max) = if window == "collective_startup" { (3, 5) } else { (1, 1) };
        let pick = |set: i32, default: usize| if set > 0 { set as usize } else { default };
        (pick(self.min_team_size, min), pick(self.max_team_size, max))
    }
}

/// One rubric criterion, stored as JSON on the call.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Criterion {
    /// Short id.
    pub id: String,
    /// What is judged.
    pub title: String,
    /// Weight, 1 to 100.
    pub weight: i32,
    /// Highest score.
    pub max_score: i32,
}

/// The weighted total of `scores` (criterion id, score) on `rubric`, 0 to 100.
pub fn weighted_total(rubric: &[Criterion], scores: &[(String, i32)]) -> f64 {
    let weights: i64 = rubric.iter().map(|c| i64::from(c.weight)).sum();
    if weights == 0 {
        return 0.0;
    }
    let points: f64 = rubric
        .iter()
        .filter_map(|c| {
            scores.iter().find(|(id, _)| *id == c.id).map(|(_, s)| f64::from(c.weight) * f64::from(*s) / f64::from(c.max_score))
        })
        .sum();
    (points / weights as f64 * 100.0 * 100.0).round() / 100.0
}

/// What the eligibility check knows of a member.
#[derive(Clone, Debug)]
pub struct MemberFacts {
    /// `applicants/{id}`.
    pub applicant: String,
    /// "Given Family".
    pub display_name: String,
    /// `representative` or `member`.
    pub role: String,
    /// Record state.
    pub state: String,
    /// Date of birth.
    pub birth_date: Option<Date>,
    /// Nationality.
    pub nationality: String,
    /// Zone.
    pub zone: String,
    /// Document type.
    pub document_type: String,
}

/// What the eligibility check knows of the application.
#[derive(Clone, Debug, Default)]
pub struct DraftFacts {
    /// Title.
    pub title: String,
    /// Summary.
    pub summary: String,
    /// Members in order.
    pub members: Vec<MemberFacts>,
    /// Supporting documents listed.
    pub provided_documents: Vec<String>,
    /// Employer, if any.
    pub employer: String,
    /// Job title, if any.
    pub job_title: String,
}

/// What the eligibility check knows of the call.
#[derive(Clone, Debug)]
pub struct CallFacts {
    /// Window code.
    pub window: String,
    /// Zones.
    pub zones: Vec<String>,
    /// Opening day: ages are computed on it.
    pub opens_on: Date,
    /// Rules.
    pub eligibility: Eligibility,
}

/// One problem found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The rule.
    pub rule: &'static str,
    /// The field.
    pub field: String,
    /// Why, for a person.
    pub description: String,
}

fn finding(rule: &'static str, field: impl Into<String>, description: impl Into<String>) -> Finding {
    Finding { rule, field: field.into(), description: description.into() }
}

/// Age in whole years on `on`.
/// The donor's age bands: `under-18`, `18-24`, `25-34`, `35-44`, `45-54`, `55+`.
pub fn age_band(age: i32) -> &'static str {
    match age {
        ..=17 => "under-18",
        18..=24 => "18-24",
        25..=34 => "25-34",
        35..=44 => "35-44",
        45..=54 => "45-54",
        _ => "55+",
    }
}

pub fn age_on(birth: Date, on: Date) -> i32 {
    let mut age = on.year() - birth.year();
    if (on.month() as u8, on.day()) < (birth.month() as u8, birth.day()) {
        age -= 1;
    }
    age
}

/// Every completeness and eligibility problem of `draft` for `call`, in field order.
pub fn findings(call: &CallFacts, draft: &DraftFacts) -> Vec<Finding> {
    let rules = &call.eligibility;
    let mut out = Vec::new();
    let startup = matches!(call.window.as_str(), "collective_startup" | "individual_startup");
    if startup && draft.title.trim().is_empty() {
        out.push(finding("COMPLETENESS", "title", "a start-up application needs a project title"));
    }
    if startup && draft.summary.trim().is_empty() {
        out.push(finding("COMPLETENESS", "summary", "a start-up application needs a summary of the project"));
    }
    let (min, max) = rules.team_size(&call.window);
    let n = draft.members.len();
    if n < min || n > max {
        let want = if min == max { format!("exactly {min}") } else { format!("{min} to {max}") };
        out.push(finding("TEAM_SIZE", "members", format!("this call takes {want} members; the application has {n}")));
    }
    let representatives = draft.members.iter().filter(|m| m.role == "representative").count();
    if n > 0 && representatives != 1 {
        out.push(finding(
            "REPRESENTATIVE",
            "members",
            format!("exactly one member must be the representative; there are {representatives}"),
        ));
    }
    if call.window == "job_placement" {
        if draft.employer.is_empty() {
            out.push(finding("JOB_PLACEMENT", "job_placement.employer", "a job placement names the employer organisation"));
        }
        if draft.job_title.trim().is_empty() {
            out.push(finding("JOB_PLACEMENT", "job_placement.job_title", "a job placement names the job offered"));
        }
    }
    for (i, m) in draft.members.iter().enumerate() {
        let who = format!("{} ({})", m.display_name, m.applicant);
        if m.state != "active" {
            out.push(finding("APPLICANT", format!("members[{i}].applicant"), format!("{who}: the record is {}, not active", m.state)));
            continue;
        }
        match m.birth_date {
            None => out.push(finding("COMPLETENESS", format!("members[{i}].birth_date"), format!("{who}: date of birth unknown"))),
            Some(birth) => {
                let age = age_on(birth, call.opens_on);
                let too_young = rules.min_age > 0 && age < rules.min_age;
                let too_old = rules.max_age > 0 && age > rules.max_age;
                if too_young || too_old {
                    let range = match (rules.min_age, rules.max_age) {
                        (0, hi) => format!("up to {hi}"),
                        (lo, 0) => format!("from {lo}"),
                        (lo, hi) => format!("{lo} to {hi}"),
                    };
                    out.push(finding(
                        "AGE",
                        format!("members[{i}].birth_date"),
                        format!("{who} is {age} on {}; this call takes ages {range}", call.opens_on),
                    ));
                }
            }
        }
        if !call.zones.contains(&m.zone) {
            out.push(finding(
                "ZONE",
                format!("members[{i}].zone"),
                format!("{who} lives in {}; this call covers {}", m.zone, call.zones.join(", ")),
            ));
        }
        if rules.excluded_nationalities.contains(&m.nationality) {
            out.push(finding(
                "NATIONALITY",
                format!("members[{i}].nationality"),
                format!("{who}: nationality {} may not apply to this call", m.nationality),
            ));
        }
        if rules.identity_document_required && m.document_type == "none" {
            out.push(finding(
                "IDENTITY_DOCUMENT",
                format!("members[{i}].identity_document"),
                format!("{who} has no identity document on record"),
            ));
        }
    }
    for doc in &rules.required_documents {
        if !draft.provided_documents.contains(doc) {
            out.push(finding("REQUIRED_DOCUMENT", "provided_documents", format!("the call requires the document {doc:?}")));
        }
    }
    out
}

/// What is done to an application.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Change the draft (details, members).
    Edit,
    /// Submit.
    Submit,
    /// Start screening.
    StartScreening,
    /// Start review.
    StartReview,
    /// Decide.
    Decide(Outcome),
    /// Withdraw.
    Withdraw,
    /// Assign a reviewer.
    AssignReviewer,
    /// Score or declare a conflict.
    Score,
}

impl Step {
    fn describe(self) -> &'static str {
        match self {
            Self::Edit => "changing it needs a draft",
            Self::Submit => "submitting needs a draft",
            Self::StartScreening => "screening starts from submitted",
            Self::StartReview => "review starts from screening",
            Self::Decide(Outcome::Rejected) => "rejecting needs screening, in review or waitlisted",
            Self::Decide(Outcome::Waitlisted) => "waitlisting needs in review",
            Self::Decide(_) => "accepting needs in review or waitlisted",
            Self::Withdraw => "withdrawing needs an application not yet decided, or waitlisted",
            Self::AssignReviewer => "reviewers are assigned from submitted to in review",
            Self::Score => "reviews are given while in review",
        }
    }
}

/// The state `step` leads to from `state` (`outcome` for a decided application), or
/// FAILED_PRECONDITION `INVALID_STATE` naming both.
pub fn next_state(subject: &str, state: &str, outcome: Option<&str>, step: Step) -> Result<&'static str, ServiceError> {
    let next = match (state, outcome, step) {
        ("draft", _, Step::Edit) => Some("draft"),
        ("draft", _, Step::Submit) => Some("submitted"),
        ("submitted", _, Step::StartScreening) => Some("screening"),
        ("screening", _, Step::StartReview) => Some("in_review"),
        ("in_review", _, Step::Decide(Outcome::Accepted | Outcome::Waitlisted | Outcome::Rejected)) => Some("decided"),
        ("screening", _, Step::Decide(Outcome::Rejected)) => Some("decided"),
        ("decided", Some("waitlisted"), Step::Decide(Outcome::Accepted | Outcome::Rejected)) => Some("decided"),
        ("draft" | "submitted" | "screening" | "in_review", _, Step::Withdraw) => Some("withdrawn"),
        ("decided", Some("waitlisted"), Step::Withdraw) => Some("withdrawn"),
        ("submitted" | "screening" | "in_review", _, Step::AssignReviewer) => Some(state_static(state)),
        ("in_review", _, Step::Score) => Some("in_review"),
        _ => None,
    };
    next.ok_or_else(|| {
        let shown = match outcome {
            Some(o) if state == "decided" => format!("decided ({o})"),
            _ => state.replace('_', " "),
        };
        ServiceError::precondition("INVALID_STATE", "STATE", subject, format!("the application is {shown}; {}", step.describe()))
    })
}

fn state_static(state: &str) -> &'static str {
    match state {
        "submitted" => "submitted",
        "screening" => "screening",
        _ => "in_review",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u8, d: u8) -> Date {
        Date::from_calendar_date(y, time::Month::try_from(m).expect("month"), d).expect("date")
    }

    fn member(i: usize, birth: Date, nationality: &str, zone: &str) -> MemberFacts {
        MemberFacts {
            applicant: format!("applicants/{i}"),
            display_name: format!("Person {i}"),
            role: if i == 0 { "representative".into() } else { "member".into() },
            state: "active".into(),
            birth_date: Some(birth),
            nationality: nationality.into(),
            zone: zone.into(),
            document_type: "passport".into(),
        }
    }

    fn call() -> CallFacts {
        CallFacts {
            window: "collective_startup".into(),
            zones: vec!["oujda".into()],
            opens_on: date(2027, 3, 1),
            eligibility: Eligibility {
                min_age: 18,
                max_age: 35,
                excluded_nationalities: vec!["MA".into()],
                required_documents: vec!["business_plan".into()],
                identity_document_required: true,
                ..Eligibility::default()
            },
        }
    }

    #[test]
    fn every_failing_rule_is_reported_per_member() {
        let mut young = member(1, date(2009, 3, 2), "SN", "oujda");
        young.document_type = "none".into();
        let draft = DraftFacts {
            title: "Atelier couture".into(),
            summary: "Tailoring".into(),
            members: vec![member(0, date(1995, 1, 1), "MA", "oujda"), young, member(2, date(1995, 1, 1), "CI", "tanger")],
            ..DraftFacts::default()
        };
        let found: Vec<(&str, String)> = findings(&call(), &draft).into_iter().map(|f| (f.rule, f.field)).collect();
        assert_eq!(
            found,
            vec![
                ("NATIONALITY", "members[0].nationality".to_string()),
                ("AGE", "members[1].birth_date".to_string()),
                ("IDENTITY_DOCUMENT", "members[1].identity_document".to_string()),
                ("ZONE", "members[2].zone".to_string()),
                ("REQUIRED_DOCUMENT", "provided_documents".to_string()),
            ]
        );
    }

    #[test]
    fn age_counts_whole_years_on_the_opening_day() {
        assert_eq!(age_on(date(2009, 3, 1), date(2027, 3, 1)), 18);
        assert_eq!(age_on(date(2009, 3, 2), date(2027, 3, 1)), 17);
    }

    #[test]
    fn team_sizes_follow_the_window_unless_the_call_says_otherwise() {
        let rules = Eligibility::default();
        assert_eq!(rules.team_size("collective_startup"), (3, 5));
        assert_eq!(rules.team_size("individual_startup"), (1, 1));
        assert_eq!(Eligibility { max_team_size: 4, ..rules }.team_size("collective_startup"), (3, 4));
    }

    #[test]
    fn transitions_follow_the_machine() {
        assert_eq!(next_state("a", "draft", None, Step::Submit).expect("submit"), "submitted");
        assert_eq!(next_state("a", "screening", None, Step::Decide(Outcome::Rejected)).expect("reject"), "decided");
        assert!(next_state("a", "screening", None, Step::Decide(Outcome::Accepted)).is_err());
        assert_eq!(next_state("a", "decided", Some("waitlisted"), Step::Decide(Outcome::Accepted)).expect("promote"), "decided");
        assert!(next_state("a", "decided", Some("accepted"), Step::Withdraw).is_err());
        assert!(next_state("a", "withdrawn", None, Step::Submit).is_err());
        assert!(next_state("a", "submitted", None, Step::StartReview).is_err());
    }

    #[test]
    fn totals_weigh_criteria() {
        let rubric = vec![
            Criterion { id: "viability".into(), title: "V".into(), weight: 3, max_score: 10 },
            Criterion { id: "team".into(), title: "T".into(), weight: 1, max_score: 5 },
        ];
        let total = weighted_total(&rubric, &[("viability".into(), 10), ("team".into(), 0)]);
        assert!((total - 75.0).abs() < 1e-9, "{total}");
    }
}
