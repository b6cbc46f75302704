//! Sending: each replica claims due messages (`FOR UPDATE SKIP LOCKED`, with a lease so that a
//! crashed replica's messages come back), reads the recipients' contact details from intake in
//! one call per hundred people (with the service's own account), routes each message to the
//! first usable channel of the person's order, renders it in their language, holds non-urgent
//! SMS and WhatsApp during the recipient's quiet hours, paces each provider, hands it over, and
//! records what the provider said: sent with its reference, a retry after a jittered backoff,
//! a dead letter after the last attempt, or a refusal.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::Arc,
    time::Duration,
};

use serde_json::{Map, Value};
use sqlx::FromRow;
use time::OffsetDateTime;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;
use work4life_platform::vault::Lookup;
use work4life_proto::intake::{
    ApplicantContact, ApplicantState, BatchGetApplicantContactsRequest, intake_service_client::IntakeServiceClient,
};

use crate::{
    Notifications,
    channels::{Channel, Delivery, Outgoing},
    templates::{self, Template},
};

/// A claimed message.
#[derive(Clone, Debug, FromRow)]
pub struct Claimed {
    /// Id.
    pub id: Uuid,
    /// Template's message type.
    pub message_type: String,
    /// `applicants/..` or `accounts/..`.
    pub recipient: String,
    /// Kind code.
    pub kind: String,
    /// Channel chosen at an earlier attempt.
    pub channel: Option<String>,
    /// Non-personal values.
    pub variables: sqlx::types::Json<Map<String, Value>>,
    /// Sealed personal values.
    pub sealed: Option<Vec<u8>>,
    /// Their key.
    pub sealed_key: Option<String>,
    /// Recipient's time zone.
    pub time_zone: String,
    /// Attempts, this one included.
    pub attempts: i32,
}

/// The newest template of a (message type, channel, locale).
#[derive(Clone, Debug, FromRow)]
pub struct TemplateRow {
    /// Message type.
    pub message_type: String,
    /// Channel code.
    pub channel: String,
    /// Locale.
    pub locale: String,
    /// Version.
    pub version: i32,
    /// Email subject.
    pub subject: String,
    /// Body.
    pub body: String,
    /// WhatsApp template name.
    pub provider_template: String,
}

#[derive(Clone, Debug, Default, FromRow)]
struct PreferenceRow {
    applicant_id: Uuid,
    channels: Vec<String>,
    language: String,
    opted_out_kinds: Vec<String>,
}

/// What happens to a claimed message in this round.
#[derive(Debug)]
enum Step {
    /// Hand over on `channel`.
    Send { outgoing: Outgoing, channel: Channel, version: i32, segments: i32, address_hash: Option<Vec<u8>> },
    /// Not now: quiet hours until `until`.
    Hold { channel: Channel, until: OffsetDateTime },
    /// Never: why.
    Skip(String),
    /// Try again later: why (contact details unavailable).
    Later(String),
}

/// A rendered copy for the inbox.
struct InboxCopy {
    applicant: Uuid,
    account: String,
    locale: String,
    title: String,
    body: String,
}

