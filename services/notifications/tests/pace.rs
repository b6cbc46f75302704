//! Per-provider rate limits: a provider paced at 5 messages a second never receives more than a
//! second's burst (5) plus 5 per second after, however many messages are due at once; the other
//! channels are not held by it.

mod common;

use std::time::{Duration, SystemTime};

use common::*;

#[tokio::test]
async fn a_paced_provider_never_gets_more_than_its_rate() {
    let mut settings: Vec<(&str, &str)> = FAST_RETRIES.to_vec();
    settings.push(("W4L_SMS_RATE", "5"));
    let f = Fixture::with(&settings).await;
    let applicant = f.register(person(&["fr"])).await;
    f.sms.wait_accepted(1, Duration::from_secs(20)).await;
    // Fifteen updates due at once for the same person, by SMS.
    for _ in 0..15 {
        let (event, _) = submitted_event(&[&applicant]);
        f.publish("intake", &event).await;
    }
    let all = f.sms.wait_accepted(16, Duration::from_secs(30)).await;
    let times: Vec<SystemTime> = all[1..].iter().map(|r| r.at).collect();
    assert_eq!(times.len(), 15);
    // In any window of one second, at most the bucket (5) plus what one second refills (5).
    for (i, start) in times.iter().enumerate() {
        let within = times[i..].iter().filter(|t| t.duration_since(*start).unwrap_or_default() < Duration::from_secs(1)).count();
        assert!(within <= 10, "{within} messages within one second of message {i}: the pace of 5/s was not kept");
    }
    let first = *times.iter().min().expect("first");
    let last = *times.iter().max().expect("last");
    // The first five go at once (a full bucket), the other ten take at least 10 / 5 = 2 s.
    assert!(last.duration_since(first).unwrap_or_default() >= Duration::from_millis(1_800), "{:?}", last.duration_since(first));
    assert_eq!(count(f.pool(), "SELECT count(*) FROM messages WHERE state = 'sent'").await, 16, "each sent once");
}
