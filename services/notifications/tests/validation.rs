//! Bad input on every RPC of NotificationsService: each refused call answers the exact gRPC code
//! and the BadRequest field names, and writes nothing (the notifications tables' fingerprint is
//! the same before and after). Calls without a valid token are UNAUTHENTICATED.

mod common;

use std::{fmt::Debug, future::Future, time::Duration};

use common::*;
use tonic::{Code, Request, Response, Status};
use tonic_types::StatusExt as _;
use uuid::Uuid;
use work4life_proto::notifications::{
    Channel, CreateTemplateRequest, DeliveryOutcome, GetMessageRequest, GetPreferencesRequest, GetTemplateRequest, ListInboxItemsRequest,
    ListMessagesRequest, ListTemplatesRequest, MarkInboxItemReadRequest, MessageKind, MessageState, Preferences,
    ReceiveInboundMessageRequest, RecordDeliveryReportRequest, ReplayMessageRequest, Template, UpdatePreferencesRequest,
};
use work4life_testkit::fingerprint;

/// The notifications tables a refused call must leave alone.
const TABLES: &[&str] = &["templates", "preferences", "messages", "inbox_items", "opted_out_numbers"];

/// Awaits `call` (not started before this function runs) and checks it is refused with `code` and
/// exactly the BadRequest fields `want` (in any order), and that it wrote nothing.
async fn refused<T: Debug>(
    f: &Fixture,
    what: &str,
    call: impl Future<Output = Result<Response<T>, Status>>,
    code: Code,
    want: &[&str],
) -> Status {
    let before = fingerprint(f.pool(), TABLES).await;
    let status = match call.await {
        Ok(answer) => panic!("{what}: accepted: {:?}", answer.into_inner()),
        Err(status) => status,
    };
    assert_eq!(status.code(), code, "{what}: {status:?}");
    let mut got = fields(&status);
    got.sort();
    let mut want: Vec<String> = want.iter().map(|s| (*s).to_string()).collect();
    want.sort();
    assert_eq!(got, want, "{what}: field violations of {status:?}");
    assert_eq!(fingerprint(f.pool(), TABLES).await, before, "{what}: a refused call wrote to the notifications tables");
    status
}

/// The description of the violation on `field`.
fn description(status: &Status, field: &str) -> String {
    status
        .get_error_details()
        .bad_request()
        .and_then(|b| b.field_violations.iter().find(|v| v.field == field).map(|v| v.description.clone()))
        .unwrap_or_else(|| panic!("no violation on {field} in {status:?}"))
}

fn sms_template(body: &str) -> Template {
    Template {
        message_type: "intake.applicant.registered".into(),
        channel: Channel::Sms as i32,
        locale: "fr".into(),
        body: body.into(),
        ..Template::default()
    }
}

fn create(template: Template) -> CreateTemplateRequest {
    CreateTemplateRequest { template: Some(template), request_id: rid() }
}

const OK_BODY: &str = "Bonjour {{given_name}}, bienvenue.";

