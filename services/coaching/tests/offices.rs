//! Offices and coaches: the seeded offices with their rooms, hours and closures; replacing an
//! office's hours and closures (and that this is what scheduling then checks); coach profiles,
//! who may record them, and that any authenticated caller reads both.

mod common;

use common::{OFFICES, assert_refused, bearer, coach_message, engagement_message, fresh, new_account};
use tonic::Code;
use work4life_proto::coaching::{
    Expertise, GetCoachRequest, ListCoachesRequest, ListOfficesRequest, OpeningHours, UpdateOfficeHoursRequest,
};

fn hours(weekday: i32, open: &str, close: &str) -> OpeningHours {
    OpeningHours { weekday, open: open.into(), close: close.into() }
}

#[tokio::test]
async fn the_seeded_offices_have_rooms_hours_and_closures_and_every_caller_reads_them() {
    let f = fresh().await;
    let (_, stranger) = f.token("beneficiary", None, &[]);
    let mut c = f.client().await;

    // Paged by code, two at a time, with a beneficiary's token: any authenticated caller reads.
    let mut names = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_offices(bearer(ListOfficesRequest { zone: String::new(), page_size: 2, page_token: token.clone() }, &stranger))
            .await
            .expect("list offices")
            .into_inner();
        assert!(page.offices.len() <= 2, "page size respected: {:?}", page.offices.len());
        names.extend(page.offices.iter().map(|o| (o.name.clone(), o.zone.clone())));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let expected: Vec<(String, String)> = OFFICES.iter().map(|(code, zone)| (format!("offices/{code}"), (*zone).to_string())).collect();
    assert_eq!(names, expected, "every seeded office once, by code");

    let tanger = c
        .list_offices(bearer(ListOfficesRequest { zone: "tanger".into(), page_size: 0, page_token: String::new() }, &stranger))
        .await
        .expect("tanger offices")
        .into_inner();
    assert_eq!(
        tanger.offices.iter().map(|o| o.name.as_str()).collect::<Vec<_>>(),
        ["offices/tanger_maison_des_jeunes", "offices/tanger_technopark"]
    );

    let rabat = f.get_office(&stranger, "offices/rabat_ocean").await.expect("get office");
    assert_eq!(rabat.zone, "rabat_sale");
    assert_eq!(rabat.time_zone, "Africa/Casablanca");
    let rooms: Vec<(&str, i32)> = rabat.rooms.iter().map(|r| (r.name.as_str(), r.capacity)).collect();
    assert_eq!(rooms, [("offices/rabat_ocean/rooms/atelier", 16), ("offices/rabat_ocean/rooms/salle_a", 4)]);
    let week: Vec<(i32, &str, &str)> = rabat.opening_hours.iter().map(|h| (h.weekday, h.open.as_str(), h.close.as_str())).collect();
    assert_eq!(
        week,
        [
            (1, "09:00", "17:00"),
            (2, "09:00", "17:00"),
            (3, "09:00", "17:00"),
            (4, "09:00", "17:00"),
            (5, "09:00", "17:00"),
            (6, "09:00", "13:00")
        ],
        "Monday to Friday 09:00-17:00, Saturday morning, Sunday closed"
    );
    for day in ["2027-01-01", "2027-01-11", "2027-01-14", "2027-05-01"] {
        assert!(rabat.closures.iter().any(|d| d == day), "{day} is a closure: {:?}", rabat.closures);
    }

    assert_refused(f.get_office(&stranger, "offices/casablanca_nowhere").await, Code::NotFound, "", "unknown office");
    let anonymous = c.get_office(work4life_proto::coaching::GetOfficeRequest { name: "offices/rabat_ocean".into() }).await;
    assert_refused(anonymous, Code::Unauthenticated, "", "no token");
}

