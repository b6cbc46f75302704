//! Contact details as every service stores them: email lower-cased, phone in E.164. Identity
//! (accounts) and intake (the person registry) must agree, or the same phone would be two people.

use crate::error::FieldViolation;

/// An email address, trimmed and lower-cased, or why not.
pub fn normalize_email(field: &str, raw: &str) -> Result<String, FieldViolation> {
    let email = raw.trim().to_lowercase();
    let valid = email.len() <= 254
        && !email.contains(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.') && !domain.contains('@')
        });
    if valid { Ok(email) } else { Err(FieldViolation::new(field, "is not an email address (name@domain.tld)")) }
}

/// A phone number in E.164 (`+212612345678`); Moroccan national (`06 12 34 56 78`) and `00`
/// international prefixes are accepted. Empty means no phone.
pub fn normalize_phone(field: &str, raw: &str) -> Result<Option<String>, FieldViolation> {
    let digits: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
    if digits.is_empty() {
        return Ok(None);
    }
    let e164 = if let Some(rest) = digits.strip_prefix("00") {
        format!("+{rest}")
    } else if digits.starts_with('0') && digits.len() == 10 {
        format!("+212{}", &digits[1..])
    } else if digits.starts_with("212") && digits.len() == 12 {
        format!("+{digits}")
    } else {
        digits
    };
    let valid =
        e164.strip_prefix('+').is_some_and(|n| (8..=15).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit()) && !n.starts_with('0'));
    if valid {
        Ok(Some(e164))
    } else {
        Err(FieldViolation::new(field, "is not a phone number (E.164 such as +212612345678, or a Moroccan 0XXXXXXXXX)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_normalise_to_e164() {
        for (raw, want) in [
            ("06 12 34 56 78", "+212612345678"),
            ("0612-345-678", "+212612345678"),
            ("00212 6 12 34 56 78", "+212612345678"),
            ("212612345678", "+212612345678"),
            ("+33 6 12 34 56 78", "+33612345678"),
        ] {
            assert_eq!(normalize_phone("p", raw).expect(raw).as_deref(), Some(want), "{raw}");
        }
        assert_eq!(normalize_phone("p", "  ").expect("empty"), None);
        for bad in ["12345", "+0612345678", "06123", "phone", "+2126123456789012"] {
            assert!(normalize_phone("p", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_normalise_and_bad_ones_are_named() {
        assert_eq!(normalize_email("e", " Amina@CEFA.org ").expect("ok"), "amina@cefa.org");
        for bad in ["amina", "amina@", "@cefa.org", "a b@cefa.org", "a@cefa", "a@@cefa.org", "a@.org"] {
            assert_eq!(normalize_email("account.email", bad).expect_err(bad).field, "account.email");
        }
    }
}
