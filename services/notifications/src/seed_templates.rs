//! The demo templates (written by the templates brief).

/// One demo template.
pub struct SeedTemplate {
    /// One of `templates::MESSAGE_TYPES`.
    pub message_type: &'static str,
    /// `sms`, `email` or `whatsapp`.
    pub channel: &'static str,
    /// `fr`, `ar`, `en`.
    pub locale: &'static str,
    /// Email only.
    pub subject: &'static str,
    /// The body.
    pub body: &'static str,
    /// WhatsApp only: the approved template's name.
    pub provider_template: &'static str,
}

/// The demo templates.
pub const SEED_TEMPLATES: &[SeedTemplate] = &[];
