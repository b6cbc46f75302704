//! The `work4life.notifications.v1.NotificationsService` implementation: templates (validated,
//! versioned), preferences, the course of every message, dead-letter replay, the inbox, and the
//! providers' callbacks (delivery reports, inbound STOP).

use time::OffsetDateTime;
use tonic::{Request, Response, Status};
use uuid::Uuid;
use work4life_platform::{
    FieldViolation, ServiceError, actor,
    audit::Actor,
    auth::Principal,
    idempotency::{Begun, begin_optional, check_request_id, request_hash},
    pagination::{next_page, page_size},
    vault::Lookup,
    wire::{check_etag, etag, gather, parse_name, refuse_if_any, timestamp},
};
use work4life_proto::{
    intake::{BatchGetApplicantContactsRequest, intake_service_client::IntakeServiceClient},
    notifications::{
        Channel as WireChannel, CreateTemplateRequest, CreateTemplateResponse, DeliveryOutcome, GetMessageRequest, GetMessageResponse,
        GetPreferencesRequest, GetPreferencesResponse, GetTemplateRequest, GetTemplateResponse, InboxItem, ListInboxItemsRequest,
        ListInboxItemsResponse, ListMessagesRequest, ListMessagesResponse, ListTemplatesRequest, ListTemplatesResponse,
        MarkInboxItemReadRequest, MarkInboxItemReadResponse, Message, MessageKind, MessageState, Preferences, ReceiveInboundMessageRequest,
        ReceiveInboundMessageResponse, RecordDeliveryReportRequest, RecordDeliveryReportResponse, ReplayMessageRequest,
        ReplayMessageResponse, Template as WireTemplate, UpdatePreferencesRequest, UpdatePreferencesResponse,
        notifications_service_server::NotificationsService,
    },
};

use crate::{Notifications, templates::Template};

/// The gRPC face of notifications.
pub struct NotificationsApi(pub Notifications);

/// Wire enum values and the codes the tables store.
const CHANNELS: &[(WireChannel, &str)] =
    &[(WireChannel::Sms, "sms"), (WireChannel::Email, "email"), (WireChannel::Whatsapp, "whatsapp"), (WireChannel::Inbox, "inbox")];
const KINDS: &[(MessageKind, &str)] =
    &[(MessageKind::Service, "service"), (MessageKind::Update, "update"), (MessageKind::Reminder, "reminder")];
const STATES: &[(MessageState, &str)] = &[
    (MessageState::Queued, "queued"),
    (MessageState::Sent, "sent"),
    (MessageState::Delivered, "delivered"),
    (MessageState::Failed, "failed"),
    (MessageState::Dead, "dead"),
    (MessageState::Skipped, "skipped"),
];

