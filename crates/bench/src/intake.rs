//! `work4life-bench intake`: the intake service's figures (docs/benchmarks.md, "Intake").
//!
//! The real intake service runs in this process (`host::start`: migrations, seed, outbox relay to
//! Redis, the full stack with token verification) on a scratch database, and is called over
//! loopback gRPC with access tokens signed by a key the host trusts:
//! - `register`: CreateApplicant by zone officers, next to pgbench running the same SQL
//!   (`scripts/bench/register.sql`) against the same database, in alternating rounds;
//! - `submit`: SubmitApplication of drafts made beforehand, next to `scripts/bench/submit.sql`;
//! - `list`: ListApplicants (plain, zone filter, name prefix, phone) on a registry of each
//!   `--applicants` size, the sizes measured in turn so they are compared in one run;
//! - `load`: builds the registry only (kept for a later `--reuse`).
//!
//! Registry rows are made as intake makes them: identifiers sealed by the service's own
//! [`Vault`] (so listing decrypts like production), `name_key` from [`text::name_key`], spread
//! over the four zones and twenty nationalities, time-ordered ids over three years; they are
//! inserted in `UNNEST` batches.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    process::Command as Process,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use anyhow::Context as _;
use clap::ValueEnum;
use hdrhistogram::Histogram;
use rand::{Rng as _, SeedableRng as _, rngs::StdRng};
use sqlx::{Connection as _, PgPool, Postgres};
use time::{Date, OffsetDateTime};
use tokio_util::sync::CancellationToken;
use tonic::{Request, transport::Channel};
use uuid::Uuid;
use work4life_intake::text;
use work4life_platform::{
    auth::{Claims, InMemoryKeySource, RoleBinding, TokenVerifier, signing::SigningKey},
    config::PlatformConfig,
    host::{self, HostOptions, Peers, ServiceContext},
    outbox::{Relay, RelayConfig},
    pagination::PageTokens,
    stack::{AuthPolicy, ServerStack, StackConfig},
    vault::{Lookup, Vault},
};
use work4life_proto::intake::{
    Applicant, Call, Consent, CreateApplicantRequest, CreateCallRequest, Criterion, DocumentType, EligibilityRules, Gender,
    IdentityDocument, ListApplicantsRequest, SubmitApplicationRequest, Window, intake_service_client::IntakeServiceClient,
};

use crate::{Report, Shape, connect, drive};

/// What to measure.
#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
pub enum Scenario {
    /// CreateApplicant against pgbench running scripts/bench/register.sql.
    Register,
    /// SubmitApplication against pgbench running scripts/bench/submit.sql.
    Submit,
    /// ListApplicants (plain, zone, name prefix, phone) on each registry size.
    List,
    /// Only build the registry of each size (for a later `--reuse`).
    Load,
}

/// Options of `work4life-bench intake`.
#[derive(clap::Args, Clone)]
pub struct IntakeArgs {
    /// What to measure.
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Applicants in the registry before measuring; `list` and `load` take several.
    #[arg(long = "applicants", default_values_t = [1000u64], num_args = 1..)]
    applicants: Vec<u64>,
    /// Callers in flight, and pgbench's clients (`-c`).
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// HTTP/2 connections the callers share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Seconds measured per round and side, after one second of warm-up.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Rounds; `register` and `submit` alternate which side goes first and report the median ratio.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// PostgreSQL server (no database).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432")]
    server: String,
    /// Database name prefix: the database of a registry of N is `<prefix>_<N>`.
    #[arg(long, default_value = "w4l_bench_intake")]
    database: String,
    /// Keep a database whose registry of that size is already loaded, instead of dropping it.
    #[arg(long)]
    reuse: bool,
    /// Redis for the outbox relay (a database of its own, so no one else's streams are touched).
    #[arg(long, default_value = "redis://127.0.0.1:6379/9")]
    redis: String,
    /// Where register.sql and submit.sql are.
    #[arg(long, default_value = "scripts/bench")]
    scripts: PathBuf,
    /// Drafts made per side and round for `submit` (more than a round can submit).
    #[arg(long, default_value_t = 8_000)]
    drafts: usize,
    /// Drafts per open call for `submit` (every submission counts the call's accepted applications).
    #[arg(long, default_value_t = 1_000)]
    drafts_per_call: usize,
    /// pgbench's clients (`-c`); default: `--concurrency`.
    #[arg(long)]
    pgbench_clients: Option<usize>,
    /// Only the service side of `register` and `submit` (no pgbench).
    #[arg(long)]
    no_pgbench: bool,
    /// Serve intake on the bench's own listener, with TCP_NODELAY on accepted connections (the
    /// same stack, handlers and outbox relay as `host::start`, without health and reflection),
    /// instead of `host::start`'s listener, which leaves Nagle's algorithm on.
    #[arg(long)]
    nodelay: bool,
}

/// The issuer and audience intake expects (`PlatformConfig`'s defaults).
const ISSUER: &str = "https://identity.work4life.local";
const AUDIENCE: &str = "work4life";

/// The seed's zones and their share of the registry (percent).
const ZONES: [(&str, u32); 4] = [("rabat_sale", 35), ("tanger", 25), ("oujda", 20), ("beni_mellal", 20)];
/// The zone of the officer whose lists are measured.
const OFFICER_ZONE: usize = 2;
/// The zone the admin's zone-filtered list asks for.
const LISTED_ZONE: usize = 1;
/// The name prefix officers search (Diallo, Diarra, Diakité...), and the page they ask for.
const NAME_PREFIX: &str = "dia";
const SEARCH_PAGE: i32 = 10;

/// Index ranges of generated people: the registry is `0..N`; draft members and people
/// registered during a run come from ranges no registry reaches.
const DRAFT_MEMBERS_FROM: u64 = 40_000_000;
const REGISTERED_FROM: u64 = 60_000_000;
/// Rows per `UNNEST` insert.
const BATCH: usize = 10_000;

/// A pool of names for the nationalities that share it.
struct Names {
    female: &'static [&'static str],
    male: &'static [&'static str],
    family: &'static [&'static str],
}