/// Claims, routes, sends and records until `shutdown`.
pub async fn run(n: Notifications, shutdown: CancellationToken) {
    loop {
        let handled = tokio::select! {
            () = shutdown.cancelled() => return,
            handled = round(&n) => handled,
        };
        match handled {
            Ok(0) => {}
            Ok(_) => continue,
            Err(err) => tracing::warn!(error = format!("{err:#}"), "notification round failed; will retry"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = n.wake.notified() => {}
            () = tokio::time::sleep(Duration::from_millis(100)) => {}
        }
    }
}

/// How long a replica keeps claimed messages before another may take them: five minutes, or
/// twice what the slowest configured provider's pace needs for a whole batch, if longer (a
/// lease that ran out mid-round would let another replica send the same messages again).
fn lease_secs(n: &Notifications) -> f64 {
    let slowest =
        [n.settings.sms.as_ref().map(|p| p.rate), n.settings.whatsapp.as_ref().map(|p| p.rate), n.settings.smtp.as_ref().map(|s| s.rate)]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(1)
            .max(1);
    (2.0 * n.settings.batch as f64 / f64::from(slowest)).max(300.0)
}

/// One round: returns how many messages it handled.
pub async fn round(n: &Notifications) -> anyhow::Result<usize> {
    let claimed: Vec<Claimed> = sqlx::query_as(
        "UPDATE messages m SET lease_until = now() + make_interval(secs => $2), attempts = m.attempts + 1 \
         FROM (SELECT id FROM messages WHERE state = 'queued' AND due_at <= now() AND (lease_until IS NULL OR lease_until < now()) \
               ORDER BY due_at LIMIT $1 FOR UPDATE SKIP LOCKED) c \
         WHERE m.id = c.id \
         RETURNING m.id, m.message_type, m.recipient, m.kind, m.channel, m.variables, m.sealed, m.sealed_key, m.time_zone, m.attempts",
    )
    .bind(n.settings.batch)
    .bind(lease_secs(n))
    .fetch_all(&n.pool)
    .await?;
    if claimed.is_empty() {
        return Ok(0);
    }
    let count = claimed.len();
    let contacts = match contacts(n, &claimed).await {
        Ok(c) => c,
        Err(status) => {
            let why = format!("contact details unavailable: {}", status.message());
            tracing::warn!(error = %why, messages = count, "intake did not answer; messages wait");
            if matches!(status.code(), tonic::Code::Unauthenticated | tonic::Code::PermissionDenied) {
                n.peer_auth.forget().await;
            }
            for m in &claimed {
                later(n, m, &why).await?;
            }
            return Ok(count);
        }
    };
    let applicant_ids: Vec<Uuid> = claimed.iter().filter_map(|m| applicant_of(&m.recipient)).collect();
    let preferences: HashMap<Uuid, PreferenceRow> = sqlx::query_as::<_, PreferenceRow>(
        "SELECT applicant_id, channels, language, opted_out_kinds FROM preferences WHERE applicant_id = ANY($1)",
    )
    .bind(&applicant_ids)
    .fetch_all(&n.pool)
    .await?
    .into_iter()
    .map(|p| (p.applicant_id, p))
    .collect();
    let types: Vec<String> = claimed.iter().map(|m| m.message_type.clone()).collect::<HashSet<_>>().into_iter().collect();
    let templates: Vec<TemplateRow> = sqlx::query_as(
        "SELECT DISTINCT ON (message_type, channel, locale) message_type, channel, locale, version, subject, body, provider_template \
         FROM templates WHERE message_type = ANY($1) ORDER BY message_type, channel, locale, version DESC",
    )
    .bind(&types)
    .fetch_all(&n.pool)
    .await?;
    let clocks = Clocks::read(n, &claimed).await?;
    let opted_out = opted_out_numbers(n, &contacts).await?;

    let permits = Arc::new(Semaphore::new(n.settings.concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    let mut copies = Vec::new();
    let mut steps = Vec::with_capacity(count);
    for m in claimed {
        let contact = applicant_of(&m.recipient).and_then(|_| contacts.get(&m.recipient));
        let prefs = applicant_of(&m.recipient).and_then(|id| preferences.get(&id)).cloned().unwrap_or_default();
        let (step, inbox) = route(n, &m, contact, &prefs, &templates, &clocks, &opted_out);
        if let Some(copy) = inbox {
            copies.push((m.id, m.message_type.clone(), copy));
        }
        steps.push((m, step));
    }
    // The inbox copies before any send: a person never gets an SMS without its inbox copy.
    write_inboxes(n, copies).await?;
    for (m, step) in steps {
        let n = n.clone();
        let permits = Arc::clone(&permits);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            finish(&n, &m, step).await
        });
    }
    let mut sent = Vec::new();
    while let Some(done) = tasks.join_next().await {
        sent.extend(done??);
    }
    record_sent(n, &sent).await?;
    Ok(count)
}

/// A message a provider accepted, to record with the round's others.
struct Sent {
    id: Uuid,
    channel: Channel,
    locale: String,
    version: i32,
    reference: String,
    segments: i32,
    address_hash: Option<Vec<u8>>,
}

/// Records the round's accepted messages in one statement.
async fn record_sent(n: &Notifications, sent: &[Sent]) -> anyhow::Result<()> {
    if sent.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = sent.iter().map(|s| s.id).collect();
    let channels: Vec<&str> = sent.iter().map(|s| s.channel.code()).collect();
    let locales: Vec<&str> = sent.iter().map(|s| s.locale.as_str()).collect();
    let versions: Vec<i32> = sent.iter().map(|s| s.version).collect();
    let references: Vec<&str> = sent.iter().map(|s| s.reference.as_str()).collect();
    let segments: Vec<i32> = sent.iter().map(|s| s.segments).collect();
    // Email has no number hash: an empty array element stands for NULL.
    let hashes: Vec<Vec<u8>> = sent.iter().map(|s| s.address_hash.clone().unwrap_or_default()).collect();
    sqlx::query(
        "UPDATE messages m SET state = 'sent', channel = s.channel, locale = s.locale, template_version = s.version, \
         provider_reference = s.reference, segments = s.segments, address_hash = nullif(s.hash, ''::bytea), sent_at = now(), \
         lease_until = NULL, last_error = '', sealed = NULL, sealed_key = NULL \
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::text[], $6::int[], $7::bytea[]) \
              AS s(id, channel, locale, version, reference, segments, hash) \
         WHERE m.id = s.id",
    )
    .bind(&ids)
    .bind(&channels)
    .bind(&locales)
    .bind(&versions)
    .bind(&references)
    .bind(&segments)
    .bind(&hashes)
    .execute(&n.pool)
    .await?;
    Ok(())
}

fn applicant_of(recipient: &str) -> Option<Uuid> {
    recipient.strip_prefix("applicants/").and_then(|id| Uuid::parse_str(id).ok())
}

async fn contacts(n: &Notifications, claimed: &[Claimed]) -> Result<HashMap<String, ApplicantContact>, tonic::Status> {
    let mut names: Vec<String> = claimed.iter().filter(|m| applicant_of(&m.recipient).is_some()).map(|m| m.recipient.clone()).collect();
    names.sort();
    names.dedup();
    let mut out = HashMap::new();
    if names.is_empty() {
        return Ok(out);
    }
    let channel = n.peers.channel("intake").map_err(|e| tonic::Status::unavailable(format!("{e:#}")))?;
    let mut client = IntakeServiceClient::new(channel);
    for chunk in names.chunks(100) {
        let request = n.peer_auth.request(BatchGetApplicantContactsRequest { names: chunk.to_vec() }).await?;
        for c in client.batch_get_applicant_contacts(request).await?.into_inner().contacts {
            out.insert(c.applicant.clone(), c);
        }
    }
    Ok(out)
}

async fn opted_out_numbers(n: &Notifications, contacts: &HashMap<String, ApplicantContact>) -> anyhow::Result<HashSet<Vec<u8>>> {
    let hashes: Vec<Vec<u8>> = contacts.values().filter(|c| !c.phone.is_empty()).map(|c| n.vault.lookup(Lookup::Phone, &c.phone)).collect();
    if hashes.is_empty() {
        return Ok(HashSet::new());
    }
    let rows: Vec<Vec<u8>> = sqlx::query_scalar("SELECT address_hash FROM opted_out_numbers WHERE address_hash = ANY($1)")
        .bind(&hashes)
        .fetch_all(&n.pool)
        .await?;
    Ok(rows.into_iter().collect())
}

/// Local clocks of the time zones in a round, read from PostgreSQL's time zone database.
struct Clocks {
    /// Minute of the local day now, by zone.
    minute: HashMap<String, u32>,
    /// The local end of quiet hours today and tomorrow, as instants, by zone.
    quiet_end: HashMap<String, (OffsetDateTime, OffsetDateTime)>,
    /// Local renderings of instants (`2027-04-07 10:00`), by (unix seconds, zone).
    local: HashMap<(i64, String), String>,
}

impl Clocks {
    async fn read(n: &Notifications, claimed: &[Claimed]) -> anyhow::Result<Self> {
        let zones: Vec<String> = claimed.iter().map(|m| m.time_zone.clone()).collect::<HashSet<_>>().into_iter().collect();
        let end = n.settings.quiet_hours.map_or(0, |q| q.end) as i32;
        let rows: Vec<(String, i32, OffsetDateTime, OffsetDateTime)> = sqlx::query_as(
            "SELECT z, (extract(hour FROM now() AT TIME ZONE z) * 60 + extract(minute FROM now() AT TIME ZONE z))::int, \
             (date_trunc('day', now() AT TIME ZONE z) + make_interval(mins => $2)) AT TIME ZONE z, \
             (date_trunc('day', now() AT TIME ZONE z) + interval '1 day' + make_interval(mins => $2)) AT TIME ZONE z \
             FROM unnest($1::text[]) z",
        )
        .bind(&zones)
        .bind(end)
        .fetch_all(&n.pool)
        .await?;
        let mut starts: Vec<i64> = Vec::new();
        let mut start_zones: Vec<String> = Vec::new();
        for m in claimed {
            if let Some(s) = m.variables.get("start").and_then(Value::as_str).and_then(|s| s.parse::<i64>().ok()) {
                starts.push(s);
                start_zones.push(m.time_zone.clone());
            }
        }
        let local: Vec<(i64, String, String)> = if starts.is_empty() {
            Vec::new()
        } else {
            sqlx::query_as(
                "SELECT s, z, to_char(to_timestamp(s) AT TIME ZONE z, 'YYYY-MM-DD HH24:MI') FROM unnest($1::bigint[], $2::text[]) AS t(s, z)",
            )
            .bind(&starts)
            .bind(&start_zones)
            .fetch_all(&n.pool)
            .await?
        };
        Ok(Self {
            minute: rows.iter().map(|(z, m, _, _)| (z.clone(), u32::try_from(*m).unwrap_or(0))).collect(),
            quiet_end: rows.into_iter().map(|(z, _, today, tomorrow)| (z, (today, tomorrow))).collect(),
            local: local.into_iter().map(|(s, z, text)| ((s, z), text)).collect(),
        })
    }

    /// When quiet hours end, if `zone` is in them now.
    fn quiet_until(&self, n: &Notifications, zone: &str) -> Option<OffsetDateTime> {
        let quiet = n.settings.quiet_hours?;
        let minute = *self.minute.get(zone)?;
        if !quiet.contains(minute) {
            return None;
        }
        let (today, tomorrow) = *self.quiet_end.get(zone)?;
        Some(if minute < quiet.end { today } else { tomorrow })
    }
}

/// "remote" in the person's language.
fn remote(locale: &str) -> &'static str {
    match locale.split('-').next().unwrap_or_default() {
        "fr" => "à distance",
        "ar" => "عن بعد",
        _ => "remote",
    }
}

