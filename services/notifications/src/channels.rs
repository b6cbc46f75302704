//! The channels behind one interface: an [`Adapter`] takes a rendered message and answers
//! whether the provider accepted it (with its reference), failed for now (try again later) or
//! refused it for good. SMS and WhatsApp go to HTTP providers as JSON, email to an SMTP relay.
//! Every send carries the message's id as its idempotency key (`Idempotency-Key` header,
//! `Message-ID` header), so a send repeated after a crash between the provider's answer and our
//! commit is recognised by the provider instead of reaching the person twice.

use std::{sync::Arc, time::Duration};

use futures::future::BoxFuture;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::{client::legacy::Client, rt::TokioExecutor};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor, message::header::ContentType};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::settings::{HttpProviderSettings, SmtpSettings};

/// A channel people are reached on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    /// Text message.
    Sms,
    /// Email.
    Email,
    /// WhatsApp.
    WhatsApp,
}

impl Channel {
    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Sms => "sms",
            Self::Email => "email",
            Self::WhatsApp => "whatsapp",
        }
    }

    /// From the stored code.
    pub fn from_code(code: &str) -> Option<Self> {
        match code {
            "sms" => Some(Self::Sms),
            "email" => Some(Self::Email),
            "whatsapp" => Some(Self::WhatsApp),
            _ => None,
        }
    }

    /// The program's order when a person chose none.
    pub const DEFAULT_ORDER: [Channel; 3] = [Channel::Sms, Channel::WhatsApp, Channel::Email];
}

/// A message ready to hand over.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The message's id: the idempotency key.
    pub id: Uuid,
    /// Phone (E.164) or email address.
    pub to: String,
    /// Email subject.
    pub subject: String,
    /// The text.
    pub body: String,
    /// The template's locale.
    pub locale: String,
    /// WhatsApp: the approved template's name.
    pub provider_template: String,
    /// WhatsApp: the template's parameters, in order.
    pub parameters: Vec<String>,
}

/// What the provider answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Accepted, with the provider's reference.
    Accepted(String),
    /// Not now (unreachable, overloaded, 5xx, 429): try again later.
    Retry(String),
    /// Never (invalid number, refused content: 4xx).
    Rejected(String),
}

/// One channel's provider.
pub trait Adapter: Send + Sync {
    /// Its channel.
    fn channel(&self) -> Channel;
    /// Hands `message` over.
    fn send<'a>(&'a self, message: &'a Outgoing) -> BoxFuture<'a, Delivery>;
}

type HttpsClient = Client<hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>, Full<Bytes>>;

/// An SMS or WhatsApp provider speaking JSON over HTTP(S):
/// `POST <url>/messages` with `{"to", "from", "text", "reference"}` (SMS) or
/// `{"to", "from", "template": {"name", "language", "parameters"}, "reference"}` (WhatsApp);
/// answers `2xx {"id": "<reference>"}`.
pub struct HttpAdapter {
    channel: Channel,
    settings: HttpProviderSettings,
    client: HttpsClient,
    timeout: Duration,
}

impl HttpAdapter {
    /// An adapter for `channel` (SMS or WhatsApp).
    pub fn new(channel: Channel, settings: HttpProviderSettings, timeout: Duration) -> Self {
        let connector = hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots().https_or_http().enable_http1().build();
        let client = Client::builder(TokioExecutor::new()).pool_idle_timeout(Duration::from_secs(30)).build(connector);
        Self { channel, settings, client, timeout }
    }

    fn payload(&self, m: &Outgoing) -> Value {
        match self.channel {
            Channel::WhatsApp => json!({
                "to": m.to,
                "from": self.settings.sender,
                "template": { "name": m.provider_template, "language": m.locale, "parameters": m.parameters },
                "reference": m.id.to_string(),
            }),
            _ => json!({ "to": m.to, "from": self.settings.sender, "text": m.body, "reference": m.id.to_string() }),
        }
    }

    async fn post(&self, m: &Outgoing) -> Delivery {
        let mut request = http::Request::post(format!("{}/messages", self.settings.url))
            .header("content-type", "application/json")
            .header("idempotency-key", m.id.to_string());
        if let Some(token) = &self.settings.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = match request.body(Full::new(Bytes::from(self.payload(m).to_string()))) {
            Ok(r) => r,
            Err(e) => return Delivery::Rejected(format!("request not built: {e}")),
        };
        let answer = match tokio::time::timeout(self.timeout, self.client.request(request)).await {
            Err(_) => return Delivery::Retry(format!("no answer within {:?}", self.timeout)),
            Ok(Err(e)) => return Delivery::Retry(format!("provider unreachable: {e}")),
            Ok(Ok(answer)) => answer,
        };
        let status = answer.status();
        let body = match tokio::time::timeout(self.timeout, answer.into_body().collect()).await {
            Ok(Ok(collected)) => collected.to_bytes(),
            _ => return Delivery::Retry("the provider's answer was cut short".into()),
        };
        let text = String::from_utf8_lossy(&body);
        let short: String = text.chars().take(200).collect();
        if status.is_success() {
            let reference =
                serde_json::from_slice::<Value>(&body).ok().and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_string));
            return match reference {
                Some(r) if !r.is_empty() => Delivery::Accepted(r),
                _ => Delivery::Retry(format!("{status} without a message id: {short}")),
            };
        }
        if status.as_u16() == 429 || status.is_server_error() || status.as_u16() == 408 {
            Delivery::Retry(format!("provider answered {status}: {short}"))
        } else {
            Delivery::Rejected(format!("provider refused with {status}: {short}"))
        }
    }
}