const WEST: Names = Names {
    female: &[
        "Awa",
        "Aminata",
        "Fatoumata",
        "Aïssatou",
        "Mariama",
        "Khady",
        "Ndèye",
        "Coumba",
        "Kadiatou",
        "Oumou",
        "Mariam",
        "Binta",
        "Rokia",
        "Adama",
        "Safiatou",
        "Hawa",
        "Djénéba",
        "Salimata",
        "Assétou",
        "Ramatoulaye",
    ],
    male: &[
        "Mamadou",
        "Moussa",
        "Ibrahima",
        "Abdoulaye",
        "Ousmane",
        "Cheikh",
        "Souleymane",
        "Modou",
        "Boubacar",
        "Lamine",
        "Seydou",
        "Amadou",
        "Bakary",
        "Alassane",
        "Issa",
        "Oumar",
        "Sékou",
        "Mohamed",
        "Babacar",
        "Karim",
    ],
    family: &[
        "Diallo",
        "Diop",
        "Ndiaye",
        "Traoré",
        "Koné",
        "Camara",
        "Sow",
        "Bah",
        "Barry",
        "Keïta",
        "Coulibaly",
        "Touré",
        "Cissé",
        "Diarra",
        "Sylla",
        "Fofana",
        "Sangaré",
        "Kouyaté",
        "Konaté",
        "Ouédraogo",
        "Sawadogo",
        "Diakité",
        "Doumbia",
        "Fall",
        "Gueye",
        "Mbaye",
        "Sarr",
        "Kaboré",
        "Ba",
        "Dembélé",
        "Kourouma",
        "Soumah",
        "Yao",
        "Kouassi",
        "Koffi",
        "N'Guessan",
        "Bamba",
        "Ouattara",
    ],
};
const CENTRAL: Names = Names {
    female: &[
        "Grâce", "Chantal", "Nadège", "Clarisse", "Josiane", "Mireille", "Flore", "Carine", "Esther", "Rachel", "Nicole", "Brigitte",
        "Sandrine", "Patience", "Divine", "Aurélie",
    ],
    male: &[
        "Jean-Pierre",
        "Serge",
        "Hervé",
        "Patrick",
        "Blaise",
        "Christian",
        "Didier",
        "Emmanuel",
        "Joseph",
        "Thierry",
        "Junior",
        "Arnaud",
        "Landry",
        "Cédric",
        "Fabrice",
        "Guy",
    ],
    family: &[
        "Mbarga",
        "Nkoulou",
        "Etoundi",
        "Kamga",
        "Tchoupo",
        "Fotso",
        "Ngono",
        "Essomba",
        "Kabila",
        "Mukendi",
        "Tshibanda",
        "Kabongo",
        "Ilunga",
        "Mbemba",
        "Makosso",
        "Moukala",
        "Nzé",
        "Obame",
        "Mahamat",
        "Abakar",
        "Ngarta",
        "Ndong",
        "Mvondo",
        "Atangana",
    ],
};
const ANGLO: Names = Names {
    female: &[
        "Blessing", "Chioma", "Ngozi", "Amina", "Esther", "Comfort", "Abena", "Akosua", "Mercy", "Favour", "Grace", "Hannah", "Fatmata",
        "Isatu", "Musu", "Precious",
    ],
    male: &[
        "Chinedu", "Emeka", "Samuel", "Ibrahim", "Kwame", "Kofi", "Yaw", "Daniel", "Tunde", "Sani", "Musa", "Joseph", "Prince", "Abdul",
        "Alhaji", "Foday",
    ],
    family: &[
        "Okafor", "Okeke", "Adeyemi", "Balogun", "Eze", "Nwosu", "Bello", "Abubakar", "Mensah", "Boateng", "Owusu", "Asante", "Kamara",
        "Sesay", "Conteh", "Kanneh", "Johnson", "Kollie", "Dolo", "Bangura",
    ],
};
const ARAB: Names = Names {
    female: &["Fatima", "Aya", "Rania", "Lina", "Nour", "Huda", "Mariam", "Salma", "Reem", "Zainab", "Amal", "Hiba"],
    male: &["Mohammed", "Ahmad", "Omar", "Khaled", "Yousef", "Ali", "Hassan", "Mahmoud", "Tariq", "Adel", "Sami", "Abdelrahman"],
    family: &[
        "Al-Ahmad",
        "Haddad",
        "Khalil",
        "Nasser",
        "Al-Hassan",
        "Saleh",
        "Mansour",
        "Othman",
        "Al-Sayed",
        "Idris",
        "Abdallah",
        "Osman",
        "Hamid",
        "Yassin",
        "Al-Amoudi",
        "Farah",
    ],
};

/// Nationality, weight in the registry, languages spoken, names.
const NATIONALITIES: [(&str, u32, &[&str], &Names); 20] = [
    ("CI", 15, &["fr", "dyu"], &WEST),
    ("SN", 14, &["fr", "wo"], &WEST),
    ("GN", 13, &["fr", "ff"], &WEST),
    ("ML", 10, &["fr", "bm"], &WEST),
    ("CM", 9, &["fr", "en"], &CENTRAL),
    ("CD", 6, &["fr", "ln"], &CENTRAL),
    ("NG", 5, &["en", "ha"], &ANGLO),
    ("SY", 5, &["ar"], &ARAB),
    ("SD", 4, &["ar", "en"], &ARAB),
    ("BF", 3, &["fr", "mos"], &WEST),
    ("NE", 3, &["fr", "ha"], &WEST),
    ("CG", 2, &["fr", "ln"], &CENTRAL),
    ("TD", 2, &["fr", "ar"], &CENTRAL),
    ("MR", 2, &["ar", "fr"], &WEST),
    ("YE", 2, &["ar"], &ARAB),
    ("GA", 1, &["fr"], &CENTRAL),
    ("GM", 1, &["en", "wo"], &WEST),
    ("GH", 1, &["en", "ak"], &ANGLO),
    ("LR", 1, &["en"], &ANGLO),
    ("SL", 1, &["en"], &ANGLO),
];

/// Document type, weight (percent), whether it carries a number.
const DOCUMENTS: [(DocumentType, &str, u32); 5] = [
    (DocumentType::Passport, "passport", 45),
    (DocumentType::ResidenceCard, "residence_card", 20),
    (DocumentType::RefugeeCard, "refugee_card", 10),
    (DocumentType::AsylumReceipt, "asylum_receipt", 10),
    (DocumentType::None, "none", 15),
];

fn weighted<T: Copy>(rng: &mut StdRng, items: &[T], weight: impl Fn(&T) -> u32) -> T {
    let total: u32 = items.iter().map(&weight).sum();
    let mut pick = rng.gen_range(0..total);
    for item in items {
        let w = weight(item);
        if pick < w {
            return *item;
        }
        pick -= w;
    }
    items[items.len() - 1]
}

/// The partner organisation of a zone's officers (records they register carry it).
fn zone_org(zone: usize) -> Uuid {
    Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0000_0000 | (zone as u128 + 1))
}

/// The officer account of a zone.
fn officer_subject(zone: usize) -> String {
    format!("accounts/{}", Uuid::from_u128(0x0193_0000_0000_7000_8000_0000_0001_0000 | (zone as u128 + 1)))
}

