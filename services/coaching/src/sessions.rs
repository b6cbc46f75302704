//! Sessions: scheduled in a room (within the office's opening hours, in its own time zone) or
//! remote, for one engagement or a workshop of several. A coach, a room or a participant is
//! never double-booked: exclusion constraints over time ranges refuse the overlap inside the
//! database, whatever the interleaving of concurrent requests.

use std::collections::HashMap;

use sqlx::{FromRow, PgConnection, Postgres, QueryBuilder, postgres::types::PgRange};
use time::OffsetDateTime;
use uuid::Uuid;
use work4life_platform::{
    FieldViolation, ServiceError,
    audit::Actor,
    outbox,
    pagination::{next_page, page_size},
    scope::account_of,
    wire::{check_etag, etag, from_timestamp, gather, parse_name, refuse_if_any, timestamp},
};
use work4life_proto::coaching::{Attendance, ListSessionsRequest, RescheduleSessionRequest, Session, SessionChanged, SessionState};

use crate::{
    Coaching,
    engagements::{self, EngagementRow},
    offices::{office_zone, room_name},
    scope::Scope,
};

#[derive(Debug, Clone, FromRow)]
struct SessionRow {
    id: Uuid,
    coach_id: Uuid,
    office_code: Option<String>,
    room_code: Option<String>,
    starts: OffsetDateTime,
    ends: OffsetDateTime,
    topic: String,
    state: String,
    notes: String,
    reason: String,
    version: i64,
}

const SELECT: &str = "SELECT s.id, s.coach_id, s.office_code, s.room_code, lower(s.during) AS starts, upper(s.during) AS ends, s.topic, s.state, s.notes, \
     s.reason, s.version FROM sessions s";

/// A ScheduleSession request, validated.
#[derive(Clone)]
pub struct ValidSession {
    ids: Vec<Uuid>,
    coach: Option<Uuid>,
    slot: Slot,
}

/// Validates every field of a session to schedule at once (paths under `session.`), adding
/// them to `v`.
pub fn validate_session(v: &mut Vec<FieldViolation>, s: &Session) -> Option<ValidSession> {
    if s.engagements.is_empty() {
        v.push(FieldViolation::new("session.engagements", "needs at least one engagement"));
    }
    let ids: Vec<Uuid> = s
        .engagements
        .iter()
        .enumerate()
        .filter_map(|(i, e)| gather(v, parse_name(&format!("session.engagements[{i}]"), "engagements", e)))
        .collect();
    let coach = if s.coach.is_empty() { None } else { gather(v, parse_name("session.coach", "coaches", &s.coach)) };
    let slot = validate_slot(v, "session.", &s.room, &s.start_time, &s.end_time);
    if s.topic.chars().count() > 200 || s.topic.chars().any(char::is_control) {
        v.push(FieldViolation::new("session.topic", "must be at most 200 characters"));
    }
    if !v.is_empty() {
        return None;
    }
    Some(ValidSession { ids, coach, slot: slot? })
}

/// A session's place and time, validated.
#[derive(Clone)]
struct Slot {
    room: Option<(String, String)>,
    starts: OffsetDateTime,
    ends: OffsetDateTime,
}

fn validate_slot(
    v: &mut Vec<FieldViolation>,
    prefix: &str,
    room: &str,
    start: &Option<prost_types::Timestamp>,
    end: &Option<prost_types::Timestamp>,
) -> Option<Slot> {
    let room = if room.is_empty() { Some(None) } else { gather(v, room_name(&format!("{prefix}room"), room)).map(Some) };
    let mut time_of = |field: String, t: &Option<prost_types::Timestamp>| match t {
        None => {
            v.push(FieldViolation::new(field, "is required"));
            None
        }
        Some(t) => gather(v, from_timestamp(&field, t)),
    };
    let starts = time_of(format!("{prefix}start_time"), start);
    let ends = time_of(format!("{prefix}end_time"), end);
    if let (Some(s), Some(e)) = (starts, ends) {
        if e <= s {
            v.push(FieldViolation::new(format!("{prefix}end_time"), "must be after start_time"));
            return None;
        }
        if e - s > time::Duration::hours(8) {
            v.push(FieldViolation::new(format!("{prefix}end_time"), "a session lasts at most 8 hours"));
            return None;
        }
    }
    Some(Slot { room: room?, starts: starts?, ends: ends? })
}