#[tokio::test]
async fn template_calls_refuse_bad_input_and_write_nothing() {
    let f = Fixture::start().await;
    let admin = f.token("admin");

    let with = |change: &dyn Fn(&mut Template)| {
        let mut t = sms_template(OK_BODY);
        change(&mut t);
        create(t)
    };
    let long_body = "a".repeat(4001);
    let cases: Vec<(&str, CreateTemplateRequest, &[&str])> = vec![
        ("no template", CreateTemplateRequest { template: None, request_id: rid() }, &["template"]),
        ("unknown message type", with(&|t| t.message_type = "intake.applicant.vanished".into()), &["template.message_type"]),
        ("empty message type", with(&|t| t.message_type = String::new()), &["template.message_type"]),
        ("channel INBOX", with(&|t| t.channel = Channel::Inbox as i32), &["template.channel"]),
        ("channel UNSPECIFIED", with(&|t| t.channel = Channel::Unspecified as i32), &["template.channel"]),
        ("channel 99", with(&|t| t.channel = 99), &["template.channel"]),
        ("locale FR", with(&|t| t.locale = "FR".into()), &["template.locale"]),
        ("locale french", with(&|t| t.locale = "french".into()), &["template.locale"]),
        ("locale empty", with(&|t| t.locale = String::new()), &["template.locale"]),
        ("locale fr-ma", with(&|t| t.locale = "fr-ma".into()), &["template.locale"]),
        ("unknown variable", with(&|t| t.body = "Bonjour {{unknown}}".into()), &["template.body"]),
        ("unclosed placeholder", with(&|t| t.body = "Bonjour {{given_name".into()), &["template.body"]),
        ("closing braces alone", with(&|t| t.body = "Bonjour }} toi".into()), &["template.body"]),
        ("empty body", with(&|t| t.body = "   ".into()), &["template.body"]),
        ("body of 4001 characters", with(&|t| t.body.clone_from(&long_body)), &["template.body"]),
        ("email without subject", with(&|t| t.channel = Channel::Email as i32), &["template.subject"]),
        (
            "email subject with an unknown variable",
            with(&|t| {
                t.channel = Channel::Email as i32;
                t.subject = "Code {{code}}".into();
            }),
            &["template.subject"],
        ),
        ("subject on SMS", with(&|t| t.subject = "Bienvenue".into()), &["template.subject"]),
        ("WhatsApp without provider template", with(&|t| t.channel = Channel::Whatsapp as i32), &["template.provider_template"]),
        (
            "WhatsApp with provider template 'Bad Name'",
            with(&|t| {
                t.channel = Channel::Whatsapp as i32;
                t.provider_template = "Bad Name".into();
            }),
            &["template.provider_template"],
        ),
        ("provider template on SMS", with(&|t| t.provider_template = "w4l_welcome_v1".into()), &["template.provider_template"]),
        (
            "provider template on email",
            with(&|t| {
                t.channel = Channel::Email as i32;
                t.subject = "Bienvenue".into();
                t.provider_template = "w4l_welcome_v1".into();
            }),
            &["template.provider_template"],
        ),
        (
            "request_id not a UUID",
            CreateTemplateRequest { template: Some(sms_template(OK_BODY)), request_id: "retry-1".into() },
            &["request_id"],
        ),
        (
            "everything wrong at once",
            CreateTemplateRequest {
                template: Some(Template {
                    message_type: "nope".into(),
                    channel: 0,
                    locale: "FR".into(),
                    body: long_body.clone(),
                    ..Template::default()
                }),
                request_id: "x".into(),
            },
            &["template.message_type", "template.channel", "template.locale", "template.body", "request_id"],
        ),
    ];
    for (what, request, want) in cases {
        refused(&f, &format!("CreateTemplate: {what}"), f.client().create_template(bearer(request, &admin)), Code::InvalidArgument, want)
            .await;
    }

    // The position of a bad placeholder is named, in characters (not bytes).
    let status = refused(
        &f,
        "unknown variable",
        f.client().create_template(bearer(create(sms_template("Bonjour {{unknown}}")), &admin)),
        Code::InvalidArgument,
        &["template.body"],
    )
    .await;
    let why = description(&status, "template.body");
    assert!(why.starts_with("at character 8:") && why.contains("`unknown`") && why.contains("given_name"), "{why}");
    let status = refused(
        &f,
        "unclosed",
        f.client().create_template(bearer(create(sms_template("Bonjour {{given_name")), &admin)),
        Code::InvalidArgument,
        &["template.body"],
    )
    .await;
    let why = description(&status, "template.body");
    assert!(why.starts_with("at character 8:") && why.contains("never closed"), "{why}");
    let mut arabic = sms_template("مرحبا {{الاسم}}");
    arabic.locale = "ar".into();
    let status = refused(
        &f,
        "Arabic unknown variable",
        f.client().create_template(bearer(create(arabic), &admin)),
        Code::InvalidArgument,
        &["template.body"],
    )
    .await;
    assert!(description(&status, "template.body").starts_with("at character 6:"), "{status:?}");
    let status = refused(
        &f,
        "subject position",
        f.client().create_template(bearer(
            create(Template { channel: Channel::Email as i32, subject: "Code {{code}}".into(), ..sms_template(OK_BODY) }),
            &admin,
        )),
        Code::InvalidArgument,
        &["template.subject"],
    )
    .await;
    assert!(description(&status, "template.subject").starts_with("at character 5:"), "{status:?}");

    // GetTemplate: malformed names are INVALID_ARGUMENT, well-formed unknown ones NOT_FOUND.
    let base = "templates/intake.applicant.registered/sms/fr";
    for name in [
        String::new(),
        "templates".into(),
        base.to_string(),
        format!("{base}/versions"),
        format!("{base}/versions/"),
        format!("{base}/versions/one"),
        format!("{base}/versions/1.5"),
        format!("{base}/version/1"),
        format!("{base}/versions/1/extra"),
        "tmpl/intake.applicant.registered/sms/fr/versions/1".into(),
    ] {
        let request = GetTemplateRequest { name: name.clone() };
        refused(&f, &format!("GetTemplate {name:?}"), f.client().get_template(bearer(request, &admin)), Code::InvalidArgument, &["name"])
            .await;
    }
    for name in [
        format!("{base}/versions/999"),
        format!("{base}/versions/0"),
        format!("{base}/versions/-1"),
        "templates/no.such.type/sms/fr/versions/1".into(),
        "templates/intake.applicant.registered/inbox/fr/versions/1".into(),
        "templates/intake.applicant.registered/sms/wo/versions/1".into(),
    ] {
        let request = GetTemplateRequest { name: name.clone() };
        refused(&f, &format!("GetTemplate {name:?}"), f.client().get_template(bearer(request, &admin)), Code::NotFound, &[]).await;
    }
    // The seeded version 1 is found (so the NOT_FOUND above are about the names, not the setup).
    let found = f.client().get_template(bearer(GetTemplateRequest { name: format!("{base}/versions/1") }, &admin)).await.expect("v1");
    assert_eq!(found.into_inner().template.expect("template").name, format!("{base}/versions/1"));

    // ListTemplates.
    let list = |change: &dyn Fn(&mut ListTemplatesRequest)| {
        let mut r = ListTemplatesRequest::default();
        change(&mut r);
        r
    };
    let cases: Vec<(&str, ListTemplatesRequest, &[&str])> = vec![
        ("channel INBOX", list(&|r| r.channel = Channel::Inbox as i32), &["channel"]),
        ("channel 99", list(&|r| r.channel = 99), &["channel"]),
        ("unknown message type", list(&|r| r.message_type = "grants.nothing".into()), &["message_type"]),
        ("locale FR", list(&|r| r.locale = "FR".into()), &["locale"]),
        ("locale french", list(&|r| r.locale = "french".into()), &["locale"]),
        ("page_token garbage", list(&|r| r.page_token = "garbage".into()), &["page_token"]),
        ("page_token forged", list(&|r| r.page_token = "eyJmIjoiYSIsImsiOjF9.AAAAAAAAAAAAAAAAAAAAAA".into()), &["page_token"]),
        ("page_size -1", list(&|r| r.page_size = -1), &["page_size"]),
        (
            "everything wrong at once",
            list(&|r| {
                r.channel = Channel::Inbox as i32;
                r.message_type = "x".into();
                r.locale = "FR".into();
                r.page_token = "garbage".into();
                r.page_size = -5;
            }),
            &["channel", "message_type", "locale", "page_token", "page_size"],
        ),
    ];
    for (what, request, want) in cases {
        refused(&f, &format!("ListTemplates: {what}"), f.client().list_templates(bearer(request, &admin)), Code::InvalidArgument, want)
            .await;
    }

    // The boundary: 4000 characters (two bytes each) are accepted.
    let ok = f
        .client()
        .create_template(bearer(create(sms_template(&"é".repeat(4000))), &admin))
        .await
        .expect("4000 characters are accepted")
        .into_inner()
        .template
        .expect("template");
    assert_eq!(ok.body.chars().count(), 4000);
}