/// One generated person, the same every time for the same index.
struct Person {
    given: &'static str,
    family: &'static str,
    birth: Date,
    gender: (Gender, &'static str),
    nationality: &'static str,
    languages: Vec<&'static str>,
    zone: usize,
    /// Set for the people who registered themselves (no organisation).
    account: Option<Uuid>,
    phone: Option<String>,
    email: Option<String>,
    document: (DocumentType, &'static str),
    document_number: Option<String>,
    document_country: &'static str,
}

/// Person `i`: its phone and document number are unique for `i` below 10^8.
fn person(i: u64) -> Person {
    let mut rng = StdRng::seed_from_u64(i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x5bd1_e995);
    let (nationality, _, languages, names) = weighted(&mut rng, &NATIONALITIES, |n| n.1);
    let gender = weighted(
        &mut rng,
        &[(Gender::Female, "female", 45), (Gender::Male, "male", 52), (Gender::Other, "other", 1), (Gender::Undisclosed, "undisclosed", 2)],
        |g| g.2,
    );
    let given_pool = match gender.0 {
        Gender::Female => names.female,
        Gender::Male => names.male,
        _ if rng.gen_bool(0.5) => names.female,
        _ => names.male,
    };
    let given = given_pool[rng.gen_range(0..given_pool.len())];
    let family = names.family[rng.gen_range(0..names.family.len())];
    let birth = date(1970, 1, 1) + time::Duration::days(rng.gen_range(0..13_500));
    let mut languages = languages.to_vec();
    if rng.gen_bool(0.3) {
        languages.push("ary");
    }
    let zone = weighted(&mut rng, &[0usize, 1, 2, 3], |z| ZONES[*z].1);
    let account = rng.gen_bool(0.08).then(|| uuid::Builder::from_random_bytes(rng.r#gen()).into_uuid());
    let phone = rng.gen_bool(0.95).then(|| format!("+2126{:08}", (i.wrapping_mul(7_777_777) + 12_345) % 100_000_000));
    let email = rng.gen_bool(0.6).then(|| {
        let local = |s: &str| text::fold(s).replace(' ', "");
        format!("{}.{}{}@example.org", local(given), local(family), i % 1000)
    });
    let (doc_type, code, _) = weighted(&mut rng, &DOCUMENTS, |d| d.2);
    let letter = |n: u64| char::from(b'A' + (n % 26) as u8);
    let document_number = (code != "none").then(|| format!("{}{}{:07}", letter(i / 260_000_000), letter(i / 10_000_000), i % 10_000_000));
    let document_country = match code {
        "passport" => nationality,
        "none" => "",
        _ => "MA",
    };
    Person {
        given,
        family,
        birth,
        gender: (gender.0, gender.1),
        nationality,
        languages,
        zone,
        account,
        phone,
        email,
        document: (doc_type, code),
        document_number,
        document_country,
    }
}

fn date(year: i32, month: u8, day: u8) -> Date {
    let month = time::Month::try_from(month).unwrap_or(time::Month::January);
    Date::from_calendar_date(year, month, day).unwrap_or(Date::MIN)
}

impl Person {
    /// The record an officer registers.
    fn wire(&self) -> Applicant {
        Applicant {
            given_name: self.given.into(),
            family_name: self.family.into(),
            birth_date: self.birth.to_string(),
            gender: self.gender.0 as i32,
            nationality: self.nationality.into(),
            languages: self.languages.iter().map(|l| (*l).to_string()).collect(),
            zone: ZONES[self.zone].0.into(),
            phone: self.phone.clone().unwrap_or_default(),
            email: self.email.clone().unwrap_or_default(),
            identity_document: Some(IdentityDocument {
                r#type: self.document.0 as i32,
                number: self.document_number.clone().unwrap_or_default(),
                number_hint: String::new(),
                issuing_country: self.document_country.into(),
            }),
            consent: Some(Consent {
                purpose: "program_participation".into(),
                text_version: "2026-01".into(),
                give_time: None,
                recorded_by: String::new(),
            }),
            ..Applicant::default()
        }
    }
}

/// Registry rows, column by column, for one `UNNEST` insert.
#[derive(Default)]
struct Rows {
    id: Vec<Uuid>,
    given_name: Vec<String>,
    family_name: Vec<String>,
    name_key: Vec<String>,
    birth_date: Vec<Date>,
    gender: Vec<String>,
    nationality: Vec<String>,
    languages: Vec<String>,
    zone: Vec<String>,
    organization_id: Vec<Option<Uuid>>,
    account_id: Vec<Option<Uuid>>,
    phone_cipher: Vec<Option<Vec<u8>>>,
    phone_hash: Vec<Option<Vec<u8>>>,
    email_cipher: Vec<Option<Vec<u8>>>,
    document_type: Vec<String>,
    document_country: Vec<String>,
    document_cipher: Vec<Option<Vec<u8>>>,
    document_hash: Vec<Option<Vec<u8>>>,
    document_hint: Vec<String>,
    created_by: Vec<String>,
    created_at: Vec<OffsetDateTime>,
}

impl Rows {
    /// Adds person `i` as intake stores a registration (`create_applicant`, `write_personal`).
    fn push(&mut self, vault: &Vault, i: u64, id: Uuid, at: OffsetDateTime) -> anyhow::Result<()> {
        let p = person(i);
        let seal = |field: &str, value: &Option<String>| -> anyhow::Result<Option<Vec<u8>>> {
            value.as_ref().map(|v| vault.seal(id, field, v).map_err(|e| anyhow::anyhow!("sealing {field}: {e:?}"))).transpose()
        };
        self.id.push(id);
        self.given_name.push(p.given.into());
        self.family_name.push(p.family.into());
        self.name_key.push(text::name_key(p.given, p.family));
        self.birth_date.push(p.birth);
        self.gender.push(p.gender.1.into());
        self.nationality.push(p.nationality.into());
        self.languages.push(p.languages.join(","));
        self.zone.push(ZONES[p.zone].0.into());
        self.organization_id.push(p.account.is_none().then(|| zone_org(p.zone)));
        self.account_id.push(p.account);
        self.phone_cipher.push(seal("phone", &p.phone)?);
        self.phone_hash.push(p.phone.as_ref().map(|ph| vault.lookup(Lookup::Phone, ph)));
        self.email_cipher.push(seal("email", &p.email)?);
        self.document_type.push(p.document.1.into());
        self.document_country.push(p.document_country.into());
        self.document_cipher.push(seal("document", &p.document_number)?);
        self.document_hash.push(p.document_number.as_ref().map(|n| vault.lookup(Lookup::Document, &format!("{}:{n}", p.document.1))));
        self.document_hint.push(p.document_number.as_ref().map(|n| format!("•••{}", &n[n.len() - 3..])).unwrap_or_default());
        self.created_by.push(match p.account {
            Some(account) => format!("accounts/{account}"),
            None => officer_subject(p.zone),
        });
        self.created_at.push(at);
        Ok(())
    }

    async fn insert(self, pool: &PgPool, key_id: &str) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO applicants (id, given_name, family_name, name_key, birth_date, gender, nationality, languages, zone, \
             organization_id, account_id, key_id, phone_cipher, phone_hash, email_cipher, document_type, document_country, \
             document_cipher, document_hash, document_hint, consent_purpose, consent_text_version, consent_given_at, \
             consent_recorded_by, created_by, created_at, updated_at) \
             SELECT id, given_name, family_name, name_key, birth_date, gender, nationality, string_to_array(languages, ','), zone, \
             organization_id, account_id, $22, phone_cipher, phone_hash, email_cipher, document_type, document_country, \
             document_cipher, document_hash, document_hint, 'program_participation', '2026-01', created_at, created_by, created_by, \
             created_at, created_at \
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::text[], $5::date[], $6::text[], $7::text[], $8::text[], $9::text[], \
             $10::uuid[], $11::uuid[], $12::bytea[], $13::bytea[], $14::bytea[], $15::text[], $16::text[], $17::bytea[], $18::bytea[], \
             $19::text[], $20::text[], $21::timestamptz[]) \
             AS t(id, given_name, family_name, name_key, birth_date, gender, nationality, languages, zone, organization_id, account_id, \
             phone_cipher, phone_hash, email_cipher, document_type, document_country, document_cipher, document_hash, document_hint, \
             created_by, created_at)",
        )
        .bind(self.id)
        .bind(self.given_name)
        .bind(self.family_name)
        .bind(self.name_key)
        .bind(self.birth_date)
        .bind(self.gender)
        .bind(self.nationality)
        .bind(self.languages)
        .bind(self.zone)
        .bind(self.organization_id)
        .bind(self.account_id)
        .bind(self.phone_cipher)
        .bind(self.phone_hash)
        .bind(self.email_cipher)
        .bind(self.document_type)
        .bind(self.document_country)
        .bind(self.document_cipher)
        .bind(self.document_hash)
        .bind(self.document_hint)
        .bind(self.created_by)
        .bind(self.created_at)
        .bind(key_id)
        .execute(pool)
        .await?;
        Ok(())
    }
}

/// Inserts people `from..from + count`, created evenly from `start` to `end` (time-ordered
/// UUIDv7 ids, as intake makes them), sealing on a blocking thread while the previous batch is
/// being inserted.
async fn insert_people(
    pool: &PgPool,
    vault: &Vault,
    from: u64,
    count: u64,
    start: OffsetDateTime,
    end: OffsetDateTime,
) -> anyhow::Result<Vec<Uuid>> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<anyhow::Result<Rows>>(2);
    let generator_vault = vault.clone();
    let span = (end - start).whole_microseconds().max(0) as f64;
    let generator = tokio::task::spawn_blocking(move || {
        let mut rows = Rows::default();
        for k in 0..count {
            let at = start + time::Duration::microseconds((span * k as f64 / count.max(1) as f64) as i64);
            let nanos = at.unix_timestamp_nanos();
            let ts = uuid::Timestamp::from_unix(uuid::NoContext, (nanos / 1_000_000_000) as u64, (nanos % 1_000_000_000) as u32);
            if let Err(err) = rows.push(&generator_vault, from + k, Uuid::new_v7(ts), at) {
                let _ = tx.blocking_send(Err(err));
                return;
            }
            if (rows.id.len() == BATCH || k + 1 == count) && tx.blocking_send(Ok(std::mem::take(&mut rows))).is_err() {
                return;
            }
        }
    });
    let mut ids = Vec::with_capacity(count as usize);
    let key_id = vault.current_key_id().to_string();
    while let Some(rows) = rx.recv().await {
        let rows = rows?;
        ids.extend_from_slice(&rows.id);
        rows.insert(pool, &key_id).await?;
    }
    generator.await?;
    Ok(ids)
}

