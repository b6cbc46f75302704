//! Offices (hours in their own time zone, closures, rooms) and coach profiles.

use sqlx::{FromRow, PgConnection};
use time::Time;
use uuid::Uuid;
use work4life_platform::{
    FieldViolation, ServiceError,
    audit::Actor,
    pagination::{next_page, page_size},
    wire::{format_date, gather, parse_date, parse_name, refuse_if_any},
};
use work4life_proto::coaching::{Coach, Expertise, Office, OpeningHours, Room};

use crate::{Coaching, scope::Scope};

/// `HH:MM` (24-hour) as a time of day.
fn parse_hh_mm(raw: &str) -> Option<Time> {
    let (h, m) = raw.trim().split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    Time::from_hms(h.parse().ok()?, m.parse().ok()?, 0).ok()
}

fn hh_mm(t: Time) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

#[derive(Debug, Clone, FromRow)]
struct OfficeRow {
    code: String,
    name: String,
    zone: String,
    operator: String,
    address: String,
    time_zone: String,
}

/// The code in `offices/{code}`, or INVALID_ARGUMENT on `field`.
pub fn office_code(field: &str, name: &str) -> Result<String, ServiceError> {
    name.strip_prefix("offices/")
        .filter(|c| !c.is_empty() && !c.contains('/'))
        .map(str::to_string)
        .ok_or_else(|| ServiceError::invalid(field, "must be offices/<code>"))
}

/// `(office, room)` in `offices/{office}/rooms/{room}`, or INVALID_ARGUMENT on `field`.
pub fn room_name(field: &str, name: &str) -> Result<(String, String), ServiceError> {
    name.strip_prefix("offices/")
        .and_then(|rest| rest.split_once("/rooms/"))
        .filter(|(o, r)| !o.is_empty() && !r.is_empty() && !r.contains('/'))
        .map(|(o, r)| (o.to_string(), r.to_string()))
        .ok_or_else(|| ServiceError::invalid(field, "must be offices/<office>/rooms/<room>"))
}

/// Expertise as stored and on the wire.
const EXPERTISE: [(Expertise, &str); 5] = [
    (Expertise::BusinessPlan, "business_plan"),
    (Expertise::LegalRegistration, "legal_registration"),
    (Expertise::Marketing, "marketing"),
    (Expertise::Accounting, "accounting"),
    (Expertise::LabourLaw, "labour_law"),
];

#[derive(Debug, Clone, FromRow)]
struct CoachRow {
    account_id: Uuid,
    display_name: String,
    office_code: String,
    zone: String,
    languages: Vec<String>,
    expertise: Vec<String>,
    weekly_hours: i32,
    active_engagements: i64,
}

const COACH_SELECT: &str = "SELECT c.account_id, c.display_name, c.office_code, o.zone, c.languages, c.expertise, c.weekly_hours, \
     (SELECT count(*) FROM engagements e WHERE e.coach_id = c.account_id AND e.state = 'active') AS active_engagements \
     FROM coaches c JOIN offices o ON o.code = c.office_code";

fn coach(row: CoachRow) -> Coach {
    Coach {
        name: format!("coaches/{}", row.account_id),
        account: format!("accounts/{}", row.account_id),
        display_name: row.display_name,
        office: format!("offices/{}", row.office_code),
        zone: row.zone,
        languages: row.languages,
        expertise: row.expertise.iter().filter_map(|e| EXPERTISE.iter().find(|(_, c)| c == e).map(|(w, _)| *w as i32)).collect(),
        weekly_hours: row.weekly_hours,
        active_engagements: row.active_engagements as i32,
    }
}

/// Reads a coach.
pub async fn fetch_coach(conn: &mut PgConnection, id: Uuid) -> Result<Coach, ServiceError> {
    sqlx::query_as::<_, CoachRow>(sqlx::AssertSqlSafe(format!("{COACH_SELECT} WHERE c.account_id = $1")))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .map(coach)
        .ok_or_else(|| ServiceError::NotFound(format!("coaches/{id}")))
}

