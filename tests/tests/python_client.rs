//! A client generated in another language: `tests/python/client_journey.py` generates Python
//! stubs from `proto/` with grpcio-tools (the README's command) and drives the first steps of
//! the collective start-up journey against the real binary, split into five processes, then
//! reads a refusal's `google.rpc.BadRequest` from the trailers. Needs `python3` with
//! `grpcio-tools` (scripts/test installs it).

use work4life_tests::world::{Mode, World};

#[tokio::test]
async fn a_python_client_generated_from_the_protos_applies_as_a_collective() {
    let world = World::start(Mode::Split).await.expect("world");
    let (_, officer) = world.token("officer", Some(uuid::Uuid::now_v7()), &["tanger"]);
    let out = std::env::temp_dir().join(format!("w4l-python-{}", uuid::Uuid::new_v4().simple()));
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/python/client_journey.py");
    let intake = world.suite.url_of("intake").trim_start_matches("http://").to_string();
    let run = tokio::process::Command::new("python3")
        .arg(script)
        .env("W4L_INTAKE", &intake)
        .env("W4L_OFFICER", &officer)
        .env("W4L_OUT", &out)
        .output()
        .await
        .expect("python3 runs");
    let _ = std::fs::remove_dir_all(&out);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(run.status.success(), "the Python client failed:\n{stdout}\n{}", String::from_utf8_lossy(&run.stderr));
    let report: serde_json::Value = serde_json::from_str(stdout.trim().lines().last().unwrap_or_default()).expect("a JSON line");
    assert_eq!(report["state"], "APPLICATION_STATE_SUBMITTED");
    assert_eq!(report["applicants"].as_array().map(Vec::len), Some(4));
    let application = report["application"].as_str().expect("application").trim_start_matches("applications/").to_string();
    // What the Python client did is in intake's tables, as the Rust clients' would be.
    let pool = world.pool("intake").await.expect("pool");
    let members: i64 = sqlx::query_scalar("SELECT count(*) FROM application_members WHERE application_id = $1::uuid")
        .bind(&application)
        .fetch_one(&pool)
        .await
        .expect("members");
    assert_eq!(members, 4);
    world.stop().await.expect("clean stop");
}