/// A host running intake on one database, and what calling it needs.
struct Target {
    /// Cancel to stop the service.
    shutdown: CancellationToken,
    pool: PgPool,
    database_url: String,
    channels: Vec<Channel>,
    tokens: Arc<Tokens>,
    applicants: u64,
}

/// Access tokens the host accepts.
struct Tokens {
    /// An officer of each zone (with the zone's organisation).
    officers: Vec<String>,
    admin: String,
}

impl Tokens {
    fn new(key: &SigningKey) -> anyhow::Result<Self> {
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs();
        let sign = |subject: String, role: &str, org: Option<Uuid>, zones: Vec<String>| {
            key.sign(&Claims {
                iss: ISSUER.into(),
                aud: AUDIENCE.into(),
                sub: subject,
                exp: now + 24 * 3600,
                nbf: now - 5,
                iat: now,
                jti: Uuid::new_v4().to_string(),
                roles: vec![RoleBinding { role: role.into(), org: org.map(|o| format!("organizations/{o}")), zones }],
            })
        };
        let officers = (0..ZONES.len())
            .map(|z| sign(officer_subject(z), "officer", Some(zone_org(z)), vec![ZONES[z].0.to_string()]))
            .collect::<anyhow::Result<_>>()?;
        let admin = sign(format!("accounts/{}", Uuid::now_v7()), "admin", None, Vec::new())?;
        Ok(Self { officers, admin })
    }
}

fn bearer<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

/// Drops (unless reused) and prepares the database of a registry of `applicants`, starts intake
/// on it, and loads the registry.
async fn target(args: &IntakeArgs, key: &SigningKey, applicants: u64) -> anyhow::Result<Target> {
    let name = format!("{}_{applicants}", args.database);
    let database_url = format!("{}/{name}", args.server);
    let reused = args.reuse && loaded(&database_url).await == Some(applicants);
    if !reused {
        let options: sqlx::postgres::PgConnectOptions = format!("{}/postgres", args.server).parse()?;
        let mut admin = sqlx::PgConnection::connect_with(&options).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))).execute(&mut admin).await?;
    }
    let source = std::collections::HashMap::from([
        ("W4L_DATABASE_URL".to_string(), database_url.clone()),
        ("W4L_REDIS_URL".to_string(), args.redis.clone()),
        ("W4L_LISTEN_ADDR".to_string(), "127.0.0.1:0".to_string()),
        ("W4L_SHUTDOWN_DELAY_MS".to_string(), "0".to_string()),
    ]);
    let config = PlatformConfig::from_source(&source)?;
    let vault = Vault::new("intake", &config.personal_data_keys, &config.personal_data_hash_key);
    let keys = Arc::new(InMemoryKeySource::new(jsonwebtoken::jwk::JwkSet { keys: vec![key.public_jwk()] }));
    let (addr, shutdown) = if args.nodelay {
        serve_nodelay(config, keys).await?
    } else {
        let running =
            host::start(HostOptions { config, services: vec![work4life_intake::SERVICE], key_source: Some(keys), migrate: true }).await?;
        (running.addr, running.shutdown)
    };
    let pool = work4life_platform::db::connect(&database_url, "intake", 4).await?;
    let seed = work4life_intake::SERVICE.seed.context("intake has a seed")?;
    seed(&pool).await?;
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS bench_meta (applicants bigint NOT NULL, load_secs double precision NOT NULL, \
         loaded_at timestamptz NOT NULL DEFAULT now())",
    )
    .execute(&pool)
    .await?;
    if reused {
        println!("intake registry of {applicants}: reusing database {name}");
    } else {
        let started = Instant::now();
        let now = OffsetDateTime::now_utc();
        insert_people(&pool, &vault, 0, applicants, now - time::Duration::days(3 * 365), now - time::Duration::minutes(5)).await?;
        sqlx::query("ANALYZE").execute(&pool).await?;
        let secs = started.elapsed().as_secs_f64();
        sqlx::query("INSERT INTO bench_meta (applicants, load_secs) VALUES ($1, $2)")
            .bind(applicants as i64)
            .bind(secs)
            .execute(&pool)
            .await?;
        let size: String = sqlx::query_scalar("SELECT pg_size_pretty(pg_total_relation_size('applicants'))").fetch_one(&pool).await?;
        println!(
            "intake registry of {applicants}: loaded and analysed in {secs:.1} s (applicants table with indexes: {size}; database {name})"
        );
    }
    let channels = connect(&format!("http://{addr}"), args.connections).await?;
    Ok(Target { shutdown, pool, database_url, channels, tokens: Arc::new(Tokens::new(key)?), applicants })
}

