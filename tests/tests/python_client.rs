//! A client generated in another language: `tests/python/client_journey.py` generates Python
//! stubs from `proto/` with grpcio-tools (the README's command) and drives the whole collective
//! start-up journey against the real binary (as `journey_startup.rs` does in Rust): four members
//! registered, the application submitted, reviewed (one reviewer declares a conflict) and
//! accepted, the three-tranche award committed once grants has the decision, coaching's
//! engagement with a held session and the business-plan milestone verified, the first tranche
//! requested, approved by a second person, batched, exported and imported as paid; it reads
//! refusals' `google.rpc` details (BadRequest, ErrorInfo) from the trailers. The script cannot
//! mint tokens: this test mints every actor's and passes them as `W4L_TOKEN_<ROLE>`. Then it
//! checks the databases and each member's SMS. Needs `python3` with `grpcio-tools`
//! (scripts/test installs it).

use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;
use work4life_testkit::eventually;
use work4life_tests::{
    steps::{STEPS, assert_each_step_told_once, assert_steps_told_in_order, sms_to, wait_until_every_step_is_sent},
    world::{Mode, World},
};

const CROSSING: Duration = Duration::from_secs(60);
/// The members the script registers: given name and the first language they read.
const MEMBERS: [(&str, &str); 4] = [("Fatima", "ar"), ("Aminata", "fr"), ("Grace", "en"), ("Christelle", "fr")];
/// A disbursement row: id, state, requested_by, approved_by, external_reference.
type Disbursement = (Uuid, String, String, Option<String>, Option<String>);