#[tokio::test]
async fn new_hours_and_closures_replace_the_old_ones_and_scheduling_follows_them() {
    let f = fresh().await;
    let (manager, manager_jwt) = f.manager("oujda");
    let coach = f.coach("oujda_cefa", &["fr"], 20).await;
    let engagement = f.engagement("individual_startup", "oujda", 1).await;
    assert_eq!(engagement.coach, coach.name());
    let room = "offices/oujda_cefa/rooms/salle_a";

    // Before: a Monday morning is open.
    f.schedule(&f.admin, f.session_at(&[&engagement], room, "2027-04-05 10:00", "2027-04-05 11:00").await)
        .await
        .expect("open on a Monday morning before the change");

    let office = f
        .client()
        .await
        .update_office_hours(bearer(
            UpdateOfficeHoursRequest {
                name: "offices/oujda_cefa".into(),
                opening_hours: vec![hours(3, "14:00", "18:30"), hours(6, "10:00", "12:00")],
                closures: vec!["2027-04-21".into()],
            },
            &manager_jwt,
        ))
        .await
        .expect("a manager of the zone sets the hours")
        .into_inner()
        .office
        .expect("office");
    let week: Vec<(i32, &str, &str)> = office.opening_hours.iter().map(|h| (h.weekday, h.open.as_str(), h.close.as_str())).collect();
    assert_eq!(week, [(3, "14:00", "18:30"), (6, "10:00", "12:00")], "the old week is replaced");
    assert_eq!(office.closures, ["2027-04-21"], "the old closures are replaced");
    assert_eq!(f.get_office(&f.admin, "offices/oujda_cefa").await.expect("read back").opening_hours, office.opening_hours);
    let audit = f.audit("coaching.UpdateOfficeHours", "offices/oujda_cefa").await;
    assert_eq!(audit.len(), 1, "one audit record");
    assert_eq!(audit[0].0, manager);

    // Other offices keep theirs.
    assert_eq!(f.get_office(&f.admin, "offices/rabat_ocean").await.expect("rabat").opening_hours.len(), 6);

    // After: Monday closed, Wednesday afternoon open until 18:30, the new closure closed, the old one open.
    let cases = [
        ("2027-04-12 10:00", "2027-04-12 11:00", false, "a Monday (no entry any more)"),
        ("2027-04-14 10:00", "2027-04-14 11:00", false, "a Wednesday morning"),
        ("2027-04-14 17:30", "2027-04-14 18:30", true, "a Wednesday evening until the new closing time"),
        ("2027-04-21 15:00", "2027-04-21 16:00", false, "the new closure"),
        ("2027-04-17 10:00", "2027-04-17 11:00", true, "a Saturday within the new hours"),
    ];
    for (start, end, open, what) in cases {
        let result = f.schedule(&f.admin, f.session_at(&[&engagement], room, start, end).await).await;
        if open {
            result.unwrap_or_else(|e| panic!("{what}: expected open, got {e:?}"));
        } else {
            assert_refused(result, Code::FailedPrecondition, "OUTSIDE_OPENING_HOURS", what);
        }
    }
    // A former closure (2027-08-14, a Saturday holiday) is an ordinary Saturday now.
    f.schedule(&f.admin, f.session_at(&[&engagement], room, "2027-08-14 10:00", "2027-08-14 11:00").await)
        .await
        .expect("the old closures are gone");
}

#[tokio::test]
async fn only_admins_and_managers_of_the_zone_set_hours() {
    let f = fresh().await;
    let coach = f.coach("oujda_cefa", &["fr"], 20).await;
    let before = f.get_office(&f.admin, "offices/oujda_cefa").await.expect("office");
    let request = || UpdateOfficeHoursRequest {
        name: "offices/oujda_cefa".into(),
        opening_hours: vec![hours(1, "08:00", "12:00")],
        closures: vec![],
    };
    let mut c = f.client().await;
    let refusals = [
        ("a manager of another zone", f.manager("rabat_sale").1),
        ("an officer of the zone", f.officer("oujda").1),
        ("an auditor", f.auditor().1),
        ("a coach of the office", coach.jwt.clone()),
        ("a beneficiary", f.beneficiary(&new_account())),
    ];
    for (who, jwt) in &refusals {
        assert_refused(c.update_office_hours(bearer(request(), jwt)).await, Code::PermissionDenied, "", who);
    }
    assert_eq!(f.get_office(&f.admin, "offices/oujda_cefa").await.expect("office"), before, "nothing changed");
    assert!(f.audit("coaching.UpdateOfficeHours", "offices/oujda_cefa").await.is_empty(), "no audit record");

    let unknown = UpdateOfficeHoursRequest { name: "offices/nowhere".into(), ..request() };
    assert_refused(c.update_office_hours(bearer(unknown, &f.admin)).await, Code::NotFound, "", "unknown office");

    let office =
        c.update_office_hours(bearer(request(), &f.admin)).await.expect("the admin sets hours").into_inner().office.expect("office");
    assert_eq!(office.opening_hours, vec![hours(1, "08:00", "12:00")]);
    assert!(office.closures.is_empty());
}

