//! The notifications API as its callers use it: templates (versions, reading back, listing,
//! pagination, idempotency, concurrent saves, audit), preferences (defaults, masks, etags, who may
//! read and change them), permissions of every role on templates, messages and provider
//! callbacks, and the inbox (order, unread, marking read once, privacy).

mod common;

use std::time::Duration;

use common::*;
use tonic::{Code, Status};
use uuid::Uuid;
use work4life_proto::{
    coaching::MilestoneVerified,
    intake::CreateApplicantRequest,
    notifications::{
        Channel, CreateTemplateRequest, CreateTemplateResponse, DeliveryOutcome, GetMessageRequest, GetPreferencesRequest,
        GetTemplateRequest, InboxItem, ListInboxItemsRequest, ListInboxItemsResponse, ListMessagesRequest, ListTemplatesRequest,
        MarkInboxItemReadRequest, MessageKind, MessageState, Preferences, ReceiveInboundMessageRequest, RecordDeliveryReportRequest,
        ReplayMessageRequest, Template, UpdatePreferencesRequest,
    },
};
use work4life_testkit::{audit_records, fingerprint};

const TABLES: &[&str] = &["templates", "preferences", "messages", "inbox_items", "opted_out_numbers"];
const REGISTERED: &str = "intake.applicant.registered";

fn template(message_type: &str, channel: Channel, locale: &str, body: &str) -> Template {
    Template { message_type: message_type.into(), channel: channel as i32, locale: locale.into(), body: body.into(), ..Template::default() }
}

fn save(t: Template) -> CreateTemplateRequest {
    CreateTemplateRequest { template: Some(t), request_id: rid() }
}

async fn versions_stored(f: &Fixture, message_type: &str, channel: &str, locale: &str) -> Vec<i32> {
    sqlx::query_scalar("SELECT version FROM templates WHERE message_type = $1 AND channel = $2 AND locale = $3 ORDER BY version")
        .bind(message_type)
        .bind(channel)
        .bind(locale)
        .fetch_all(f.pool())
        .await
        .expect("versions")
}

/// The code and the ErrorInfo reason of a refusal.
fn refusal<T: std::fmt::Debug>(what: &str, result: Result<tonic::Response<T>, Status>) -> (Code, String) {
    match result {
        Ok(answer) => panic!("{what}: accepted: {:?}", answer.into_inner()),
        Err(status) => (status.code(), reason(&status)),
    }
}

/// Every template page by page, with `page_size`, and the number of pages.
async fn walk_templates(f: &Fixture, token: &str, mut request: ListTemplatesRequest) -> (Vec<Template>, usize) {
    let (mut all, mut pages) = (Vec::new(), 0);
    loop {
        let page = f.client().list_templates(bearer(request.clone(), token)).await.expect("page").into_inner();
        pages += 1;
        assert!(page.templates.len() <= request.page_size.max(1) as usize, "a page holds at most page_size");
        all.extend(page.templates);
        if page.next_page_token.is_empty() {
            return (all, pages);
        }
        request.page_token = page.next_page_token;
        assert!(pages < 10_000, "pagination does not end");
    }
}

