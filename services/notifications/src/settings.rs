//! The notifications service's own settings (`W4L_SMS_*`, `W4L_WHATSAPP_*`, `W4L_SMTP_*`,
//! `W4L_NOTIFY_*`), read from the same source as the platform's and checked at start: a wrong
//! value stops the service with the variable's name, a missing provider only disables its channel.

use std::time::Duration;

use work4life_platform::config::Source;

use crate::retry::Backoff;

/// An HTTP provider (SMS or WhatsApp).
#[derive(Clone, Debug)]
pub struct HttpProviderSettings {
    /// Base URL; messages are POSTed to `<url>/messages`.
    pub url: String,
    /// Bearer token, if the provider wants one.
    pub token: Option<String>,
    /// Sender name or number shown to people.
    pub sender: String,
    /// Messages per second at most.
    pub rate: u32,
}

/// The SMTP relay.
#[derive(Clone, Debug)]
pub struct SmtpSettings {
    /// `smtp://[user:pass@]host:port` (plain, for a local relay), `smtp+starttls://...` or `smtps://...`.
    pub url: String,
    /// The From address.
    pub from: String,
    /// Messages per second at most.
    pub rate: u32,
}

/// Quiet hours in the recipient's local time, as minutes after midnight: `[start, end)`,
/// wrapping over midnight when `start > end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuietHours {
    /// First quiet minute.
    pub start: u32,
    /// First minute after.
    pub end: u32,
}

impl QuietHours {
    /// Whether `minute` (after local midnight) is quiet.
    pub fn contains(&self, minute: u32) -> bool {
        if self.start <= self.end { (self.start..self.end).contains(&minute) } else { minute >= self.start || minute < self.end }
    }
}

/// Everything notifications reads at start.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The SMS provider; `None`: no SMS.
    pub sms: Option<HttpProviderSettings>,
    /// The WhatsApp provider; `None`: no WhatsApp.
    pub whatsapp: Option<HttpProviderSettings>,
    /// The SMTP relay; `None`: no email.
    pub smtp: Option<SmtpSettings>,
    /// No non-urgent SMS or WhatsApp in these local hours; `None`: never quiet.
    pub quiet_hours: Option<QuietHours>,
    /// The program's default locale (templates' last fallback).
    pub default_locale: String,
    /// The time zone of people whose events do not say theirs.
    pub default_time_zone: String,
    /// Retries before a dead letter.
    pub backoff: Backoff,
    /// Messages claimed per round of the dispatcher.
    pub batch: i64,
    /// Provider calls in flight per replica.
    pub concurrency: usize,
    /// How long a provider call may take.
    pub provider_timeout: Duration,
}

/// A refused setting.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {reason}")]
pub struct SettingError {
    /// The variable.
    pub variable: String,
    /// Why.
    pub reason: String,
}

fn err(variable: &str, reason: impl Into<String>) -> SettingError {
    SettingError { variable: variable.into(), reason: reason.into() }
}

fn number(src: &impl Source, var: &str, default: u64, min: u64, max: u64) -> Result<u64, SettingError> {
    match src.get(var) {
        None => Ok(default),
        Some(v) => match v.trim().parse::<u64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(err(var, format!("must be a whole number from {min} to {max}"))),
        },
    }
}