fn id_of(name: &Value) -> Uuid {
    let name = name.as_str().unwrap_or_else(|| panic!("a resource name: {name}"));
    Uuid::parse_str(name.rsplit('/').next().unwrap_or_default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

async fn the_python_journey(mode: Mode) {
    let started = std::time::Instant::now();
    let world = World::start(mode).await.expect("world");
    let org = Uuid::now_v7();
    let tokens = [
        ("OFFICER", world.token("officer", Some(org), &["tanger"])),
        ("PROGRAM_MANAGER", world.token("program_manager", Some(org), &["tanger"])),
        ("ADMIN", world.token("admin", None, &[])),
        ("REVIEWER_CONFLICTED", world.token("reviewer", None, &[])),
        ("REVIEWER", world.token("reviewer", None, &[])),
        ("COACH", world.token("coach", None, &[])),
        ("FINANCE_OFFICER", world.token("finance_officer", Some(org), &["tanger"])),
        ("FINANCE_CHECKER", world.token("finance_checker", Some(org), &["tanger"])),
    ];
    let subject = |role: &str| tokens.iter().find(|(r, _)| *r == role).map(|(_, (s, _))| s.clone()).expect("role");
    let out = std::env::temp_dir().join(format!("w4l-python-{}", Uuid::new_v4().simple()));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/client_journey.py");
    let mut command = tokio::process::Command::new("python3");
    command.arg(script).env("W4L_OUT", &out);
    for service in ["intake", "grants", "coaching", "notifications", "identity"] {
        command.env(format!("W4L_{}", service.to_uppercase()), world.suite.url_of(service).trim_start_matches("http://"));
    }
    for (role, (sub, jwt)) in &tokens {
        command.env(format!("W4L_TOKEN_{role}"), jwt).env(format!("W4L_SUBJECT_{role}"), sub);
    }
    let run = command.output().await.expect("python3 runs");
    let _ = std::fs::remove_dir_all(&out);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "the Python client failed:\n{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    let report: Value = serde_json::from_str(stdout.trim().lines().last().unwrap_or_default()).expect("a JSON line");
    eprintln!("the Python client ({mode:?}): {report}");

    // What the script says it did.
    assert_eq!(report["state"], "APPLICATION_STATE_DECIDED");
    assert_eq!(report["session_state"], "SESSION_STATE_HELD");
    assert_eq!(report["milestone"], "MILESTONE_STATE_VERIFIED");
    assert_eq!(report["disbursement_state"], "DISBURSEMENT_STATE_PAID");
    assert_eq!(report["conflicted_refusal"], "INVALID_STATE");
    assert_eq!(report["told"], serde_json::json!(STEPS), "the script waited for each step's messages");
    assert_eq!(report["requested_by"], subject("FINANCE_OFFICER"));
    assert_eq!(report["approved_by"], subject("FINANCE_CHECKER"));
    let fields = report["refused_fields"].as_array().expect("refused fields");
    assert!(fields.contains(&"applicant.phone".into()) && fields.contains(&"applicant.birth_date".into()), "{fields:?}");
    let members = report["members"].as_array().expect("members").clone();
    assert_eq!(members.len(), 4);
    for (m, (given, language)) in members.iter().zip(MEMBERS) {
        assert_eq!((m["given"].as_str(), m["language"].as_str()), (Some(given), Some(language)), "{m}");
    }

    // What it did is in the services' tables, as the Rust clients' would be.
    let application = id_of(&report["application"]);
    let intake_db = world.pool("intake").await.expect("intake pool");
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM application_members WHERE application_id = $1")
        .bind(application)
        .fetch_one(&intake_db)
        .await
        .expect("members");
    assert_eq!(count, 4);
    let mut reviews: Vec<(String, Option<f64>)> = sqlx::query_as("SELECT state, total FROM reviews WHERE application_id = $1")
        .bind(application)
        .fetch_all(&intake_db)
        .await
        .expect("reviews");
    reviews.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(reviews, [("conflict_declared".to_string(), None), ("scored".to_string(), Some(80.0))], "the refused score wrote nothing");
    let grants_db = world.pool("grants").await.expect("grants pool");
    let award = id_of(&report["award"]);
    let awards: i64 = sqlx::query_scalar("SELECT count(*) FROM awards WHERE application_id = $1")
        .bind(application)
        .fetch_one(&grants_db)
        .await
        .expect("awards");
    assert_eq!(awards, 1, "the award retried until grants had the decision was committed once");
    let disbursements: Vec<Disbursement> =
        sqlx::query_as("SELECT id, state, requested_by, approved_by, external_reference FROM disbursements WHERE award_id = $1")
            .bind(award)
            .fetch_all(&grants_db)
            .await
            .expect("disbursements");
    assert_eq!(
        disbursements,
        [(
            id_of(&report["disbursement"]),
            "paid".to_string(),
            subject("FINANCE_OFFICER"),
            Some(subject("FINANCE_CHECKER")),
            Some("BMCE-2026-77812".to_string())
        )],
        "one disbursement, paid, approved by the checker (the maker's refused approval wrote nothing)"
    );

    // Each member heard of each step once, in the first language they read, by SMS.
    let notifications_db = world.pool("notifications").await.expect("notifications pool");
    let recipients: Vec<String> = members.iter().map(|m| m["applicant"].as_str().expect("applicant").to_string()).collect();
    let rows = wait_until_every_step_is_sent(&notifications_db, &recipients, CROSSING).await;
    for (recipient, (given, language)) in recipients.iter().zip(MEMBERS) {
        assert_each_step_told_once(&rows, recipient, given, language);
    }
    // Each phone got the eight steps' SMS once each, in order (the script waited, through
    // notifications' ListMessages, until every member was sent a step's message before the next
    // step), in the member's script and words, by name.
    for (m, (given, language)) in members.iter().zip(MEMBERS) {
        let phone = m["phone"].as_str().expect("phone");
        let texts = eventually(&format!("{given}'s eight SMS are accepted"), CROSSING, || async {
            let texts = sms_to(&world, phone);
            (texts.len() >= STEPS.len()).then_some(texts)
        })
        .await;
        assert_steps_told_in_order(&texts, given, language);
    }
    eprintln!("the Python client's collective start-up journey ({mode:?}) took {:?}", started.elapsed());
    world.stop().await.expect("clean stop");
}

#[tokio::test]
async fn a_python_client_runs_the_collective_startup_all_in_one() {
    the_python_journey(Mode::AllInOne).await;
}

#[tokio::test]
async fn a_python_client_runs_the_collective_startup_split() {
    the_python_journey(Mode::Split).await;
}