#[tokio::test]
async fn a_saved_template_is_a_new_version_read_back_and_listed_newest_first() {
    let f = Fixture::start().await;
    let (admin_account, admin) = f.suite.signer.token("admin", None, &[]);
    let before = versions_stored(&f, REGISTERED, "sms", "en").await;
    assert_eq!(before, vec![1], "seeded once");
    let n = before.len() as i32;

    let body = "Hello {{given_name}}, welcome to WORK4LIFE (v2).";
    let saved = f
        .client()
        .create_template(bearer(save(template(REGISTERED, Channel::Sms, "en", body)), &admin))
        .await
        .expect("saved")
        .into_inner()
        .template
        .expect("template");
    assert_eq!(saved.name, format!("templates/{REGISTERED}/sms/en/versions/{}", n + 1));
    assert_eq!(saved.version, n + 1);
    assert_eq!((saved.message_type.as_str(), saved.channel, saved.locale.as_str()), (REGISTERED, Channel::Sms as i32, "en"));
    assert_eq!(saved.body, body);
    assert_eq!(saved.subject, "");
    assert_eq!(saved.provider_template, "");
    assert_eq!(saved.create_account, admin_account);
    assert!(saved.create_time.is_some());
    assert_eq!(versions_stored(&f, REGISTERED, "sms", "en").await, vec![1, 2]);
    let audit = audit_records(f.pool(), "notifications.CreateTemplate", &saved.name).await;
    assert_eq!(audit.len(), 1, "one audit record for the save");
    assert_eq!(audit[0].0, admin_account);

    // GetTemplate reads exactly what was saved; the older version is still there.
    let got = f.client().get_template(bearer(GetTemplateRequest { name: saved.name.clone() }, &admin)).await.expect("get").into_inner();
    assert_eq!(got.template.as_ref(), Some(&saved));
    let first = f
        .client()
        .get_template(bearer(GetTemplateRequest { name: format!("templates/{REGISTERED}/sms/en/versions/1") }, &admin))
        .await
        .expect("v1")
        .into_inner()
        .template
        .expect("v1");
    assert_eq!(first.version, 1);
    assert_ne!(first.body, body);

    // A save of an email and a WhatsApp template keep their subject and provider template.
    let mut email = template(REGISTERED, Channel::Email, "en", body);
    email.subject = "Welcome {{given_name}}".into();
    let email = f.client().create_template(bearer(save(email), &admin)).await.expect("email").into_inner().template.expect("t");
    assert_eq!((email.subject.as_str(), email.version), ("Welcome {{given_name}}", 2));
    let mut whatsapp = template(REGISTERED, Channel::Whatsapp, "ar-MA", "مرحبا {{given_name}}");
    whatsapp.provider_template = "w4l_welcome_v7".into();
    let whatsapp = f.client().create_template(bearer(save(whatsapp), &admin)).await.expect("whatsapp").into_inner().template.expect("t");
    assert_eq!(whatsapp.name, format!("templates/{REGISTERED}/whatsapp/ar-MA/versions/1"), "a new key starts at 1");
    assert_eq!(whatsapp.provider_template, "w4l_welcome_v7");

    // By default only the newest version of each (type, channel, locale).
    let list = |message_type: &str, channel: Channel, locale: &str, all_versions: bool| ListTemplatesRequest {
        message_type: message_type.into(),
        channel: channel as i32,
        locale: locale.into(),
        all_versions,
        ..ListTemplatesRequest::default()
    };
    let newest = f.client().list_templates(bearer(list(REGISTERED, Channel::Sms, "en", false), &admin)).await.expect("list").into_inner();
    assert_eq!(newest.templates, vec![saved.clone()]);
    assert_eq!(newest.next_page_token, "");
    let every = f.client().list_templates(bearer(list(REGISTERED, Channel::Sms, "en", true), &admin)).await.expect("list").into_inner();
    assert_eq!(every.templates, vec![first.clone(), saved.clone()]);

    // Filters: one message type (newest of each channel and locale, ordered by channel, locale).
    let of_type = f.client().list_templates(bearer(list(REGISTERED, Channel::Unspecified, "", false), &admin)).await.expect("type");
    let of_type = of_type.into_inner().templates;
    let keys: i64 = count(
        f.pool(),
        &format!("SELECT count(*) FROM (SELECT DISTINCT channel, locale FROM templates WHERE message_type = '{REGISTERED}') k"),
    )
    .await;
    assert_eq!(of_type.len() as i64, keys);
    assert!(of_type.iter().all(|t| t.message_type == REGISTERED));
    let order: Vec<(i32, String)> = of_type.iter().map(|t| (t.channel, t.locale.clone())).collect();
    let code = |c: i32| ["", "sms", "email", "whatsapp"][c as usize];
    let mut sorted = order.clone();
    sorted.sort_by(|a, b| (code(a.0), &a.1).cmp(&(code(b.0), &b.1)));
    assert_eq!(order, sorted, "ordered by channel, then locale");
    assert!(of_type.contains(&saved) && of_type.contains(&email) && of_type.contains(&whatsapp));
    assert!(!of_type.contains(&first), "not the older version");
    // One channel: WhatsApp only, every one with its provider template.
    let (wa, _) =
        walk_templates(&f, &admin, ListTemplatesRequest { channel: Channel::Whatsapp as i32, page_size: 500, ..Default::default() }).await;
    let wa_keys =
        count(f.pool(), "SELECT count(*) FROM (SELECT DISTINCT message_type, locale FROM templates WHERE channel = 'whatsapp') k").await;
    assert_eq!(wa.len() as i64, wa_keys);
    assert!(wa.iter().all(|t| t.channel == Channel::Whatsapp as i32 && !t.provider_template.is_empty()));
    // One locale.
    let (ar, _) = walk_templates(&f, &admin, ListTemplatesRequest { locale: "ar".into(), page_size: 500, ..Default::default() }).await;
    assert!(!ar.is_empty() && ar.iter().all(|t| t.locale == "ar"));
    assert_eq!(
        ar.len() as i64,
        count(f.pool(), "SELECT count(*) FROM (SELECT DISTINCT message_type, channel FROM templates WHERE locale = 'ar') k").await
    );
}