/// Which listener served the calls, for the report.
fn listener(args: &IntakeArgs) -> &'static str {
    if args.nodelay { "bench listener with TCP_NODELAY" } else { "host::start listener" }
}

/// Serves intake as `host::start` does (migrations, the service's routes behind the full stack,
/// the outbox relay), on a listener whose accepted connections have TCP_NODELAY set.
async fn serve_nodelay(config: PlatformConfig, keys: Arc<InMemoryKeySource>) -> anyhow::Result<(SocketAddr, CancellationToken)> {
    let service = work4life_intake::SERVICE;
    let pool = host::connect_pools(&config, &[service], true).await?.pop().context("intake's pool")?;
    let redis = work4life_platform::server::connect_redis(&config.redis_url).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let config = Arc::new(config);
    let ctx = ServiceContext {
        name: service.name,
        pool: pool.clone(),
        redis: redis.clone(),
        config: Arc::clone(&config),
        peers: Peers::new(std::collections::HashMap::from([(service.name.to_string(), format!("http://{addr}"))])),
        page_tokens: PageTokens::new(config.page_token_key.clone()),
        peer_auth: work4life_platform::peer_auth::PeerAuth::new(None, Peers::new(std::collections::HashMap::new())),
        shutdown: shutdown.clone(),
    };
    let mut routes = tonic::service::RoutesBuilder::default();
    (service.register)(&ctx, &mut routes)?;
    tokio::spawn(
        Relay::new(pool, redis, RelayConfig { service: service.name.to_string(), ..RelayConfig::default() }).run(shutdown.clone()),
    );
    let verifier = Arc::new(TokenVerifier::new(keys, config.token.clone()));
    let stack = ServerStack::new(StackConfig {
        max_concurrent_calls: config.max_concurrent_calls,
        default_deadline: config.default_deadline,
        verifier: Some(verifier),
        auth_policy: AuthPolicy::default(),
    });
    let server = tonic::transport::Server::builder().layer(stack).add_routes(routes.routes());
    let stop = shutdown.clone();
    tokio::spawn(server.serve_with_incoming_shutdown(crate::tokio_stream_from(listener), async move { stop.cancelled().await }));
    Ok((addr, shutdown))
}

/// The registry size a previous run loaded into `url`, if it is there and its schema is the
/// one the migrations make today (a changed migration means a new database).
async fn loaded(url: &str) -> Option<u64> {
    let pool = work4life_platform::db::connect(url, "intake", 1).await.ok()?;
    let n: Option<i64> =
        sqlx::query_scalar("SELECT applicants FROM bench_meta ORDER BY loaded_at DESC LIMIT 1").fetch_optional(&pool).await.ok()?;
    let applied: Vec<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT version, checksum FROM _sqlx_migrations ORDER BY version").fetch_all(&pool).await.ok()?;
    pool.close().await;
    let mut wanted: Vec<(i64, Vec<u8>)> = work4life_platform::db::PLATFORM_MIGRATIONS
        .iter()
        .chain(work4life_intake::MIGRATIONS.iter())
        .map(|m| (m.version, m.checksum.to_vec()))
        .collect();
    wanted.sort();
    if applied != wanted {
        println!(
            "intake registry in {}: its migrations changed since it was loaded; loading it again",
            url.rsplit('/').next().unwrap_or(url)
        );
        return None;
    }
    n.map(|n| n as u64)
}

/// Runs a scenario.
pub fn run(args: &IntakeArgs) -> anyhow::Result<()> {
    // The service, its callers and the loader share the machine's cores, as a host would.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        // As in production: telemetry installed (spans recorded); logs at warn keep the output
        // readable (W4L_LOG overrides; `sqlx::query=debug` times every statement).
        let filter = std::env::var("W4L_LOG").unwrap_or_else(|_| "warn,sqlx=error".to_string());
        let config = PlatformConfig::from_source(&std::collections::HashMap::from([("W4L_LOG".to_string(), filter)]))?;
        let _telemetry = work4life_platform::telemetry::init("intake", &config)?;
        let key = SigningKey::generate("bench-intake")?;
        match args.scenario {
            Scenario::Load => {
                for n in &args.applicants {
                    let t = target(args, &key, *n).await?;
                    t.shutdown.cancel();
                }
                Ok(())
            }
            Scenario::List => list(args, &key).await,
            Scenario::Register | Scenario::Submit => write_scenario(args, &key).await,
        }
    })
}

/// A pgbench run's figures, measured like the service's: the first second dropped.
struct Pgbench {
    report: Report,
    /// Transactions pgbench completed, warm-up included.
    processed: u64,
    /// pgbench's own `tps = ...` line.
    tps_line: String,
}

