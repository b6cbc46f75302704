//! Amounts in integer minor units of ISO 4217 currencies, and conversions at a recorded rate.
//! No float ever touches money: rates are decimal strings, computed in `i128` and rounded half
//! away from zero once per converted amount.

use work4life_platform::{FieldViolation, wire::parse_date};
use work4life_proto::types::{ExchangeRate, Money};

/// The currencies the program pays in, with their minor-unit exponent (ISO 4217).
const CURRENCIES: &[(&str, u32)] =
    &[("EUR", 2), ("MAD", 2), ("USD", 2), ("GBP", 2), ("CHF", 2), ("XOF", 0), ("XAF", 0), ("TND", 3), ("DZD", 2), ("EGP", 2)];

/// Most fractional digits a rate may have.
const RATE_SCALE_DIGITS: u32 = 10;

/// The minor-unit exponent of a supported currency.
pub fn exponent(currency: &str) -> Option<u32> {
    CURRENCIES.iter().find(|(c, _)| *c == currency).map(|(_, e)| *e)
}

/// Checks a currency code.
pub fn check_currency(v: &mut Vec<FieldViolation>, field: &str, currency: &str) -> bool {
    if exponent(currency).is_none() {
        let known: Vec<&str> = CURRENCIES.iter().map(|(c, _)| *c).collect();
        v.push(FieldViolation::new(field, format!("must be an ISO 4217 code this program pays in: {}", known.join(", "))));
        return false;
    }
    true
}

/// Checks an amount that must be positive, in `currency` when given; returns it.
pub fn positive(v: &mut Vec<FieldViolation>, field: &str, money: Option<&Money>, currency: Option<&str>) -> Option<(String, i64)> {
    let Some(m) = money else {
        v.push(FieldViolation::new(field, "is required"));
        return None;
    };
    let mut ok = check_currency(v, &format!("{field}.currency_code"), &m.currency_code);
    if let Some(c) = currency
        && ok
        && m.currency_code != c
    {
        v.push(FieldViolation::new(format!("{field}.currency_code"), format!("must be {c}, the currency of the award")));
        ok = false;
    }
    if m.amount_minor <= 0 {
        v.push(FieldViolation::new(format!("{field}.amount_minor"), "must be positive (minor units: 1,250.50 EUR is 125050)"));
        ok = false;
    }
    ok.then(|| (m.currency_code.clone(), m.amount_minor))
}

/// `Money` on the wire.
pub fn money(currency: &str, amount_minor: i64) -> Money {
    Money { currency_code: currency.to_string(), amount_minor }
}

/// `125050 EUR` as `1250.50 EUR`, for messages and bank files.
pub fn format(currency: &str, amount_minor: i64) -> String {
    format!("{} {currency}", decimal(currency, amount_minor))
}

/// `125050` in EUR as `1250.50`.
pub fn decimal(currency: &str, amount_minor: i64) -> String {
    let e = exponent(currency).unwrap_or(2);
    if e == 0 {
        return amount_minor.to_string();
    }
    let unit = 10i64.pow(e);
    let sign = if amount_minor < 0 { "-" } else { "" };
    let a = amount_minor.unsigned_abs();
    format!("{sign}{}.{:0width$}", a / unit as u64, a % unit as u64, width = e as usize)
}

/// A validated rate: converts amounts from one currency to another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Units of `to` for one unit of `from`, times 10^10.
    scaled: i128,
    /// The rate as given.
    pub text: String,
    /// Converted from.
    pub from: String,
    /// Converted to.
    pub to: String,
    /// Its source.
    pub source: String,
    /// The day it applies to.
    pub date: time::Date,
}

/// Parses `10.8425` into units × 10^10.
fn parse_rate(text: &str) -> Option<i128> {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    if int.is_empty() || int.len() > 9 || frac.len() > RATE_SCALE_DIGITS as usize {
        return None;
    }
    if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let padded = format!("{int}{frac:0<width$}", width = RATE_SCALE_DIGITS as usize);
    padded.parse::<i128>().ok().filter(|r| *r > 0)
}

