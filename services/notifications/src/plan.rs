//! Which messages an event makes, for whom, of which kind, with which values: a pure mapping
//! from the other services' events, so the whole catalogue is read (and tested) in one place.
//! Contact details never travel in events (only in identity's one-time code, which is sealed as
//! soon as it is read); the people's names and addresses are fetched when a message is sent.

use prost::Message as _;
use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use work4life_proto::{
    coaching::{MilestoneVerified, SessionChanged},
    events::Event,
    grants::{AwardCreated, DisbursementChanged, TranchePayable},
    intake::{ApplicantErased, ApplicantRegistered, ApplicationDecided, ApplicationSubmitted, Outcome},
    types::Money,
};

/// What a message is about, which decides whether it may be opted out of and held at night.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Codes and payments: always sent, never held.
    Service,
    /// The course of an application, award or engagement.
    Update,
    /// Sessions.
    Reminder,
}

impl Kind {
    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Service => "service",
            Self::Update => "update",
            Self::Reminder => "reminder",
        }
    }
}

/// One message to make.
#[derive(Clone, Debug, PartialEq)]
pub struct Planned {
    /// `applicants/{id}`, or `accounts/{id}` for a code sent to a login's phone.
    pub recipient: String,
    /// The template's message type.
    pub message_type: &'static str,
    /// Its kind.
    pub kind: Kind,
    /// Values that are not personal data.
    pub variables: Map<String, Value>,
    /// Personal values carried by the event, to seal (`{"phone": ..., "code": ...}`).
    pub secret: Option<Value>,
    /// `sessions/{id}` for session messages (a cancelled session cancels its reminder).
    pub about: String,
    /// The recipient's time zone, when the event says it.
    pub time_zone: Option<String>,
    /// When to send it; `None`: now.
    pub due_at: Option<OffsetDateTime>,
}

/// What an event asks for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Plan {
    /// Messages to make.
    pub messages: Vec<Planned>,
    /// Queued messages about this (`sessions/{id}`) to cancel first.
    pub cancel_about: Option<String>,
    /// A person whose personal data was erased (`applicants/{id}`): forget their message bodies
    /// and send them nothing more.
    pub forget: Option<String>,
}

/// The streams notifications reads.
pub const SOURCES: &[&str] = &["identity", "intake", "grants", "coaching"];

/// How long before a session its reminder goes out.
pub const REMINDER_LEAD: time::Duration = time::Duration::hours(24);