/// Runs `script` with pgbench (`-M prepared`, as sqlx prepares its statements) for one second
/// of warm-up plus `duration`, and reads its per-transaction log.
fn pgbench(url: &str, script: &Path, clients: usize, duration: u64, defines: &[(&str, String)]) -> anyhow::Result<Pgbench> {
    let dir = std::env::temp_dir().join(format!("w4l-pgbench-{}-{}", std::process::id(), Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir)?;
    let mut command = Process::new("pgbench");
    command.env("PGOPTIONS", "-c search_path=intake").args(["-n", "-M", "prepared", "-c", &clients.to_string(), "-j", "2"]);
    command.args(["-T", &(duration + 1).to_string(), "-l", &format!("--log-prefix={}", dir.join("tx").display())]);
    for (name, value) in defines {
        command.args(["-D", &format!("{name}={value}")]);
    }
    command.arg("-f").arg(script).arg(url);
    let output = command.output().context("running pgbench (postgresql-client)")?;
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    if !output.status.success() {
        anyhow::bail!("pgbench failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    }
    let field = |prefix: &str| stdout.lines().find_map(|l| l.strip_prefix(prefix)).map(str::trim).unwrap_or_default().to_string();
    let processed = field("number of transactions actually processed:").split('/').next().unwrap_or_default().parse().unwrap_or(0);
    let tps_line = stdout.lines().find(|l| l.starts_with("tps = ")).unwrap_or_default().to_string();
    // Each log line: client, transaction, latency (us, or "failed"), script, end time (s, us).
    let mut entries = Vec::new();
    for file in std::fs::read_dir(&dir)? {
        for line in std::fs::read_to_string(file?.path())?.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            let (Some(latency), Some(secs), Some(micros)) = (f.get(2), f.get(4), f.get(5)) else { continue };
            let end = secs.parse::<f64>().unwrap_or(0.0) + micros.parse::<f64>().unwrap_or(0.0) / 1e6;
            let latency = latency.parse::<u64>().ok();
            entries.push((end - latency.unwrap_or(0) as f64 / 1e6, latency));
        }
    }
    std::fs::remove_dir_all(&dir)?;
    let first = entries.iter().map(|e| e.0).fold(f64::INFINITY, f64::min);
    let (from, to) = (first + 1.0, first + 1.0 + duration as f64);
    let mut latency = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let (mut calls, mut errors) = (0u64, 0u64);
    for (_, micros) in entries.into_iter().filter(|e| e.0 >= from && e.0 < to) {
        calls += 1;
        match micros {
            Some(us) => latency.record(us.max(1))?,
            None => errors += 1,
        }
    }
    Ok(Pgbench {
        report: Report { cpu_us_per_call: None, calls, errors, elapsed: Duration::from_secs(duration), latency },
        processed,
        tps_line,
    })
}

fn unix_millis() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn ms(report: &Report, q: f64) -> f64 {
    report.latency.value_at_quantile(q) as f64 / 1000.0
}

async fn count(pool: &PgPool, sql: &'static str) -> anyhow::Result<i64> {
    Ok(sqlx::query_scalar::<Postgres, i64>(sql).fetch_one(pool).await?)
}

/// Open individual start-up calls in every zone, created by the admin.
async fn open_calls(t: &Target, n: usize) -> anyhow::Result<Vec<Uuid>> {
    let mut client = IntakeServiceClient::new(t.channels[0].clone());
    let now = SystemTime::now();
    let mut ids = Vec::new();
    for i in 0..n {
        let call = Call {
            program: "programs/work4life".into(),
            display_name: format!("Bench call {i}"),
            window: Window::IndividualStartup as i32,
            zones: ZONES.iter().map(|z| z.0.to_string()).collect(),
            open_time: Some((now - Duration::from_secs(86_400)).into()),
            close_time: Some((now + Duration::from_secs(30 * 86_400)).into()),
            quota: 100,
            eligibility: Some(EligibilityRules { min_age: 16, max_age: 65, ..EligibilityRules::default() }),
            rubric: vec![
                Criterion { id: "viability".into(), title: "Is the business viable?".into(), weight: 60, max_score: 10 },
                Criterion { id: "team".into(), title: "Can the team run it?".into(), weight: 40, max_score: 5 },
            ],
            ..Call::default()
        };
        let request = CreateCallRequest { call: Some(call), request_id: Uuid::new_v4().to_string() };
        let created = client.create_call(bearer(request, &t.tokens.admin)).await?.into_inner().call.context("call")?;
        ids.push(Uuid::parse_str(created.name.trim_start_matches("calls/"))?);
    }
    Ok(ids)
}

/// `count` drafts (one new member each, individual start-up, `per_call` to an open call), as an
/// officer of the member's zone would open them: (application id, zone).
async fn make_drafts(t: &Target, vault: &Vault, from: u64, count: usize, per_call: usize) -> anyhow::Result<Vec<(Uuid, usize)>> {
    let calls = open_calls(t, count.div_ceil(per_call.max(1))).await?;
    let now = OffsetDateTime::now_utc();
    let members = insert_people(&t.pool, vault, from, count as u64, now - time::Duration::seconds(2), now).await?;
    let mut drafts = Vec::with_capacity(count);
    for (chunk_no, chunk) in members.chunks(BATCH).enumerate() {
        let (mut ids, mut call_ids, mut zones, mut orgs, mut creators) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (k, _) in chunk.iter().enumerate() {
            let n = chunk_no * BATCH + k;
            let zone = person(from + n as u64).zone;
            let id = Uuid::now_v7();
            ids.push(id);
            call_ids.push(calls[n / per_call.max(1)]);
            zones.push(ZONES[zone].0.to_string());
            orgs.push(zone_org(zone));
            creators.push(officer_subject(zone));
            drafts.push((id, zone));
        }
        let mut tx = t.pool.begin().await?;
        sqlx::query(
            "INSERT INTO applications (id, call_id, zone, organization_id, created_by, title, summary) \
             SELECT id, call_id, zone, org, created_by, 'Atelier de couture solidaire', 'Tailoring for the neighbourhood' \
             FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::uuid[], $5::text[]) AS t(id, call_id, zone, org, created_by)",
        )
        .bind(&ids)
        .bind(&call_ids)
        .bind(&zones)
        .bind(&orgs)
        .bind(&creators)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO application_members (application_id, applicant_id, call_id, role, position) \
             SELECT id, applicant, call_id, 'representative', 0 FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[]) AS t(id, applicant, call_id)",
        )
        .bind(&ids)
        .bind(chunk)
        .bind(&call_ids)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    }
    Ok(drafts)
}

/// What the service side of a write scenario calls with.
struct WriteState {
    tokens: Arc<Tokens>,
    next: AtomicU64,
    drafts: Vec<(Uuid, usize)>,
}

/// The call of a write scenario: registering the next person, or submitting the next draft.
fn write_call(
    scenario: Scenario,
    state: Arc<WriteState>,
) -> impl Fn(Channel) -> futures::future::BoxFuture<'static, bool> + Clone + Send + 'static {
    move |channel: Channel| {
        let state = Arc::clone(&state);
        Box::pin(async move {
            let n = state.next.fetch_add(1, Ordering::Relaxed);
            let mut client = IntakeServiceClient::new(channel);
            if scenario == Scenario::Register {
                let p = person(REGISTERED_FROM + n);
                let request = CreateApplicantRequest { applicant: Some(p.wire()), request_id: Uuid::new_v4().to_string() };
                return client.create_applicant(bearer(request, &state.tokens.officers[p.zone])).await.is_ok();
            }
            let Some((id, zone)) = state.drafts.get(n as usize) else {
                // Out of drafts: counted as errors (the run needs more --drafts).
                tokio::time::sleep(Duration::from_millis(10)).await;
                return false;
            };
            let request = SubmitApplicationRequest { name: format!("applications/{id}"), etag: String::new() };
            client.submit_application(bearer(request, &state.tokens.officers[*zone])).await.is_ok()
        })
    }
}