fn route(
    n: &Notifications,
    m: &Claimed,
    contact: Option<&ApplicantContact>,
    prefs: &PreferenceRow,
    templates: &[TemplateRow],
    clocks: &Clocks,
    opted_out: &HashSet<Vec<u8>>,
) -> (Step, Option<InboxCopy>) {
    let service = m.kind == "service";
    // Who and where: a code goes to the phone the event named; everyone else is read from intake.
    let (secret, given_name, phone, email, mut languages, account) = if let Some(contact) = contact {
        if !contact.found {
            return (Step::Skip("no such person in the registry".into()), None);
        }
        if contact.state == ApplicantState::Erased as i32 {
            return (Step::Skip("the person's personal data was erased".into()), None);
        }
        (
            Map::new(),
            contact.given_name.clone(),
            contact.phone.clone(),
            contact.email.clone(),
            contact.languages.clone(),
            contact.account.clone(),
        )
    } else if applicant_of(&m.recipient).is_some() {
        return (Step::Later("no contact details came back for this person".into()), None);
    } else {
        let opened = m.sealed.as_deref().zip(m.sealed_key.as_deref()).and_then(|(s, k)| n.vault.open(k, m.id, "secret", s).ok());
        let Some(secret) = opened.and_then(|text| serde_json::from_str::<Map<String, Value>>(&text).ok()) else {
            return (Step::Skip("the code's sealed values are gone (already sent, or unreadable)".into()), None);
        };
        let expired =
            m.variables.get("expire_time").and_then(Value::as_i64).is_some_and(|at| at <= OffsetDateTime::now_utc().unix_timestamp());
        if expired {
            return (Step::Skip("the code expired before it could be sent".into()), None);
        }
        let phone = secret.get("phone").and_then(Value::as_str).unwrap_or_default().to_string();
        (secret, String::new(), phone, String::new(), Vec::new(), m.recipient.clone())
    };
    if !prefs.language.is_empty() {
        languages.insert(0, prefs.language.clone());
    }
    let values = |locale: &str| -> BTreeMap<String, String> {
        let mut v: BTreeMap<String, String> =
            m.variables.iter().map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_string))).collect();
        v.insert("given_name".into(), given_name.clone());
        if let Some(start) = v.get("start").and_then(|s| s.parse::<i64>().ok()) {
            let text = clocks.local.get(&(start, m.time_zone.clone())).cloned().unwrap_or_default();
            v.insert("start".into(), text);
        }
        if v.get("place").is_some_and(|p| p == "remote") {
            v.insert("place".into(), remote(locale).into());
        }
        for (k, value) in &secret {
            if let Some(s) = value.as_str() {
                v.insert(k.clone(), s.to_string());
            }
        }
        v
    };
    let pick = |channel: &str| -> Option<&TemplateRow> {
        let available: Vec<&str> =
            templates.iter().filter(|t| t.message_type == m.message_type && t.channel == channel).map(|t| t.locale.as_str()).collect();
        let locale = templates::choose(&available, &languages, &n.settings.default_locale)?;
        templates.iter().find(|t| t.message_type == m.message_type && t.channel == channel && t.locale == locale)
    };
    let render = |t: &TemplateRow, text: &str| -> Result<String, String> {
        Template::parse(&t.message_type, text).map_err(|e| e.reason)?.render(&values(&t.locale))
    };
    // The inbox copy (people with a registry record only), from the email template, else the SMS one.
    let inbox = applicant_of(&m.recipient).and_then(|applicant| {
        let t = pick("email").or_else(|| pick("sms"))?;
        let body = render(t, &t.body).ok()?;
        let title = if t.subject.is_empty() { body.chars().take(60).collect() } else { render(t, &t.subject).ok()? };
        Some(InboxCopy { applicant, account: account.clone(), locale: t.locale.clone(), title, body })
    });
    if !service && prefs.opted_out_kinds.contains(&m.kind) {
        return (Step::Skip(format!("the person opted out of {} messages", m.kind)), inbox);
    }
    let order: Vec<Channel> = match m.channel.as_deref().and_then(Channel::from_code) {
        Some(chosen) => vec![chosen],
        None if m.recipient.starts_with("accounts/") => vec![Channel::Sms],
        None => {
            let chosen: Vec<Channel> = prefs.channels.iter().filter_map(|c| Channel::from_code(c)).collect();
            if chosen.is_empty() { Channel::DEFAULT_ORDER.to_vec() } else { chosen }
        }
    };
    let mut tried = Vec::new();
    for channel in order {
        let address = match channel {
            Channel::Sms | Channel::WhatsApp => phone.clone(),
            Channel::Email => email.clone(),
        };
        if address.is_empty() {
            tried.push(format!("{}: no {}", channel.code(), if channel == Channel::Email { "email" } else { "phone" }));
            continue;
        }
        if n.adapters.get(channel).is_none() {
            tried.push(format!("{}: no provider configured", channel.code()));
            continue;
        }
        let address_hash = (channel != Channel::Email).then(|| n.vault.lookup(Lookup::Phone, &address));
        if !service && address_hash.as_ref().is_some_and(|h| opted_out.contains(h)) {
            tried.push(format!("{}: the number answered STOP", channel.code()));
            continue;
        }
        let Some(t) = pick(channel.code()) else {
            tried.push(format!("{}: no template", channel.code()));
            continue;
        };
        if !service
            && channel != Channel::Email
            && let Some(until) = clocks.quiet_until(n, &m.time_zone)
        {
            return (Step::Hold { channel, until }, inbox);
        }
        let body = match render(t, &t.body) {
            Ok(b) => b,
            Err(e) => return (Step::Skip(format!("template {} {} {} v{}: {e}", t.message_type, t.channel, t.locale, t.version)), inbox),
        };
        let subject = if channel == Channel::Email { render(t, &t.subject).unwrap_or_default() } else { String::new() };
        let parameters = if channel == Channel::WhatsApp {
            let v = values(&t.locale);
            Template::parse(&t.message_type, &t.body)
                .map(|p| p.uses().iter().map(|u| v.get(*u).cloned().unwrap_or_default()).collect())
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        let segments = if channel == Channel::Sms { crate::sms::size(&body).segments as i32 } else { 0 };
        let outgoing = Outgoing {
            id: m.id,
            to: address,
            subject,
            body,
            locale: t.locale.clone(),
            provider_template: t.provider_template.clone(),
            parameters,
        };
        return (Step::Send { outgoing, channel, version: t.version, segments, address_hash }, inbox);
    }
    (Step::Skip(format!("no usable channel ({})", tried.join("; "))), inbox)
}

