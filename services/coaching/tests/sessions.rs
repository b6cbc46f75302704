//! Sessions: a coach, a room or a participant is never double-booked, also when many requests
//! race for the same slot; room sessions lie within the office's opening hours in local time
//! (on both sides of Casablanca's 2027 clock change) and not on closures; rooms seat the
//! participants and the coach; cancelling frees the slot; rescheduling follows the same rules;
//! attendance makes a session held and its hours count; every change is announced.

mod common;

use common::{
    Fixture, TestCoach, assert_double_booked, assert_refused, bearer, engagement_message, fields, fresh, new_applicant, payload, plus, rid,
    session_state,
};
use futures::future::join_all;
use tonic::{Code, Status};
use work4life_proto::coaching::{Engagement, ListSessionsRequest, ScheduleSessionRequest, Session, SessionChanged, SessionState};

const SALLE_A: &str = "offices/oujda_cefa/rooms/salle_a";
const ATELIER: &str = "offices/oujda_cefa/rooms/atelier";
/// A Wednesday on summer time (UTC+1).
const DAY: &str = "2027-04-07";

fn at(time: &str) -> String {
    format!("{DAY} {time}")
}

/// An engagement in Oujda for `beneficiaries` (applicant names), opened by the admin.
async fn engagement_for(f: &Fixture, beneficiaries: &[String]) -> Engagement {
    let mut e = engagement_message("individual_startup", "oujda", beneficiaries.len());
    e.beneficiaries = beneficiaries.to_vec();
    f.create_engagement(&f.admin, e).await.expect("engagement")
}

fn led_by(mut session: Session, coach: &TestCoach) -> Session {
    session.coach = coach.name();
    session
}

#[tokio::test]
async fn a_coach_a_room_or_a_participant_is_never_double_booked() {
    let f = fresh().await;
    let a = f.coach("oujda_cefa", &["fr"], 40).await;
    let e1 = f.engagement("individual_startup", "oujda", 2).await;
    let e2 = f.engagement("individual_startup", "oujda", 1).await;
    let b = f.coach("oujda_cefa", &["fr"], 40).await;
    let e3 = f.engagement("individual_startup", "oujda", 1).await;
    let e4 = engagement_for(&f, &[e1.beneficiaries[0].clone(), new_applicant()]).await;
    assert_eq!((e1.coach.as_str(), e2.coach.as_str()), (a.name().as_str(), a.name().as_str()));

    let s1 = f.schedule(&f.admin, f.session_at(&[&e1], SALLE_A, &at("10:00"), &at("11:00")).await).await.expect("first session");
    assert_eq!(s1.coach, a.name(), "the engagement's coach by default");
    assert_eq!(s1.room, SALLE_A);
    assert_eq!(session_state(&s1), SessionState::Scheduled);
    let mut expected_participants = e1.beneficiaries.clone();
    expected_participants.sort();
    let mut participants = s1.participants.clone();
    participants.sort();
    assert_eq!(participants, expected_participants, "the engagement's beneficiaries");
    let before = f.fingerprint().await;

    let coach_clash = f.schedule(&f.admin, f.session_at(&[&e2], "", &at("10:30"), &at("11:30")).await).await;
    assert_double_booked(coach_clash, "coach", "the same coach, remote, overlapping");
    let room_clash = f.schedule(&f.admin, led_by(f.session_at(&[&e3], SALLE_A, &at("10:59"), &at("11:30")).await, &b)).await;
    assert_double_booked(room_clash, "room", "the same room, another coach, overlapping by a minute");
    let person_clash = f.schedule(&f.admin, led_by(f.session_at(&[&e4], "", &at("09:30"), &at("10:01")).await, &b)).await;
    assert_double_booked(person_clash, "participants", "a beneficiary of e1 in another engagement");
    assert_eq!(f.fingerprint().await, before, "refused sessions write nothing (no row, no event, no audit)");

    // Ranges are half-open: back-to-back sessions do not overlap; another room is free.
    f.schedule(&f.admin, f.session_at(&[&e2], SALLE_A, &at("11:00"), &at("12:00")).await).await.expect("right after, same room and coach");
    f.schedule(&f.admin, led_by(f.session_at(&[&e3], ATELIER, &at("10:00"), &at("11:00")).await, &b)).await.expect("another room");
    f.schedule(&f.admin, led_by(f.session_at(&[&e4], "", &at("09:00"), &at("10:00")).await, &b)).await.expect("right before");
    assert_eq!(f.count("SELECT count(*) FROM coaching.sessions").await, 4);
    assert_eq!(f.events("coaching.session.scheduled").await.len(), 4);
}