/// `register` and `submit`: the RPC over gRPC and its SQL under pgbench, in alternating rounds.
async fn write_scenario(args: &IntakeArgs, key: &SigningKey) -> anyhow::Result<()> {
    let applicants = args.applicants.first().copied().unwrap_or(1000);
    let t = target(args, key, applicants).await?;
    // The registry is about to grow: a later `--reuse` must not take it for a clean one.
    sqlx::query("DELETE FROM bench_meta").execute(&t.pool).await?;
    let config = PlatformConfig::from_source(&std::collections::HashMap::<String, String>::new())?;
    let vault = Vault::new("intake", &config.personal_data_keys, &config.personal_data_hash_key);
    let (rpc, script, counted) = match args.scenario {
        Scenario::Register => ("CreateApplicant", "register.sql", "SELECT count(*) FROM applicants"),
        _ => ("SubmitApplication", "submit.sql", "SELECT count(*) FROM applications WHERE state = 'submitted'"),
    };
    let script_path = args.scripts.join(script);
    anyhow::ensure!(
        args.no_pgbench || script_path.exists(),
        "{} not found (run from the repository root or pass --scripts)",
        script_path.display()
    );
    if args.scenario == Scenario::Submit {
        sqlx::query(
            "CREATE TABLE IF NOT EXISTS bench_drafts (n bigint PRIMARY KEY, id uuid NOT NULL, zone text NOT NULL, org uuid NOT NULL)",
        )
        .execute(&t.pool)
        .await?;
    }
    let shape = Shape { concurrency: args.concurrency, duration: Duration::from_secs(args.duration), rate: None };
    let mut ratios = Vec::new();
    let mut member_from = DRAFT_MEMBERS_FROM;
    let mut registered = 0u64;
    let mut pgbench_base = 0u64;
    for round in 1..=args.rounds.max(1) {
        let mut service: Option<Report> = None;
        let mut bench: Option<Report> = None;
        // Odd rounds start with the service, even rounds with pgbench: neither always gets the warmer cache.
        let sides = if round % 2 == 1 { [true, false] } else { [false, true] };
        for service_side in sides {
            if !service_side && args.no_pgbench {
                continue;
            }
            let drafts = if args.scenario == Scenario::Submit {
                let drafts = make_drafts(&t, &vault, member_from, args.drafts, args.drafts_per_call).await?;
                member_from += args.drafts as u64;
                sqlx::query("ANALYZE").execute(&t.pool).await?;
                drafts
            } else {
                Vec::new()
            };
            let before = count(&t.pool, counted).await?;
            if service_side {
                let first = if args.scenario == Scenario::Register { registered } else { 0 };
                let state = Arc::new(WriteState { tokens: Arc::clone(&t.tokens), next: AtomicU64::new(first), drafts });
                let report = drive(&t.channels, &shape, None, write_call(args.scenario, Arc::clone(&state))).await?;
                if args.scenario == Scenario::Register {
                    registered = state.next.load(Ordering::Relaxed);
                }
                let made = count(&t.pool, counted).await? - before;
                println!("round {round} {}", report.summary(rpc));
                if report.errors > 0 {
                    println!("round {round} warning: {} {rpc} calls failed ({made} rows written)", report.errors);
                }
                service = Some(report);
            } else {
                let clients = args.pgbench_clients.unwrap_or(args.concurrency).max(1);
                let per = (args.drafts / clients) as u64;
                let mut defines = vec![("run", unix_millis().to_string()), ("k", "0".to_string())];
                if args.scenario == Scenario::Submit {
                    let (ids, zones): (Vec<Uuid>, Vec<String>) = drafts.iter().map(|(id, z)| (*id, ZONES[*z].0.to_string())).unzip();
                    let orgs: Vec<Uuid> = drafts.iter().map(|(_, z)| zone_org(*z)).collect();
                    sqlx::query(
                        "INSERT INTO bench_drafts (n, id, zone, org) SELECT $4 + ordinality, id, zone, org \
                         FROM UNNEST($1::uuid[], $2::text[], $3::uuid[]) WITH ORDINALITY AS t(id, zone, org)",
                    )
                    .bind(&ids)
                    .bind(&zones)
                    .bind(&orgs)
                    .bind(pgbench_base as i64)
                    .execute(&t.pool)
                    .await?;
                    defines.push(("base", pgbench_base.to_string()));
                    defines.push(("per", per.to_string()));
                    pgbench_base += drafts.len() as u64;
                }
                let (url, path) = (t.database_url.clone(), script_path.clone());
                let duration = args.duration;
                let run = tokio::task::spawn_blocking(move || pgbench(&url, &path, clients, duration, &defines));
                let result = run.await??;
                let made = count(&t.pool, counted).await? - before;
                println!("round {round} {}", result.report.summary(&format!("pgbench {script}")));
                println!("round {round} pgbench said: {} ({} transactions, {made} rows written)", result.tps_line, result.processed);
                anyhow::ensure!(made as u64 == result.processed, "pgbench wrote {made} rows for {} transactions", result.processed);
                bench = Some(result.report);
            }
        }
        if let (Some(s), Some(b)) = (&service, &bench) {
            let ratio = (s.calls - s.errors) as f64 / (b.calls - b.errors).max(1) as f64;
            println!(
                "round {round} {rpc}/pgbench: throughput {:.1}%, p50 {:.3} vs {:.3} ms, p99 {:.3} vs {:.3} ms",
                ratio * 100.0,
                ms(s, 0.5),
                ms(b, 0.5),
                ms(s, 0.99),
                ms(b, 0.99)
            );
            ratios.push(ratio);
        }
    }
    if !ratios.is_empty() {
        let mut sorted = ratios.clone();
        sorted.sort_by(f64::total_cmp);
        println!(
            "{rpc}/pgbench throughput, median of rounds: {:.1}% (rounds {}; {} callers on {} connections vs pgbench -c {} -j 2 -M prepared, {} s each, registry of {} at start, {})",
            sorted[sorted.len() / 2] * 100.0,
            ratios.iter().map(|r| format!("{:.1}%", r * 100.0)).collect::<Vec<_>>().join(" "),
            args.concurrency,
            args.connections,
            args.pgbench_clients.unwrap_or(args.concurrency),
            args.duration,
            t.applicants,
            listener(args)
        );
    }
    t.shutdown.cancel();
    Ok(())
}