impl Rate {
    /// Validates an exchange rate; its violations are reported under `field`.
    pub fn parse(v: &mut Vec<FieldViolation>, field: &str, r: &ExchangeRate) -> Option<Self> {
        let before = v.len();
        check_currency(v, &format!("{field}.from_currency_code"), &r.from_currency_code);
        check_currency(v, &format!("{field}.to_currency_code"), &r.to_currency_code);
        if r.from_currency_code == r.to_currency_code {
            v.push(FieldViolation::new(format!("{field}.to_currency_code"), "must differ from from_currency_code"));
        }
        let scaled = parse_rate(r.rate.trim());
        if scaled.is_none() {
            v.push(FieldViolation::new(
                format!("{field}.rate"),
                "must be a positive decimal with at most 10 fractional digits, as a string (\"10.8425\")",
            ));
        }
        if r.source.trim().is_empty() {
            v.push(FieldViolation::new(format!("{field}.source"), "is required: where the rate comes from"));
        }
        let date = match parse_date(&format!("{field}.effective_date"), &r.effective_date) {
            Ok(d) => Some(d),
            Err(e) => {
                v.push(e);
                None
            }
        };
        if v.len() > before {
            return None;
        }
        Some(Self {
            scaled: scaled?,
            text: r.rate.trim().to_string(),
            from: r.from_currency_code.clone(),
            to: r.to_currency_code.clone(),
            source: r.source.trim().to_string(),
            date: date?,
        })
    }

    /// Whether it converts between these two currencies (either way).
    pub fn links(&self, a: &str, b: &str) -> bool {
        (self.from == a && self.to == b) || (self.from == b && self.to == a)
    }

    /// Converts `amount_minor` of `currency` (one of the rate's two) into the other, rounding half
    /// away from zero. `None` on overflow.
    pub fn convert(&self, currency: &str, amount_minor: i64) -> Option<i64> {
        let scale = 10i128.pow(RATE_SCALE_DIGITS);
        let (from, to, multiply) = if currency == self.from { (&self.from, &self.to, true) } else { (&self.to, &self.from, false) };
        let (ef, et) = (exponent(from)? as i32, exponent(to)? as i32);
        // amount in `to` minor = amount_minor × rate × 10^(et − ef) (or ÷ rate going backwards).
        let mut num = i128::from(amount_minor).checked_mul(if multiply { self.scaled } else { scale })?;
        let mut den = if multiply { scale } else { self.scaled };
        if et >= ef {
            num = num.checked_mul(10i128.pow((et - ef) as u32))?;
        } else {
            den = den.checked_mul(10i128.pow((ef - et) as u32))?;
        }
        let q = (num + den / 2) / den;
        i64::try_from(q).ok()
    }

    /// The rate on the wire.
    pub fn wire(&self) -> ExchangeRate {
        ExchangeRate {
            from_currency_code: self.from.clone(),
            to_currency_code: self.to.clone(),
            rate: self.text.clone(),
            source: self.source.clone(),
            effective_date: work4life_platform::wire::format_date(self.date),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(from: &str, to: &str, r: &str) -> Rate {
        let mut v = Vec::new();
        let rate = Rate::parse(
            &mut v,
            "r",
            &ExchangeRate {
                from_currency_code: from.into(),
                to_currency_code: to.into(),
                rate: r.into(),
                source: "Bank Al-Maghrib".into(),
                effective_date: "2026-11-27".into(),
            },
        );
        assert!(v.is_empty(), "{v:?}");
        rate.expect("rate")
    }

    #[test]
    fn converts_both_ways_with_half_up_rounding() {
        let eur_mad = rate("EUR", "MAD", "10.8425");
        assert_eq!(eur_mad.convert("EUR", 100), Some(1084), "1.00 EUR is 10.8425 MAD, rounded to 10.84");
        assert_eq!(eur_mad.convert("EUR", 1_000_000), Some(10_842_500));
        assert_eq!(eur_mad.convert("MAD", 10_842_500), Some(1_000_000));
        assert_eq!(eur_mad.convert("MAD", 1), Some(0), "0.01 MAD is less than half a cent");
        let eur_xof = rate("EUR", "XOF", "655.957");
        assert_eq!(eur_xof.convert("EUR", 100), Some(656), "XOF has no minor unit");
        assert_eq!(eur_xof.convert("XOF", 655_957), Some(100_000));
    }

    #[test]
    fn rates_must_be_plain_positive_decimals() {
        for bad in ["", "0", "-1", "1e3", "10,5", "1.12345678901", "abc", "."] {
            let mut v = Vec::new();
            let r = ExchangeRate {
                from_currency_code: "EUR".into(),
                to_currency_code: "MAD".into(),
                rate: bad.into(),
                source: "s".into(),
                effective_date: "2026-11-27".into(),
            };
            assert!(Rate::parse(&mut v, "r", &r).is_none(), "{bad}");
            assert_eq!(v[0].field, "r.rate", "{bad}");
        }
    }

    #[test]
    fn formats_minor_units() {
        assert_eq!(format("EUR", 125_050), "1250.50 EUR");
        assert_eq!(decimal("EUR", -5), "-0.05");
        assert_eq!(decimal("XOF", 5000), "5000");
        assert_eq!(decimal("TND", 1234), "1.234");
    }
}