#[tokio::test]
async fn preference_calls_refuse_bad_input_and_write_nothing() {
    let f = Fixture::start().await;
    let admin = f.token("admin");
    let applicant = format!("applicants/{}", Uuid::now_v7());
    let name = format!("{applicant}/preferences");

    for bad in [
        String::new(),
        applicant.clone(),
        format!("{applicant}/prefs"),
        format!("{applicant}/preferences/x"),
        "applicants/not-a-uuid/preferences".into(),
        "applicants//preferences".into(),
        format!("people/{}/preferences", Uuid::now_v7()),
        format!("{}/preferences", Uuid::now_v7()),
    ] {
        let request = GetPreferencesRequest { name: bad.clone() };
        refused(
            &f,
            &format!("GetPreferences {bad:?}"),
            f.client().get_preferences(bearer(request, &admin)),
            Code::InvalidArgument,
            &["name"],
        )
        .await;
    }

    let mask = |paths: &[&str]| Some(prost_types::FieldMask { paths: paths.iter().map(|p| (*p).to_string()).collect() });
    let update = |change: &dyn Fn(&mut Preferences), paths: Option<prost_types::FieldMask>| {
        let mut p = Preferences { name: name.clone(), channels: vec![Channel::Sms as i32], ..Preferences::default() };
        change(&mut p);
        UpdatePreferencesRequest { preferences: Some(p), update_mask: paths }
    };
    let cases: Vec<(&str, UpdatePreferencesRequest, &[&str])> = vec![
        ("no preferences", UpdatePreferencesRequest { preferences: None, update_mask: mask(&["channels"]) }, &["preferences"]),
        ("empty name", update(&|p| p.name = String::new(), mask(&["channels"])), &["preferences.name"]),
        ("name without /preferences", update(&|p| p.name.clone_from(&applicant), mask(&["channels"])), &["preferences.name"]),
        ("name with a bad id", update(&|p| p.name = "applicants/42/preferences".into(), mask(&["channels"])), &["preferences.name"]),
        ("no update_mask", update(&|_| {}, None), &["update_mask"]),
        ("empty update_mask", update(&|_| {}, mask(&[])), &["update_mask"]),
        ("unknown mask path", update(&|_| {}, mask(&["etag"])), &["update_mask"]),
        ("mask path name", update(&|_| {}, mask(&["channels", "name"])), &["update_mask"]),
        ("INBOX channel", update(&|p| p.channels = vec![Channel::Inbox as i32], mask(&["channels"])), &["preferences.channels[0]"]),
        (
            "duplicate channel",
            update(&|p| p.channels = vec![Channel::Sms as i32, Channel::Email as i32, Channel::Sms as i32], mask(&["channels"])),
            &["preferences.channels[2]"],
        ),
        (
            "UNSPECIFIED channel",
            update(&|p| p.channels = vec![Channel::Email as i32, Channel::Unspecified as i32], mask(&["channels"])),
            &["preferences.channels[1]"],
        ),
        ("channel 99", update(&|p| p.channels = vec![99], mask(&["channels"])), &["preferences.channels[0]"]),
        (
            "opting out of SERVICE",
            update(&|p| p.opted_out_kinds = vec![MessageKind::Service as i32], mask(&["opted_out_kinds"])),
            &["preferences.opted_out_kinds[0]"],
        ),
        (
            "opting out of UNSPECIFIED",
            update(&|p| p.opted_out_kinds = vec![MessageKind::Update as i32, 0], mask(&["opted_out_kinds"])),
            &["preferences.opted_out_kinds[1]"],
        ),
        ("language French", update(&|p| p.language = "French".into(), mask(&["language"])), &["preferences.language"]),
        ("language f", update(&|p| p.language = "f".into(), mask(&["language"])), &["preferences.language"]),
        ("language ar_MA", update(&|p| p.language = "ar_MA".into(), mask(&["language"])), &["preferences.language"]),
        (
            "everything wrong at once",
            update(
                &|p| {
                    p.name = "me".into();
                    p.channels = vec![Channel::Inbox as i32, 7];
                    p.opted_out_kinds = vec![MessageKind::Service as i32];
                    p.language = "FR".into();
                },
                mask(&["colour"]),
            ),
            &[
                "preferences.name",
                "update_mask",
                "preferences.channels[0]",
                "preferences.channels[1]",
                "preferences.opted_out_kinds[0]",
                "preferences.language",
            ],
        ),
    ];
    for (what, request, want) in cases {
        refused(
            &f,
            &format!("UpdatePreferences: {what}"),
            f.client().update_preferences(bearer(request, &admin)),
            Code::InvalidArgument,
            want,
        )
        .await;
    }
    let status = refused(
        &f,
        "opting out of SERVICE",
        f.client().update_preferences(bearer(
            update(&|p| p.opted_out_kinds = vec![MessageKind::Service as i32], mask(&["opted_out_kinds"])),
            &admin,
        )),
        Code::InvalidArgument,
        &["preferences.opted_out_kinds[0]"],
    )
    .await;
    assert!(description(&status, "preferences.opted_out_kinds[0]").contains("cannot be opted out"), "{status:?}");
}