impl Adapter for HttpAdapter {
    fn channel(&self) -> Channel {
        self.channel
    }
    fn send<'a>(&'a self, message: &'a Outgoing) -> BoxFuture<'a, Delivery> {
        Box::pin(self.post(message))
    }
}

/// Email through an SMTP relay (lettre).
pub struct SmtpAdapter {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: lettre::message::Mailbox,
    domain: String,
}

impl SmtpAdapter {
    /// An adapter for the relay in `settings`.
    pub fn new(settings: &SmtpSettings, timeout: Duration) -> anyhow::Result<Self> {
        // lettre's URL form: `smtp://` is plain (a local relay), `smtp+starttls://`... is not one
        // of its schemes, so it is translated to `smtp://...?tls=required`.
        let url = match settings.url.strip_prefix("smtp+starttls://") {
            Some(rest) => format!("smtp://{rest}?tls=required"),
            None => settings.url.clone(),
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(&url)?.timeout(Some(timeout)).build();
        let from: lettre::message::Mailbox = settings.from.parse()?;
        let domain = from.email.domain().to_string();
        Ok(Self { transport, from, domain })
    }

    async fn deliver(&self, m: &Outgoing) -> Delivery {
        let to: lettre::message::Mailbox = match m.to.parse() {
            Ok(to) => to,
            Err(e) => return Delivery::Rejected(format!("not an email address: {e}")),
        };
        let email = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(m.subject.clone())
            .message_id(Some(format!("<{}@{}>", m.id, self.domain)))
            .header(ContentType::TEXT_PLAIN)
            .body(m.body.clone());
        let email = match email {
            Ok(e) => e,
            Err(e) => return Delivery::Rejected(format!("message not built: {e}")),
        };
        match self.transport.send(email).await {
            Ok(response) => {
                // The relay's queue id, when it says one ("250 2.0.0 Ok: queued as ABC123").
                let said = response.message().collect::<Vec<_>>().join(" ");
                let queued = said.rsplit("queued as ").next().filter(|_| said.contains("queued as")).map(str::trim);
                Delivery::Accepted(queued.filter(|q| !q.is_empty()).map_or_else(|| format!("smtp:{}", m.id), str::to_string))
            }
            Err(e) if e.is_permanent() => Delivery::Rejected(format!("the relay refused: {e}")),
            Err(e) => Delivery::Retry(format!("the relay failed: {e}")),
        }
    }
}

impl Adapter for SmtpAdapter {
    fn channel(&self) -> Channel {
        Channel::Email
    }
    fn send<'a>(&'a self, message: &'a Outgoing) -> BoxFuture<'a, Delivery> {
        Box::pin(self.deliver(message))
    }
}

/// The adapters configured, by channel.
#[derive(Clone, Default)]
pub struct Adapters {
    by_channel: Vec<(Channel, Arc<dyn Adapter>, Arc<crate::ratelimit::TokenBucket>)>,
}

impl Adapters {
    /// Adds `adapter`, paced at `rate` messages per second.
    pub fn with(mut self, adapter: Arc<dyn Adapter>, rate: u32) -> Self {
        self.by_channel.push((adapter.channel(), adapter, Arc::new(crate::ratelimit::TokenBucket::new(rate))));
        self
    }

    /// The adapter for `channel` with its pace, if configured.
    pub fn get(&self, channel: Channel) -> Option<(&Arc<dyn Adapter>, &Arc<crate::ratelimit::TokenBucket>)> {
        self.by_channel.iter().find(|(c, _, _)| *c == channel).map(|(_, a, b)| (a, b))
    }

    /// The adapters `settings` configure.
    pub fn from_settings(settings: &crate::settings::Settings) -> anyhow::Result<Self> {
        let mut adapters = Self::default();
        if let Some(sms) = &settings.sms {
            adapters = adapters.with(Arc::new(HttpAdapter::new(Channel::Sms, sms.clone(), settings.provider_timeout)), sms.rate);
        }
        if let Some(wa) = &settings.whatsapp {
            adapters = adapters.with(Arc::new(HttpAdapter::new(Channel::WhatsApp, wa.clone(), settings.provider_timeout)), wa.rate);
        }
        if let Some(smtp) = &settings.smtp {
            adapters = adapters.with(Arc::new(SmtpAdapter::new(smtp, settings.provider_timeout)?), smtp.rate);
        }
        Ok(adapters)
    }
}