fn double_booked(err: sqlx::Error) -> ServiceError {
    let Some(db) = err.as_database_error() else { return err.into() };
    if db.code().as_deref() != Some("23P01") {
        return err.into();
    }
    let (who, field) = match db.constraint() {
        Some("sessions_coach_free") => ("the coach", "coach"),
        Some("sessions_room_free") => ("the room", "room"),
        _ => ("a participant", "participants"),
    };
    ServiceError::AlreadyExists {
        resource: format!("a session at that time for {who}"),
        reason: "DOUBLE_BOOKED",
        metadata: HashMap::from([("field".to_string(), field.to_string())]),
    }
}

impl Coaching {
    async fn sessions(&self, conn: &mut PgConnection, rows: &[SessionRow]) -> Result<Vec<Session>, ServiceError> {
        let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
        let engagements: Vec<(Uuid, Uuid)> =
            sqlx::query_as("SELECT session_id, engagement_id FROM session_engagements WHERE session_id = ANY($1) ORDER BY engagement_id")
                .bind(&ids)
                .fetch_all(&mut *conn)
                .await?;
        let participants: Vec<(Uuid, Uuid, Option<bool>)> = sqlx::query_as(
            "SELECT session_id, applicant_id, present FROM session_participants WHERE session_id = ANY($1) ORDER BY applicant_id",
        )
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Session {
                name: format!("sessions/{}", r.id),
                engagements: engagements.iter().filter(|e| e.0 == r.id).map(|e| format!("engagements/{}", e.1)).collect(),
                coach: format!("coaches/{}", r.coach_id),
                room: match (&r.office_code, &r.room_code) {
                    (Some(o), Some(room)) => format!("offices/{o}/rooms/{room}"),
                    _ => String::new(),
                },
                start_time: Some(timestamp(r.starts)),
                end_time: Some(timestamp(r.ends)),
                topic: r.topic.clone(),
                state: match r.state.as_str() {
                    "scheduled" => SessionState::Scheduled,
                    "held" => SessionState::Held,
                    _ => SessionState::Cancelled,
                } as i32,
                participants: participants.iter().filter(|p| p.0 == r.id).map(|p| format!("applicants/{}", p.1)).collect(),
                attendance: participants
                    .iter()
                    .filter(|p| p.0 == r.id && p.2.is_some())
                    .map(|p| Attendance { applicant: format!("applicants/{}", p.1), present: p.2.unwrap_or_default() })
                    .collect(),
                notes: r.notes.clone(),
                reason: r.reason.clone(),
                etag: etag(r.version),
            })
            .collect())
    }

    async fn fetch_session(&self, conn: &mut PgConnection, scope: &Scope, id: Uuid, lock: bool) -> Result<SessionRow, ServiceError> {
        let mut qb = QueryBuilder::<Postgres>::new(format!("{SELECT} WHERE s.id = "));
        qb.push_bind(id);
        scope.push_sessions(&mut qb);
        if lock {
            qb.push(" FOR UPDATE OF s");
        }
        qb.build_query_as::<SessionRow>().fetch_optional(conn).await?.ok_or_else(|| ServiceError::NotFound(format!("sessions/{id}")))
    }

    async fn session(&self, conn: &mut PgConnection, id: Uuid) -> Result<Session, ServiceError> {
        let row = self.fetch_session(conn, &Scope::everything(), id, false).await?;
        Ok(self.sessions(conn, &[row]).await?.remove(0))
    }

    /// Refuses a room session outside the office's opening hours (local time) or on a closure day,
    /// or in a room too small; returns the office's time zone ("" when remote).
    async fn check_room(&self, conn: &mut PgConnection, field: &str, slot: &Slot, people: usize) -> Result<String, ServiceError> {
        let Some((office, room)) = &slot.room else { return Ok(String::new()) };
        let (_, tz) = match office_zone(conn, office).await {
            Ok(z) => z,
            Err(ServiceError::NotFound(_)) => return Err(ServiceError::invalid(field, "no such office")),
            Err(e) => return Err(e),
        };
        let capacity: Option<i32> = sqlx::query_scalar("SELECT capacity FROM rooms WHERE office_code = $1 AND code = $2")
            .bind(office)
            .bind(room)
            .fetch_optional(&mut *conn)
            .await?;
        let Some(capacity) = capacity else { return Err(ServiceError::invalid(field, "no such room")) };
        if people > capacity as usize {
            return Err(ServiceError::precondition(
                "ROOM_TOO_SMALL",
                "CAPACITY",
                format!("offices/{office}/rooms/{room}"),
                format!("the room seats {capacity}; the session has {people} participants and a coach"),
            ));
        }
        // PostgreSQL's time zone database knows Casablanca's clock changes: local times are
        // computed there, at the session's own dates.
        let open: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM office_hours h WHERE h.office_code = $1 \
                 AND h.weekday = extract(isodow FROM ($2 AT TIME ZONE $4))::int \
                 AND ($2 AT TIME ZONE $4)::date = ($3 AT TIME ZONE $4)::date \
                 AND ($2 AT TIME ZONE $4)::time >= h.opens AND ($3 AT TIME ZONE $4)::time <= h.closes) \
             AND NOT EXISTS (SELECT 1 FROM office_closures c WHERE c.office_code = $1 AND c.day = ($2 AT TIME ZONE $4)::date)",
        )
        .bind(office)
        .bind(slot.starts)
        .bind(slot.ends)
        .bind(&tz)
        .fetch_one(&mut *conn)
        .await?;
        if !open {
            return Err(ServiceError::precondition(
                "OUTSIDE_OPENING_HOURS",
                "OPENING_HOURS",
                format!("offices/{office}"),
                format!("the office is closed at that time ({tz} local time): see its opening hours and closures"),
            ));
        }
        Ok(tz)
    }

    /// ScheduleSession, in `tx` (the request validated by [`validate_session`]).
    pub async fn schedule(
        &self,
        tx: &mut PgConnection,
        actor: &Actor<'_>,
        s: &Session,
        valid: ValidSession,
    ) -> Result<Session, ServiceError> {
        let ValidSession { ids, coach, slot } = valid;
        let read = Scope::read(actor.principal);
        let mut rows: Vec<EngagementRow> = Vec::new();
        for id in &ids {
            if rows.iter().any(|r| r.id == *id) {
                return Err(ServiceError::invalid("session.engagements", "lists an engagement twice"));
            }
            rows.push(engagements::fetch(tx, &read, *id, false).await?);
        }
        let me = account_of(actor.principal);
        let staff = Scope::staff(actor.principal);
        let allowed = rows
            .iter()
            .all(|r| staff.covers(&r.zone, None) || (actor.principal.has_role("coach") && r.coach_id.is_some() && r.coach_id == me));
        if !allowed {
            return Err(ServiceError::PermissionDenied("staff of the zone and the engagement's coach schedule sessions"));
        }
        if let Some(closed) = rows.iter().find(|r| r.state != "active") {
            return Err(ServiceError::precondition(
                "ENGAGEMENT_CLOSED",
                "STATE",
                format!("engagements/{}", closed.id),
                "the engagement is closed",
            ));
        }
        let Some(coach) = coach.or(rows[0].coach_id) else {
            return Err(ServiceError::invalid("session.coach", "is required: the engagement has no coach"));
        };
        if crate::offices::fetch_coach(tx, coach).await.is_err() {
            return Err(ServiceError::invalid("session.coach", "no such coach"));
        }
        let mut participants: Vec<Uuid> = rows.iter().flat_map(|r| r.beneficiaries.iter().copied()).collect();
        participants.sort();
        participants.dedup();
        let tz = self.check_room(tx, "session.room", &slot, participants.len() + 1).await?;
        let id = Uuid::now_v7();
        let during = PgRange::from(slot.starts..slot.ends);
        sqlx::query(
            "INSERT INTO sessions (id, coach_id, office_code, room_code, during, topic, created_by) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(coach)
        .bind(slot.room.as_ref().map(|r| r.0.clone()))
        .bind(slot.room.as_ref().map(|r| r.1.clone()))
        .bind(during)
        .bind(s.topic.trim())
        .bind(&actor.principal.subject)
        .execute(&mut *tx)
        .await
        .map_err(double_booked)?;
        for e in &ids {
            sqlx::query("INSERT INTO session_engagements (session_id, engagement_id) VALUES ($1, $2)")
                .bind(id)
                .bind(e)
                .execute(&mut *tx)
                .await?;
        }
        for p in &participants {
            sqlx::query("INSERT INTO session_participants (session_id, applicant_id, during) VALUES ($1, $2, $3)")
                .bind(id)
                .bind(p)
                .bind(during)
                .execute(&mut *tx)
                .await
                .map_err(double_booked)?;
        }
        let out = self.session(tx, id).await?;
        self.announce(tx, "coaching.session.scheduled", &out, &tz, "").await?;
        actor
            .record(tx, "coaching.ScheduleSession", out.name.clone(), serde_json::json!({ "room": out.room, "engagements": ids.len() }))
            .await?;
        Ok(out)
    }

    async fn announce(&self, tx: &mut PgConnection, event_type: &str, s: &Session, tz: &str, reason: &str) -> Result<(), ServiceError> {
        let event = SessionChanged {
            session: s.name.clone(),
            coach: s.coach.clone(),
            participants: s.participants.clone(),
            room: s.room.clone(),
            start_time: s.start_time,
            end_time: s.end_time,
            time_zone: if tz.is_empty() { "Africa/Casablanca".into() } else { tz.into() },
            reason: reason.into(),
        };
        outbox::enqueue_message(tx, "coaching", event_type, &s.name, "work4life.coaching.v1.SessionChanged", &event).await?;
        Ok(())
    }

    /// Loads a session the caller may change: staff of its engagements' zones, or its coach.
    async fn changeable(&self, tx: &mut PgConnection, actor: &Actor<'_>, id: Uuid) -> Result<SessionRow, ServiceError> {
        let row = self.fetch_session(tx, &Scope::read(actor.principal), id, true).await?;
        let zones: Vec<String> = sqlx::query_scalar(
            "SELECT e.zone FROM session_engagements se JOIN engagements e ON e.id = se.engagement_id WHERE se.session_id = $1",
        )
        .bind(id)
        .fetch_all(&mut *tx)
        .await?;
        let staff = Scope::staff(actor.principal);
        let coach = actor.principal.has_role("coach") && account_of(actor.principal) == Some(row.coach_id);
        if coach || zones.iter().all(|z| staff.covers(z, None)) {
            return Ok(row);
        }
        Err(ServiceError::PermissionDenied("staff of the zone and the session's coach change sessions"))
    }

    /// GetSession.
    pub async fn get_session(&self, actor: &Actor<'_>, name: &str) -> Result<Session, ServiceError> {
        let id = parse_name("name", "sessions", name)?;
        let mut conn = self.pool.acquire().await?;
        let row = self.fetch_session(&mut conn, &Scope::read(actor.principal), id, false).await?;
        Ok(self.sessions(&mut conn, &[row]).await?.remove(0))
    }

    /// ListSessions, by start time.
    pub async fn list_sessions(&self, actor: &Actor<'_>, r: &ListSessionsRequest) -> Result<(Vec<Session>, String), ServiceError> {
        let mut v = Vec::new();
        let size = gather(&mut v, page_size(r.page_size)).unwrap_or_default();
        let coach = if r.coach.is_empty() { None } else { gather(&mut v, parse_name("coach", "coaches", &r.coach)) };
        let engagement =
            if r.engagement.is_empty() { None } else { gather(&mut v, parse_name("engagement", "engagements", &r.engagement)) };
        let room = if r.room.is_empty() { None } else { gather(&mut v, room_name("room", &r.room)) };
        let after_time = r.start_after.as_ref().and_then(|t| gather(&mut v, from_timestamp("start_after", t)));
        let before_time = r.start_before.as_ref().and_then(|t| gather(&mut v, from_timestamp("start_before", t)));
        let filter = format!("sessions|{}|{}|{}|{:?}|{:?}", r.coach, r.engagement, r.room, r.start_after, r.start_before);
        let after: Option<(OffsetDateTime, Uuid)> = gather(&mut v, self.page_tokens.decode(&r.page_token, &filter)).flatten();
        refuse_if_any(v)?;
        let mut qb = QueryBuilder::<Postgres>::new(format!("{SELECT} WHERE TRUE"));
        if let Some(coach) = coach {
            qb.push(" AND s.coach_id = ").push_bind(coach);
        }
        if let Some(e) = engagement {
            qb.push(" AND s.id IN (SELECT session_id FROM session_engagements WHERE engagement_id = ").push_bind(e).push(")");
        }
        if let Some((office, room)) = room {
            qb.push(" AND s.office_code = ").push_bind(office).push(" AND s.room_code = ").push_bind(room);
        }
        if let Some(t) = after_time {
            qb.push(" AND lower(s.during) >= ").push_bind(t);
        }
        if let Some(t) = before_time {
            qb.push(" AND lower(s.during) < ").push_bind(t);
        }
        Scope::read(actor.principal).push_sessions(&mut qb);
        if let Some((t, id)) = after {
            qb.push(" AND (lower(s.during), s.id) > (").push_bind(t).push(", ").push_bind(id).push(")");
        }
        qb.push(" ORDER BY lower(s.during), s.id LIMIT ").push_bind(i64::from(size) + 1);
        let mut conn = self.pool.acquire().await?;
        let rows = qb.build_query_as::<SessionRow>().fetch_all(&mut *conn).await?;
        let (rows, next) = next_page(rows, size, &self.page_tokens, &filter, |r| (r.starts, r.id));
        Ok((self.sessions(&mut conn, &rows).await?, next))
    }

    /// RescheduleSession: same rules as scheduling, with a reason.
    pub async fn reschedule(&self, actor: &Actor<'_>, r: &RescheduleSessionRequest) -> Result<Session, ServiceError> {
        let (name, room, reason) = (r.name.as_str(), r.room.as_str(), r.reason.as_str());
        let (start, end, etag_sent) = (&r.start_time, &r.end_time, r.etag.as_str());
        let mut v = Vec::new();
        let id = gather(&mut v, parse_name("name", "sessions", name));
        let slot = validate_slot(&mut v, "", room, start, end);
        if reason.trim().is_empty() || reason.chars().any(char::is_control) {
            v.push(FieldViolation::new("reason", "is required"));
        }
        let (Some(id), Some(mut slot), true) = (id, slot, v.is_empty()) else { return Err(ServiceError::InvalidArgument(v)) };
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let row = self.changeable(&mut tx, actor, id).await?;
        if row.state != "scheduled" {
            return Err(ServiceError::precondition("INVALID_STATE", "STATE", name, format!("the session is {}", row.state)));
        }
        check_etag(etag_sent, row.version)?;
        if slot.room.is_none() && room.is_empty() {
            slot.room = row.office_code.clone().zip(row.room_code.clone());
        }
        let people: i64 =
            sqlx::query_scalar("SELECT count(*) FROM session_participants WHERE session_id = $1").bind(id).fetch_one(&mut *tx).await?;
        let tz = self.check_room(&mut tx, "room", &slot, people as usize + 1).await?;
        let during = PgRange::from(slot.starts..slot.ends);
        sqlx::query("UPDATE sessions SET during = $2, office_code = $3, room_code = $4, reason = $5, version = version + 1 WHERE id = $1")
            .bind(id)
            .bind(during)
            .bind(slot.room.as_ref().map(|r| r.0.clone()))
            .bind(slot.room.as_ref().map(|r| r.1.clone()))
            .bind(reason.trim())
            .execute(&mut *tx)
            .await
            .map_err(double_booked)?;
        sqlx::query("UPDATE session_participants SET during = $2 WHERE session_id = $1")
            .bind(id)
            .bind(during)
            .execute(&mut *tx)
            .await
            .map_err(double_booked)?;
        let out = self.session(&mut tx, id).await?;
        self.announce(&mut tx, "coaching.session.rescheduled", &out, &tz, reason.trim()).await?;
        actor.record(&mut tx, "coaching.RescheduleSession", name.into(), serde_json::json!({ "reason": reason.trim() })).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// CancelSession, with a reason: the coach, room and participants are free again.
    pub async fn cancel(&self, actor: &Actor<'_>, name: &str, reason: &str) -> Result<Session, ServiceError> {
        let mut v = Vec::new();
        let id = gather(&mut v, parse_name("name", "sessions", name));
        if reason.trim().is_empty() || reason.chars().any(char::is_control) {
            v.push(FieldViolation::new("reason", "is required"));
        }
        let (Some(id), true) = (id, v.is_empty()) else { return Err(ServiceError::InvalidArgument(v)) };
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let row = self.changeable(&mut tx, actor, id).await?;
        if row.state != "scheduled" {
            return Err(ServiceError::precondition("INVALID_STATE", "STATE", name, format!("the session is {}", row.state)));
        }
        sqlx::query("UPDATE sessions SET state = 'cancelled', reason = $2, version = version + 1 WHERE id = $1")
            .bind(id)
            .bind(reason.trim())
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE session_participants SET active = false WHERE session_id = $1").bind(id).execute(&mut *tx).await?;
        let out = self.session(&mut tx, id).await?;
        let tz = match &row.office_code {
            Some(o) => office_zone(&mut tx, o).await?.1,
            None => String::new(),
        };
        self.announce(&mut tx, "coaching.session.cancelled", &out, &tz, reason.trim()).await?;
        actor.record(&mut tx, "coaching.CancelSession", name.into(), serde_json::json!({ "reason": reason.trim() })).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// RecordAttendance: the session has started; it becomes HELD.
    pub async fn record_attendance(
        &self,
        actor: &Actor<'_>,
        name: &str,
        attendance: &[Attendance],
        notes: &str,
    ) -> Result<Session, ServiceError> {
        let mut v = Vec::new();
        let id = gather(&mut v, parse_name("name", "sessions", name));
        if attendance.is_empty() {
            v.push(FieldViolation::new("attendance", "needs one entry per participant"));
        }
        let marks: Vec<(Uuid, bool)> = attendance
            .iter()
            .enumerate()
            .filter_map(|(i, a)| {
                gather(&mut v, parse_name(&format!("attendance[{i}].applicant"), "applicants", &a.applicant)).map(|id| (id, a.present))
            })
            .collect();
        if notes.chars().count() > 5000 || notes.contains('\0') {
            v.push(FieldViolation::new("notes", "must be at most 5000 characters"));
        }
        let (Some(id), true) = (id, v.is_empty()) else { return Err(ServiceError::InvalidArgument(v)) };
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let row = self.changeable(&mut tx, actor, id).await?;
        if row.state == "cancelled" {
            return Err(ServiceError::precondition("INVALID_STATE", "STATE", name, "the session was cancelled"));
        }
        if row.starts > OffsetDateTime::now_utc() {
            return Err(ServiceError::precondition("NOT_STARTED", "STATE", name, "attendance is recorded once the session has started"));
        }
        let expected: Vec<Uuid> =
            sqlx::query_scalar("SELECT applicant_id FROM session_participants WHERE session_id = $1").bind(id).fetch_all(&mut *tx).await?;
        let unknown: Vec<FieldViolation> = marks
            .iter()
            .enumerate()
            .filter(|(_, (a, _))| !expected.contains(a))
            .map(|(i, _)| FieldViolation::new(format!("attendance[{i}].applicant"), "is not a participant of the session"))
            .collect();
        refuse_if_any(unknown)?;
        for (applicant, present) in &marks {
            sqlx::query("UPDATE session_participants SET present = $3 WHERE session_id = $1 AND applicant_id = $2")
                .bind(id)
                .bind(applicant)
                .bind(present)
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("UPDATE sessions SET state = 'held', notes = $2, version = version + 1 WHERE id = $1")
            .bind(id)
            .bind(notes.trim())
            .execute(&mut *tx)
            .await?;
        actor
            .record(
                &mut tx,
                "coaching.RecordAttendance",
                name.into(),
                serde_json::json!({ "present": marks.iter().filter(|m| m.1).count() }),
            )
            .await?;
        let out = self.session(&mut tx, id).await?;
        tx.commit().await?;
        Ok(out)
    }
}