/// A registered person whose registration SMS was sent: (applicant, the sent message).
async fn sent_registration(f: &Fixture) -> (String, work4life_proto::notifications::Message) {
    let applicant = f.register(person(&["fr"])).await;
    let sent = f.wait_state(&applicant, "intake.applicant.registered", "sent").await;
    // The inbox copy is written before the message is sent: nothing else is pending.
    assert_eq!(count(f.pool(), "SELECT count(*) FROM inbox_items").await, 1);
    (applicant, sent)
}

#[tokio::test]
async fn message_and_inbox_calls_refuse_bad_input_and_write_nothing() {
    let f = Fixture::start().await;
    let admin = f.token("admin");
    let (applicant, sent) = sent_registration(&f).await;
    let unknown = format!("messages/{}", Uuid::now_v7());

    // GetMessage and ReplayMessage: malformed names, then unknown ids.
    for bad in [
        String::new(),
        "messages".into(),
        "messages/".into(),
        "messages/abc".into(),
        format!("message/{}", Uuid::now_v7()),
        format!("{}/x", sent.name),
        applicant.clone(),
    ] {
        refused(
            &f,
            &format!("GetMessage {bad:?}"),
            f.client().get_message(bearer(GetMessageRequest { name: bad.clone() }, &admin)),
            Code::InvalidArgument,
            &["name"],
        )
        .await;
        refused(
            &f,
            &format!("ReplayMessage {bad:?}"),
            f.client().replay_message(bearer(ReplayMessageRequest { name: bad.clone() }, &admin)),
            Code::InvalidArgument,
            &["name"],
        )
        .await;
    }
    refused(
        &f,
        "GetMessage unknown",
        f.client().get_message(bearer(GetMessageRequest { name: unknown.clone() }, &admin)),
        Code::NotFound,
        &[],
    )
    .await;
    refused(
        &f,
        "ReplayMessage unknown",
        f.client().replay_message(bearer(ReplayMessageRequest { name: unknown.clone() }, &admin)),
        Code::NotFound,
        &[],
    )
    .await;
    let status = refused(
        &f,
        "ReplayMessage of a SENT message",
        f.client().replay_message(bearer(ReplayMessageRequest { name: sent.name.clone() }, &admin)),
        Code::FailedPrecondition,
        &[],
    )
    .await;
    assert_eq!(reason(&status), "NOT_REPLAYABLE");
    let got = f.client().get_message(bearer(GetMessageRequest { name: sent.name.clone() }, &admin)).await.expect("the real one");
    assert_eq!(got.into_inner().message.expect("message").state, MessageState::Sent as i32);

    // ListMessages.
    let list = |change: &dyn Fn(&mut ListMessagesRequest)| {
        let mut r = ListMessagesRequest::default();
        change(&mut r);
        r
    };
    let cases: Vec<(&str, ListMessagesRequest, &[&str])> = vec![
        ("no filter", list(&|_| {}), &["recipient"]),
        ("recipient bob", list(&|r| r.recipient = "bob".into()), &["recipient"]),
        ("recipient with a bad id", list(&|r| r.recipient = "applicants/abc".into()), &["recipient"]),
        ("recipient of another collection", list(&|r| r.recipient.clone_from(&unknown)), &["recipient"]),
        ("recipient with a suffix", list(&|r| r.recipient = format!("{applicant}/preferences")), &["recipient"]),
        (
            "event_id not a UUID",
            list(&|r| {
                r.event_id = "evt-1".into();
                r.state = MessageState::Sent as i32;
            }),
            &["event_id"],
        ),
        (
            "state 99",
            list(&|r| {
                r.recipient.clone_from(&applicant);
                r.state = 99;
            }),
            &["state"],
        ),
        (
            "page_size -1",
            list(&|r| {
                r.recipient.clone_from(&applicant);
                r.page_size = -1;
            }),
            &["page_size"],
        ),
        (
            "page_token garbage",
            list(&|r| {
                r.recipient.clone_from(&applicant);
                r.page_token = "garbage".into();
            }),
            &["page_token"],
        ),
        (
            "everything wrong at once",
            list(&|r| {
                r.recipient = "bob".into();
                r.event_id = "evt".into();
                r.state = 42;
                r.page_size = -1;
                r.page_token = "x.y".into();
            }),
            &["recipient", "event_id", "state", "page_size", "page_token"],
        ),
    ];
    for (what, request, want) in cases {
        refused(&f, &format!("ListMessages: {what}"), f.client().list_messages(bearer(request, &admin)), Code::InvalidArgument, want).await;
    }

    // ListInboxItems.
    let item = f
        .client()
        .list_inbox_items(bearer(ListInboxItemsRequest { parent: applicant.clone(), ..Default::default() }, &admin))
        .await
        .expect("inbox")
        .into_inner()
        .inbox_items
        .pop()
        .expect("the registration's copy");
    for bad in [
        String::new(),
        "applicants/abc".into(),
        format!("{applicant}/inboxItems"),
        item.name.clone(),
        format!("inboxItems/{}", Uuid::now_v7()),
    ] {
        let request = ListInboxItemsRequest { parent: bad.clone(), ..Default::default() };
        refused(
            &f,
            &format!("ListInboxItems {bad:?}"),
            f.client().list_inbox_items(bearer(request, &admin)),
            Code::InvalidArgument,
            &["parent"],
        )
        .await;
    }
    let request = ListInboxItemsRequest { parent: applicant.clone(), page_size: -1, ..Default::default() };
    refused(&f, "ListInboxItems page_size -1", f.client().list_inbox_items(bearer(request, &admin)), Code::InvalidArgument, &["page_size"])
        .await;
    let request = ListInboxItemsRequest { parent: applicant.clone(), page_token: "garbage".into(), ..Default::default() };
    refused(&f, "ListInboxItems page_token", f.client().list_inbox_items(bearer(request, &admin)), Code::InvalidArgument, &["page_token"])
        .await;
    let request = ListInboxItemsRequest { parent: "x".into(), page_size: -3, page_token: "y".into(), unread_only: true };
    refused(
        &f,
        "ListInboxItems all wrong",
        f.client().list_inbox_items(bearer(request, &admin)),
        Code::InvalidArgument,
        &["parent", "page_size", "page_token"],
    )
    .await;

    // MarkInboxItemRead: malformed names, then an unknown item and a real item under another person.
    let item_id = item.name.rsplit('/').next().expect("item id").to_string();
    for bad in [
        String::new(),
        applicant.clone(),
        format!("{applicant}/inboxItems"),
        format!("{applicant}/inboxItems/"),
        format!("{applicant}/inboxItems/abc"),
        format!("applicants/abc/inboxItems/{item_id}"),
        format!("people/{}/inboxItems/{item_id}", Uuid::now_v7()),
        format!("{}/x", item.name),
    ] {
        let request = MarkInboxItemReadRequest { name: bad.clone() };
        refused(
            &f,
            &format!("MarkInboxItemRead {bad:?}"),
            f.client().mark_inbox_item_read(bearer(request, &admin)),
            Code::InvalidArgument,
            &["name"],
        )
        .await;
    }
    for missing in [format!("{applicant}/inboxItems/{}", Uuid::now_v7()), format!("applicants/{}/inboxItems/{item_id}", Uuid::now_v7())] {
        let request = MarkInboxItemReadRequest { name: missing.clone() };
        refused(
            &f,
            &format!("MarkInboxItemRead {missing:?}"),
            f.client().mark_inbox_item_read(bearer(request, &admin)),
            Code::NotFound,
            &[],
        )
        .await;
    }
    let unread: i64 = count(f.pool(), "SELECT count(*) FROM inbox_items WHERE read_at IS NULL").await;
    assert_eq!(unread, 1, "the refused calls did not mark the item read");
}

