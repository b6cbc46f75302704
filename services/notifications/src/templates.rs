//! Message templates: a body with `{{variable}}` placeholders, checked when it is saved against
//! the variables its event type offers (an unknown or malformed placeholder is refused with its
//! position), rendered with typed values, and chosen for a person by their languages, then the
//! program's default.

use std::collections::BTreeMap;

/// The kind of a template variable, which decides how its value is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Text as given.
    Text,
    /// An amount: `1250.50 EUR`.
    Money,
    /// A local date and time: `2027-04-07 10:00`.
    DateTime,
}

/// The message types: what a template is written for. Most are an event type; a decision is
/// told per outcome (`intake.application.accepted`, ...) and a session has its reminder.
pub const MESSAGE_TYPES: &[&str] = &[
    "identity.otp.requested",
    "intake.applicant.registered",
    "intake.application.submitted",
    "intake.application.accepted",
    "intake.application.waitlisted",
    "intake.application.rejected",
    "grants.award.created",
    "grants.tranche.payable",
    "grants.disbursement.paid",
    "grants.disbursement.failed",
    "coaching.session.scheduled",
    "coaching.session.rescheduled",
    "coaching.session.reminder",
    "coaching.session.cancelled",
    "coaching.milestone.verified",
];

/// The variables each message type offers to its templates.
pub fn variables(message_type: &str) -> Option<&'static [(&'static str, Kind)]> {
    use Kind::*;
    Some(match message_type {
        "identity.otp.requested" => &[("code", Text), ("minutes", Text)],
        "intake.applicant.registered" => &[("given_name", Text)],
        "intake.application.submitted" => &[("given_name", Text), ("reference", Text)],
        "intake.application.accepted" | "intake.application.waitlisted" | "intake.application.rejected" => {
            &[("given_name", Text), ("reference", Text), ("reason", Text)]
        }
        "grants.award.created" => &[("given_name", Text), ("amount", Money)],
        "grants.tranche.payable" => &[("given_name", Text), ("amount", Money), ("tranche", Text)],
        "grants.disbursement.paid" => &[("given_name", Text), ("amount", Money), ("reference", Text)],
        "grants.disbursement.failed" => &[("given_name", Text), ("amount", Money), ("reason", Text)],
        "coaching.session.scheduled" | "coaching.session.rescheduled" | "coaching.session.reminder" => {
            &[("given_name", Text), ("start", DateTime), ("place", Text)]
        }
        "coaching.session.cancelled" => &[("given_name", Text), ("start", DateTime), ("reason", Text)],
        "coaching.milestone.verified" => &[("given_name", Text), ("milestone", Text)],
        _ => return None,
    })
}

/// A piece of a parsed body.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Text(String),
    Variable(String),
}

/// A template body, parsed and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Template {
    pieces: Vec<Piece>,
}

/// Why a body was refused, with the character offset of the problem.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    /// Character offset in the body.
    pub at: usize,
    /// For a person.
    pub reason: String,
}

impl Template {
    /// Parses `body` for `message_type`: every `{{name}}` must be one of its variables.
    pub fn parse(message_type: &str, body: &str) -> Result<Self, TemplateError> {
        let known = variables(message_type).ok_or_else(|| TemplateError { at: 0, reason: format!("no message type {message_type}") })?;
        if body.trim().is_empty() {
            return Err(TemplateError { at: 0, reason: "the body is empty".into() });
        }
        let chars: Vec<char> = body.chars().collect();
        let mut pieces = Vec::new();
        let mut text = String::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i] == '{' && chars.get(i + 1) == Some(&'{') {
                let start = i;
                let close = (i + 2..chars.len().saturating_sub(1)).find(|&j| chars[j] == '}' && chars[j + 1] == '}');
                let Some(close) = close else { return Err(TemplateError { at: start, reason: "`{{` is never closed".into() }) };
                let name: String = chars[i + 2..close].iter().collect::<String>().trim().to_string();
                if !known.iter().any(|(n, _)| *n == name) {
                    let offered: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
                    return Err(TemplateError {
                        at: start,
                        reason: format!("unknown variable `{name}`; {message_type} offers {}", offered.join(", ")),
                    });
                }
                if !text.is_empty() {
                    pieces.push(Piece::Text(std::mem::take(&mut text)));
                }
                pieces.push(Piece::Variable(name));
                i = close + 2;
            } else if chars[i] == '}' && chars.get(i + 1) == Some(&'}') {
                return Err(TemplateError { at: i, reason: "`}}` without an opening `{{`".into() });
            } else {
                text.push(chars[i]);
                i += 1;
            }
        }
        if !text.is_empty() {
            pieces.push(Piece::Text(text));
        }
        Ok(Self { pieces })
    }

    /// The variables the body uses, in order of first use.
    pub fn uses(&self) -> Vec<&str> {
        let mut out: Vec<&str> = Vec::new();
        for p in &self.pieces {
            if let Piece::Variable(v) = p
                && !out.contains(&v.as_str())
            {
                out.push(v);
            }
        }
        out
    }

    /// The body with `values`; a variable without a value is an error naming it.
    pub fn render(&self, values: &BTreeMap<String, String>) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.pieces {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Variable(v) => out.push_str(values.get(v).ok_or_else(|| format!("no value for `{v}`"))?),
            }
        }
        Ok(out)
    }
}