/// An office's zone and time zone, or NOT_FOUND.
pub async fn office_zone(conn: &mut PgConnection, code: &str) -> Result<(String, String), ServiceError> {
    sqlx::query_as("SELECT zone, time_zone FROM offices WHERE code = $1")
        .bind(code)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| ServiceError::NotFound(format!("offices/{code}")))
}

impl Coaching {
    async fn office(&self, conn: &mut PgConnection, row: OfficeRow) -> Result<Office, ServiceError> {
        let hours: Vec<(i32, Time, Time)> =
            sqlx::query_as("SELECT weekday, opens, closes FROM office_hours WHERE office_code = $1 ORDER BY weekday")
                .bind(&row.code)
                .fetch_all(&mut *conn)
                .await?;
        let closures: Vec<time::Date> = sqlx::query_scalar("SELECT day FROM office_closures WHERE office_code = $1 ORDER BY day")
            .bind(&row.code)
            .fetch_all(&mut *conn)
            .await?;
        let rooms: Vec<(String, String, i32)> =
            sqlx::query_as("SELECT code, name, capacity FROM rooms WHERE office_code = $1 ORDER BY code")
                .bind(&row.code)
                .fetch_all(&mut *conn)
                .await?;
        Ok(Office {
            name: format!("offices/{}", row.code),
            display_name: row.name,
            zone: row.zone,
            operator: row.operator,
            address: row.address,
            time_zone: row.time_zone,
            opening_hours: hours.into_iter().map(|(weekday, o, c)| OpeningHours { weekday, open: hh_mm(o), close: hh_mm(c) }).collect(),
            closures: closures.into_iter().map(format_date).collect(),
            rooms: rooms
                .into_iter()
                .map(|(code, name, capacity)| Room { name: format!("offices/{}/rooms/{code}", row.code), display_name: name, capacity })
                .collect(),
        })
    }