/// Sends `sessions` at once; returns the results in order.
async fn race(f: &Fixture, sessions: Vec<Session>) -> Vec<Result<Session, Status>> {
    let client = f.client().await;
    let calls = sessions.into_iter().map(|s| {
        let mut c = client.clone();
        let jwt = f.admin.clone();
        async move {
            c.schedule_session(bearer(ScheduleSessionRequest { session: Some(s), request_id: rid() }, &jwt))
                .await
                .map(|r| r.into_inner().session.expect("session"))
        }
    });
    join_all(calls).await
}

/// Exactly one success; every other result DOUBLE_BOOKED on `field`.
async fn assert_one_winner(f: &Fixture, results: Vec<Result<Session, Status>>, field: &str) {
    let wins = results.iter().filter(|r| r.is_ok()).count();
    let others: Vec<String> = results
        .iter()
        .filter_map(|r| r.as_ref().err())
        .map(|s| format!("{:?} {} {:?}", s.code(), common::reason(s), common::info_metadata(s)))
        .collect();
    assert_eq!(wins, 1, "exactly one wins; the others: {others:?}");
    for result in results.into_iter().filter(Result::is_err) {
        assert_double_booked(result, field, "a loser of the race");
    }
    assert_eq!(f.count("SELECT count(*) FROM coaching.sessions").await, 1, "one session written");
    assert_eq!(f.events("coaching.session.scheduled").await.len(), 1, "one event");
    assert_eq!(f.count("SELECT count(*) FROM coaching.audit_log WHERE action = 'coaching.ScheduleSession'").await, 1);
}

#[tokio::test]
async fn sixteen_requests_for_the_same_coach_and_slot_one_wins() {
    let f = fresh().await;
    f.coach("oujda_cefa", &["fr"], 60).await;
    let mut sessions = Vec::new();
    for _ in 0..16 {
        let e = f.engagement("individual_startup", "oujda", 1).await;
        sessions.push(f.session_at(&[&e], "", &at("10:00"), &at("11:00")).await);
    }
    let results = race(&f, sessions).await;
    assert_one_winner(&f, results, "coach").await;
}

#[tokio::test]
async fn sixteen_coaches_racing_for_the_same_room_one_wins() {
    let f = fresh().await;
    let mut coaches = Vec::new();
    for _ in 0..16 {
        coaches.push(f.coach("oujda_cefa", &["fr"], 20).await);
    }
    let mut sessions = Vec::new();
    for coach in &coaches {
        let e = f.engagement("individual_startup", "oujda", 1).await;
        sessions.push(led_by(f.session_at(&[&e], ATELIER, &at("14:00"), &at("15:30")).await, coach));
    }
    let results = race(&f, sessions).await;
    assert_one_winner(&f, results, "room").await;
}

#[tokio::test]
async fn sixteen_sessions_racing_for_the_same_person_one_wins() {
    let f = fresh().await;
    let shared = new_applicant();
    let mut sessions = Vec::new();
    for _ in 0..16 {
        let coach = f.coach("oujda_cefa", &["fr"], 20).await;
        let e = engagement_for(&f, &[shared.clone(), new_applicant()]).await;
        sessions.push(led_by(f.session_at(&[&e], "", &at("14:00"), &at("15:00")).await, &coach));
    }
    let results = race(&f, sessions).await;
    assert_one_winner(&f, results, "participants").await;
}

/// Wednesdays of 2027 around Morocco's Ramadan switch to UTC+0: (one before, one during, one after).
async fn wednesdays_around_the_switch(f: &Fixture) -> (String, String, String) {
    let on_utc: Vec<time::Date> = sqlx::query_scalar(
        "SELECT d::date FROM generate_series(date '2027-01-01', date '2027-12-31', interval '1 day') d \
         WHERE ((d::date + time '12:00') AT TIME ZONE 'Africa/Casablanca') = ((d::date + time '12:00') AT TIME ZONE 'UTC') ORDER BY 1",
    )
    .fetch_all(&f.pool)
    .await
    .expect("days on UTC+0");
    let first = *on_utc.first().expect("Casablanca is on UTC+0 for some days of 2027");
    let last = *on_utc.last().expect("and back");
    let wednesday_from = |d: time::Date| {
        let mut d = d;
        while d.weekday() != time::Weekday::Wednesday {
            d = d.next_day().expect("date");
        }
        d
    };
    let fmt = |d: time::Date| format!("{:04}-{:02}-{:02}", d.year(), d.month() as u8, d.day());
    let before = wednesday_from(first - time::Duration::days(8));
    let during = wednesday_from(first + time::Duration::days(1));
    let after = wednesday_from(last + time::Duration::days(1));
    assert!(during < last, "a Wednesday inside the UTC+0 period: {during} (until {last})");
    (fmt(before), fmt(during), fmt(after))
}