#[tokio::test]
async fn coaches_are_recorded_once_and_read_by_any_caller() {
    let f = fresh().await;
    let (manager, manager_jwt) = f.manager("oujda");
    let account = new_account();
    let mut profile = coach_message("oujda_cefa", &["fr", "ar"], 24);
    profile.expertise = vec![Expertise::LegalRegistration as i32, Expertise::LabourLaw as i32];
    let coach = f.create_coach(&manager_jwt, &account, profile.clone()).await.expect("a manager of the zone records a coach");
    let id = account.trim_start_matches("accounts/");
    assert_eq!(coach.name, format!("coaches/{id}"));
    assert_eq!(coach.account, account);
    assert_eq!(coach.office, "offices/oujda_cefa");
    assert_eq!(coach.zone, "oujda", "the zone is the office's");
    assert_eq!(coach.languages, ["fr", "ar"]);
    assert_eq!(coach.expertise, profile.expertise);
    assert_eq!(coach.weekly_hours, 24);
    assert_eq!(coach.active_engagements, 0);
    let audit = f.audit("coaching.CreateCoach", &coach.name).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].0, manager);

    let again = f.create_coach(&f.admin, &account, coach_message("oujda_cefa", &["en"], 10)).await;
    assert_refused(again, Code::AlreadyExists, "COACH_EXISTS", "the same account twice");
    assert_eq!(f.count("SELECT count(*) FROM coaching.coaches").await, 1);

    // Anyone authenticated reads a coach; their active engagements are counted.
    f.engagement("collective_startup", "oujda", 2).await;
    let mut c = f.client().await;
    let read = c
        .get_coach(bearer(GetCoachRequest { name: coach.name.clone() }, &f.beneficiary(&new_account())))
        .await
        .expect("get coach")
        .into_inner()
        .coach
        .expect("coach");
    assert_eq!(read.active_engagements, 1, "the engagement in the zone went to the only coach");
    assert_eq!(read.languages, coach.languages);
    let missing = c.get_coach(bearer(GetCoachRequest { name: format!("coaches/{}", uuid::Uuid::now_v7()) }, &f.admin)).await;
    assert_refused(missing, Code::NotFound, "", "unknown coach");

    // Lists by office and by zone.
    let rabat = f.coach("rabat_ocean", &["fr"], 10).await;
    let tanger = f.coach("tanger_technopark", &["fr"], 10).await;
    let list =
        |office: &str, zone: &str| ListCoachesRequest { office: office.into(), zone: zone.into(), page_size: 0, page_token: String::new() };
    let names = |r: work4life_proto::coaching::ListCoachesResponse| r.coaches.into_iter().map(|c| c.name).collect::<Vec<_>>();
    let by_office = names(c.list_coaches(bearer(list("offices/rabat_ocean", ""), &tanger.jwt)).await.expect("by office").into_inner());
    assert_eq!(by_office, [rabat.name()]);
    let by_zone = names(c.list_coaches(bearer(list("", "tanger"), &f.admin)).await.expect("by zone").into_inner());
    assert_eq!(by_zone, [tanger.name()]);
    let mut all = Vec::new();
    let mut token = String::new();
    loop {
        let page = c
            .list_coaches(bearer(ListCoachesRequest { page_size: 1, page_token: token.clone(), ..list("", "") }, &f.admin))
            .await
            .expect("a page of coaches")
            .into_inner();
        assert!(page.coaches.len() <= 1);
        token = page.next_page_token.clone();
        all.extend(names(page));
        if token.is_empty() {
            break;
        }
    }
    all.sort();
    let mut expected = vec![coach.name.clone(), rabat.name(), tanger.name()];
    expected.sort();
    assert_eq!(all, expected);
}

#[tokio::test]
async fn coaches_are_recorded_by_admins_and_managers_of_the_office_zone_only() {
    let f = fresh().await;
    let existing = f.coach("oujda_cefa", &["fr"], 10).await;
    let refusals = [
        ("a manager of another zone", f.manager("rabat_sale").1),
        ("an officer of the zone", f.officer("oujda").1),
        ("an auditor", f.auditor().1),
        ("a coach", existing.jwt.clone()),
    ];
    for (who, jwt) in &refusals {
        let result = f.create_coach(jwt, &new_account(), coach_message("oujda_cefa", &["fr"], 10)).await;
        assert_refused(result, Code::PermissionDenied, "", who);
    }
    assert_eq!(f.count("SELECT count(*) FROM coaching.coaches").await, 1, "no coach recorded");
    assert_eq!(f.count("SELECT count(*) FROM coaching.audit_log WHERE action = 'coaching.CreateCoach'").await, 1);

    let (_, rabat_manager) = f.manager("rabat_sale");
    f.create_coach(&rabat_manager, &new_account(), coach_message("rabat_ocean", &["fr"], 10)).await.expect("in their own zone");
    // An engagement opened before a zone has any coach has none.
    let orphan = f.create_engagement(&f.admin, engagement_message("job_placement", "beni_mellal", 1)).await.expect("engagement");
    assert!(orphan.coach.is_empty() && orphan.coach_history.is_empty(), "no coach in beni_mellal: {orphan:?}");
}