#[tokio::test]
async fn template_pages_walk_every_template_once_and_tokens_keep_their_filter() {
    let f = Fixture::start().await;
    let admin = f.token("admin");
    // A second version of two keys, so that "newest only" and "all versions" differ.
    for (locale, body) in [("fr", "Salut {{given_name}} !"), ("en", "Hi {{given_name}}!")] {
        f.client().create_template(bearer(save(template(REGISTERED, Channel::Sms, locale, body)), &admin)).await.expect("saved");
    }
    let stored = count(f.pool(), "SELECT count(*) FROM templates").await as usize;
    let keys = count(f.pool(), "SELECT count(*) FROM (SELECT DISTINCT message_type, channel, locale FROM templates) k").await as usize;
    assert_eq!(stored, keys + 2);
    assert!(keys > 50, "more than a default page ({keys})");

    for all_versions in [false, true] {
        let want = if all_versions { stored } else { keys };
        let (one_page, pages) =
            walk_templates(&f, &admin, ListTemplatesRequest { all_versions, page_size: 500, ..Default::default() }).await;
        assert_eq!((one_page.len(), pages), (want, 1));
        let names: std::collections::BTreeSet<&str> = one_page.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names.len(), want, "no template twice");
        let (by_one, pages) = walk_templates(&f, &admin, ListTemplatesRequest { all_versions, page_size: 1, ..Default::default() }).await;
        assert_eq!(pages, want, "page_size 1: one page per template");
        assert_eq!(by_one, one_page, "page_size 1 walks the same templates in the same order");
        let (by_seven, pages) = walk_templates(&f, &admin, ListTemplatesRequest { all_versions, page_size: 7, ..Default::default() }).await;
        assert_eq!(pages, want.div_ceil(7));
        assert_eq!(by_seven, one_page);
    }

    // The default page is 50; a larger request is served at most 500 (coerced, not refused).
    let first = f.client().list_templates(bearer(ListTemplatesRequest::default(), &admin)).await.expect("default").into_inner();
    assert_eq!(first.templates.len(), 50);
    assert!(!first.next_page_token.is_empty());
    let huge = ListTemplatesRequest { page_size: 100_000, ..Default::default() };
    let huge = f.client().list_templates(bearer(huge, &admin)).await.expect("huge").into_inner();
    assert_eq!((huge.templates.len(), huge.next_page_token.as_str()), (keys, ""));

    // A token carries its filter: another filter refuses it; another page size does not.
    let token = first.next_page_token.clone();
    let other_filters = [
        ListTemplatesRequest { all_versions: true, ..Default::default() },
        ListTemplatesRequest { message_type: REGISTERED.into(), ..Default::default() },
        ListTemplatesRequest { channel: Channel::Sms as i32, ..Default::default() },
        ListTemplatesRequest { locale: "fr".into(), ..Default::default() },
    ];
    for other in other_filters {
        let request = ListTemplatesRequest { page_token: token.clone(), ..other.clone() };
        let status = f.client().list_templates(bearer(request, &admin)).await.expect_err("token of another filter");
        assert_eq!(status.code(), Code::InvalidArgument, "{other:?}");
        assert_eq!(fields(&status), vec!["page_token"], "{other:?}");
    }
    let next = ListTemplatesRequest { page_token: token, page_size: 3, ..Default::default() };
    let next = f.client().list_templates(bearer(next, &admin)).await.expect("same filter, other size").into_inner();
    let (all, _) = walk_templates(&f, &admin, ListTemplatesRequest { page_size: 500, ..Default::default() }).await;
    assert_eq!(next.templates, all[50..53].to_vec(), "the page after the first 50");
}

#[tokio::test]
async fn create_template_is_idempotent_on_request_id_per_caller() {
    let f = Fixture::start().await;
    let (admin_account, admin) = f.suite.signer.token("admin", None, &[]);
    let request = save(template(REGISTERED, Channel::Sms, "fr", "Bienvenue {{given_name}} (idempotent)."));

    let first = f.client().create_template(bearer(request.clone(), &admin)).await.expect("first").into_inner();
    let again = f.client().create_template(bearer(request.clone(), &admin)).await.expect("retry").into_inner();
    assert_eq!(again, first, "a retry answers the first response");
    let name = first.template.as_ref().expect("t").name.clone();
    assert_eq!(name, format!("templates/{REGISTERED}/sms/fr/versions/2"));
    assert_eq!(versions_stored(&f, REGISTERED, "sms", "fr").await, vec![1, 2], "one row");
    assert_eq!(audit_records(f.pool(), "notifications.CreateTemplate", &name).await.len(), 1, "audited once");

    // The same id with another request is refused, and writes nothing.
    let before = fingerprint(f.pool(), TABLES).await;
    let mut changed = request.clone();
    changed.template.as_mut().expect("t").body = "Autre texte {{given_name}}".into();
    let status = f.client().create_template(bearer(changed, &admin)).await.expect_err("reused id");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(fields(&status), vec!["request_id"]);
    assert_eq!(fingerprint(f.pool(), TABLES).await, before);

    // Request ids are per caller: another admin's request with the same id is its own.
    let (other_account, other) = f.suite.signer.token("admin", None, &[]);
    let theirs = f.client().create_template(bearer(request.clone(), &other)).await.expect("other caller").into_inner();
    let theirs = theirs.template.expect("t");
    assert_eq!((theirs.version, theirs.create_account.as_str()), (3, other_account.as_str()));
    assert_ne!(other_account, admin_account);

    // Without a request id every call saves a version.
    let mut no_id = request.clone();
    no_id.request_id = String::new();
    let a = f.client().create_template(bearer(no_id.clone(), &admin)).await.expect("a").into_inner().template.expect("t");
    let b = f.client().create_template(bearer(no_id, &admin)).await.expect("b").into_inner().template.expect("t");
    assert_eq!((a.version, b.version), (4, 5));
    assert_eq!(versions_stored(&f, REGISTERED, "sms", "fr").await, vec![1, 2, 3, 4, 5]);
}