#[tokio::test]
async fn opening_hours_are_local_time_on_both_sides_of_the_2027_clock_change() {
    let f = fresh().await;
    f.coach("oujda_cefa", &["fr"], 40).await;
    let e = f.engagement("individual_startup", "oujda", 1).await;
    let (before, during, after) = wednesdays_around_the_switch(&f).await;
    assert_eq!(f.utc_offset_hours(&before).await, 1, "{before}: UTC+1");
    assert_eq!(f.utc_offset_hours(&during).await, 0, "{during}: UTC+0 (Ramadan)");
    assert_eq!(f.utc_offset_hours(&after).await, 1, "{after}: UTC+1 again");

    for (day, utc_hour_of_nine) in [(&before, 8), (&during, 9), (&after, 8)] {
        let nine = f
            .schedule(&f.admin, f.session_at(&[&e], SALLE_A, &format!("{day} 09:00"), &format!("{day} 10:00")).await)
            .await
            .unwrap_or_else(|err| panic!("{day}: 09:00 local is open: {err:?}"));
        let start = nine.start_time.expect("start");
        assert_eq!(start.seconds.rem_euclid(86_400) / 3600, utc_hour_of_nine, "{day}: 09:00 local is {utc_hour_of_nine}:00 UTC");
        let early = f.schedule(&f.admin, f.session_at(&[&e], SALLE_A, &format!("{day} 08:30"), &format!("{day} 08:59")).await).await;
        assert_refused(early, Code::FailedPrecondition, "OUTSIDE_OPENING_HOURS", &format!("{day}: 08:30 local is before opening"));
        f.schedule(&f.admin, f.session_at(&[&e], SALLE_A, &format!("{day} 16:00"), &format!("{day} 17:00")).await)
            .await
            .unwrap_or_else(|err| panic!("{day}: until 17:00 local is open: {err:?}"));
        let late = f.schedule(&f.admin, f.session_at(&[&e], SALLE_A, &format!("{day} 17:00"), &format!("{day} 17:30")).await).await;
        assert_refused(late, Code::FailedPrecondition, "OUTSIDE_OPENING_HOURS", &format!("{day}: 17:00 local is closing time"));
    }
    assert_eq!(f.count("SELECT count(*) FROM coaching.sessions").await, 6);
}

#[tokio::test]
async fn closures_weekends_and_remote_sessions() {
    let f = fresh().await;
    f.coach("oujda_cefa", &["fr"], 40).await;
    let e = f.engagement("individual_startup", "oujda", 1).await;
    let cases = [
        ("2027-01-11 10:00", "2027-01-11 11:00", false, "a Monday that is a holiday (closure)"),
        ("2027-05-01 10:00", "2027-05-01 11:00", false, "a Saturday that is a holiday"),
        ("2027-01-12 10:00", "2027-01-12 11:00", true, "the Tuesday after"),
        ("2027-04-10 12:00", "2027-04-10 13:00", true, "Saturday morning until 13:00"),
        ("2027-04-10 12:30", "2027-04-10 13:30", false, "past Saturday's closing time"),
        ("2027-04-11 10:00", "2027-04-11 11:00", false, "a Sunday"),
    ];
    for (start, end, open, what) in cases {
        let result = f.schedule(&f.admin, f.session_at(&[&e], SALLE_A, start, end).await).await;
        if open {
            result.unwrap_or_else(|err| panic!("{what}: expected open, got {err:?}"));
        } else {
            let status = assert_refused(result, Code::FailedPrecondition, "OUTSIDE_OPENING_HOURS", what);
            assert!(!status.message().is_empty());
        }
    }
    // Remote sessions have no opening hours.
    for (start, end) in [("2027-01-11 10:00", "2027-01-11 11:00"), ("2027-04-11 20:00", "2027-04-11 21:00")] {
        f.schedule(&f.admin, f.session_at(&[&e], "", start, end).await).await.unwrap_or_else(|err| panic!("remote {start}: {err:?}"));
    }
    assert_eq!(f.count("SELECT count(*) FROM coaching.sessions").await, 4);
}