fn http_url(var: &str, url: &str) -> Result<String, SettingError> {
    let ok = (url.starts_with("http://") || url.starts_with("https://")) && url.len() > "https://".len();
    if !ok {
        return Err(err(var, "must be an http:// or https:// URL"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

fn provider(src: &impl Source, prefix: &str, sender: &str) -> Result<Option<HttpProviderSettings>, SettingError> {
    let url_var = format!("W4L_{prefix}_URL");
    let Some(url) = src.get(&url_var) else { return Ok(None) };
    Ok(Some(HttpProviderSettings {
        url: http_url(&url_var, url.trim())?,
        token: src.get(&format!("W4L_{prefix}_TOKEN")),
        sender: src.get(&format!("W4L_{prefix}_SENDER")).unwrap_or_else(|| sender.into()),
        rate: number(src, &format!("W4L_{prefix}_RATE"), 20, 1, 100_000)? as u32,
    }))
}

fn clock(var: &str, text: &str) -> Result<u32, SettingError> {
    let (h, m) = text.trim().split_once(':').ok_or_else(|| err(var, "write hours as HH:MM-HH:MM"))?;
    match (h.parse::<u32>(), m.parse::<u32>()) {
        (Ok(h), Ok(m)) if h < 24 && m < 60 => Ok(h * 60 + m),
        _ => Err(err(var, "write hours as HH:MM-HH:MM")),
    }
}

impl Settings {
    /// Reads and checks every setting.
    pub fn from_source(src: &impl Source) -> Result<Self, SettingError> {
        let smtp = match src.get("W4L_SMTP_URL") {
            None => None,
            Some(url) => {
                let url = url.trim().to_string();
                if !["smtp://", "smtps://", "smtp+starttls://"].iter().any(|p| url.starts_with(p)) {
                    return Err(err("W4L_SMTP_URL", "must be smtp://, smtp+starttls:// or smtps://"));
                }
                let from = src.get("W4L_EMAIL_FROM").unwrap_or_else(|| "WORK4LIFE <no-reply@work4life.local>".into());
                if from.parse::<lettre::message::Mailbox>().is_err() {
                    return Err(err("W4L_EMAIL_FROM", "is not an email address (`Name <user@host>`)"));
                }
                Some(SmtpSettings { url, from, rate: number(src, "W4L_SMTP_RATE", 10, 1, 100_000)? as u32 })
            }
        };
        let quiet_hours = match src.get("W4L_NOTIFY_QUIET_HOURS").as_deref().map(str::trim) {
            Some("off") => None,
            value => {
                let text = value.unwrap_or("21:00-08:00");
                let (a, b) = text.split_once('-').ok_or_else(|| err("W4L_NOTIFY_QUIET_HOURS", "write hours as HH:MM-HH:MM, or off"))?;
                Some(QuietHours { start: clock("W4L_NOTIFY_QUIET_HOURS", a)?, end: clock("W4L_NOTIFY_QUIET_HOURS", b)? })
            }
        };
        let default_locale = src.get("W4L_NOTIFY_DEFAULT_LOCALE").unwrap_or_else(|| "fr".into());
        let backoff = Backoff {
            base: Duration::from_millis(number(src, "W4L_NOTIFY_RETRY_BASE_MS", 2_000, 1, 3_600_000)?),
            cap: Duration::from_millis(number(src, "W4L_NOTIFY_RETRY_CAP_MS", 600_000, 1, 86_400_000)?),
            max_attempts: number(src, "W4L_NOTIFY_MAX_ATTEMPTS", 12, 1, 100)? as u32,
        };
        Ok(Self {
            sms: provider(src, "SMS", "WORK4LIFE")?,
            whatsapp: provider(src, "WHATSAPP", "WORK4LIFE")?,
            smtp,
            quiet_hours,
            default_locale,
            default_time_zone: src.get("W4L_NOTIFY_TIME_ZONE").unwrap_or_else(|| "Africa/Casablanca".into()),
            backoff,
            batch: number(src, "W4L_NOTIFY_BATCH", 200, 1, 10_000)? as i64,
            concurrency: number(src, "W4L_NOTIFY_CONCURRENCY", 64, 1, 10_000)? as usize,
            provider_timeout: Duration::from_millis(number(src, "W4L_NOTIFY_PROVIDER_TIMEOUT_MS", 10_000, 100, 120_000)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn src(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    #[test]
    fn defaults_disable_providers_and_keep_nights_quiet() {
        let s = Settings::from_source(&src(&[])).expect("defaults");
        assert!(s.sms.is_none() && s.whatsapp.is_none() && s.smtp.is_none());
        let q = s.quiet_hours.expect("quiet by default");
        assert!(q.contains(23 * 60) && q.contains(0) && q.contains(7 * 60 + 59));
        assert!(!q.contains(8 * 60) && !q.contains(12 * 60) && !q.contains(20 * 60 + 59));
        assert!(!QuietHours { start: 60, end: 120 }.contains(121) && QuietHours { start: 60, end: 120 }.contains(60));
    }

    #[test]
    fn wrong_values_name_their_variable() {
        for (pairs, var) in [
            (vec![("W4L_SMS_URL", "ftp://x")], "W4L_SMS_URL"),
            (vec![("W4L_SMS_URL", "http://sms.local"), ("W4L_SMS_RATE", "0")], "W4L_SMS_RATE"),
            (vec![("W4L_SMTP_URL", "mail.example.org")], "W4L_SMTP_URL"),
            (vec![("W4L_SMTP_URL", "smtp://x:25"), ("W4L_EMAIL_FROM", "nobody")], "W4L_EMAIL_FROM"),
            (vec![("W4L_NOTIFY_QUIET_HOURS", "22h-7h")], "W4L_NOTIFY_QUIET_HOURS"),
            (vec![("W4L_NOTIFY_MAX_ATTEMPTS", "0")], "W4L_NOTIFY_MAX_ATTEMPTS"),
        ] {
            let e = Settings::from_source(&src(&pairs)).expect_err("refused");
            assert_eq!(e.variable, var);
        }
        let s = Settings::from_source(&src(&[("W4L_SMS_URL", "http://127.0.0.1:9/"), ("W4L_NOTIFY_QUIET_HOURS", "off")])).expect("ok");
        assert_eq!(s.sms.expect("sms").url, "http://127.0.0.1:9");
        assert!(s.quiet_hours.is_none());
    }
}