#[tokio::test]
async fn concurrent_saves_of_one_template_get_distinct_versions_or_abort() {
    let f = Fixture::start().await;
    let (admin_account, admin) = f.suite.signer.token("admin", None, &[]);
    let base = versions_stored(&f, REGISTERED, "email", "en").await.len() as i32;
    let request = |i: usize| {
        let mut t = template(REGISTERED, Channel::Email, "en", &format!("Hello {{{{given_name}}}} #{i}"));
        t.subject = format!("Welcome #{i}");
        save(t)
    };
    let requests: Vec<CreateTemplateRequest> = (0..10).map(request).collect();
    let calls = requests.iter().map(|r| {
        let mut client = f.client();
        let call = bearer(r.clone(), &admin);
        async move { client.create_template(call).await }
    });
    let results: Vec<Result<tonic::Response<CreateTemplateResponse>, Status>> = futures::future::join_all(calls).await;

    let mut saved: Vec<Template> = Vec::new();
    let mut aborted = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(answer) => saved.push(answer.into_inner().template.expect("t")),
            Err(status) => {
                assert_eq!(status.code(), Code::Aborted, "only OK or ABORTED: {status:?}");
                assert_eq!(reason(&status), "CONCURRENT_UPDATE");
                aborted.push(i);
            }
        }
    }
    let k = saved.len() as i32;
    assert!(k >= 1, "at least one save wins");
    eprintln!("{k} of 10 concurrent saves won at once; {} were ABORTED", aborted.len());
    let mut versions: Vec<i32> = saved.iter().map(|t| t.version).collect();
    versions.sort_unstable();
    assert_eq!(versions, ((base + 1)..=(base + k)).collect::<Vec<_>>(), "distinct versions with no gap");
    assert_eq!(versions_stored(&f, REGISTERED, "email", "en").await, (1..=(base + k)).collect::<Vec<_>>(), "no row for the aborted");
    for t in &saved {
        let stored: String = sqlx::query_scalar(
            "SELECT body FROM templates WHERE message_type = $1 AND channel = 'email' AND locale = 'en' AND version = $2",
        )
        .bind(REGISTERED)
        .bind(t.version)
        .fetch_one(f.pool())
        .await
        .expect("row");
        assert_eq!(stored, t.body, "each answer names its own row");
        let audit = audit_records(f.pool(), "notifications.CreateTemplate", &t.name).await;
        assert_eq!(audit.len(), 1, "one audit record for {}", t.name);
        assert_eq!(audit[0].0, admin_account);
    }
    let audited = count(
        f.pool(),
        &format!("SELECT count(*) FROM audit_log WHERE action = 'notifications.CreateTemplate' AND resource LIKE 'templates/{REGISTERED}/email/en/%'"),
    )
    .await;
    assert_eq!(audited, i64::from(k), "no audit record for an aborted save");

    // The losers retry (as ABORTED tells them) with the same request: everyone gets a version.
    for i in aborted {
        let retried = f.client().create_template(bearer(requests[i].clone(), &admin)).await.expect("retry after ABORTED");
        saved.push(retried.into_inner().template.expect("t"));
    }
    let mut versions: Vec<i32> = saved.iter().map(|t| t.version).collect();
    versions.sort_unstable();
    assert_eq!(versions, ((base + 1)..=(base + 10)).collect::<Vec<_>>());
    let bodies: std::collections::BTreeSet<&str> = saved.iter().map(|t| t.body.as_str()).collect();
    assert_eq!(bodies.len(), 10, "every request saved once");
}

fn mask(paths: &[&str]) -> Option<prost_types::FieldMask> {
    Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_string()).collect() })
}

fn get_prefs(name: &str) -> GetPreferencesRequest {
    GetPreferencesRequest { name: name.into() }
}

fn update(p: Preferences, paths: &[&str]) -> UpdatePreferencesRequest {
    UpdatePreferencesRequest { preferences: Some(p), update_mask: mask(paths) }
}

