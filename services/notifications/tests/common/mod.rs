//! The notifications test fixture: intake and notifications in one host on a fresh database,
//! a private Redis, a fake SMS provider, a fake WhatsApp provider and a fake SMTP server (real
//! servers on loopback, from the testkit), and helpers to register people and publish events.
#![allow(dead_code)]

use std::time::Duration;

use tonic::transport::Channel;
use uuid::Uuid;
use work4life_proto::{
    events::Event,
    intake::{
        Applicant, Consent, CreateApplicantRequest, DocumentType, Gender, IdentityDocument, intake_service_client::IntakeServiceClient,
    },
    notifications::{Message, notifications_service_client::NotificationsServiceClient},
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