/// The plan for `event`; `Ok(None)` for an event type that tells nobody anything.
pub fn plan(event: &Event, now: OffsetDateTime) -> anyhow::Result<Option<Plan>> {
    let payload = event.payload.as_ref().map(|p| p.value.as_slice()).unwrap_or_default();
    let plan = match event.r#type.as_str() {
        "identity.otp.requested" => {
            let body: Value = serde_json::from_slice(payload)?;
            let text = |k: &str| body.get(k).and_then(Value::as_str).map(str::to_string);
            let (Some(account), Some(phone), Some(code)) = (text("account"), text("phone"), text("code")) else {
                anyhow::bail!("identity.otp.requested without account, phone and code");
            };
            let minutes = body
                .get("expire_time")
                .and_then(Value::as_i64)
                .zip(event.occurred_at.as_ref().map(|t| t.seconds))
                .map(|(expire, at)| ((expire - at).max(60) / 60).to_string())
                .unwrap_or_else(|| "10".into());
            let mut v = vars(&[("minutes", minutes)]);
            if let Some(expire) = body.get("expire_time").and_then(Value::as_i64) {
                // Not a template variable: the dispatcher drops a code that expired before it could go.
                v.insert("expire_time".into(), Value::from(expire));
            }
            let mut m = one(account, "identity.otp.requested", Kind::Service, v);
            m.secret = Some(json!({ "phone": phone, "code": code }));
            Plan { messages: vec![m], ..Plan::default() }
        }
        "intake.applicant.registered" => {
            let e = ApplicantRegistered::decode(payload)?;
            Plan { messages: vec![one(e.applicant, "intake.applicant.registered", Kind::Update, Map::new())], ..Plan::default() }
        }
        "intake.applicant.erased" => {
            let e = ApplicantErased::decode(payload)?;
            Plan { forget: Some(e.applicant), ..Plan::default() }
        }
        "intake.application.submitted" => {
            let e = ApplicationSubmitted::decode(payload)?;
            let v = vars(&[("reference", reference(&e.application))]);
            each(e.recipients.into_iter().map(|r| r.applicant), "intake.application.submitted", Kind::Update, &v)
        }
        "intake.application.decided" => {
            let e = ApplicationDecided::decode(payload)?;
            let decision = e.decision.unwrap_or_default();
            let message_type = match Outcome::try_from(decision.outcome) {
                Ok(Outcome::Accepted) => "intake.application.accepted",
                Ok(Outcome::Waitlisted) => "intake.application.waitlisted",
                Ok(Outcome::Rejected) => "intake.application.rejected",
                _ => return Ok(None),
            };
            let v = vars(&[("reference", reference(&e.application)), ("reason", decision.reason)]);
            each(e.recipients.into_iter().map(|r| r.applicant), message_type, Kind::Update, &v)
        }
        "grants.award.created" => {
            let e = AwardCreated::decode(payload)?;
            let v = vars(&[("amount", money(e.amount.as_ref()))]);
            each(e.beneficiaries.into_iter(), "grants.award.created", Kind::Update, &v)
        }
        "grants.tranche.payable" => {
            let e = TranchePayable::decode(payload)?;
            let number = e.tranche.rsplit('/').next().unwrap_or_default().to_string();
            let v = vars(&[("amount", money(e.amount.as_ref())), ("tranche", number)]);
            each(e.beneficiaries.into_iter(), "grants.tranche.payable", Kind::Update, &v)
        }
        "grants.disbursement.paid" | "grants.disbursement.failed" => {
            let e = DisbursementChanged::decode(payload)?;
            let paid = event.r#type.ends_with("paid");
            let v = if paid {
                vars(&[("amount", money(e.amount.as_ref())), ("reference", e.external_reference)])
            } else {
                vars(&[("amount", money(e.amount.as_ref())), ("reason", e.failure_reason)])
            };
            let message_type = if paid { "grants.disbursement.paid" } else { "grants.disbursement.failed" };
            each(e.beneficiaries.into_iter(), message_type, Kind::Service, &v)
        }
        "coaching.session.scheduled" | "coaching.session.rescheduled" | "coaching.session.cancelled" => {
            let e = SessionChanged::decode(payload)?;
            session_plan(&event.r#type, e, now)
        }
        "coaching.milestone.verified" => {
            let e = MilestoneVerified::decode(payload)?;
            let v = vars(&[("milestone", e.code)]);
            each(e.beneficiaries.into_iter(), "coaching.milestone.verified", Kind::Update, &v)
        }
        _ => return Ok(None),
    };
    Ok(Some(plan))
}

fn session_plan(event_type: &str, e: SessionChanged, now: OffsetDateTime) -> Plan {
    let about = e.session.clone();
    let start = e.start_time.as_ref().and_then(|t| OffsetDateTime::from_unix_timestamp(t.seconds).ok());
    let place = if e.room.is_empty() { "remote".to_string() } else { room_label(&e.room) };
    // `start` is written in the office's local time when the message is rendered.
    let start_value = start.map(|s| s.unix_timestamp().to_string()).unwrap_or_default();
    let mut v = vars(&[("start", start_value), ("place", place)]);
    let tz = (!e.time_zone.is_empty()).then(|| e.time_zone.clone());
    let (message_type, remind) = match event_type {
        "coaching.session.scheduled" => ("coaching.session.scheduled", true),
        "coaching.session.rescheduled" => ("coaching.session.rescheduled", true),
        _ => {
            v.insert("reason".into(), Value::String(e.reason.clone()));
            v.remove("place");
            ("coaching.session.cancelled", false)
        }
    };
    let mut plan = Plan { cancel_about: (event_type != "coaching.session.scheduled").then(|| about.clone()), ..Plan::default() };
    // A change to an appointment is a service message: a person who opted out of reminders must
    // still hear that the session moved or will not take place.
    let kind = if event_type == "coaching.session.scheduled" { Kind::Reminder } else { Kind::Service };
    // A session booked, moved or cancelled after its start (a coach recording one that took
    // place) is news to nobody: no message, though earlier reminders are still cancelled.
    if start.is_some_and(|s| s <= now) {
        return plan;
    }
    for participant in e.participants {
        let mut m = one(participant.clone(), message_type, kind, v.clone());
        m.about.clone_from(&about);
        m.time_zone.clone_from(&tz);
        plan.messages.push(m);
        // The reminder, a day before; none for a session starting sooner than that.
        if let Some(start) = start.filter(|s| remind && *s - REMINDER_LEAD > now) {
            let mut r = one(participant, "coaching.session.reminder", Kind::Reminder, v.clone());
            r.about.clone_from(&about);
            r.time_zone.clone_from(&tz);
            r.due_at = Some(start - REMINDER_LEAD);
            plan.messages.push(r);
        }
    }
    plan
}

