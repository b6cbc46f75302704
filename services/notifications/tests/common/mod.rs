//! The notifications test fixture: intake and notifications in one host on a fresh database,
//! a private Redis, a fake SMS provider, a fake WhatsApp provider and a fake SMTP server (real
//! servers on loopback, from the testkit), and helpers to register people and publish events.
#![allow(dead_code)]

use std::time::Duration;

use time::OffsetDateTime;
use tonic::transport::Channel;
use uuid::Uuid;
use work4life_proto::{
    coaching::SessionChanged,
    events::Event,
    grants::{AwardCreated, DisbursementChanged},
    intake::{
        Applicant, ApplicantRegistered, ApplicationDecided, ApplicationSubmitted, Consent, CreateApplicantRequest, Decision, DocumentType,
        ErasePersonalDataRequest, Gender, IdentityDocument, Outcome, Recipient, intake_service_client::IntakeServiceClient,
    },
    notifications::{
        Channel as WireChannel, Message, MessageKind, Preferences, UpdatePreferencesRequest,
        notifications_service_client::NotificationsServiceClient,
    },
    types::Money,
};
#[allow(unused_imports)]
pub use work4life_testkit::{HostedSuite, HttpProvider, SmtpServer, TestRedis, bearer, count, eventually, fields, reason, rid};

/// Intake + notifications with their fakes.
pub struct Fixture {
    pub redis: TestRedis,
    pub suite: HostedSuite,
    pub sms: HttpProvider,
    pub whatsapp: HttpProvider,
    pub smtp: SmtpServer,
}

/// Settings that make retries quick in tests.
pub const FAST_RETRIES: &[(&str, &str)] = &[
    ("W4L_NOTIFY_RETRY_BASE_MS", "50"),
    ("W4L_NOTIFY_RETRY_CAP_MS", "200"),
    ("W4L_NOTIFY_MAX_ATTEMPTS", "4"),
    ("W4L_NOTIFY_QUIET_HOURS", "off"),
];

impl Fixture {
    /// A fixture with fast retries and no quiet hours.
    pub async fn start() -> Self {
        Self::with(FAST_RETRIES).await
    }

    /// A fixture with these settings (`W4L_NOTIFY_*`) on top of the providers'.
    pub async fn with(settings: &[(&str, &str)]) -> Self {
        let redis = TestRedis::start().await;
        let (sms, whatsapp, smtp) = (HttpProvider::start().await, HttpProvider::start().await, SmtpServer::start().await);
        let mut vars: Vec<(String, String)> = vec![
            ("W4L_SMS_URL".into(), sms.url()),
            ("W4L_WHATSAPP_URL".into(), whatsapp.url()),
            ("W4L_SMTP_URL".into(), smtp.url()),
            ("W4L_SMS_RATE".into(), "10000".into()),
            ("W4L_WHATSAPP_RATE".into(), "10000".into()),
            ("W4L_SMTP_RATE".into(), "10000".into()),
        ];
        vars.extend(settings.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())));
        let borrowed: Vec<(&str, &str)> = vars.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let suite =
            work4life_testkit::host_services(&[work4life_notifications::SERVICE, work4life_intake::SERVICE], &redis.url, &borrowed).await;
        Self { redis, suite, sms, whatsapp, smtp }
    }

    /// The notifications schema's pool.
    pub fn pool(&self) -> &sqlx::PgPool {
        &self.suite.pools[0]
    }

    /// The intake schema's pool.
    pub fn intake_pool(&self) -> &sqlx::PgPool {
        &self.suite.pools[1]
    }

    fn channel(&self) -> Channel {
        Channel::from_shared(format!("http://{}", self.suite.running.addr)).expect("url").connect_lazy()
    }

    /// A notifications client.
    pub fn client(&self) -> NotificationsServiceClient<Channel> {
        NotificationsServiceClient::new(self.channel())
    }

    /// An intake client.
    pub fn intake(&self) -> IntakeServiceClient<Channel> {
        IntakeServiceClient::new(self.channel())
    }

    /// A token for a new account holding `role` everywhere.
    pub fn token(&self, role: &str) -> String {
        self.suite.signer.token(role, None, &[]).1
    }

    /// (account, token) of a new beneficiary login.
    pub fn beneficiary(&self) -> (String, String) {
        self.suite.signer.token("beneficiary", None, &[])
    }

    /// Registers a person in intake (an officer in Tanger does it): `intake.applicant.registered`
    /// follows, through the real outbox, relay and stream. Returns `applicants/{id}`.
    pub async fn register(&self, person: Applicant) -> String {
        let officer = self.token("admin");
        let request = CreateApplicantRequest { applicant: Some(person), request_id: rid() };
        self.intake()
            .create_applicant(bearer(request, &officer))
            .await
            .expect("applicant registered")
            .into_inner()
            .applicant
            .expect("a")
            .name
    }

    /// Publishes `event` on `w4l:events:<source>` as a relay does.
    pub async fn publish(&self, source: &str, event: &Event) {
        self.redis.publish(&format!("w4l:events:{source}"), event).await;
    }

    /// The messages stored for `recipient`, newest first (read from the database).
    pub async fn messages_to(&self, recipient: &str) -> Vec<(String, String, Option<String>, String)> {
        sqlx::query_as("SELECT message_type, state, channel, last_error FROM messages WHERE recipient = $1 ORDER BY created_at DESC")
            .bind(recipient)
            .fetch_all(self.pool())
            .await
            .expect("messages")
    }

    /// Waits until the message of `message_type` to `recipient` is in `state`, and returns it (API view).
    pub async fn wait_state(&self, recipient: &str, message_type: &str, state: &str) -> Message {
        let admin = self.token("admin");
        let want = format!("MESSAGE_STATE_{}", state.to_uppercase());
        eventually(&format!("{message_type} to {recipient} {state}"), Duration::from_secs(20), || {
            let mut client = self.client();
            let admin = admin.clone();
            let want = want.clone();
            async move {
                let list = client
                    .list_messages(bearer(
                        work4life_proto::notifications::ListMessagesRequest { recipient: recipient.to_string(), ..Default::default() },
                        &admin,
                    ))
                    .await
                    .ok()?
                    .into_inner();
                list.messages.into_iter().find(|m| {
                    m.message_type == message_type
                        && work4life_proto::notifications::MessageState::try_from(m.state).map(|s| s.as_str_name() == want).unwrap_or(false)
                })
            }
        })
        .await
    }
}