/// Writes the round's inbox copies in one statement (a copy already there is kept).
async fn write_inboxes(n: &Notifications, copies: Vec<(Uuid, String, InboxCopy)>) -> anyhow::Result<()> {
    if copies.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = copies.iter().map(|_| Uuid::now_v7()).collect();
    let messages: Vec<Uuid> = copies.iter().map(|(m, _, _)| *m).collect();
    let applicants: Vec<Uuid> = copies.iter().map(|(_, _, c)| c.applicant).collect();
    let accounts: Vec<&str> = copies.iter().map(|(_, _, c)| c.account.as_str()).collect();
    let types: Vec<&str> = copies.iter().map(|(_, t, _)| t.as_str()).collect();
    let locales: Vec<&str> = copies.iter().map(|(_, _, c)| c.locale.as_str()).collect();
    let titles: Vec<&str> = copies.iter().map(|(_, _, c)| c.title.as_str()).collect();
    let bodies: Vec<&str> = copies.iter().map(|(_, _, c)| c.body.as_str()).collect();
    sqlx::query(
        "INSERT INTO inbox_items (id, message_id, applicant_id, account, message_type, locale, title, body) \
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) \
         ON CONFLICT (message_id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&messages)
    .bind(&applicants)
    .bind(&accounts)
    .bind(&types)
    .bind(&locales)
    .bind(&titles)
    .bind(&bodies)
    .execute(&n.pool)
    .await?;
    Ok(())
}

async fn later(n: &Notifications, m: &Claimed, why: &str) -> anyhow::Result<()> {
    match n.settings.backoff.next_delay(m.attempts as u32, rand::random::<f64>()) {
        Some(delay) => {
            sqlx::query(
                "UPDATE messages SET due_at = now() + make_interval(secs => $2), lease_until = NULL, last_error = $3 WHERE id = $1",
            )
            .bind(m.id)
            .bind(delay.as_secs_f64())
            .bind(why)
            .execute(&n.pool)
            .await?;
        }
        None => {
            tracing::error!(message = %m.id, attempts = m.attempts, reason = why, "message dead-lettered");
            sqlx::query(
                "UPDATE messages SET state = 'dead', lease_until = NULL, last_error = $2, sealed = NULL, sealed_key = NULL WHERE id = $1",
            )
            .bind(m.id)
            .bind(why)
            .execute(&n.pool)
            .await?;
        }
    }
    Ok(())
}

/// Carries out `step`; a message the provider accepted is returned to be recorded with the round's.
async fn finish(n: &Notifications, m: &Claimed, step: Step) -> anyhow::Result<Option<Sent>> {
    match step {
        Step::Later(why) => later(n, m, &why).await.map(|()| None),
        Step::Skip(why) => {
            tracing::warn!(message = %m.id, recipient = %m.recipient, message_type = %m.message_type, reason = %why, "message not sent");
            sqlx::query(
                "UPDATE messages SET state = 'skipped', last_error = $2, lease_until = NULL, sealed = NULL, sealed_key = NULL, \
                 attempts = attempts - 1 WHERE id = $1",
            )
            .bind(m.id)
            .bind(&why)
            .execute(&n.pool)
            .await?;
            Ok(None)
        }
        Step::Hold { channel, until } => {
            sqlx::query(
                "UPDATE messages SET channel = $2, due_at = $3, lease_until = NULL, attempts = attempts - 1, \
                 last_error = 'held by quiet hours' WHERE id = $1",
            )
            .bind(m.id)
            .bind(channel.code())
            .bind(until)
            .execute(&n.pool)
            .await?;
            Ok(None)
        }
        Step::Send { outgoing, channel, version, segments, address_hash } => {
            let Some((adapter, pace)) = n.adapters.get(channel) else {
                return later(n, m, &format!("no provider configured for {}", channel.code())).await.map(|()| None);
            };
            pace.acquire().await;
            let delivery = adapter.send(&outgoing).await;
            match delivery {
                Delivery::Accepted(reference) => {
                    Ok(Some(Sent { id: m.id, channel, locale: outgoing.locale, version, reference, segments, address_hash }))
                }
                Delivery::Retry(why) => {
                    sqlx::query("UPDATE messages SET channel = $2, locale = $3, template_version = $4 WHERE id = $1")
                        .bind(m.id)
                        .bind(channel.code())
                        .bind(&outgoing.locale)
                        .bind(version)
                        .execute(&n.pool)
                        .await?;
                    later(n, m, &why).await.map(|()| None)
                }
                Delivery::Rejected(why) => {
                    tracing::warn!(message = %m.id, reason = %why, "provider refused the message");
                    sqlx::query(
                        "UPDATE messages SET state = 'failed', channel = $2, locale = $3, template_version = $4, last_error = $5, \
                         lease_until = NULL, sealed = NULL, sealed_key = NULL WHERE id = $1",
                    )
                    .bind(m.id)
                    .bind(channel.code())
                    .bind(&outgoing.locale)
                    .bind(version)
                    .bind(&why)
                    .execute(&n.pool)
                    .await?;
                    Ok(None)
                }
            }
        }
    }
}