fn one(recipient: String, message_type: &'static str, kind: Kind, variables: Map<String, Value>) -> Planned {
    Planned { recipient, message_type, kind, variables, secret: None, about: String::new(), time_zone: None, due_at: None }
}

fn each(recipients: impl Iterator<Item = String>, message_type: &'static str, kind: Kind, v: &Map<String, Value>) -> Plan {
    let mut seen = std::collections::HashSet::new();
    let messages = recipients.filter(|r| !r.is_empty() && seen.insert(r.clone())).map(|r| one(r, message_type, kind, v.clone())).collect();
    Plan { messages, ..Plan::default() }
}

fn vars(pairs: &[(&str, String)]) -> Map<String, Value> {
    pairs.iter().map(|(k, v)| ((*k).to_string(), Value::String(v.clone()))).collect()
}

/// A short reference people can quote: the first 8 hex digits of the id, upper case.
pub fn reference(name: &str) -> String {
    let id = name.rsplit('/').next().unwrap_or_default().replace('-', "");
    id.get(..8).unwrap_or(&id).to_uppercase()
}

/// `offices/tanger/rooms/b` → `tanger / b`.
fn room_label(room: &str) -> String {
    let parts: Vec<&str> = room.split('/').collect();
    match parts.as_slice() {
        ["offices", office, "rooms", room] => format!("{office} / {room}"),
        _ => room.to_string(),
    }
}