/// A row of `notifications.messages`, as stored (the API hides `sealed` and `variables`).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Stored {
    pub id: Uuid,
    pub event_id: Uuid,
    pub message_type: String,
    pub recipient: String,
    pub kind: String,
    pub state: String,
    pub channel: Option<String>,
    pub locale: String,
    pub template_version: i32,
    pub attempts: i32,
    pub provider_reference: String,
    pub last_error: String,
    pub segments: i32,
    /// `variables` as JSON text.
    pub variables: String,
    pub sealed: Option<Vec<u8>>,
    pub sealed_key: Option<String>,
    pub about: String,
    pub due_at: OffsetDateTime,
    pub sent_at: Option<OffsetDateTime>,
    pub delivered_at: Option<OffsetDateTime>,
}

const STORED: &str = "SELECT id, event_id, message_type, recipient, kind, state, channel, locale, template_version, attempts, \
     provider_reference, last_error, segments, variables::text AS variables, sealed, sealed_key, about, due_at, sent_at, delivered_at \
     FROM messages";

impl Fixture {
    /// Every stored message, oldest first.
    pub async fn stored(&self) -> Vec<Stored> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{STORED} ORDER BY created_at, id"))).fetch_all(self.pool()).await.expect("messages")
    }

    /// Waits (20 s at most) until a stored message satisfies `check`, and returns it.
    pub async fn wait_stored(&self, what: &str, check: impl Fn(&Stored) -> bool) -> Stored {
        let check = &check;
        let found = tokio::time::timeout(Duration::from_secs(20), async {
            loop {
                if let Some(m) = self.stored().await.into_iter().find(|m| check(m)) {
                    return m;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
        .await;
        match found {
            Ok(m) => m,
            Err(_) => panic!("timed out after 20 s waiting for {what}; stored messages: {:#?}", self.stored().await),
        }
    }

    /// Waits until the message `event` made for `recipient` is in `state` (stored code: `sent`, `skipped`...).
    pub async fn wait_event(&self, event: &Event, recipient: &str, state: &str) -> Stored {
        let event_id = Uuid::parse_str(&event.id).expect("event id");
        self.wait_stored(&format!("the {} message of event {} to {recipient} {state}", event.r#type, event.id), |m| {
            m.event_id == event_id && m.recipient == recipient && m.state == state
        })
        .await
    }

    /// Waits until the message of `message_type` to `recipient` is in `state` (stored code).
    pub async fn wait_type(&self, recipient: &str, message_type: &str, state: &str) -> Stored {
        self.wait_stored(&format!("{message_type} to {recipient} {state}"), |m| {
            m.recipient == recipient && m.message_type == message_type && m.state == state
        })
        .await
    }

    /// Waits until the `notifications` group has read and acknowledged every entry of
    /// `w4l:events:<source>` (the handler's transaction commits before the XACK).
    pub async fn wait_consumed(&self, source: &str) {
        let stream = format!("w4l:events:{source}");
        let what = format!("the notifications group to consume all of {stream}");
        eventually(&what, Duration::from_secs(20), || {
            let stream = stream.clone();
            async move {
                let mut conn = self.redis.connection().await;
                let last: redis::streams::StreamRangeReply =
                    redis::cmd("XREVRANGE").arg(&stream).arg("+").arg("-").arg("COUNT").arg(1).query_async(&mut conn).await.ok()?;
                let last = last.ids.first()?.id.clone();
                let groups: redis::streams::StreamInfoGroupsReply =
                    redis::cmd("XINFO").arg("GROUPS").arg(&stream).query_async(&mut conn).await.ok()?;
                groups.groups.iter().find(|g| g.name == "notifications" && g.pending == 0 && g.last_delivered_id == last).map(|_| ())
            }
        })
        .await;
    }

    /// Inbox copies of `message`.
    pub async fn inbox_copies(&self, message: Uuid) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM inbox_items WHERE message_id = $1")
            .bind(message)
            .fetch_one(self.pool())
            .await
            .expect("inbox")
    }

    /// Sets `applicant`'s channels, language and opted-out kinds (as an admin).
    pub async fn set_preferences(&self, applicant: &str, channels: &[WireChannel], language: &str, opted_out: &[MessageKind]) {
        let request = UpdatePreferencesRequest {
            preferences: Some(Preferences {
                name: format!("{applicant}/preferences"),
                channels: channels.iter().map(|c| *c as i32).collect(),
                language: language.into(),
                opted_out_kinds: opted_out.iter().map(|k| *k as i32).collect(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["channels".into(), "language".into(), "opted_out_kinds".into()] }),
        };
        self.client().update_preferences(bearer(request, &self.token("admin"))).await.expect("preferences updated");
    }

    /// Erases `applicant`'s personal data in intake (as an admin).
    pub async fn erase(&self, applicant: &str) {
        let request = ErasePersonalDataRequest { name: applicant.into(), reason: "the person asked, by letter of 2026-03-01".into() };
        self.intake().erase_personal_data(bearer(request, &self.token("admin"))).await.expect("erased");
    }
}

/// The id of `applicants/{id}` (or any `collection/{id}`).
pub fn id_of(name: &str) -> Uuid {
    Uuid::parse_str(name.rsplit('/').next().expect("id")).expect("a uuid name")
}

/// The short reference notifications writes for a resource: its id's first 8 hex digits, upper case.
pub fn short_reference(name: &str) -> String {
    id_of(name).simple().to_string()[..8].to_uppercase()
}

fn now_timestamp() -> prost_types::Timestamp {
    let now = OffsetDateTime::now_utc();
    prost_types::Timestamp { seconds: now.unix_timestamp(), nanos: 0 }
}

/// identity's `identity.otp.requested` (a JSON payload), valid `minutes`.
pub fn otp_event(account: &str, phone: &str, code: &str, minutes: i64) -> Event {
    let at = now_timestamp();
    let body = serde_json::json!({ "account": account, "phone": phone, "code": code, "expire_time": at.seconds + minutes * 60 });
    Event {
        id: Uuid::now_v7().to_string(),
        source: "identity".into(),
        r#type: "identity.otp.requested".into(),
        subject: account.into(),
        occurred_at: Some(at),
        payload: Some(prost_types::Any {
            type_url: "type.googleapis.com/google.protobuf.Struct".into(),
            value: body.to_string().into_bytes(),
        }),
        ..Event::default()
    }
}

/// A hand-made `intake.applicant.registered` for `applicant` (a new event id each time).
pub fn registered_event(applicant: &str) -> Event {
    let payload = ApplicantRegistered { applicant: applicant.into(), zone: "tanger".into(), ..Default::default() };
    work4life_testkit::event("intake", "intake.applicant.registered", applicant, "work4life.intake.v1.ApplicantRegistered", &payload)
}

fn recipients(applicants: &[&str]) -> Vec<Recipient> {
    applicants.iter().map(|a| Recipient { applicant: (*a).to_string(), ..Default::default() }).collect()
}

/// `intake.application.submitted` for a new application of `applicants`; returns it with the application's name.
pub fn submitted_event(applicants: &[&str]) -> (Event, String) {
    let application = format!("applications/{}", Uuid::now_v7());
    let payload = ApplicationSubmitted {
        application: application.clone(),
        zone: "tanger".into(),
        recipients: recipients(applicants),
        ..Default::default()
    };
    let e = work4life_testkit::event(
        "intake",
        "intake.application.submitted",
        &application,
        "work4life.intake.v1.ApplicationSubmitted",
        &payload,
    );
    (e, application)
}

/// `intake.application.decided` with `outcome` and `reason` for a new application of `applicants`.
pub fn decided_event(applicants: &[&str], outcome: Outcome, reason: &str) -> (Event, String) {
    let application = format!("applications/{}", Uuid::now_v7());
    let payload = ApplicationDecided {
        application: application.clone(),
        zone: "tanger".into(),
        decision: Some(Decision { outcome: outcome as i32, reason: reason.into(), ..Default::default() }),
        recipients: recipients(applicants),
        ..Default::default()
    };
    let e =
        work4life_testkit::event("intake", "intake.application.decided", &application, "work4life.intake.v1.ApplicationDecided", &payload);
    (e, application)
}

/// `grants.award.created` of `amount_minor` MAD to `applicants`.
pub fn award_event(applicants: &[&str], amount_minor: i64) -> Event {
    let award = format!("awards/{}", Uuid::now_v7());
    let payload = AwardCreated {
        award: award.clone(),
        beneficiaries: applicants.iter().map(|a| (*a).to_string()).collect(),
        amount: Some(Money { currency_code: "MAD".into(), amount_minor }),
        ..Default::default()
    };
    work4life_testkit::event("grants", "grants.award.created", &award, "work4life.grants.v1.AwardCreated", &payload)
}

/// `grants.disbursement.paid` of `amount_minor` MAD to `applicants`, with the bank's `reference`.
pub fn paid_event(applicants: &[&str], amount_minor: i64, reference: &str) -> Event {
    let disbursement = format!("disbursements/{}", Uuid::now_v7());
    let payload = DisbursementChanged {
        disbursement: disbursement.clone(),
        beneficiaries: applicants.iter().map(|a| (*a).to_string()).collect(),
        amount: Some(Money { currency_code: "MAD".into(), amount_minor }),
        external_reference: reference.into(),
        ..Default::default()
    };
    work4life_testkit::event("grants", "grants.disbursement.paid", &disbursement, "work4life.grants.v1.DisbursementChanged", &payload)
}

/// A coaching session event (`coaching.session.scheduled`, `...rescheduled`, `...cancelled`).
pub fn session_event(
    event_type: &str,
    session: &str,
    participants: &[&str],
    room: &str,
    start: OffsetDateTime,
    time_zone: &str,
    reason: &str,
) -> Event {
    let ts = |t: OffsetDateTime| prost_types::Timestamp { seconds: t.unix_timestamp(), nanos: 0 };
    let payload = SessionChanged {
        session: session.into(),
        coach: format!("coaches/{}", Uuid::now_v7()),
        participants: participants.iter().map(|p| (*p).to_string()).collect(),
        room: room.into(),
        start_time: Some(ts(start)),
        end_time: Some(ts(start + time::Duration::hours(1))),
        time_zone: time_zone.into(),
        reason: reason.into(),
    };
    work4life_testkit::event("coaching", event_type, session, "work4life.coaching.v1.SessionChanged", &payload)
}

/// A person with a unique phone and email; `languages` most preferred first.
pub fn person(languages: &[&str]) -> Applicant {
    let n = u64::from_le_bytes(Uuid::new_v4().as_bytes()[..8].try_into().expect("8 bytes"));
    Applicant {
        given_name: "Awa".into(),
        family_name: format!("Diallo{}", n % 1_000_000),
        birth_date: "1995-04-17".into(),
        gender: Gender::Female as i32,
        nationality: "SN".into(),
        languages: languages.iter().map(|l| (*l).to_string()).collect(),
        zone: "tanger".into(),
        phone: format!("+2126{:08}", n % 100_000_000),
        email: format!("awa{}@example.org", n % 1_000_000_000),
        identity_document: Some(IdentityDocument {
            r#type: DocumentType::Passport as i32,
            number: format!("P{:09}", n % 1_000_000_000),
            number_hint: String::new(),
            issuing_country: "SN".into(),
        }),
        consent: Some(Consent {
            purpose: "program_participation".into(),
            text_version: "2026-01".into(),
            give_time: None,
            recorded_by: String::new(),
        }),
        ..Applicant::default()
    }
}