#[tokio::test]
async fn a_room_seats_the_participants_and_the_coach() {
    let f = fresh().await;
    f.coach("oujda_cefa", &["fr"], 40).await;
    let three = f.engagement("collective_startup", "oujda", 3).await;
    let four = f.engagement("collective_startup", "oujda", 4).await;
    let pair = f.engagement("individual_startup", "oujda", 2).await;
    let overlapping = engagement_for(&f, &[pair.beneficiaries[0].clone(), new_applicant()]).await;
    let other_pair = f.engagement("individual_startup", "oujda", 2).await;

    f.schedule(&f.admin, f.session_at(&[&three], SALLE_A, &at("09:00"), &at("10:00")).await)
        .await
        .expect("3 people and the coach in 4 seats");
    let before = f.fingerprint().await;
    let crowded = f.schedule(&f.admin, f.session_at(&[&four], SALLE_A, &at("10:00"), &at("11:00")).await).await;
    assert_refused(crowded, Code::FailedPrecondition, "ROOM_TOO_SMALL", "4 people and the coach in 4 seats");
    let workshop = f.schedule(&f.admin, f.session_at(&[&pair, &other_pair], SALLE_A, &at("10:00"), &at("11:00")).await).await;
    assert_refused(workshop, Code::FailedPrecondition, "ROOM_TOO_SMALL", "two pairs and the coach");
    assert_eq!(f.fingerprint().await, before, "nothing written");

    f.schedule(&f.admin, f.session_at(&[&four], ATELIER, &at("10:00"), &at("11:00")).await).await.expect("the workshop room");
    // A person in both engagements counts once: 3 people and the coach.
    let joint = f
        .schedule(&f.admin, f.session_at(&[&pair, &overlapping], SALLE_A, &at("11:00"), &at("12:00")).await)
        .await
        .expect("the union of the beneficiaries fits");
    assert_eq!(joint.participants.len(), 3, "participants are the union: {:?}", joint.participants);
    assert_eq!(joint.engagements.len(), 2);
    // Remote sessions have no seats to count.
    let big = f.engagement("collective_startup", "oujda", 12).await;
    let crowd = f.schedule(&f.admin, f.session_at(&[&four, &big], "", &at("14:00"), &at("15:00")).await).await.expect("remote");
    assert_eq!(crowd.participants.len(), 16);
}

#[tokio::test]
async fn cancelling_frees_the_coach_the_room_and_the_people() {
    let f = fresh().await;
    let coach = f.coach("oujda_cefa", &["fr"], 40).await;
    let e = f.engagement("individual_startup", "oujda", 2).await;
    let s = f.schedule(&f.admin, f.session_at(&[&e], SALLE_A, &at("10:00"), &at("11:00")).await).await.expect("session");
    assert_double_booked(f.schedule(&f.admin, f.session_at(&[&e], SALLE_A, &at("10:00"), &at("11:00")).await).await, "coach", "taken");

    let cancelled = f.cancel(&coach.jwt, &s.name, "the beneficiaries are ill").await.expect("the coach cancels");
    assert_eq!(session_state(&cancelled), SessionState::Cancelled);
    assert_eq!(cancelled.reason, "the beneficiaries are ill");
    assert_eq!(f.get_session(&f.admin, &s.name).await.expect("read back"), cancelled);
    let events = f.events("coaching.session.cancelled").await;
    assert_eq!(events.len(), 1);
    let body: SessionChanged = payload(&events[0]);
    assert_eq!((body.session.as_str(), body.reason.as_str()), (s.name.as_str(), "the beneficiaries are ill"));

    let again = f.schedule(&f.admin, f.session_at(&[&e], SALLE_A, &at("10:00"), &at("11:00")).await).await.expect("the slot is free again");
    assert_ne!(again.name, s.name);
    assert_refused(f.cancel(&f.admin, &s.name, "twice").await, Code::FailedPrecondition, "INVALID_STATE", "cancelled twice");
    let start = f.local(&at("15:00")).await;
    let moved = f.reschedule(&f.admin, &s.name, start, plus(&start, 3600), "", "later", "").await;
    assert_refused(moved, Code::FailedPrecondition, "INVALID_STATE", "a cancelled session is not moved");
    assert_eq!(f.events("coaching.session.cancelled").await.len(), 1, "no second event");
    assert_eq!(f.events("coaching.session.rescheduled").await.len(), 0);
}