#[tokio::test]
async fn preferences_start_empty_change_by_mask_and_check_the_etag() {
    let f = Fixture::start().await;
    let (admin_account, admin) = f.suite.signer.token("admin", None, &[]);
    let applicant = f.register(person(&["fr"])).await;
    f.wait_state(&applicant, REGISTERED, "sent").await; // the tables hold still from now on
    let name = format!("{applicant}/preferences");

    let defaults = f.client().get_preferences(bearer(get_prefs(&name), &admin)).await.expect("defaults").into_inner();
    assert_eq!(defaults.preferences, Some(Preferences { name: name.clone(), etag: "v0".into(), ..Preferences::default() }));

    // Only the masked field changes: the language sent along is ignored.
    let p = Preferences {
        name: name.clone(),
        channels: vec![Channel::Email as i32, Channel::Sms as i32],
        language: "en".into(),
        ..Preferences::default()
    };
    let v1 =
        f.client().update_preferences(bearer(update(p, &["channels"]), &admin)).await.expect("v1").into_inner().preferences.expect("p");
    assert_eq!(v1.channels, vec![Channel::Email as i32, Channel::Sms as i32]);
    assert_eq!((v1.language.as_str(), v1.etag.as_str()), ("", "v1"));
    assert!(v1.opted_out_kinds.is_empty());
    assert!(v1.update_time.is_some());

    // A stale or made-up etag: ABORTED, nothing written.
    let before = fingerprint(f.pool(), TABLES).await;
    for stale in ["v0", "v2", "abc"] {
        let p = Preferences { name: name.clone(), language: "ar".into(), etag: stale.into(), ..Preferences::default() };
        let status = f.client().update_preferences(bearer(update(p, &["language"]), &admin)).await.expect_err("stale etag");
        assert_eq!((status.code(), reason(&status).as_str()), (Code::Aborted, "ETAG_MISMATCH"), "{stale}");
    }
    assert_eq!(fingerprint(f.pool(), TABLES).await, before);

    // The right etag; duplicates in opted_out_kinds are kept once, in order.
    let p = Preferences {
        name: name.clone(),
        language: "ar".into(),
        opted_out_kinds: vec![MessageKind::Reminder as i32, MessageKind::Reminder as i32, MessageKind::Update as i32],
        etag: "v1".into(),
        ..Preferences::default()
    };
    let v2 = f
        .client()
        .update_preferences(bearer(update(p, &["language", "opted_out_kinds"]), &admin))
        .await
        .expect("v2")
        .into_inner()
        .preferences
        .expect("p");
    assert_eq!(v2.channels, vec![Channel::Email as i32, Channel::Sms as i32], "channels were not in the mask");
    assert_eq!(v2.language, "ar");
    assert_eq!(v2.opted_out_kinds, vec![MessageKind::Reminder as i32, MessageKind::Update as i32]);
    assert_eq!(v2.etag, "v2");
    let read = f.client().get_preferences(bearer(get_prefs(&name), &admin)).await.expect("read").into_inner().preferences;
    assert_eq!(read.as_ref(), Some(&v2));

    // Clearing the channels goes back to the program's order.
    let p = Preferences { name: name.clone(), etag: "v2".into(), ..Preferences::default() };
    let v3 =
        f.client().update_preferences(bearer(update(p, &["channels"]), &admin)).await.expect("v3").into_inner().preferences.expect("p");
    assert!(v3.channels.is_empty());
    assert_eq!((v3.language.as_str(), v3.etag.as_str()), ("ar", "v3"));
    let stored: (i64, Vec<String>, String, Vec<String>) =
        sqlx::query_as("SELECT version, channels, language, opted_out_kinds FROM preferences WHERE applicant_id = $1")
            .bind(Uuid::parse_str(applicant.trim_start_matches("applicants/")).expect("id"))
            .fetch_one(f.pool())
            .await
            .expect("row");
    assert_eq!(stored, (3, vec![], "ar".to_string(), vec!["reminder".to_string(), "update".to_string()]));

    let audit = audit_records(f.pool(), "notifications.UpdatePreferences", &name).await;
    let fields_changed: Vec<serde_json::Value> = audit.iter().map(|(_, d)| d["fields"].clone()).collect();
    assert_eq!(
        fields_changed,
        vec![serde_json::json!(["channels"]), serde_json::json!(["language", "opted_out_kinds"]), serde_json::json!(["channels"])]
    );
    assert!(audit.iter().all(|(actor, _)| *actor == admin_account));
}

/// A beneficiary who registered themselves in intake (their login is linked to the record):
/// (account, token, applicant).
async fn self_registered(f: &Fixture) -> (String, String, String) {
    let (account, token) = f.beneficiary();
    let request = CreateApplicantRequest { applicant: Some(person(&["fr"])), request_id: rid() };
    let applicant =
        f.intake().create_applicant(bearer(request, &token)).await.expect("self registration").into_inner().applicant.expect("a");
    assert_eq!(applicant.account, account, "intake links the beneficiary's own login");
    (account, token, applicant.name)
}

#[tokio::test]
async fn a_beneficiary_manages_only_their_own_preferences_officers_any_reviewers_none() {
    let f = Fixture::start().await;
    let (_, ben, own) = self_registered(&f).await;
    let other = f.register(person(&["ar"])).await;
    // Their welcome messages are sent first, so that the tables hold still while calls are refused.
    f.wait_state(&own, REGISTERED, "sent").await;
    f.wait_state(&other, REGISTERED, "sent").await;
    let (own_prefs, other_prefs) = (format!("{own}/preferences"), format!("{other}/preferences"));

    let mine = f.client().get_preferences(bearer(get_prefs(&own_prefs), &ben)).await.expect("own").into_inner().preferences.expect("p");
    assert_eq!(mine.etag, "v0");
    let p = Preferences { name: own_prefs.clone(), language: "en".into(), etag: "v0".into(), ..Preferences::default() };
    let changed = f.client().update_preferences(bearer(update(p, &["language"]), &ben)).await.expect("own update").into_inner();
    assert_eq!(changed.preferences.map(|p| (p.language, p.etag)), Some(("en".to_string(), "v1".to_string())));

    // Someone else's: NOT_FOUND (not even whether they exist), nothing written.
    let before = fingerprint(f.pool(), TABLES).await;
    let (code, _) = refusal("other's preferences", f.client().get_preferences(bearer(get_prefs(&other_prefs), &ben)).await);
    assert_eq!(code, Code::NotFound);
    let p = Preferences { name: other_prefs.clone(), language: "en".into(), ..Preferences::default() };
    let (code, _) = refusal("other's update", f.client().update_preferences(bearer(update(p, &["language"]), &ben)).await);
    assert_eq!(code, Code::NotFound);
    // Another beneficiary cannot reach the first one's either.
    let (_, stranger) = f.beneficiary();
    for name in [&own_prefs, &other_prefs] {
        let (code, _) = refusal("a stranger", f.client().get_preferences(bearer(get_prefs(name), &stranger)).await);
        assert_eq!(code, Code::NotFound);
    }
    // Reviewers, coaches, auditors and finance staff do not manage preferences.
    for role in ["reviewer", "coach", "auditor", "finance_officer", "gateway", "notifier"] {
        let token = f.token(role);
        for name in [&own_prefs, &other_prefs] {
            let (code, _) = refusal(role, f.client().get_preferences(bearer(get_prefs(name), &token)).await);
            assert_eq!(code, Code::NotFound, "{role} reads {name}");
            let p = Preferences { name: name.clone(), language: "ar".into(), ..Preferences::default() };
            let (code, _) = refusal(role, f.client().update_preferences(bearer(update(p, &["language"]), &token)).await);
            assert_eq!(code, Code::NotFound, "{role} changes {name}");
        }
    }
    assert_eq!(fingerprint(f.pool(), TABLES).await, before, "the refused calls wrote nothing");

    // Officers (and program managers) read and change anyone's.
    for role in ["officer", "program_manager"] {
        let token = f.token(role);
        let read = f.client().get_preferences(bearer(get_prefs(&other_prefs), &token)).await.expect(role).into_inner();
        assert_eq!(read.preferences.map(|p| p.name), Some(other_prefs.clone()));
        let p = Preferences { name: other_prefs.clone(), channels: vec![Channel::Whatsapp as i32], ..Preferences::default() };
        let changed = f.client().update_preferences(bearer(update(p, &["channels"]), &token)).await.expect(role).into_inner();
        assert_eq!(changed.preferences.map(|p| p.channels), Some(vec![Channel::Whatsapp as i32]));
    }
    let version: i64 =
        count(f.pool(), &format!("SELECT version FROM preferences WHERE applicant_id = '{}'", other.trim_start_matches("applicants/")))
            .await;
    assert_eq!(version, 2);
}