/// `125000.00 MAD`: minor units written with the currency's decimals.
pub fn money(m: Option<&Money>) -> String {
    let Some(m) = m else { return String::new() };
    let decimals = match m.currency_code.as_str() {
        "XOF" | "XAF" | "GNF" | "JPY" | "KRW" => 0,
        _ => 2,
    };
    if decimals == 0 {
        return format!("{} {}", m.amount_minor, m.currency_code);
    }
    let sign = if m.amount_minor < 0 { "-" } else { "" };
    let abs = m.amount_minor.unsigned_abs();
    format!("{sign}{}.{:02} {}", abs / 100, abs % 100, m.currency_code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost_types::{Any, Timestamp};

    fn event(kind: &str, payload: Vec<u8>) -> Event {
        Event {
            id: uuid::Uuid::now_v7().to_string(),
            r#type: kind.into(),
            source: "test".into(),
            occurred_at: Some(Timestamp { seconds: 1_800_000_000, nanos: 0 }),
            subject: "x/1".into(),
            trace_context: None,
            payload: Some(Any { type_url: String::new(), value: payload }),
        }
    }

    #[test]
    fn money_is_written_with_the_currencys_decimals() {
        assert_eq!(money(Some(&Money { currency_code: "MAD".into(), amount_minor: 12_500_050 })), "125000.50 MAD");
        assert_eq!(money(Some(&Money { currency_code: "XOF".into(), amount_minor: 65_000 })), "65000 XOF");
        assert_eq!(money(Some(&Money { currency_code: "EUR".into(), amount_minor: -5 })), "-0.05 EUR");
    }

    #[test]
    fn a_decision_is_told_per_outcome_to_each_member_once() {
        let a = "applicants/0192f000-0000-7000-8000-000000000001".to_string();
        let b = "applicants/0192f000-0000-7000-8000-000000000002".to_string();
        let decided = ApplicationDecided {
            application: "applications/0192abcd-0000-7000-8000-000000000009".into(),
            decision: Some(work4life_proto::intake::Decision {
                outcome: Outcome::Rejected as i32,
                reason: "budget".into(),
                ..Default::default()
            }),
            recipients: [&a, &b, &a]
                .iter()
                .map(|x| work4life_proto::intake::Recipient { applicant: (*x).clone(), ..Default::default() })
                .collect(),
            ..Default::default()
        };
        let plan =
            plan(&event("intake.application.decided", decided.encode_to_vec()), OffsetDateTime::now_utc()).expect("ok").expect("plan");
        assert_eq!(plan.messages.len(), 2, "a member listed twice hears once");
        assert!(plan.messages.iter().all(|m| m.message_type == "intake.application.rejected" && m.kind == Kind::Update));
        assert_eq!(plan.messages[0].variables["reference"], "0192ABCD");
        assert_eq!(plan.messages[0].variables["reason"], "budget");
    }

    #[test]
    fn a_session_gets_its_reminder_a_day_before_and_a_change_cancels_the_old_one() {
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("t");
        let start = now + time::Duration::days(3);
        let s = SessionChanged {
            session: "sessions/0192f000-0000-7000-8000-0000000000aa".into(),
            participants: vec!["applicants/0192f000-0000-7000-8000-000000000001".into()],
            room: "offices/tanger/rooms/b".into(),
            start_time: Some(Timestamp { seconds: start.unix_timestamp(), nanos: 0 }),
            time_zone: "Africa/Casablanca".into(),
            ..Default::default()
        };
        let p = plan(&event("coaching.session.scheduled", s.encode_to_vec()), now).expect("ok").expect("plan");
        assert_eq!(p.cancel_about, None);
        let types: Vec<_> = p.messages.iter().map(|m| (m.message_type, m.due_at)).collect();
        assert_eq!(types, [("coaching.session.scheduled", None), ("coaching.session.reminder", Some(start - REMINDER_LEAD))]);
        assert_eq!(p.messages[0].variables["place"], "tanger / b");
        let moved = plan(&event("coaching.session.rescheduled", s.encode_to_vec()), now).expect("ok").expect("plan");
        assert_eq!(moved.cancel_about.as_deref(), Some("sessions/0192f000-0000-7000-8000-0000000000aa"));
        let soon =
            SessionChanged { start_time: Some(Timestamp { seconds: (now + time::Duration::hours(5)).unix_timestamp(), nanos: 0 }), ..s };
        let p = plan(&event("coaching.session.scheduled", soon.encode_to_vec()), now).expect("ok").expect("plan");
        assert_eq!(p.messages.len(), 1, "no reminder for a session sooner than a day");
        let cancelled = plan(&event("coaching.session.cancelled", soon.encode_to_vec()), now).expect("ok").expect("plan");
        assert_eq!(cancelled.messages[0].message_type, "coaching.session.cancelled");
        assert!(cancelled.cancel_about.is_some());
        let past =
            SessionChanged { start_time: Some(Timestamp { seconds: (now - time::Duration::hours(3)).unix_timestamp(), nanos: 0 }), ..soon };
        for kind in ["coaching.session.scheduled", "coaching.session.rescheduled", "coaching.session.cancelled"] {
            let p = plan(&event(kind, past.encode_to_vec()), now).expect("ok").expect("plan");
            assert!(p.messages.is_empty(), "{kind} of a session that already started tells nobody");
            assert_eq!(p.cancel_about.is_some(), kind != "coaching.session.scheduled", "older reminders are still cancelled");
        }
    }

    #[test]
    fn a_code_is_sealed_not_a_variable_and_other_events_make_nothing() {
        let body = json!({"account": "accounts/0192f000-0000-7000-8000-000000000003", "phone": "+212612345678", "code": "123456", "expire_time": 1_800_000_600});
        let p =
            plan(&event("identity.otp.requested", body.to_string().into_bytes()), OffsetDateTime::now_utc()).expect("ok").expect("plan");
        let m = &p.messages[0];
        assert_eq!((m.kind, m.variables["minutes"].as_str()), (Kind::Service, Some("10")));
        assert!(!m.variables.contains_key("code"), "the code is sealed, not stored in clear");
        assert_eq!(m.secret.as_ref().expect("sealed")["code"], "123456");
        assert!(plan(&event("identity.role.granted", vec![]), OffsetDateTime::now_utc()).expect("ok").is_none());
        assert!(plan(&event("identity.otp.requested", b"{}".to_vec()), OffsetDateTime::now_utc()).is_err());
    }
}