#[tokio::test]
async fn provider_callbacks_refuse_bad_input_and_write_nothing() {
    let f = Fixture::start().await;
    let admin = f.token("admin");
    let (_, sent) = sent_registration(&f).await;
    assert!(!sent.provider_reference.is_empty());

    let report = |channel: i32, reference: &str, outcome: i32| RecordDeliveryReportRequest {
        channel,
        provider_reference: reference.into(),
        outcome,
        error: String::new(),
    };
    let (sms, delivered) = (Channel::Sms as i32, DeliveryOutcome::Delivered as i32);
    let cases: Vec<(&str, RecordDeliveryReportRequest, &[&str])> = vec![
        ("nothing", report(0, "", 0), &["channel", "provider_reference", "outcome"]),
        ("no channel", report(0, &sent.provider_reference, delivered), &["channel"]),
        ("channel INBOX", report(Channel::Inbox as i32, &sent.provider_reference, delivered), &["channel"]),
        ("channel 99", report(99, &sent.provider_reference, delivered), &["channel"]),
        ("no reference", report(sms, "", delivered), &["provider_reference"]),
        ("blank reference", report(sms, "   ", delivered), &["provider_reference"]),
        ("no outcome", report(sms, &sent.provider_reference, 0), &["outcome"]),
        ("outcome 99", report(sms, &sent.provider_reference, 99), &["outcome"]),
    ];
    for (what, request, want) in cases {
        refused(
            &f,
            &format!("RecordDeliveryReport: {what}"),
            f.client().record_delivery_report(bearer(request, &admin)),
            Code::InvalidArgument,
            want,
        )
        .await;
    }
    refused(
        &f,
        "RecordDeliveryReport: unknown reference",
        f.client().record_delivery_report(bearer(report(sms, "prov-999999", delivered), &admin)),
        Code::NotFound,
        &[],
    )
    .await;
    refused(
        &f,
        "RecordDeliveryReport: the reference on another channel",
        f.client().record_delivery_report(bearer(report(Channel::Whatsapp as i32, &sent.provider_reference, delivered), &admin)),
        Code::NotFound,
        &[],
    )
    .await;

    let inbound =
        |channel: i32, sender: &str, text: &str| ReceiveInboundMessageRequest { channel, sender: sender.into(), text: text.into() };
    let phone = "+212612345678";
    let long = "a".repeat(1601);
    let cases: Vec<(&str, ReceiveInboundMessageRequest, &[&str])> = vec![
        ("channel EMAIL", inbound(Channel::Email as i32, phone, "STOP"), &["channel"]),
        ("channel INBOX", inbound(Channel::Inbox as i32, phone, "STOP"), &["channel"]),
        ("no channel", inbound(0, phone, "STOP"), &["channel"]),
        ("channel 99", inbound(99, phone, "STOP"), &["channel"]),
        ("sender abc", inbound(Channel::Sms as i32, "abc", "STOP"), &["sender"]),
        ("no sender", inbound(Channel::Sms as i32, "", "STOP"), &["sender"]),
        ("sender +0123", inbound(Channel::Sms as i32, "+0123456789", "STOP"), &["sender"]),
        ("sender too short", inbound(Channel::Whatsapp as i32, "+2126", "STOP"), &["sender"]),
        ("text of 1601 characters", inbound(Channel::Sms as i32, phone, &long), &["text"]),
        ("everything wrong at once", inbound(Channel::Email as i32, "abc", &long), &["channel", "sender", "text"]),
    ];
    for (what, request, want) in cases {
        refused(
            &f,
            &format!("ReceiveInboundMessage: {what}"),
            f.client().receive_inbound_message(bearer(request, &admin)),
            Code::InvalidArgument,
            want,
        )
        .await;
    }
    assert_eq!(count(f.pool(), "SELECT count(*) FROM opted_out_numbers").await, 0);

    // The boundary: 1600 characters are taken, and a text that is not STOP writes nothing.
    let before = fingerprint(f.pool(), TABLES).await;
    let answer = f
        .client()
        .receive_inbound_message(bearer(inbound(Channel::Sms as i32, phone, &"a".repeat(1600)), &admin))
        .await
        .expect("1600 characters")
        .into_inner();
    assert!(!answer.opted_out);
    assert_eq!(fingerprint(f.pool(), TABLES).await, before);
}