#[tokio::test]
async fn each_role_reaches_only_what_it_may() {
    let f = Fixture::start().await;
    let admin = f.token("admin");
    let (_, ben, own) = self_registered(&f).await;
    let other = f.register(person(&["fr"])).await;
    let own_message = f.wait_state(&own, REGISTERED, "sent").await;
    let other_message = f.wait_state(&other, REGISTERED, "sent").await;
    let officer = f.token("officer");

    // Templates: admins and program managers only, before any look at the input.
    let before = fingerprint(f.pool(), TABLES).await;
    for role in ["officer", "beneficiary", "reviewer", "coach", "gateway", "notifier", "auditor"] {
        let token = f.token(role);
        let good = save(template(REGISTERED, Channel::Sms, "fr", "Bonjour {{given_name}}"));
        let bad = save(template("nope", Channel::Inbox, "FR", ""));
        for request in [good, bad] {
            let (code, _) = refusal(role, f.client().create_template(bearer(request, &token)).await);
            assert_eq!(code, Code::PermissionDenied, "{role} saves a template");
        }
        let name = format!("templates/{REGISTERED}/sms/fr/versions/1");
        let (code, _) = refusal(role, f.client().get_template(bearer(GetTemplateRequest { name }, &token)).await);
        assert_eq!(code, Code::PermissionDenied, "{role} reads a template");
        let (code, _) = refusal(role, f.client().list_templates(bearer(ListTemplatesRequest::default(), &token)).await);
        assert_eq!(code, Code::PermissionDenied, "{role} lists templates");
    }
    assert_eq!(fingerprint(f.pool(), TABLES).await, before);
    let pm = f.token("program_manager");
    f.client()
        .create_template(bearer(save(template(REGISTERED, Channel::Sms, "fr", "Bonjour {{given_name}} !")), &pm))
        .await
        .expect("a program manager saves templates");

    // Messages: a beneficiary lists and reads their own only.
    let before = fingerprint(f.pool(), TABLES).await;
    let by_recipient = |r: &str| ListMessagesRequest { recipient: r.into(), ..Default::default() };
    let (code, _) = refusal("ben lists other's", f.client().list_messages(bearer(by_recipient(&other), &ben)).await);
    assert_eq!(code, Code::PermissionDenied);
    let by_state = ListMessagesRequest { state: MessageState::Sent as i32, ..Default::default() };
    let (code, _) = refusal("ben lists by state", f.client().list_messages(bearer(by_state.clone(), &ben)).await);
    assert_eq!(code, Code::PermissionDenied);
    let by_event = ListMessagesRequest { event_id: other_message.event_id.clone(), ..Default::default() };
    let (code, _) = refusal("ben lists by event", f.client().list_messages(bearer(by_event, &ben)).await);
    assert_eq!(code, Code::PermissionDenied);
    let mine = f.client().list_messages(bearer(by_recipient(&own), &ben)).await.expect("own messages").into_inner();
    assert_eq!(mine.messages, vec![own_message.clone()]);
    let got = f.client().get_message(bearer(GetMessageRequest { name: own_message.name.clone() }, &ben)).await.expect("own");
    assert_eq!(got.into_inner().message.as_ref(), Some(&own_message));
    let (code, _) =
        refusal("ben reads other's", f.client().get_message(bearer(GetMessageRequest { name: other_message.name.clone() }, &ben)).await);
    assert_eq!(code, Code::NotFound);
    // Officers and reviewers do not read messages.
    for role in ["officer", "reviewer"] {
        let token = f.token(role);
        let (code, _) = refusal(role, f.client().list_messages(bearer(by_recipient(&other), &token)).await);
        assert_eq!(code, Code::PermissionDenied, "{role} lists");
        let (code, _) = refusal(role, f.client().get_message(bearer(GetMessageRequest { name: other_message.name.clone() }, &token)).await);
        assert_eq!(code, Code::NotFound, "{role} reads");
    }
    // Replays: managers only.
    for token in [&ben, &officer] {
        let request = ReplayMessageRequest { name: own_message.name.clone() };
        let (code, _) = refusal("replay", f.client().replay_message(bearer(request, token)).await);
        assert_eq!(code, Code::PermissionDenied);
    }
    // Inboxes: the person's own (officers do not read them).
    let inbox = |parent: &str| ListInboxItemsRequest { parent: parent.into(), ..Default::default() };
    let (code, _) = refusal("ben reads other's inbox", f.client().list_inbox_items(bearer(inbox(&other), &ben)).await);
    assert_eq!(code, Code::NotFound);
    let (code, _) = refusal("officer reads an inbox", f.client().list_inbox_items(bearer(inbox(&other), &officer)).await);
    assert_eq!(code, Code::NotFound);
    let own_inbox = f.client().list_inbox_items(bearer(inbox(&own), &ben)).await.expect("own inbox").into_inner();
    assert_eq!(own_inbox.inbox_items.len(), 1);
    assert_eq!(own_inbox.inbox_items[0].message, own_message.name);

    // Provider callbacks: the gateway and admins, nobody else.
    let report = RecordDeliveryReportRequest {
        channel: Channel::Sms as i32,
        provider_reference: own_message.provider_reference.clone(),
        outcome: DeliveryOutcome::Delivered as i32,
        error: String::new(),
    };
    let stop = ReceiveInboundMessageRequest { channel: Channel::Sms as i32, sender: "+212611223344".into(), text: "STOP".into() };
    for role in ["officer", "beneficiary", "program_manager", "notifier", "reviewer"] {
        let token = f.token(role);
        let (code, _) = refusal(role, f.client().record_delivery_report(bearer(report.clone(), &token)).await);
        assert_eq!(code, Code::PermissionDenied, "{role} reports a delivery");
        let (code, _) = refusal(role, f.client().receive_inbound_message(bearer(stop.clone(), &token)).await);
        assert_eq!(code, Code::PermissionDenied, "{role} relays an inbound message");
    }
    assert_eq!(fingerprint(f.pool(), TABLES).await, before, "no refused call wrote anything");
    let gateway = f.token("gateway");
    let delivered = f.client().record_delivery_report(bearer(report, &gateway)).await.expect("the gateway reports").into_inner();
    assert_eq!(delivered.message.map(|m| (m.name, m.state)), Some((own_message.name.clone(), MessageState::Delivered as i32)));
    let hello = ReceiveInboundMessageRequest { text: "Bonjour".into(), ..stop };
    let answer = f.client().receive_inbound_message(bearer(hello, &gateway)).await.expect("the gateway relays").into_inner();
    assert!(!answer.opted_out);
    // Admins see every message, by state too.
    let sent = f.client().list_messages(bearer(by_state, &admin)).await.expect("admin").into_inner();
    assert_eq!(sent.messages, vec![other_message], "the other message is still SENT; the own one is DELIVERED now");
}