#[tokio::test]
async fn rescheduling_follows_the_same_rules_and_frees_the_old_slot() {
    let f = fresh().await;
    let a = f.coach("oujda_cefa", &["fr"], 40).await;
    let e1 = f.engagement("individual_startup", "oujda", 2).await;
    let e2 = f.engagement("individual_startup", "oujda", 1).await;
    let b = f.coach("oujda_cefa", &["fr"], 40).await;
    let e3 = f.engagement("individual_startup", "oujda", 1).await;
    let e4 = engagement_for(&f, &[e1.beneficiaries[1].clone()]).await;
    let s1 = f.schedule(&f.admin, f.session_at(&[&e1], SALLE_A, &at("10:00"), &at("11:00")).await).await.expect("s1");
    f.schedule(&f.admin, f.session_at(&[&e2], "", &at("14:00"), &at("15:00")).await).await.expect("s2, same coach");
    let fx = &f;
    let t = move |s: &str| {
        let local = at(s);
        async move { fx.local(&local).await }
    };

    let before = f.fingerprint().await;
    let clash = f.reschedule(&f.admin, &s1.name, t("14:30").await, t("15:30").await, "", "afternoon", "").await;
    assert_double_booked(clash, "coach", "onto the coach's other session");
    let early = f.reschedule(&f.admin, &s1.name, t("08:00").await, t("09:00").await, "", "early", "").await;
    assert_refused(early, Code::FailedPrecondition, "OUTSIDE_OPENING_HOURS", "before opening");
    let holiday_start = f.local("2027-05-01 10:00").await;
    let holiday = f.reschedule(&f.admin, &s1.name, holiday_start, plus(&holiday_start, 3600), "", "holiday", "").await;
    assert_refused(holiday, Code::FailedPrecondition, "OUTSIDE_OPENING_HOURS", "onto a closure");
    let stale = f.reschedule(&f.admin, &s1.name, t("12:00").await, t("13:00").await, "", "noon", "v0").await;
    assert_refused(stale, Code::Aborted, "", "a stale etag");
    assert_eq!(f.fingerprint().await, before, "refusals write nothing");

    let moved =
        f.reschedule(&a.jwt, &s1.name, t("12:00").await, t("13:00").await, "", "the coach's request", &s1.etag).await.expect("moved");
    assert_eq!(moved.start_time, Some(t("12:00").await));
    assert_eq!(moved.end_time, Some(t("13:00").await));
    assert_eq!(moved.room, SALLE_A, "an empty room keeps the room");
    assert_eq!(moved.reason, "the coach's request");
    assert_ne!(moved.etag, s1.etag);
    assert_eq!(session_state(&moved), SessionState::Scheduled);

    // The old slot is free for the coach, the room and the people; the new one is taken for all three.
    f.schedule(&f.admin, f.session_at(&[&e2], SALLE_A, &at("10:00"), &at("11:00")).await).await.expect("coach and room free at 10:00");
    f.schedule(&f.admin, led_by(f.session_at(&[&e4], "", &at("10:30"), &at("11:00")).await, &b))
        .await
        .expect("the person is free at 10:30");
    let person = f.schedule(&f.admin, led_by(f.session_at(&[&e4], "", &at("12:30"), &at("12:45")).await, &b)).await;
    assert_double_booked(person, "participants", "the person is busy at 12:30 now");
    let room = f.schedule(&f.admin, led_by(f.session_at(&[&e3], SALLE_A, &at("12:30"), &at("12:45")).await, &b)).await;
    assert_double_booked(room, "room", "the room is busy at 12:30 now");

    // Another room at the same time frees salle_a.
    let atelier =
        f.reschedule(&f.admin, &s1.name, t("12:00").await, t("13:00").await, ATELIER, "bigger room", "").await.expect("room change");
    assert_eq!(atelier.room, ATELIER);
    f.schedule(&f.admin, led_by(f.session_at(&[&e3], SALLE_A, &at("12:00"), &at("13:00")).await, &b))
        .await
        .expect("salle_a is free at noon");
    assert_eq!(f.events("coaching.session.rescheduled").await.len(), 2);
    assert_eq!(f.audit("coaching.RescheduleSession", &s1.name).await.len(), 2);
}