/// `message`, with `authorization` when a token is given.
fn maybe_bearer<T>(message: T, token: Option<&str>) -> Request<T> {
    match token {
        Some(t) => bearer(message, t),
        None => Request::new(message),
    }
}

fn unauthenticated<T: Debug>(what: &str, result: Result<Response<T>, Status>) {
    match result {
        Ok(answer) => panic!("{what}: accepted: {:?}", answer.into_inner()),
        Err(status) => assert_eq!(status.code(), Code::Unauthenticated, "{what}: {status:?}"),
    }
}

#[tokio::test]
async fn every_call_needs_a_valid_token() {
    let f = Fixture::start().await;
    let (applicant, sent) = sent_registration(&f).await;
    let before = fingerprint(f.pool(), TABLES).await;
    let foreign = work4life_testkit::TestSigner::new().token("admin", None, &[]).1;
    let garbled = {
        // Signed by the trusted key, for an account that exists, but with a garbled signature.
        let good = f.token("admin");
        let (rest, _sig) = good.rsplit_once('.').expect("jwt");
        format!("{rest}.AAAA")
    };
    let prefs = format!("{applicant}/preferences");
    for (label, token) in
        [("no token", None), ("a foreign key's token", Some(foreign.as_str())), ("a bad signature", Some(garbled.as_str()))]
    {
        let mut c = f.client();
        let t = token;
        let good_template = create(sms_template(OK_BODY));
        unauthenticated(&format!("CreateTemplate, {label}"), c.create_template(maybe_bearer(good_template, t)).await);
        let name = "templates/intake.applicant.registered/sms/fr/versions/1".to_string();
        unauthenticated(&format!("GetTemplate, {label}"), c.get_template(maybe_bearer(GetTemplateRequest { name }, t)).await);
        unauthenticated(&format!("ListTemplates, {label}"), c.list_templates(maybe_bearer(ListTemplatesRequest::default(), t)).await);
        let request = GetPreferencesRequest { name: prefs.clone() };
        unauthenticated(&format!("GetPreferences, {label}"), c.get_preferences(maybe_bearer(request, t)).await);
        let request = UpdatePreferencesRequest {
            preferences: Some(Preferences { name: prefs.clone(), language: "en".into(), ..Preferences::default() }),
            update_mask: Some(prost_types::FieldMask { paths: vec!["language".into()] }),
        };
        unauthenticated(&format!("UpdatePreferences, {label}"), c.update_preferences(maybe_bearer(request, t)).await);
        let request = GetMessageRequest { name: sent.name.clone() };
        unauthenticated(&format!("GetMessage, {label}"), c.get_message(maybe_bearer(request, t)).await);
        let request = ListMessagesRequest { recipient: applicant.clone(), ..Default::default() };
        unauthenticated(&format!("ListMessages, {label}"), c.list_messages(maybe_bearer(request, t)).await);
        let request = ReplayMessageRequest { name: sent.name.clone() };
        unauthenticated(&format!("ReplayMessage, {label}"), c.replay_message(maybe_bearer(request, t)).await);
        let request = ListInboxItemsRequest { parent: applicant.clone(), ..Default::default() };
        unauthenticated(&format!("ListInboxItems, {label}"), c.list_inbox_items(maybe_bearer(request, t)).await);
        let request = MarkInboxItemReadRequest { name: format!("{applicant}/inboxItems/{}", Uuid::now_v7()) };
        unauthenticated(&format!("MarkInboxItemRead, {label}"), c.mark_inbox_item_read(maybe_bearer(request, t)).await);
        let request = RecordDeliveryReportRequest {
            channel: Channel::Sms as i32,
            provider_reference: sent.provider_reference.clone(),
            outcome: DeliveryOutcome::Delivered as i32,
            error: String::new(),
        };
        unauthenticated(&format!("RecordDeliveryReport, {label}"), c.record_delivery_report(maybe_bearer(request, t)).await);
        let request = ReceiveInboundMessageRequest { channel: Channel::Sms as i32, sender: "+212612345678".into(), text: "STOP".into() };
        unauthenticated(&format!("ReceiveInboundMessage, {label}"), c.receive_inbound_message(maybe_bearer(request, t)).await);
    }
    assert_eq!(fingerprint(f.pool(), TABLES).await, before, "nothing was written by unauthenticated calls");
    let still = f.client().get_message(bearer(GetMessageRequest { name: sent.name.clone() }, &f.token("admin"))).await.expect("message");
    assert_eq!(still.into_inner().message.expect("m").state, MessageState::Sent as i32, "no report was recorded");
    // A valid token reads the same things (the refusals above were about the tokens).
    tokio::time::timeout(Duration::from_secs(10), f.client().list_templates(bearer(ListTemplatesRequest::default(), &f.token("admin"))))
        .await
        .expect("in time")
        .expect("a valid token is accepted");
}