/// The stored code of wire value `v`; `None` for UNSPECIFIED or an unknown number.
fn code_of<E: Copy + Into<i32>>(table: &[(E, &'static str)], v: i32) -> Option<&'static str> {
    table.iter().find(|(e, _)| (*e).into() == v).map(|(_, code)| *code)
}

/// The wire value of a stored code (UNSPECIFIED for an unknown one).
fn wire_of<E: Copy + Default>(table: &[(E, &'static str)], code: &str) -> E {
    table.iter().find(|(_, c)| *c == code).map(|(e, _)| *e).unwrap_or_default()
}

fn is_manager(p: &Principal) -> bool {
    p.has_role("admin") || p.has_role("program_manager")
}

/// Templates are managed by admins and program managers only.
fn managers_only(p: &Principal) -> Result<(), ServiceError> {
    if is_manager(p) { Ok(()) } else { Err(ServiceError::PermissionDenied("templates are managed by admins and program managers")) }
}

/// Provider callbacks come from the gateway (or an admin acting for it).
fn gateway_only(p: &Principal, what: &'static str) -> Result<(), ServiceError> {
    if p.has_role("gateway") || p.has_role("admin") { Ok(()) } else { Err(ServiceError::PermissionDenied(what)) }
}

fn valid_locale(locale: &str) -> bool {
    let (lang, region) = locale.split_once('-').unwrap_or((locale, ""));
    (2..=3).contains(&lang.len())
        && lang.chars().all(|c| c.is_ascii_lowercase())
        && (region.is_empty() || (region.len() == 2 && region.chars().all(|c| c.is_ascii_uppercase())))
}

#[derive(sqlx::FromRow)]
struct TemplateRow {
    message_type: String,
    channel: String,
    locale: String,
    version: i32,
    subject: String,
    body: String,
    provider_template: String,
    created_by: String,
    created_at: OffsetDateTime,
}

impl TemplateRow {
    fn wire(&self) -> WireTemplate {
        WireTemplate {
            name: format!("templates/{}/{}/{}/versions/{}", self.message_type, self.channel, self.locale, self.version),
            message_type: self.message_type.clone(),
            channel: wire_of(CHANNELS, &self.channel) as i32,
            locale: self.locale.clone(),
            subject: self.subject.clone(),
            body: self.body.clone(),
            provider_template: self.provider_template.clone(),
            version: self.version,
            create_account: self.created_by.clone(),
            create_time: Some(timestamp(self.created_at)),
        }
    }
}

const TEMPLATE_COLUMNS: &str = "message_type, channel, locale, version, subject, body, provider_template, created_by, created_at";

#[derive(sqlx::FromRow)]
struct MessageRow {
    id: Uuid,
    event_id: Uuid,
    event_type: String,
    message_type: String,
    recipient: String,
    kind: String,
    state: String,
    channel: Option<String>,
    locale: String,
    template_version: i32,
    attempts: i32,
    provider_reference: String,
    last_error: String,
    segments: i32,
    created_at: OffsetDateTime,
    due_at: OffsetDateTime,
    sent_at: Option<OffsetDateTime>,
    delivered_at: Option<OffsetDateTime>,
}

const MESSAGE_COLUMNS: &str = "id, event_id, event_type, message_type, recipient, kind, state, channel, locale, template_version, attempts, \
     provider_reference, last_error, segments, created_at, due_at, sent_at, delivered_at";

impl MessageRow {
    fn wire(&self) -> Message {
        Message {
            name: format!("messages/{}", self.id),
            event_id: self.event_id.to_string(),
            event_type: self.event_type.clone(),
            message_type: self.message_type.clone(),
            recipient: self.recipient.clone(),
            channel: self.channel.as_deref().map_or(WireChannel::Unspecified, |c| wire_of(CHANNELS, c)) as i32,
            kind: wire_of(KINDS, &self.kind) as i32,
            state: wire_of(STATES, &self.state) as i32,
            locale: self.locale.clone(),
            template_version: self.template_version,
            attempts: self.attempts,
            provider_reference: self.provider_reference.clone(),
            last_error: self.last_error.clone(),
            segments: self.segments,
            create_time: Some(timestamp(self.created_at)),
            due_time: Some(timestamp(self.due_at)),
            send_time: self.sent_at.map(timestamp),
            deliver_time: self.delivered_at.map(timestamp),
        }
    }
}

#[derive(sqlx::FromRow)]
struct InboxRow {
    id: Uuid,
    message_id: Uuid,
    applicant_id: Uuid,
    message_type: String,
    locale: String,
    title: String,
    body: String,
    created_at: OffsetDateTime,
    read_at: Option<OffsetDateTime>,
}

impl InboxRow {
    fn wire(&self) -> InboxItem {
        InboxItem {
            name: format!("applicants/{}/inboxItems/{}", self.applicant_id, self.id),
            message: format!("messages/{}", self.message_id),
            message_type: self.message_type.clone(),
            locale: self.locale.clone(),
            title: self.title.clone(),
            body: self.body.clone(),
            create_time: Some(timestamp(self.created_at)),
            read_time: self.read_at.map(timestamp),
        }
    }
}

#[derive(sqlx::FromRow, Default)]
struct PreferenceRow {
    channels: Vec<String>,
    language: String,
    opted_out_kinds: Vec<String>,
    version: i64,
    updated_at: Option<OffsetDateTime>,
}

impl PreferenceRow {
    fn wire(&self, applicant: Uuid) -> Preferences {
        Preferences {
            name: format!("applicants/{applicant}/preferences"),
            channels: self.channels.iter().map(|c| wire_of(CHANNELS, c) as i32).collect(),
            language: self.language.clone(),
            opted_out_kinds: self.opted_out_kinds.iter().map(|k| wire_of(KINDS, k) as i32).collect(),
            etag: etag(self.version),
            update_time: self.updated_at.map(timestamp),
        }
    }
}

/// `applicants/{id}` followed by `suffix` (`/preferences`), or the violation for `field`.
fn applicant_in(field: &str, name: &str, suffix: &str) -> Result<Uuid, ServiceError> {
    name.strip_suffix(suffix)
        .ok_or_else(|| ServiceError::invalid(field, format!("must look like applicants/{{id}}{suffix}")))
        .and_then(|base| parse_name(field, "applicants", base))
}

impl Notifications {
    /// Whether the caller may see `applicant`'s own things: a person intake knows, and the caller
    /// is a manager or admin, an officer for preferences (`officers`), or the person themselves
    /// (their login, as intake knows it).
    async fn may_see(&self, p: &Principal, applicant: Uuid, officers: bool) -> Result<bool, ServiceError> {
        let staff = is_manager(p) || (officers && p.has_role("officer"));
        if !staff && !p.has_role("beneficiary") {
            return Ok(false);
        }
        let channel = self.peers.channel("intake").map_err(|e| ServiceError::Unavailable(format!("{e:#}")))?;
        let unavailable = |s: Status| ServiceError::Unavailable(format!("intake cannot tell whose record this is now: {}", s.message()));
        let request = self
            .peer_auth
            .request(BatchGetApplicantContactsRequest { names: vec![format!("applicants/{applicant}")] })
            .await
            .map_err(unavailable)?;
        let answer = IntakeServiceClient::new(channel).batch_get_applicant_contacts(request).await.map_err(unavailable)?.into_inner();
        Ok(answer.contacts.first().is_some_and(|c| c.found && (staff || c.account == p.subject)))
    }

    async fn message(&self, id: Uuid) -> Result<MessageRow, ServiceError> {
        sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(format!("SELECT {MESSAGE_COLUMNS} FROM messages WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("messages/{id}")))
    }

    async fn create_template(
        &self,
        tx: &mut sqlx::PgConnection,
        actor: &Actor<'_>,
        t: &WireTemplate,
    ) -> Result<WireTemplate, ServiceError> {
        let channel = code_of(CHANNELS, t.channel).unwrap_or_default();
        let row = sqlx::query_as::<_, TemplateRow>(sqlx::AssertSqlSafe(format!(
            "INSERT INTO templates (message_type, channel, locale, version, subject, body, provider_template, created_by) \
             SELECT $1, $2, $3, coalesce(max(version), 0) + 1, $4, $5, $6, $7 FROM templates \
             WHERE message_type = $1 AND channel = $2 AND locale = $3 RETURNING {TEMPLATE_COLUMNS}"
        )))
        .bind(&t.message_type)
        .bind(channel)
        .bind(&t.locale)
        .bind(&t.subject)
        .bind(&t.body)
        .bind(&t.provider_template)
        .bind(&actor.principal.subject)
        .fetch_one(&mut *tx)
        .await
        .map_err(|e| match work4life_platform::error::unique_violated(&e) {
            // Two saves of the same template at once: the loser retries.
            Some(_) => {
                ServiceError::Aborted { reason: "CONCURRENT_UPDATE", message: "another version was saved at the same time; retry".into() }
            }
            None => e.into(),
        })?;
        let wire = row.wire();
        actor.record(tx, "notifications.CreateTemplate", wire.name.clone(), serde_json::json!({})).await?;
        Ok(wire)
    }
}

/// Every problem of a template to save.
fn validate_template(t: Option<&WireTemplate>) -> Vec<FieldViolation> {
    let mut v = Vec::new();
    let Some(t) = t else {
        v.push(FieldViolation::new("template", "is required"));
        return v;
    };
    let known_type = crate::templates::variables(&t.message_type).is_some();
    if !known_type {
        v.push(FieldViolation::new("template.message_type", format!("must be one of {}", crate::templates::MESSAGE_TYPES.join(", "))));
    }
    let channel = code_of(CHANNELS, t.channel);
    match channel {
        None => v.push(FieldViolation::new("template.channel", "must be SMS, EMAIL or WHATSAPP")),
        Some("inbox") => v.push(FieldViolation::new("template.channel", "the inbox uses the email template: save an EMAIL one")),
        _ => {}
    }
    if !valid_locale(&t.locale) {
        v.push(FieldViolation::new("template.locale", "must be a language code such as fr, ar, en or ar-MA"));
    }
    if t.body.chars().count() > 4000 {
        v.push(FieldViolation::new("template.body", "must be at most 4000 characters"));
    }
    if known_type {
        if let Err(e) = Template::parse(&t.message_type, &t.body) {
            v.push(FieldViolation::new("template.body", format!("at character {}: {}", e.at, e.reason)));
        }
        if !t.subject.is_empty()
            && let Err(e) = Template::parse(&t.message_type, &t.subject)
        {
            v.push(FieldViolation::new("template.subject", format!("at character {}: {}", e.at, e.reason)));
        }
    }
    match channel {
        Some("email") if t.subject.trim().is_empty() => v.push(FieldViolation::new("template.subject", "an email needs a subject")),
        Some("sms") | Some("whatsapp") if !t.subject.is_empty() => {
            v.push(FieldViolation::new("template.subject", "only email templates have a subject"))
        }
        _ => {}
    }
    let name_ok = !t.provider_template.is_empty()
        && t.provider_template.len() <= 512
        && t.provider_template.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    match channel {
        Some("whatsapp") if !name_ok => v.push(FieldViolation::new(
            "template.provider_template",
            "WhatsApp needs the approved template's name (lower case letters, digits and _)",
        )),
        Some("sms") | Some("email") if !t.provider_template.is_empty() => {
            v.push(FieldViolation::new("template.provider_template", "only WhatsApp templates have a provider template"))
        }
        _ => {}
    }
    v
}

#[tonic::async_trait]
impl NotificationsService for NotificationsApi {
    async fn create_template(&self, request: Request<CreateTemplateRequest>) -> Result<Response<CreateTemplateResponse>, Status> {
        actor!(request, actor);
        managers_only(actor.principal)?;
        let r = request.get_ref();
        let mut v = validate_template(r.template.as_ref());
        check_request_id(&mut v, &r.request_id);
        refuse_if_any(v)?;
        let scope = format!("notifications.CreateTemplate:{}", actor.principal.subject);
        match begin_optional::<CreateTemplateResponse>(&self.0.pool, &scope, &r.request_id, &request_hash(r)).await? {
            Begun::Replay(response) => Ok(Response::new(response)),
            Begun::Fresh(mut fresh) => {
                let template = self.0.create_template(&mut fresh.tx, &actor, r.template.as_ref().unwrap_or(&Default::default())).await?;
                let response = CreateTemplateResponse { template: Some(template) };
                fresh.commit(&response).await?;
                Ok(Response::new(response))
            }
        }
    }

    async fn get_template(&self, request: Request<GetTemplateRequest>) -> Result<Response<GetTemplateResponse>, Status> {
        actor!(request, actor);
        managers_only(actor.principal)?;
        let name = &request.get_ref().name;
        let parts: Vec<&str> = name.split('/').collect();
        let ["templates", message_type, channel, locale, "versions", version] = parts.as_slice() else {
            return Err(
                ServiceError::invalid("name", "must look like templates/{message_type}/{channel}/{locale}/versions/{version}").into()
            );
        };
        let Ok(version) = version.parse::<i32>() else { return Err(ServiceError::invalid("name", "the version must be a number").into()) };
        let row = sqlx::query_as::<_, TemplateRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {TEMPLATE_COLUMNS} FROM templates WHERE message_type = $1 AND channel = $2 AND locale = $3 AND version = $4"
        )))
        .bind(message_type)
        .bind(channel)
        .bind(locale)
        .bind(version)
        .fetch_optional(&self.0.pool)
        .await
        .map_err(ServiceError::from)?
        .ok_or_else(|| ServiceError::NotFound(name.clone()))?;
        Ok(Response::new(GetTemplateResponse { template: Some(row.wire()) }))
    }

    async fn list_templates(&self, request: Request<ListTemplatesRequest>) -> Result<Response<ListTemplatesResponse>, Status> {
        actor!(request, actor);
        managers_only(actor.principal)?;
        let r = request.get_ref();
        let mut v = Vec::new();
        let size = gather(&mut v, page_size(r.page_size)).unwrap_or_default();
        let channel = match r.channel {
            0 => "",
            c => code_of(CHANNELS, c).filter(|c| *c != "inbox").unwrap_or_else(|| {
                v.push(FieldViolation::new("channel", "must be SMS, EMAIL or WHATSAPP"));
                ""
            }),
        };
        if !r.message_type.is_empty() && crate::templates::variables(&r.message_type).is_none() {
            v.push(FieldViolation::new("message_type", "is not a message type"));
        }
        if !r.locale.is_empty() && !valid_locale(&r.locale) {
            v.push(FieldViolation::new("locale", "must be a language code such as fr, ar, en or ar-MA"));
        }
        let filter = format!("{}|{channel}|{}|{}", r.message_type, r.locale, r.all_versions);
        let after: Option<(String, String, String, i32)> = gather(&mut v, self.0.page_tokens.decode(&r.page_token, &filter)).flatten();
        refuse_if_any(v)?;
        let (after_type, after_channel, after_locale, after_version) = after.unwrap_or_default();
        let newest = if r.all_versions {
            ""
        } else {
            "AND version = (SELECT max(version) FROM templates u WHERE u.message_type = t.message_type AND u.channel = t.channel AND u.locale = t.locale)"
        };
        let rows = sqlx::query_as::<_, TemplateRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {TEMPLATE_COLUMNS} FROM templates t WHERE ($1 = '' OR message_type = $1) AND ($2 = '' OR channel = $2) AND ($3 = '' OR locale = $3) \
             {newest} AND (message_type, channel, locale, version) > ($4, $5, $6, $7) ORDER BY message_type, channel, locale, version LIMIT $8"
        )))
        .bind(&r.message_type)
        .bind(channel)
        .bind(&r.locale)
        .bind(after_type)
        .bind(after_channel)
        .bind(after_locale)
        .bind(after_version)
        .bind(i64::from(size) + 1)
        .fetch_all(&self.0.pool)
        .await
        .map_err(ServiceError::from)?;
        let (rows, next_page_token) = next_page(rows, size, &self.0.page_tokens, &filter, |t| {
            (t.message_type.clone(), t.channel.clone(), t.locale.clone(), t.version)
        });
        Ok(Response::new(ListTemplatesResponse { templates: rows.iter().map(TemplateRow::wire).collect(), next_page_token }))
    }

    async fn get_preferences(&self, request: Request<GetPreferencesRequest>) -> Result<Response<GetPreferencesResponse>, Status> {
        actor!(request, actor);
        let applicant = applicant_in("name", &request.get_ref().name, "/preferences")?;
        if !self.0.may_see(actor.principal, applicant, true).await? {
            return Err(ServiceError::NotFound(request.get_ref().name.clone()).into());
        }
        let row = sqlx::query_as::<_, PreferenceRow>(
            "SELECT channels, language, opted_out_kinds, version, updated_at FROM preferences WHERE applicant_id = $1",
        )
        .bind(applicant)
        .fetch_optional(&self.0.pool)
        .await
        .map_err(ServiceError::from)?
        .unwrap_or(PreferenceRow { version: 0, ..Default::default() });
        Ok(Response::new(GetPreferencesResponse { preferences: Some(row.wire(applicant)) }))
    }

    async fn update_preferences(&self, request: Request<UpdatePreferencesRequest>) -> Result<Response<UpdatePreferencesResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        let mut v = Vec::new();
        let Some(p) = r.preferences.as_ref() else {
            return Err(ServiceError::invalid("preferences", "is required").into());
        };
        let applicant = gather(&mut v, applicant_in("preferences.name", &p.name, "/preferences"));
        let paths: Vec<String> = r.update_mask.as_ref().map(|m| m.paths.clone()).unwrap_or_default();
        if paths.is_empty() {
            v.push(FieldViolation::new("update_mask", "name the fields to change: channels, language, opted_out_kinds"));
        }
        for path in &paths {
            if !["channels", "language", "opted_out_kinds"].contains(&path.as_str()) {
                v.push(FieldViolation::new("update_mask", format!("{path} cannot be changed (channels, language, opted_out_kinds)")));
            }
        }
        let mut channels = Vec::new();
        for (i, c) in p.channels.iter().enumerate() {
            match code_of(CHANNELS, *c) {
                Some(code) if code != "inbox" && !channels.contains(&code.to_string()) => channels.push(code.to_string()),
                Some("inbox") => v.push(FieldViolation::new(
                    format!("preferences.channels[{i}]"),
                    "the inbox always gets a copy; list SMS, WHATSAPP or EMAIL",
                )),
                Some(_) => v.push(FieldViolation::new(format!("preferences.channels[{i}]"), "is listed twice")),
                None => v.push(FieldViolation::new(format!("preferences.channels[{i}]"), "must be SMS, WHATSAPP or EMAIL")),
            }
        }
        let mut kinds = Vec::new();
        for (i, k) in p.opted_out_kinds.iter().enumerate() {
            match code_of(KINDS, *k) {
                Some("service") => v.push(FieldViolation::new(
                    format!("preferences.opted_out_kinds[{i}]"),
                    "service messages (codes, payments) cannot be opted out of",
                )),
                Some(code) => {
                    if !kinds.contains(&code.to_string()) {
                        kinds.push(code.to_string());
                    }
                }
                None => v.push(FieldViolation::new(format!("preferences.opted_out_kinds[{i}]"), "must be UPDATE or REMINDER")),
            }
        }
        if !p.language.is_empty() && !valid_locale(&p.language) {
            v.push(FieldViolation::new("preferences.language", "must be a language code such as fr, ar, en or ar-MA"));
        }
        refuse_if_any(v)?;
        let applicant = applicant.unwrap_or_default();
        if !self.0.may_see(actor.principal, applicant, true).await? {
            return Err(ServiceError::NotFound(p.name.clone()).into());
        }
        let mut tx = work4life_platform::db::begin(&self.0.pool).await?;
        let current = sqlx::query_as::<_, PreferenceRow>(
            "SELECT channels, language, opted_out_kinds, version, updated_at FROM preferences WHERE applicant_id = $1 FOR UPDATE",
        )
        .bind(applicant)
        .fetch_optional(&mut *tx)
        .await
        .map_err(ServiceError::from)?
        .unwrap_or(PreferenceRow { version: 0, ..Default::default() });
        check_etag(&p.etag, current.version)?;
        let has = |f: &str| paths.iter().any(|p| p == f);
        let row = sqlx::query_as::<_, PreferenceRow>(
            "INSERT INTO preferences (applicant_id, channels, language, opted_out_kinds, version, updated_at) VALUES ($1, $2, $3, $4, 1, now()) \
             ON CONFLICT (applicant_id) DO UPDATE SET channels = EXCLUDED.channels, language = EXCLUDED.language, \
             opted_out_kinds = EXCLUDED.opted_out_kinds, version = preferences.version + 1, updated_at = now() \
             RETURNING channels, language, opted_out_kinds, version, updated_at",
        )
        .bind(applicant)
        .bind(if has("channels") { channels } else { current.channels })
        .bind(if has("language") { p.language.clone() } else { current.language })
        .bind(if has("opted_out_kinds") { kinds } else { current.opted_out_kinds })
        .fetch_one(&mut *tx)
        .await
        .map_err(ServiceError::from)?;
        let name = format!("applicants/{applicant}/preferences");
        actor.record(&mut tx, "notifications.UpdatePreferences", name, serde_json::json!({ "fields": paths })).await?;
        tx.commit().await.map_err(ServiceError::from)?;
        Ok(Response::new(UpdatePreferencesResponse { preferences: Some(row.wire(applicant)) }))
    }

    async fn get_message(&self, request: Request<GetMessageRequest>) -> Result<Response<GetMessageResponse>, Status> {
        actor!(request, actor);
        let id = parse_name("name", "messages", &request.get_ref().name)?;
        let row = self.0.message(id).await?;
        let own = match row.recipient.strip_prefix("applicants/").and_then(|a| Uuid::parse_str(a).ok()) {
            Some(applicant) => self.0.may_see(actor.principal, applicant, false).await?,
            None => is_manager(actor.principal),
        };
        if !own {
            return Err(ServiceError::NotFound(request.get_ref().name.clone()).into());
        }
        Ok(Response::new(GetMessageResponse { message: Some(row.wire()) }))
    }

    async fn list_messages(&self, request: Request<ListMessagesRequest>) -> Result<Response<ListMessagesResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        let mut v = Vec::new();
        let size = gather(&mut v, page_size(r.page_size)).unwrap_or_default();
        let recipient_ok = r.recipient.is_empty()
            || parse_name("recipient", "applicants", &r.recipient).is_ok()
            || parse_name("recipient", "accounts", &r.recipient).is_ok();
        if !recipient_ok {
            v.push(FieldViolation::new("recipient", "must be applicants/{id} or accounts/{id}"));
        }
        let event_id = if r.event_id.is_empty() {
            None
        } else {
            Uuid::parse_str(&r.event_id).map(Some).unwrap_or_else(|_| {
                v.push(FieldViolation::new("event_id", "must be a UUID"));
                None
            })
        };
        let state = match r.state {
            0 => "",
            s => code_of(STATES, s).unwrap_or_else(|| {
                v.push(FieldViolation::new("state", "is not a message state"));
                ""
            }),
        };
        if r.recipient.is_empty() && r.event_id.is_empty() && r.state == 0 {
            v.push(FieldViolation::new("recipient", "give a recipient, an event_id or a state"));
        }
        let filter = format!("{}|{}|{state}", r.recipient, r.event_id);
        let after: Option<(i64, Uuid)> = gather(&mut v, self.0.page_tokens.decode(&r.page_token, &filter)).flatten();
        refuse_if_any(v)?;
        // Managers see everything; a beneficiary only the messages to themselves.
        if !is_manager(actor.principal) {
            let own = match r.recipient.strip_prefix("applicants/").and_then(|a| Uuid::parse_str(a).ok()) {
                Some(applicant) => self.0.may_see(actor.principal, applicant, false).await?,
                None => false,
            };
            if !own {
                return Err(ServiceError::PermissionDenied("messages are listed by managers, or by the person for themselves").into());
            }
        }
        let (after_micros, after_id) = after.map_or((i64::MAX, Uuid::max()), |(t, id)| (t, id));
        let rows = sqlx::query_as::<_, MessageRow>(sqlx::AssertSqlSafe(format!(
            "SELECT {MESSAGE_COLUMNS} FROM messages WHERE ($1 = '' OR recipient = $1) AND ($2::uuid IS NULL OR event_id = $2) \
             AND ($3 = '' OR state = $3) AND (created_at, id) < (to_timestamp($4::double precision / 1e6), $5) \
             ORDER BY created_at DESC, id DESC LIMIT $6"
        )))
        .bind(&r.recipient)
        .bind(event_id)
        .bind(state)
        .bind(after_micros as f64)
        .bind(after_id)
        .bind(i64::from(size) + 1)
        .fetch_all(&self.0.pool)
        .await
        .map_err(ServiceError::from)?;
        let (rows, next_page_token) =
            next_page(rows, size, &self.0.page_tokens, &filter, |m| ((m.created_at.unix_timestamp_nanos() / 1_000) as i64, m.id));
        Ok(Response::new(ListMessagesResponse { messages: rows.iter().map(MessageRow::wire).collect(), next_page_token }))
    }

    async fn replay_message(&self, request: Request<ReplayMessageRequest>) -> Result<Response<ReplayMessageResponse>, Status> {
        actor!(request, actor);
        if !is_manager(actor.principal) {
            return Err(ServiceError::PermissionDenied("dead letters are replayed by admins and program managers").into());
        }
        let name = &request.get_ref().name;
        let id = parse_name("name", "messages", name)?;
        let mut tx = work4life_platform::db::begin(&self.0.pool).await?;
        let state: Option<String> = sqlx::query_scalar("SELECT state FROM messages WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(ServiceError::from)?;
        match state.as_deref() {
            None => return Err(ServiceError::NotFound(name.clone()).into()),
            Some("dead") | Some("failed") => {}
            Some(other) => {
                return Err(ServiceError::precondition(
                    "NOT_REPLAYABLE",
                    "STATE",
                    name.clone(),
                    format!("only DEAD or FAILED messages are replayed; this one is {}", other.to_uppercase()),
                )
                .into());
            }
        }
        sqlx::query(
            "UPDATE messages SET state = 'queued', attempts = 0, due_at = now(), lease_until = NULL, \
             last_error = 'replayed: ' || last_error WHERE id = $1",
        )
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(ServiceError::from)?;
        actor.record(&mut tx, "notifications.ReplayMessage", name.clone(), serde_json::json!({ "from": state })).await?;
        tx.commit().await.map_err(ServiceError::from)?;
        self.0.wake.notify_one();
        Ok(Response::new(ReplayMessageResponse { message: Some(self.0.message(id).await?.wire()) }))
    }

    async fn list_inbox_items(&self, request: Request<ListInboxItemsRequest>) -> Result<Response<ListInboxItemsResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        let mut v = Vec::new();
        let size = gather(&mut v, page_size(r.page_size)).unwrap_or_default();
        let applicant = gather(&mut v, parse_name("parent", "applicants", &r.parent));
        let filter = format!("{}|{}", r.parent, r.unread_only);
        let after: Option<(i64, Uuid)> = gather(&mut v, self.0.page_tokens.decode(&r.page_token, &filter)).flatten();
        refuse_if_any(v)?;
        let applicant = applicant.unwrap_or_default();
        if !self.0.may_see(actor.principal, applicant, false).await? {
            return Err(ServiceError::NotFound(r.parent.clone()).into());
        }
        let (after_micros, after_id) = after.map_or((i64::MAX, Uuid::max()), |(t, id)| (t, id));
        let rows = sqlx::query_as::<_, InboxRow>(
            "SELECT id, message_id, applicant_id, message_type, locale, title, body, created_at, read_at FROM inbox_items \
             WHERE applicant_id = $1 AND (NOT $2 OR read_at IS NULL) AND (created_at, id) < (to_timestamp($3::double precision / 1e6), $4) \
             ORDER BY created_at DESC, id DESC LIMIT $5",
        )
        .bind(applicant)
        .bind(r.unread_only)
        .bind(after_micros as f64)
        .bind(after_id)
        .bind(i64::from(size) + 1)
        .fetch_all(&self.0.pool)
        .await
        .map_err(ServiceError::from)?;
        let unread: i64 = sqlx::query_scalar("SELECT count(*) FROM inbox_items WHERE applicant_id = $1 AND read_at IS NULL")
            .bind(applicant)
            .fetch_one(&self.0.pool)
            .await
            .map_err(ServiceError::from)?;
        let (rows, next_page_token) =
            next_page(rows, size, &self.0.page_tokens, &filter, |i| ((i.created_at.unix_timestamp_nanos() / 1_000) as i64, i.id));
        Ok(Response::new(ListInboxItemsResponse {
            inbox_items: rows.iter().map(InboxRow::wire).collect(),
            next_page_token,
            unread_count: i32::try_from(unread).unwrap_or(i32::MAX),
        }))
    }

    async fn mark_inbox_item_read(
        &self,
        request: Request<MarkInboxItemReadRequest>,
    ) -> Result<Response<MarkInboxItemReadResponse>, Status> {
        actor!(request, actor);
        let name = &request.get_ref().name;
        let parsed = name
            .split_once("/inboxItems/")
            .and_then(|(parent, item)| Some((parse_name("name", "applicants", parent).ok()?, Uuid::parse_str(item).ok()?)));
        let Some((applicant, item)) = parsed else {
            return Err(ServiceError::invalid("name", "must look like applicants/{applicant}/inboxItems/{item}").into());
        };
        if !self.0.may_see(actor.principal, applicant, false).await? {
            return Err(ServiceError::NotFound(name.clone()).into());
        }
        let row = sqlx::query_as::<_, InboxRow>(
            "UPDATE inbox_items SET read_at = coalesce(read_at, now()) WHERE id = $1 AND applicant_id = $2 \
             RETURNING id, message_id, applicant_id, message_type, locale, title, body, created_at, read_at",
        )
        .bind(item)
        .bind(applicant)
        .fetch_optional(&self.0.pool)
        .await
        .map_err(ServiceError::from)?
        .ok_or_else(|| ServiceError::NotFound(name.clone()))?;
        Ok(Response::new(MarkInboxItemReadResponse { inbox_item: Some(row.wire()) }))
    }

    async fn record_delivery_report(
        &self,
        request: Request<RecordDeliveryReportRequest>,
    ) -> Result<Response<RecordDeliveryReportResponse>, Status> {
        actor!(request, actor);
        gateway_only(actor.principal, "delivery reports come from the provider gateway")?;
        let r = request.get_ref();
        let mut v = Vec::new();
        let channel = code_of(CHANNELS, r.channel).filter(|c| *c != "inbox");
        if channel.is_none() {
            v.push(FieldViolation::new("channel", "must be SMS, WHATSAPP or EMAIL"));
        }
        if r.provider_reference.trim().is_empty() {
            v.push(FieldViolation::new("provider_reference", "is required"));
        }
        let outcome = DeliveryOutcome::try_from(r.outcome).ok().filter(|o| *o != DeliveryOutcome::Unspecified);
        if outcome.is_none() {
            v.push(FieldViolation::new("outcome", "must be DELIVERED or UNDELIVERABLE"));
        }
        refuse_if_any(v)?;
        let delivered = outcome == Some(DeliveryOutcome::Delivered);
        // A late or repeated report does not move a message back: delivered stays delivered.
        let id: Option<Uuid> = sqlx::query_scalar(
            "UPDATE messages SET state = CASE WHEN $3 THEN 'delivered' WHEN state = 'delivered' THEN state ELSE 'failed' END, \
             delivered_at = CASE WHEN $3 THEN coalesce(delivered_at, now()) ELSE delivered_at END, \
             last_error = CASE WHEN $3 OR state = 'delivered' THEN last_error ELSE $4 END \
             WHERE channel = $1 AND provider_reference = $2 AND state IN ('sent', 'delivered', 'failed') RETURNING id",
        )
        .bind(channel)
        .bind(&r.provider_reference)
        .bind(delivered)
        .bind(if r.error.is_empty() { "the provider reported it undeliverable".to_string() } else { r.error.clone() })
        .fetch_optional(&self.0.pool)
        .await
        .map_err(ServiceError::from)?;
        let Some(id) = id else {
            return Err(ServiceError::NotFound(format!(
                "a message sent by {} with reference {}",
                channel.unwrap_or_default(),
                r.provider_reference
            ))
            .into());
        };
        Ok(Response::new(RecordDeliveryReportResponse { message: Some(self.0.message(id).await?.wire()) }))
    }

    async fn receive_inbound_message(
        &self,
        request: Request<ReceiveInboundMessageRequest>,
    ) -> Result<Response<ReceiveInboundMessageResponse>, Status> {
        actor!(request, actor);
        gateway_only(actor.principal, "inbound messages come from the provider gateway")?;
        let r = request.get_ref();
        let mut v = Vec::new();
        let channel = code_of(CHANNELS, r.channel).filter(|c| *c == "sms" || *c == "whatsapp");
        if channel.is_none() {
            v.push(FieldViolation::new("channel", "must be SMS or WHATSAPP"));
        }
        let sender = match work4life_platform::contact::normalize_phone("sender", &r.sender) {
            Ok(Some(phone)) => Some(phone),
            Ok(None) => {
                v.push(FieldViolation::new("sender", "is required"));
                None
            }
            Err(violation) => {
                v.push(violation);
                None
            }
        };
        if r.text.chars().count() > 1600 {
            v.push(FieldViolation::new("text", "must be at most 1600 characters"));
        }
        refuse_if_any(v)?;
        let hash = self.0.vault.lookup(Lookup::Phone, &sender.unwrap_or_default());
        if crate::consent::is_start(&r.text) {
            let mut tx = work4life_platform::db::begin(&self.0.pool).await?;
            sqlx::query("DELETE FROM opted_out_numbers WHERE address_hash = $1")
                .bind(&hash)
                .execute(&mut *tx)
                .await
                .map_err(ServiceError::from)?;
            actor.record(&mut tx, "notifications.OptIn", "opted_out_numbers".into(), serde_json::json!({ "channel": channel })).await?;
            tx.commit().await.map_err(ServiceError::from)?;
            return Ok(Response::new(ReceiveInboundMessageResponse { opted_out: false, opted_in: true }));
        }
        if !crate::consent::is_stop(&r.text) {
            return Ok(Response::new(ReceiveInboundMessageResponse { opted_out: false, opted_in: false }));
        }
        let mut tx = work4life_platform::db::begin(&self.0.pool).await?;
        sqlx::query("INSERT INTO opted_out_numbers (address_hash, channel) VALUES ($1, $2) ON CONFLICT (address_hash) DO NOTHING")
            .bind(&hash)
            .bind(channel)
            .execute(&mut *tx)
            .await
            .map_err(ServiceError::from)?;
        actor.record(&mut tx, "notifications.OptOut", "opted_out_numbers".into(), serde_json::json!({ "channel": channel })).await?;
        tx.commit().await.map_err(ServiceError::from)?;
        Ok(Response::new(ReceiveInboundMessageResponse { opted_out: true, opted_in: false }))
    }
}