#[tokio::test]
async fn attendance_makes_a_session_held_and_its_hours_count() {
    let f = fresh().await;
    let coach = f.coach("oujda_cefa", &["fr"], 40).await;
    let e = f.engagement("individual_startup", "oujda", 2).await;
    let partner = f.engagement("individual_startup", "oujda", 1).await;
    let (p0, p1) = (e.beneficiaries[0].clone(), e.beneficiaries[1].clone());

    let past = f.schedule(&f.admin, f.past_session(&e, 30, 90)).await.expect("a session scheduled after the fact");
    let future = f.schedule(&f.admin, session_in_days(&e, 3, 120)).await.expect("a future session");
    let before = f.fingerprint().await;
    let stranger = new_applicant();
    let unknown = f.attend(&coach.jwt, &past.name, &[(&p0, true), (&stranger, true)], "").await;
    let status = assert_refused(unknown, Code::InvalidArgument, "", "someone who is not a participant");
    assert_eq!(fields(&status), ["attendance[1].applicant"]);
    let early = f.attend(&coach.jwt, &future.name, &[(&p0, true)], "").await;
    assert_refused(early, Code::FailedPrecondition, "NOT_STARTED", "a session that has not started");
    assert_eq!(f.fingerprint().await, before, "refusals write nothing");

    let held = f.attend(&coach.jwt, &past.name, &[(&p0, true), (&p1, false)], "Worked on the cash-flow plan").await.expect("held");
    assert_eq!(session_state(&held), SessionState::Held);
    assert_eq!(held.notes, "Worked on the cash-flow plan");
    let mut marks: Vec<(String, bool)> = held.attendance.iter().map(|a| (a.applicant.clone(), a.present)).collect();
    marks.sort();
    let mut expected = vec![(p0.clone(), true), (p1.clone(), false)];
    expected.sort();
    assert_eq!(marks, expected);
    assert_eq!(f.get_session(&f.admin, &past.name).await.expect("read back"), held);
    assert_eq!(f.audit("coaching.RecordAttendance", &past.name).await.len(), 1);
    assert_eq!(f.get_engagement(&f.admin, &e.name).await.expect("e").hours_used, 1.5, "90 minutes held; the future session does not count");

    // A held workshop counts for every engagement in it; a cancelled one for none.
    let workshop = f.schedule(&f.admin, session_message_for(&[&e, &partner], f.past_session(&e, 20, 60))).await.expect("workshop");
    f.attend(&f.admin, &workshop.name, &[(&p0, true), (&p1, true), (&partner.beneficiaries[0], true)], "").await.expect("held by staff");
    let dropped = f.schedule(&f.admin, f.past_session(&e, 10, 120)).await.expect("another");
    f.cancel(&f.admin, &dropped.name, "nobody came").await.expect("cancelled");
    let cancelled = f.attend(&coach.jwt, &dropped.name, &[(&p0, true)], "").await;
    assert_refused(cancelled, Code::FailedPrecondition, "", "attendance of a cancelled session");
    assert_eq!(f.get_engagement(&f.admin, &e.name).await.expect("e").hours_used, 2.5);
    assert_eq!(f.get_engagement(&f.admin, &partner.name).await.expect("partner").hours_used, 1.0);
}

/// A remote session of `engagement` in `days` days, lasting `minutes`.
fn session_in_days(engagement: &Engagement, days: i64, minutes: i64) -> Session {
    let start = common::timestamp_in(days * 86_400);
    common::session_message(&[engagement], "", start, plus(&start, minutes * 60))
}

fn session_message_for(engagements: &[&Engagement], template: Session) -> Session {
    Session { engagements: engagements.iter().map(|e| e.name.clone()).collect(), ..template }
}