async fn inbox_of(f: &Fixture, token: &str, parent: &str, unread_only: bool, page_size: i32) -> (Vec<InboxItem>, Vec<i32>) {
    let mut request = ListInboxItemsRequest { parent: parent.into(), unread_only, page_size, page_token: String::new() };
    let (mut items, mut unread_counts) = (Vec::new(), Vec::new());
    loop {
        let page: ListInboxItemsResponse = f.client().list_inbox_items(bearer(request.clone(), token)).await.expect("inbox").into_inner();
        items.extend(page.inbox_items);
        unread_counts.push(page.unread_count);
        if page.next_page_token.is_empty() {
            return (items, unread_counts);
        }
        request.page_token = page.next_page_token;
    }
}

#[tokio::test]
async fn the_inbox_lists_newest_first_counts_unread_and_marks_read_once() {
    let f = Fixture::start().await;
    let (_, ben, own) = self_registered(&f).await;
    f.wait_state(&own, REGISTERED, "sent").await;
    let own_id = Uuid::parse_str(own.trim_start_matches("applicants/")).expect("id");
    let items_of = |n: i64| {
        let pool = f.pool().clone();
        async move {
            let sql = format!("SELECT count(*) FROM inbox_items WHERE applicant_id = '{own_id}'");
            eventually(&format!("{n} inbox items"), Duration::from_secs(20), || {
                let pool = pool.clone();
                let sql = sql.clone();
                async move { (count(&pool, &sql).await >= n).then_some(()) }
            })
            .await;
        }
    };
    items_of(1).await;
    // Three milestones, one after the other, so that each copy is newer than the last.
    let codes = ["JALON-ALPHA", "JALON-BETA", "JALON-GAMMA"];
    for (i, code) in codes.iter().enumerate() {
        let payload = MilestoneVerified {
            milestone: format!("engagements/{}/milestones/{code}", Uuid::now_v7()),
            code: (*code).into(),
            beneficiaries: vec![own.clone()],
            ..MilestoneVerified::default()
        };
        let e = work4life_testkit::event(
            "coaching",
            "coaching.milestone.verified",
            &payload.milestone,
            "work4life.coaching.v1.MilestoneVerified",
            &payload,
        );
        f.publish("coaching", &e).await;
        items_of(i as i64 + 2).await;
    }

    let (items, unread) = inbox_of(&f, &ben, &own, false, 0).await;
    assert_eq!(unread, vec![4]);
    let types: Vec<&str> = items.iter().map(|i| i.message_type.as_str()).collect();
    assert_eq!(types, vec!["coaching.milestone.verified", "coaching.milestone.verified", "coaching.milestone.verified", REGISTERED]);
    for (item, code) in items.iter().zip(["JALON-GAMMA", "JALON-BETA", "JALON-ALPHA"]) {
        assert!(item.body.contains(code), "newest first: {code} in {:?}", item.body);
        assert!(item.name.starts_with(&format!("{own}/inboxItems/")));
        assert_eq!(item.locale, "fr");
        assert!(!item.title.is_empty());
        assert!(item.read_time.is_none());
    }
    let times: Vec<(i64, i32)> = items.iter().map(|i| i.create_time.map(|t| (t.seconds, t.nanos)).expect("create_time")).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "create_time never increases: {times:?}");
    // Each copy points at its message, which is the person's.
    for item in &items {
        let m = f.client().get_message(bearer(GetMessageRequest { name: item.message.clone() }, &ben)).await.expect("the copied message");
        let m = m.into_inner().message.expect("m");
        assert_eq!((m.recipient.as_str(), m.message_type.as_str()), (own.as_str(), item.message_type.as_str()));
    }
    // Page by page: the same items in the same order.
    let (by_one, unread) = inbox_of(&f, &ben, &own, false, 1).await;
    assert_eq!(by_one, items);
    assert_eq!(unread, vec![4, 4, 4, 4]);

    // Marking read: once; again changes nothing.
    let beta = items[1].clone();
    let read = f.client().mark_inbox_item_read(bearer(MarkInboxItemReadRequest { name: beta.name.clone() }, &ben)).await.expect("read");
    let read = read.into_inner().inbox_item.expect("item");
    let read_time = read.read_time.expect("read_time is set");
    assert_eq!(InboxItem { read_time: None, ..read.clone() }, beta, "only read_time changed");
    tokio::time::sleep(Duration::from_millis(20)).await;
    let again = f.client().mark_inbox_item_read(bearer(MarkInboxItemReadRequest { name: beta.name.clone() }, &ben)).await.expect("again");
    assert_eq!(again.into_inner().inbox_item, Some(read.clone()), "read_time unchanged the second time");

    let (unread_items, unread) = inbox_of(&f, &ben, &own, true, 0).await;
    assert_eq!(unread, vec![3]);
    assert_eq!(unread_items, vec![items[0].clone(), items[2].clone(), items[3].clone()]);
    let (all, unread) = inbox_of(&f, &ben, &own, false, 0).await;
    assert_eq!(unread, vec![3]);
    assert_eq!(all[1].read_time, Some(read_time));
    assert!(all.iter().enumerate().all(|(i, item)| (i == 1) == item.read_time.is_some()));
    // unread_only pages carry their filter.
    let first = ListInboxItemsRequest { parent: own.clone(), unread_only: true, page_size: 1, page_token: String::new() };
    let token = f.client().list_inbox_items(bearer(first, &ben)).await.expect("page").into_inner().next_page_token;
    let status = f
        .client()
        .list_inbox_items(bearer(ListInboxItemsRequest { parent: own.clone(), unread_only: false, page_size: 1, page_token: token }, &ben))
        .await
        .expect_err("token of the unread list");
    assert_eq!((status.code(), fields(&status)), (Code::InvalidArgument, vec!["page_token".to_string()]));

    // Another beneficiary sees nothing of it and cannot mark it.
    eventually("every message sent", Duration::from_secs(20), || async {
        (count(f.pool(), "SELECT count(*) FROM messages WHERE state <> 'sent'").await == 0).then_some(())
    })
    .await;
    let before = fingerprint(f.pool(), TABLES).await;
    let (_, stranger) = f.beneficiary();
    let (code, _) = refusal(
        "stranger lists",
        f.client().list_inbox_items(bearer(ListInboxItemsRequest { parent: own.clone(), ..Default::default() }, &stranger)).await,
    );
    assert_eq!(code, Code::NotFound);
    let (code, _) = refusal(
        "stranger marks",
        f.client().mark_inbox_item_read(bearer(MarkInboxItemReadRequest { name: items[0].name.clone() }, &stranger)).await,
    );
    assert_eq!(code, Code::NotFound);
    assert_eq!(fingerprint(f.pool(), TABLES).await, before);
    let (_, unread) = inbox_of(&f, &ben, &own, false, 0).await;
    assert_eq!(unread, vec![3]);
}

/// Preferences belong to a person intake knows. Staff skip the "is it theirs" check, but a name
/// that names nobody (a typo, an erased id) must not answer defaults nor store a row for nobody.
#[tokio::test]
async fn preferences_of_someone_intake_does_not_know_are_not_found() {
    let f = Fixture::start().await;
    let nobody = format!("applicants/{}/preferences", Uuid::now_v7());
    let before = fingerprint(f.pool(), TABLES).await;
    for role in ["admin", "officer"] {
        let token = f.token(role);
        let (code, _) = refusal(role, f.client().get_preferences(bearer(get_prefs(&nobody), &token)).await);
        assert_eq!(code, Code::NotFound, "{role} reads the preferences of nobody");
        let p = Preferences { name: nobody.clone(), channels: vec![Channel::Email as i32], ..Preferences::default() };
        let (code, _) = refusal(role, f.client().update_preferences(bearer(update(p, &["channels"]), &token)).await);
        assert_eq!(code, Code::NotFound, "{role} sets the preferences of nobody");
    }
    assert_eq!(fingerprint(f.pool(), TABLES).await, before, "no preferences row for nobody");
}