    /// GetOffice.
    pub async fn get_office(&self, name: &str) -> Result<Office, ServiceError> {
        let code = office_code("name", name)?;
        let mut conn = self.pool.acquire().await?;
        let row = sqlx::query_as::<_, OfficeRow>("SELECT code, name, zone, operator, address, time_zone FROM offices WHERE code = $1")
            .bind(&code)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| ServiceError::NotFound(name.to_string()))?;
        self.office(&mut conn, row).await
    }

    /// ListOffices, by code.
    pub async fn list_offices(&self, zone: &str, requested: i32, token: &str) -> Result<(Vec<Office>, String), ServiceError> {
        let mut v = Vec::new();
        let size = gather(&mut v, page_size(requested)).unwrap_or_default();
        let filter = format!("offices|{zone}");
        let after: Option<String> = gather(&mut v, self.page_tokens.decode(token, &filter)).flatten();
        refuse_if_any(v)?;
        let mut conn = self.pool.acquire().await?;
        let rows = sqlx::query_as::<_, OfficeRow>(
            "SELECT code, name, zone, operator, address, time_zone FROM offices WHERE code > $1 AND ($2 = '' OR zone = $2) ORDER BY code LIMIT $3",
        )
        .bind(after.unwrap_or_default())
        .bind(zone)
        .bind(i64::from(size) + 1)
        .fetch_all(&mut *conn)
        .await?;
        let (rows, next) = next_page(rows, size, &self.page_tokens, &filter, |r| r.code.clone());
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.office(&mut conn, row).await?);
        }
        Ok((out, next))
    }

    /// UpdateOfficeHours: replaces the weekly hours and closures.
    pub async fn update_office_hours(
        &self,
        actor: &Actor<'_>,
        name: &str,
        hours: &[OpeningHours],
        closures: &[String],
    ) -> Result<Office, ServiceError> {
        let mut v = Vec::new();
        let code = gather(&mut v, office_code("name", name));
        let mut parsed = Vec::new();
        for (i, h) in hours.iter().enumerate() {
            let open = parse_hh_mm(&h.open);
            let close = parse_hh_mm(&h.close);
            if !(1..=7).contains(&h.weekday) || hours[..i].iter().any(|o| o.weekday == h.weekday) {
                v.push(FieldViolation::new(format!("opening_hours[{i}].weekday"), "must be 1 (Monday) to 7 (Sunday), once each"));
            }
            if open.is_none() {
                v.push(FieldViolation::new(format!("opening_hours[{i}].open"), "must be HH:MM"));
            }
            match (open, close) {
                (_, None) => v.push(FieldViolation::new(format!("opening_hours[{i}].close"), "must be HH:MM")),
                (Some(o), Some(c)) if c > o => parsed.push((h.weekday, o, c)),
                (Some(_), Some(_)) => v.push(FieldViolation::new(format!("opening_hours[{i}].close"), "must be after open")),
                (None, Some(_)) => {}
            }
        }
        let days: Vec<time::Date> =
            closures.iter().enumerate().filter_map(|(i, d)| parse_date(&format!("closures[{i}]"), d).map_err(|e| v.push(e)).ok()).collect();
        refuse_if_any(v)?;
        let code = code.unwrap_or_default();
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let (zone, _) = office_zone(&mut tx, &code).await?;
        if !Scope::managers(actor.principal).covers(&zone, None) {
            return Err(ServiceError::PermissionDenied("program managers of the office's zone and admins set its hours"));
        }
        sqlx::query("DELETE FROM office_hours WHERE office_code = $1").bind(&code).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM office_closures WHERE office_code = $1").bind(&code).execute(&mut *tx).await?;
        for (weekday, open, close) in parsed {
            sqlx::query("INSERT INTO office_hours (office_code, weekday, opens, closes) VALUES ($1, $2, $3, $4)")
                .bind(&code)
                .bind(weekday)
                .bind(open)
                .bind(close)
                .execute(&mut *tx)
                .await?;
        }
        for day in days {
            sqlx::query("INSERT INTO office_closures (office_code, day) VALUES ($1, $2) ON CONFLICT DO NOTHING")
                .bind(&code)
                .bind(day)
                .execute(&mut *tx)
                .await?;
        }
        actor
            .record(&mut tx, "coaching.UpdateOfficeHours", format!("offices/{code}"), serde_json::json!({ "closures": closures.len() }))
            .await?;
        let row = sqlx::query_as::<_, OfficeRow>("SELECT code, name, zone, operator, address, time_zone FROM offices WHERE code = $1")
            .bind(&code)
            .fetch_one(&mut *tx)
            .await?;
        let office = self.office(&mut tx, row).await?;
        tx.commit().await?;
        Ok(office)
    }

    /// CreateCoach: the profile of a staff account with the coach role.
    pub async fn create_coach(&self, actor: &Actor<'_>, account: &str, c: Option<&Coach>) -> Result<Coach, ServiceError> {
        let mut v = Vec::new();
        let id = gather(&mut v, parse_name("account", "accounts", account));
        let Some(c) = c else {
            v.push(FieldViolation::new("coach", "is required"));
            return Err(ServiceError::InvalidArgument(v));
        };
        let office = gather(&mut v, office_code("coach.office", &c.office));
        if c.display_name.trim().is_empty() || c.display_name.chars().count() > 200 || c.display_name.chars().any(char::is_control) {
            v.push(FieldViolation::new("coach.display_name", "is required, at most 200 characters"));
        }
        if c.languages.is_empty() {
            v.push(FieldViolation::new("coach.languages", "needs at least one language (fr, ar, en, ...)"));
        }
        for (i, l) in c.languages.iter().enumerate() {
            if !(2..=3).contains(&l.len()) || !l.bytes().all(|b| b.is_ascii_lowercase()) {
                v.push(FieldViolation::new(format!("coach.languages[{i}]"), "must be a language code such as fr, ar or en"));
            }
        }
        let mut expertise = Vec::new();
        for (i, e) in c.expertise.iter().enumerate() {
            match EXPERTISE.iter().find(|(w, _)| *w as i32 == *e) {
                Some((_, code)) => expertise.push(*code),
                None => v.push(FieldViolation::new(format!("coach.expertise[{i}]"), "is not an expertise")),
            }
        }
        if !(1..=60).contains(&c.weekly_hours) {
            v.push(FieldViolation::new("coach.weekly_hours", "must be 1 to 60"));
        }
        let (Some(id), Some(office), true) = (id, office, v.is_empty()) else { return Err(ServiceError::InvalidArgument(v)) };
        let mut tx = work4life_platform::db::begin(&self.pool).await?;
        let (zone, _) = match office_zone(&mut tx, &office).await {
            Ok(z) => z,
            Err(ServiceError::NotFound(_)) => return Err(ServiceError::invalid("coach.office", "no such office")),
            Err(e) => return Err(e),
        };
        if !Scope::managers(actor.principal).covers(&zone, None) {
            return Err(ServiceError::PermissionDenied("program managers of the office's zone and admins record coaches"));
        }
        sqlx::query(
            "INSERT INTO coaches (account_id, display_name, office_code, languages, expertise, weekly_hours) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(id)
        .bind(c.display_name.trim())
        .bind(&office)
        .bind(&c.languages)
        .bind(&expertise)
        .bind(c.weekly_hours)
        .execute(&mut *tx)
        .await
        .map_err(|e| match e.as_database_error().and_then(|d| d.constraint()) {
            Some("coaches_pkey") => ServiceError::AlreadyExists {
                resource: format!("coaches/{id}"),
                reason: "COACH_EXISTS",
                metadata: Default::default(),
            },
            _ => e.into(),
        })?;
        actor.record(&mut tx, "coaching.CreateCoach", format!("coaches/{id}"), serde_json::json!({ "office": office })).await?;
        let out = fetch_coach(&mut tx, id).await?;
        tx.commit().await?;
        Ok(out)
    }

    /// GetCoach.
    pub async fn get_coach(&self, name: &str) -> Result<Coach, ServiceError> {
        let id = parse_name("name", "coaches", name)?;
        fetch_coach(&mut *self.pool.acquire().await?, id).await
    }

    /// ListCoaches by office or zone.
    pub async fn list_coaches(&self, office: &str, zone: &str, requested: i32, token: &str) -> Result<(Vec<Coach>, String), ServiceError> {
        let mut v = Vec::new();
        let size = gather(&mut v, page_size(requested)).unwrap_or_default();
        let office = if office.is_empty() { Some(String::new()) } else { gather(&mut v, office_code("office", office)) };
        let filter = format!("coaches|{}|{zone}", office.clone().unwrap_or_default());
        let after: Option<Uuid> = gather(&mut v, self.page_tokens.decode(token, &filter)).flatten();
        refuse_if_any(v)?;
        let rows = sqlx::query_as::<_, CoachRow>(sqlx::AssertSqlSafe(format!(
            "{COACH_SELECT} WHERE c.account_id > $1 AND ($2 = '' OR c.office_code = $2) AND ($3 = '' OR o.zone = $3) \
             ORDER BY c.account_id LIMIT $4"
        )))
        .bind(after.unwrap_or_default())
        .bind(office.unwrap_or_default())
        .bind(zone)
        .bind(i64::from(size) + 1)
        .fetch_all(&self.pool)
        .await?;
        let (rows, next) = next_page(rows, size, &self.page_tokens, &filter, |r| r.account_id);
        Ok((rows.into_iter().map(coach).collect(), next))
    }
}