#[tokio::test]
async fn every_change_is_announced_with_the_session() {
    let f = fresh().await;
    let coach = f.coach("oujda_cefa", &["fr"], 40).await;
    let e = f.engagement("collective_startup", "oujda", 3).await;
    let s = f.schedule(&f.admin, f.session_at(&[&e], SALLE_A, &at("10:00"), &at("11:00")).await).await.expect("scheduled");
    let start = f.local(&at("14:00")).await;
    let moved = f.reschedule(&f.admin, &s.name, start, plus(&start, 5400), "", "the room was double-used", "").await.expect("moved");
    f.cancel(&f.admin, &s.name, "the team withdrew").await.expect("cancelled");

    let kinds = ["coaching.session.scheduled", "coaching.session.rescheduled", "coaching.session.cancelled"];
    let mut seqs = Vec::new();
    for kind in kinds {
        let events = f.events(kind).await;
        assert_eq!(events.len(), 1, "{kind}: one event");
        let event = &events[0];
        assert_eq!(event.source, "coaching");
        assert_eq!(event.subject, s.name);
        assert_eq!(event.payload.as_ref().expect("payload").type_url, "type.googleapis.com/work4life.coaching.v1.SessionChanged");
        let body: SessionChanged = payload(event);
        assert_eq!(body.session, s.name, "{kind}");
        assert_eq!(body.coach, coach.name(), "{kind}");
        let mut people = body.participants.clone();
        people.sort();
        let mut expected = e.beneficiaries.clone();
        expected.sort();
        assert_eq!(people, expected, "{kind}: participants");
        assert_eq!(body.room, SALLE_A, "{kind}");
        assert_eq!(body.time_zone, "Africa/Casablanca", "{kind}");
        match kind {
            "coaching.session.scheduled" => {
                assert_eq!((body.start_time, body.end_time), (s.start_time, s.end_time));
                assert!(body.reason.is_empty());
            }
            "coaching.session.rescheduled" => {
                assert_eq!((body.start_time, body.end_time), (moved.start_time, moved.end_time), "the new times");
                assert_eq!(body.reason, "the room was double-used");
            }
            _ => assert_eq!(body.reason, "the team withdrew"),
        }
        seqs.push(f.count(&format!("SELECT seq FROM coaching.outbox WHERE event_id = '{}'", event.id)).await);
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in the order of the changes: {seqs:?}");
}

#[tokio::test]
async fn scheduling_is_idempotent_on_request_id() {
    let f = fresh().await;
    f.coach("oujda_cefa", &["fr"], 40).await;
    let e = f.engagement("individual_startup", "oujda", 1).await;
    let session = f.session_at(&[&e], SALLE_A, &at("10:00"), &at("11:00")).await;
    let request = ScheduleSessionRequest { session: Some(session.clone()), request_id: rid() };
    let mut c = f.client().await;
    let first = c.schedule_session(bearer(request.clone(), &f.admin)).await.expect("first").into_inner();
    let retry = c.schedule_session(bearer(request.clone(), &f.admin)).await.expect("a retry is not double-booked").into_inner();
    assert_eq!(retry, first, "the retry answers the first session");
    assert_eq!(f.count("SELECT count(*) FROM coaching.sessions").await, 1);
    assert_eq!(f.events("coaching.session.scheduled").await.len(), 1);

    // Retries racing each other: one effect, every caller answered with it.
    let concurrent =
        ScheduleSessionRequest { session: Some(f.session_at(&[&e], SALLE_A, &at("13:00"), &at("14:00")).await), request_id: rid() };
    let answers = join_all((0..8).map(|_| {
        let mut c = c.clone();
        let request = concurrent.clone();
        let jwt = f.admin.clone();
        async move { c.schedule_session(bearer(request, &jwt)).await.map(|r| r.into_inner()) }
    }))
    .await;
    let names: std::collections::BTreeSet<String> =
        answers.into_iter().map(|a| a.expect("every retry is answered").session.expect("session").name).collect();
    assert_eq!(names.len(), 1, "one session for one request id: {names:?}");
    assert_eq!(f.count("SELECT count(*) FROM coaching.sessions").await, 2);

    let moved = Session { start_time: Some(f.local(&at("15:00")).await), end_time: Some(f.local(&at("16:00")).await), ..session };
    let reused = c.schedule_session(bearer(ScheduleSessionRequest { session: Some(moved), ..request }, &f.admin)).await;
    let status = assert_refused(reused, Code::InvalidArgument, "", "the request id of another request");
    assert_eq!(fields(&status), ["request_id"]);
}

#[tokio::test]
async fn sessions_are_listed_by_coach_engagement_room_and_period() {
    let f = fresh().await;
    let a = f.coach("oujda_cefa", &["fr"], 40).await;
    let e1 = f.engagement("individual_startup", "oujda", 1).await;
    let b = f.coach("oujda_cefa", &["fr"], 40).await;
    let e2 = f.engagement("individual_startup", "oujda", 1).await;
    assert_eq!((e1.coach.clone(), e2.coach.clone()), (a.name(), b.name()));
    let s3 = f.schedule(&f.admin, f.session_at(&[&e1], SALLE_A, "2027-04-08 10:00", "2027-04-08 11:00").await).await.expect("s3");
    let s1 = f.schedule(&f.admin, f.session_at(&[&e1], "", &at("09:00"), &at("10:00")).await).await.expect("s1");
    let s2 = f.schedule(&f.admin, f.session_at(&[&e2], SALLE_A, &at("10:00"), &at("11:00")).await).await.expect("s2");
    let mut c = f.client().await;
    let list = |r: ListSessionsRequest| {
        let mut c = c.clone();
        let jwt = f.admin.clone();
        async move {
            c.list_sessions(bearer(r, &jwt)).await.expect("list").into_inner().sessions.into_iter().map(|s| s.name).collect::<Vec<_>>()
        }
    };
    assert_eq!(list(ListSessionsRequest::default()).await, [s1.name.clone(), s2.name.clone(), s3.name.clone()], "by start time");
    assert_eq!(list(ListSessionsRequest { coach: a.name(), ..Default::default() }).await, [s1.name.clone(), s3.name.clone()]);
    assert_eq!(list(ListSessionsRequest { engagement: e2.name.clone(), ..Default::default() }).await, [s2.name.as_str()]);
    assert_eq!(list(ListSessionsRequest { room: SALLE_A.into(), ..Default::default() }).await, [s2.name.clone(), s3.name.clone()]);
    let period = ListSessionsRequest {
        start_after: Some(f.local(&at("10:00")).await),
        start_before: Some(f.local("2027-04-08 10:00").await),
        ..Default::default()
    };
    assert_eq!(list(period).await, [s2.name.as_str()], "start_after inclusive, start_before exclusive");

    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_sessions(bearer(ListSessionsRequest { page_size: 1, page_token: token.clone(), ..Default::default() }, &f.admin))
            .await
            .expect("page")
            .into_inner();
        names.extend(page.sessions.into_iter().map(|s| s.name));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(names, [s1.name, s2.name, s3.name], "pages of one");
}

#[tokio::test]
async fn eight_sessions_moved_at_once_onto_the_same_slot_one_wins() {
    let f = fresh().await;
    f.coach("oujda_cefa", &["fr"], 60).await;
    let mut sessions = Vec::new();
    for hour in 9..17 {
        let e = f.engagement("individual_startup", "oujda", 1).await;
        let start = format!("2027-04-08 {hour:02}:00");
        let end = format!("2027-04-08 {hour:02}:45");
        sessions.push(f.schedule(&f.admin, f.session_at(&[&e], "", &start, &end).await).await.expect("session"));
    }
    let start = f.local(&at("10:00")).await;
    let results =
        join_all(sessions.iter().map(|s| f.reschedule(&f.admin, &s.name, start, plus(&start, 3600), "", "all together", ""))).await;
    let wins = results.iter().filter(|r| r.is_ok()).count();
    let losers: Vec<String> =
        results.iter().filter_map(|r| r.as_ref().err()).map(|s| format!("{:?} {}", s.code(), common::reason(s))).collect();
    assert_eq!(wins, 1, "exactly one moves; the others: {losers:?}");
    for result in results.into_iter().filter(Result::is_err) {
        assert_double_booked(result, "coach", "a loser of the race");
    }
    assert_eq!(f.events("coaching.session.rescheduled").await.len(), 1);
    let on_slot = f.count(&format!("SELECT count(*) FROM coaching.sessions WHERE lower(during) = to_timestamp({})", start.seconds)).await;
    assert_eq!(on_slot, 1);
}

#[tokio::test]
async fn a_session_lasts_at_most_eight_hours() {
    let f = fresh().await;
    f.coach("oujda_cefa", &["fr"], 60).await;
    let e = f.engagement("individual_startup", "oujda", 1).await;
    let day = f.schedule(&f.admin, f.session_at(&[&e], "", &at("08:00"), &at("16:00")).await).await.expect("eight hours remote");
    assert_eq!(day.end_time.expect("end").seconds - day.start_time.expect("start").seconds, 8 * 3600);
    let longer = f.schedule(&f.admin, f.session_at(&[&e], "", "2027-04-08 08:00", "2027-04-08 16:01").await).await;
    let status = assert_refused(longer, Code::InvalidArgument, "", "eight hours and a minute");
    assert_eq!(fields(&status), ["session.end_time"]);
}