/// The list calls measured.
#[derive(Clone, Copy, Debug)]
enum Variant {
    /// The officer's default view: active records in scope, newest first.
    Plain,
    /// An admin's list of one zone.
    Zone,
    /// The officer searching by the start of a family name.
    NamePrefix,
    /// The officer looking up a phone number.
    Phone,
}

impl Variant {
    fn label(self) -> &'static str {
        match self {
            Variant::Plain => "plain (officer, 1 zone, newest first)",
            Variant::Zone => "zone filter (admin, zone=tanger)",
            Variant::NamePrefix => "name prefix (officer, \"dia\", page 10)",
            Variant::Phone => "phone (officer)",
        }
    }
}

/// Phones of people in the officer's zone, from the registry's first `applicants`.
fn officer_phones(applicants: u64, want: usize) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(7);
    let mut phones = Vec::new();
    for _ in 0..want * 50 {
        let p = person(rng.gen_range(0..applicants.max(1)));
        if p.zone == OFFICER_ZONE
            && let Some(phone) = p.phone
        {
            phones.push(phone);
            if phones.len() == want {
                break;
            }
        }
    }
    phones
}

fn list_call(
    variant: Variant,
    tokens: Arc<Tokens>,
    phones: Arc<Vec<String>>,
    tally: Arc<(AtomicU64, AtomicU64, AtomicUsize)>,
) -> impl Fn(Channel) -> futures::future::BoxFuture<'static, bool> + Clone + Send + 'static {
    move |channel: Channel| {
        let (tokens, phones, tally) = (Arc::clone(&tokens), Arc::clone(&phones), Arc::clone(&tally));
        Box::pin(async move {
            let officer = tokens.officers[OFFICER_ZONE].as_str();
            let (request, token) = match variant {
                Variant::Plain => (ListApplicantsRequest::default(), officer),
                Variant::Zone => (ListApplicantsRequest { zone: ZONES[LISTED_ZONE].0.into(), ..Default::default() }, tokens.admin.as_str()),
                Variant::NamePrefix => {
                    (ListApplicantsRequest { name_prefix: NAME_PREFIX.into(), page_size: SEARCH_PAGE, ..Default::default() }, officer)
                }
                Variant::Phone => {
                    let i = tally.2.fetch_add(1, Ordering::Relaxed);
                    (ListApplicantsRequest { phone: phones[i % phones.len().max(1)].clone(), ..Default::default() }, officer)
                }
            };
            let answer = IntakeServiceClient::new(channel).list_applicants(bearer(request, token)).await;
            let Ok(answer) = answer else { return false };
            tally.0.fetch_add(1, Ordering::Relaxed);
            tally.1.fetch_add(answer.into_inner().applicants.len() as u64, Ordering::Relaxed);
            true
        })
    }
}

/// `list`: every variant on every registry size, sizes in turn, then each variant's p50 and p99
/// compared between the largest and the smallest registry.
async fn list(args: &IntakeArgs, key: &SigningKey) -> anyhow::Result<()> {
    let mut targets = Vec::new();
    for n in &args.applicants {
        targets.push(target(args, key, *n).await?);
    }
    let shape = Shape { concurrency: args.concurrency, duration: Duration::from_secs(args.duration), rate: None };
    let variants = [Variant::Plain, Variant::Zone, Variant::NamePrefix, Variant::Phone];
    // Each round's p50 and p99 (us), per variant and size; the figures are their medians.
    let mut rounds: Vec<Vec<Vec<(u64, u64)>>> = variants.iter().map(|_| targets.iter().map(|_| Vec::new()).collect()).collect();
    for round in 1..=args.rounds.max(1) {
        for (v, variant) in variants.iter().enumerate() {
            // Sizes in turn, the other way round every other round: neither always goes first.
            let mut order: Vec<usize> = (0..targets.len()).collect();
            if round % 2 == 0 {
                order.reverse();
            }
            for s in order {
                let t = &targets[s];
                let phones = Arc::new(officer_phones(t.applicants, 1000));
                let tally = Arc::new((AtomicU64::new(0), AtomicU64::new(0), AtomicUsize::new(0)));
                let report =
                    drive(&t.channels, &shape, None, list_call(*variant, Arc::clone(&t.tokens), phones, Arc::clone(&tally))).await?;
                let rows = tally.1.load(Ordering::Relaxed) as f64 / tally.0.load(Ordering::Relaxed).max(1) as f64;
                println!(
                    "round {round} ListApplicants {} on {}: {}, {rows:.1} rows per answer",
                    variant.label(),
                    t.applicants,
                    report.summary("").trim_start_matches(": ")
                );
                rounds[v][s].push((report.latency.value_at_quantile(0.5), report.latency.value_at_quantile(0.99)));
            }
        }
    }
    let (small, large) = (0, targets.len() - 1);
    for (v, variant) in variants.iter().enumerate() {
        let q = |s: usize, q: f64| {
            let mut values: Vec<u64> = rounds[v][s].iter().map(|r| if q < 0.9 { r.0 } else { r.1 }).collect();
            values.sort_unstable();
            values.get(values.len() / 2).copied().unwrap_or(0) as f64 / 1000.0
        };
        let sizes = targets
            .iter()
            .enumerate()
            .map(|(s, t)| format!("{}: p50 {:.3} p99 {:.3} ms", t.applicants, q(s, 0.5), q(s, 0.99)))
            .collect::<Vec<_>>()
            .join("; ");
        let ratio = if large > small {
            format!(
                "; {}/{}: p50 x{:.2}, p99 x{:.2}",
                targets[large].applicants,
                targets[small].applicants,
                q(large, 0.5) / q(small, 0.5),
                q(large, 0.99) / q(small, 0.99)
            )
        } else {
            String::new()
        };
        println!(
            "ListApplicants {}: {sizes}{ratio} (medians of {} rounds of {} s, {} callers, {})",
            variant.label(),
            args.rounds.max(1),
            args.duration,
            args.concurrency,
            listener(args)
        );
    }
    for t in targets {
        t.shutdown.cancel();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_are_valid_registrations_with_unique_identifiers() {
        let zones: Vec<String> = ZONES.iter().map(|z| z.0.to_string()).collect();
        let today = OffsetDateTime::now_utc().date();
        let mut phones = std::collections::HashSet::new();
        for i in (0..2000).chain(REGISTERED_FROM..REGISTERED_FROM + 100) {
            let p = person(i);
            work4life_intake::applicants::validate("applicant", &p.wire(), &zones, today).expect("a valid registration");
            if let Some(phone) = p.phone {
                assert!(phones.insert(phone), "phone of {i} is unique");
            }
        }
        assert_eq!(person(17).family, person(17).family, "the same person every time");
    }
}