/// The locale to use for a person: the first of their languages a template exists in, else the
/// program's default, else none.
pub fn choose<'a>(available: &[&'a str], languages: &[String], default: &str) -> Option<&'a str> {
    languages
        .iter()
        .find_map(|l| {
            let l = l.to_lowercase();
            // `ar-MA` is served by `ar`.
            let base = l.split(['-', '_']).next().unwrap_or_default().to_string();
            available.iter().find(|a| a.eq_ignore_ascii_case(&l)).or_else(|| available.iter().find(|a| a.eq_ignore_ascii_case(&base)))
        })
        .or_else(|| available.iter().find(|a| a.eq_ignore_ascii_case(default)))
        .copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    #[test]
    fn renders_in_french_and_arabic() {
        let fr = Template::parse("grants.tranche.payable", "Bonjour {{given_name}}, la tranche {{tranche}} ({{ amount }}) est payable.")
            .expect("valid");
        assert_eq!(fr.uses(), ["given_name", "tranche", "amount"]);
        let v = values(&[("given_name", "Awa"), ("tranche", "1"), ("amount", "20000.00 EUR")]);
        assert_eq!(fr.render(&v).expect("render"), "Bonjour Awa, la tranche 1 (20000.00 EUR) est payable.");
        let ar = Template::parse("grants.tranche.payable", "مرحبا {{given_name}}، الدفعة {{tranche}} جاهزة: {{amount}}").expect("valid");
        assert_eq!(ar.render(&v).expect("render"), "مرحبا Awa، الدفعة 1 جاهزة: 20000.00 EUR");
    }

    #[test]
    fn unknown_and_malformed_placeholders_are_refused_with_their_position() {
        let e = Template::parse("grants.tranche.payable", "Bonjour {{prenom}}").expect_err("unknown");
        assert_eq!(e.at, 8);
        assert!(e.reason.contains("unknown variable `prenom`") && e.reason.contains("given_name"), "{}", e.reason);
        assert_eq!(Template::parse("grants.tranche.payable", "Bonjour {{given_name").expect_err("open").at, 8);
        assert_eq!(Template::parse("grants.tranche.payable", "Bonjour given_name}}").expect_err("close").at, 18);
        assert!(Template::parse("grants.tranche.payable", "  ").is_err());
        assert!(Template::parse("billing.invoice.sent", "x").is_err(), "no such event type");
    }

    #[test]
    fn a_missing_value_is_named() {
        let t = Template::parse("coaching.session.cancelled", "{{start}}: {{reason}}").expect("valid");
        assert_eq!(t.render(&values(&[("start", "2027-04-07 10:00")])).expect_err("missing"), "no value for `reason`");
    }

    #[test]
    fn the_locale_follows_the_persons_languages_then_the_default() {
        let available = ["fr", "ar", "en"];
        assert_eq!(choose(&available, &["wo".into(), "ar-MA".into(), "fr".into()], "fr"), Some("ar"), "Wolof: none; Arabic next");
        assert_eq!(choose(&available, &["wo".into()], "fr"), Some("fr"), "the program's default");
        assert_eq!(choose(&["en"], &["wo".into()], "fr"), None, "nothing usable: reported, not guessed");
        assert_eq!(choose(&available, &[], "en"), Some("en"));
    }
}
