"""A client from another ecosystem: Python stubs generated from proto/ with grpcio-tools (the
command in the README), driving the whole collective start-up journey against the running suite
(as tests/tests/journey_startup.rs does in Rust), and reading refusals' google.rpc details
(BadRequest, ErrorInfo) as any client would.

Run by tests/tests/python_client.rs, which starts the suite and passes:
  W4L_INTAKE, W4L_GRANTS, W4L_COACHING, W4L_NOTIFICATIONS, W4L_IDENTITY
                host:port of the process serving each service
  W4L_TOKEN_<ROLE>   an access token per actor of the journey: OFFICER, PROGRAM_MANAGER (zone
                tanger), REVIEWER_CONFLICTED, REVIEWER, COACH, FINANCE_OFFICER, FINANCE_CHECKER
                (zone tanger), ADMIN
  W4L_SUBJECT_<ROLE> the subject of the REVIEWER_CONFLICTED, REVIEWER, COACH, FINANCE_OFFICER and
                FINANCE_CHECKER tokens (a reviewer is assigned, a coach recorded, by subject)
  W4L_OUT       a scratch directory for the generated code
Prints one JSON line with what it did; exits non-zero on any failure. Asynchronous effects
(grants learning of the decision, coaching opening the engagement, the tranche becoming payable,
the session starting, notifications sending every member each step's message, read with
ListMessages) are polled for with a timeout, never assumed after a sleep.
"""

import json
import os
import pathlib
import subprocess
import sys
import time
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[2]
# How long a step waits for an event to cross services, in seconds.
CROSSING = 30.0
# How far ahead the coaching session is scheduled, in seconds.
SESSION_LEAD = 8
# The milestone that releases the first tranche (services/coaching/src/plans.rs).
BUSINESS_PLAN = "business_plan_validated"
ACCOUNT = "011640000012345678905432"


def generate(out: pathlib.Path) -> None:
    """python -m grpc_tools.protoc, as documented in the README (plus the vendored google protos)."""
    out.mkdir(parents=True, exist_ok=True)
    protos = [str(p.relative_to(ROOT / "proto")) for p in (ROOT / "proto").rglob("*.proto")]
    vendored = [str(p.relative_to(ROOT / "third_party/googleapis")) for p in (ROOT / "third_party/googleapis").rglob("*.proto")]
    for include, files in (("third_party/googleapis", vendored), ("proto", protos)):
        subprocess.run(
            [sys.executable, "-m", "grpc_tools.protoc", "-I", str(ROOT / "proto"), "-I", str(ROOT / "third_party/googleapis"),
             f"--python_out={out}", f"--grpc_python_out={out}", *files],
            cwd=ROOT / include, check=True,
        )


def eventually(what, poll, timeout=CROSSING, every=0.2):
    """Calls poll() until it returns something other than None; fails after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        got = poll()
        if got is not None:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting until {what}")
        time.sleep(every)


def main() -> None:
    started = time.monotonic()
    out = pathlib.Path(os.environ["W4L_OUT"])
    generate(out)
    sys.path.insert(0, str(out))
    import grpc
    from google.protobuf import timestamp_pb2
    from google.rpc import error_details_pb2, status_pb2
    from work4life.coaching.v1 import coaching_service_pb2 as csvc, coaching_service_pb2_grpc as crpc, resources_pb2 as cres
    from work4life.grants.v1 import grants_service_pb2 as gsvc, grants_service_pb2_grpc as grpc_grants, resources_pb2 as gres
    from work4life.intake.v1 import intake_service_pb2 as svc, intake_service_pb2_grpc as rpc, resources_pb2 as res
    from work4life.notifications.v1 import notifications_service_pb2 as nsvc, notifications_service_pb2_grpc as nrpc
    from work4life.notifications.v1 import resources_pb2 as nres
    from work4life.type.v1 import money_pb2

    def auth(role):
        return [("authorization", "Bearer " + os.environ[f"W4L_TOKEN_{role}"])]

    def subject(role):
        return os.environ[f"W4L_SUBJECT_{role}"]

    def details(refused):
        """The google.rpc.Status details of a refusal, as (BadRequest field names, ErrorInfo reason)."""
        raw = dict(refused.trailing_metadata() or ()).get("grpc-status-details-bin")
        assert raw, f"a refusal carries google.rpc.Status details: {refused}"
        fields, reason = [], ""
        for detail in status_pb2.Status.FromString(raw).details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                fields += [v.field for v in bad.field_violations]
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason = info.reason
        return fields, reason

    def refused(what, call):
        try:
            call()
        except grpc.RpcError as e:
            return e
        raise AssertionError(f"{what} was accepted")

    intake = rpc.IntakeServiceStub(grpc.insecure_channel(os.environ["W4L_INTAKE"]))
    grants = grpc_grants.GrantsServiceStub(grpc.insecure_channel(os.environ["W4L_GRANTS"]))
    coaching = crpc.CoachingServiceStub(grpc.insecure_channel(os.environ["W4L_COACHING"]))
    notifications = nrpc.NotificationsServiceStub(grpc.insecure_channel(os.environ["W4L_NOTIFICATIONS"]))
    officer, manager, admin = auth("OFFICER"), auth("PROGRAM_MANAGER"), auth("ADMIN")
    told_steps = []

    def told(step):
        """Waits until notifications sent every member the message of `step` (as journey_startup.rs
        waits for each step's SMS), so that each member's SMS arrive in the journey's order."""
        def everyone():
            for p in people:
                listed = notifications.ListMessages(nsvc.ListMessagesRequest(recipient=p.name, page_size=500), metadata=admin).messages
                if not any(m.message_type == step and m.state in (nres.MESSAGE_STATE_SENT, nres.MESSAGE_STATE_DELIVERED) for m in listed):
                    return None
            return True
        eventually(f"every member is told of {step}", everyone)
        told_steps.append(step)

    # 1. The officer registers the four members in Tanger (one identified only by an asylum receipt).
    members = [
        ("Fatima", ["ar", "fr"], "SD", res.DOCUMENT_TYPE_PASSPORT, "1995-02-11"),
        ("Aminata", ["fr", "wo"], "SN", res.DOCUMENT_TYPE_PASSPORT, "1997-07-23"),
        ("Grace", ["en"], "NG", res.DOCUMENT_TYPE_PASSPORT, "1993-11-05"),
        ("Christelle", ["fr"], "CM", res.DOCUMENT_TYPE_ASYLUM_RECEIPT, "1999-04-30"),
    ]
    family = f"Python{uuid.uuid4().int % 100_000:05d}"
    people, phones = [], []
    for given, languages, nationality, document, birth_date in members:
        suffix = uuid.uuid4().int % 100_000_000
        asylum = document == res.DOCUMENT_TYPE_ASYLUM_RECEIPT
        person = res.Applicant(
            given_name=given, family_name=family, birth_date=birth_date, gender=res.GENDER_FEMALE, nationality=nationality,
            languages=languages, zone="tanger", phone=f"+2126{suffix:08d}",
            identity_document=res.IdentityDocument(type=document, number=(f"RAB-{suffix:08d}" if asylum else f"P{suffix:08d}"),
                                                   issuing_country="MA" if asylum else nationality),
            consent=res.Consent(purpose="program_participation", text_version="2026-01"),
        )
        created = intake.CreateApplicant(svc.CreateApplicantRequest(applicant=person, request_id=str(uuid.uuid4())), metadata=officer).applicant
        assert created.name.startswith("applicants/"), created
        assert created.given_name == given and created.zone == "tanger", created
        assert list(created.languages) == languages, created.languages
        assert created.identity_document.type == document, f"{given}: the document type is kept"
        people.append(created)
        phones.append(person.phone)
    assert len(set(phones)) == 4, phones
    told("intake.applicant.registered")

    # 2. They apply as a collective to the open collective start-up call; eligible; submitted.
    calls = intake.ListCalls(svc.ListCallsRequest(zone="tanger", window=res.WINDOW_COLLECTIVE_STARTUP, state=res.CALL_STATE_OPEN),
                             metadata=officer).calls
    assert len(calls) == 1, f"one open collective start-up call in Tanger: {calls}"
    call = calls[0]
    assert call.window == res.WINDOW_COLLECTIVE_STARTUP and "tanger" in call.zones, call
    draft = intake.CreateApplication(svc.CreateApplicationRequest(
        application=res.Application(
            call=call.name, zone="tanger", title="Atelier de couture solidaire de Tanger",
            summary="Four women sewing school uniforms and work clothes for the neighbourhood",
            members=[res.Member(applicant=p.name, role=res.MEMBER_ROLE_REPRESENTATIVE if i == 0 else res.MEMBER_ROLE_MEMBER)
                     for i, p in enumerate(people)],
            provided_documents=["business_plan"]),
        request_id=str(uuid.uuid4())), metadata=officer).application
    assert draft.state == res.APPLICATION_STATE_DRAFT, draft.state
    assert len(draft.members) == 4 and draft.members[0].applicant == people[0].name, draft.members
    assert sum(m.role == res.MEMBER_ROLE_REPRESENTATIVE for m in draft.members) == 1, "one representative"
    application = draft.name
    report = intake.CheckEligibility(svc.CheckEligibilityRequest(name=application), metadata=officer)
    assert report.eligible and not report.findings, f"the asylum receipt is an identity document for this call: {report}"
    submitted = intake.SubmitApplication(svc.SubmitApplicationRequest(name=application), metadata=officer).application
    assert submitted.state == res.APPLICATION_STATE_SUBMITTED, submitted.state
    assert submitted.HasField("submit_time")
    told("intake.application.submitted")

    # A refusal, read as a client reads it: the code, then google.rpc.BadRequest from the trailers.
    bad = res.Applicant(given_name="X", family_name="Y", birth_date="not a date", gender=res.GENDER_FEMALE, nationality="SN",
                        languages=["fr"], zone="tanger", phone="call me",
                        consent=res.Consent(purpose="program_participation", text_version="2026-01"))
    malformed = refused("a malformed applicant", lambda: intake.CreateApplicant(
        svc.CreateApplicantRequest(applicant=bad, request_id=str(uuid.uuid4())), metadata=officer))
    assert malformed.code() == grpc.StatusCode.INVALID_ARGUMENT, malformed.code()
    refused_fields, _ = details(malformed)
    assert "applicant.phone" in refused_fields and "applicant.birth_date" in refused_fields, refused_fields

    # 3. Review: the manager screens, starts the review, assigns two reviewers; one declares a
    # conflict (and then may not score), the other scores; the manager accepts.
    screening = intake.StartScreening(svc.StartScreeningRequest(name=application), metadata=manager).application
    assert screening.state == res.APPLICATION_STATE_SCREENING, screening.state
    in_review = intake.StartReview(svc.StartReviewRequest(name=application), metadata=manager).application
    assert in_review.state == res.APPLICATION_STATE_IN_REVIEW, in_review.state
    reviews = []
    for role in ("REVIEWER_CONFLICTED", "REVIEWER"):
        review = intake.AssignReviewer(svc.AssignReviewerRequest(application=application, reviewer=subject(role)), metadata=manager).review
        assert review.reviewer == subject(role) and review.state == res.REVIEW_STATE_ASSIGNED, review
        reviews.append(review.name)
    declared = intake.DeclareConflict(svc.DeclareConflictRequest(name=reviews[0], reason="The representative is my neighbour"),
                                      metadata=auth("REVIEWER_CONFLICTED")).review
    assert declared.state == res.REVIEW_STATE_CONFLICT_DECLARED, declared.state
    assert declared.conflict_reason == "The representative is my neighbour", declared.conflict_reason

    def scores(name):
        return svc.ScoreApplicationRequest(name=name, comment="a sound plan", scores=[
            res.CriterionScore(criterion="viability", score=8, comment="orders already promised"),
            res.CriterionScore(criterion="team", score=9),
            res.CriterionScore(criterion="impact", score=7),
        ])

    conflicted = refused("a conflicted reviewer's score",
                         lambda: intake.ScoreApplication(scores(reviews[0]), metadata=auth("REVIEWER_CONFLICTED")))
    assert conflicted.code() == grpc.StatusCode.FAILED_PRECONDITION, conflicted.code()
    _, conflicted_reason = details(conflicted)
    assert conflicted_reason == "INVALID_STATE", conflicted_reason
    scored = intake.ScoreApplication(scores(reviews[1]), metadata=auth("REVIEWER")).review
    assert scored.state == res.REVIEW_STATE_SCORED, scored.state
    assert abs(scored.total - 80.0) < 1e-6, f"weighted total (40*8 + 30*9 + 30*7) / 10: {scored.total}"
    accepted = intake.DecideApplication(svc.DecideApplicationRequest(name=application, outcome=res.OUTCOME_ACCEPTED,
                                                                     reason="viable, committed team"), metadata=manager).application
    assert accepted.state == res.APPLICATION_STATE_DECIDED, accepted.state
    assert accepted.decision.outcome == res.OUTCOME_ACCEPTED, accepted.decision
    assert accepted.decision.review_count == 1, "the conflicted review is left out"
    assert abs(accepted.decision.average_score - 80.0) < 1e-6, accepted.decision.average_score
    told("intake.application.accepted")

    # A coach of a Tanger office, recorded before the award so that coaching suggests them.
    coach = coaching.CreateCoach(csvc.CreateCoachRequest(
        coach=cres.Coach(display_name="Nadia Coach", office="offices/tanger_maison_des_jeunes", languages=["fr", "ar", "en"],
                         expertise=[cres.EXPERTISE_BUSINESS_PLAN], weekly_hours=30),
        account=subject("COACH")), metadata=admin).coach
    assert coach.account == subject("COACH") and coach.zone == "tanger", coach
    coach_auth = auth("COACH")

    # 4. Grants learns of the decision (asynchronously): until then CreateAward is refused with
    # FAILED_PRECONDITION / APPLICATION_NOT_ACCEPTED, so the client retries the same request.
    budgets = grants.ListBudgets(gsvc.ListBudgetsRequest(), metadata=manager).budgets
    budget = next(b.name for b in budgets if b.program == "programs/work4life")
    lines = grants.ListBudgetLines(gsvc.ListBudgetLinesRequest(parent=budget), metadata=manager).lines
    line = next(ln for ln in lines if ln.window == "collective_startup" and ln.zone == "tanger")
    amounts = [2_000_000, 1_500_000, 1_000_000]

    def eur(amount_minor):
        return money_pb2.Money(currency_code="EUR", amount_minor=amount_minor)

    award_request = gsvc.CreateAwardRequest(request_id=str(uuid.uuid4()), award=gres.Award(
        budget_line=line.name, application=application, kind=gres.AWARD_KIND_STARTUP_GRANT, amount=eur(sum(amounts)),
        tranches=[
            gres.Tranche(amount=eur(amounts[0]), condition=gres.ReleaseCondition(milestone=BUSINESS_PLAN)),
            gres.Tranche(amount=eur(amounts[1]), condition=gres.ReleaseCondition(release_date="2027-09-01")),
            gres.Tranche(amount=eur(amounts[2]), condition=gres.ReleaseCondition(release_date="2028-03-01")),
        ],
        payee=gres.Payee(method=gres.PAYMENT_METHOD_BANK_TRANSFER, holder_name="Cooperative Couture Solidaire Tanger", account=ACCOUNT)))
    early_awards = []

    def create_award():
        try:
            return grants.CreateAward(award_request, metadata=manager).award
        except grpc.RpcError as e:
            _, why = details(e)
            if e.code() == grpc.StatusCode.FAILED_PRECONDITION and why == "APPLICATION_NOT_ACCEPTED":
                early_awards.append(why)
                return None
            raise

    award = eventually("grants records the decision and commits the award", create_award)
    assert len(award.tranches) == 3, award.tranches
    assert all(t.state == gres.TRANCHE_STATE_SCHEDULED for t in award.tranches), "all wait for their condition"
    assert award.zone == "tanger", award.zone
    assert sorted(award.beneficiaries) == sorted(p.name for p in people), "the four members are the award's beneficiaries"
    committed = grants.GetBudgetLine(gsvc.GetBudgetLineRequest(name=line.name), metadata=manager).line.figures.committed.amount_minor
    assert committed - line.figures.committed.amount_minor == sum(amounts), "the line commits the award's amount"
    told("grants.award.created")

    # 5. Coaching opens the engagement from grants.award.created; the coach runs a session (held:
    # scheduled shortly ahead, attendance recorded once it started) and completes and verifies
    # the milestone.
    def opened():
        listed = coaching.ListEngagements(csvc.ListEngagementsRequest(zone="tanger", window="collective_startup"), metadata=admin)
        return next((e for e in listed.engagements if e.award == award.name), None)

    engagement = eventually("coaching opens the award's engagement", opened)
    assert engagement.application == application, engagement.application
    assert engagement.coach == coach.name, "the Tanger coach is suggested"
    assert len(engagement.beneficiaries) == 4, engagement.beneficiaries
    assert {"ar", "fr", "en"} <= set(engagement.languages), f"the team's languages reach coaching: {engagement.languages}"
    assert any(m.code == BUSINESS_PLAN and m.state == cres.MILESTONE_STATE_PENDING for m in engagement.milestones)
    mine = coaching.ListEngagements(csvc.ListEngagementsRequest(), metadata=coach_auth).engagements
    assert [e.name for e in mine] == [engagement.name], "the coach sees their engagement only"

    now = int(time.time())
    session = coaching.ScheduleSession(csvc.ScheduleSessionRequest(request_id=str(uuid.uuid4()), session=cres.Session(
        engagements=[engagement.name], topic="Business plan: costs and first orders",
        start_time=timestamp_pb2.Timestamp(seconds=now + SESSION_LEAD),
        end_time=timestamp_pb2.Timestamp(seconds=now + SESSION_LEAD + 3600))), metadata=coach_auth).session
    assert session.state == cres.SESSION_STATE_SCHEDULED and session.coach == coach.name, session
    attendance = csvc.RecordAttendanceRequest(name=session.name, notes="Costed the first order of school uniforms",
                                              attendance=[cres.Attendance(applicant=b, present=True) for b in engagement.beneficiaries])
    early = refused("attendance before the session starts", lambda: coaching.RecordAttendance(attendance, metadata=coach_auth))
    assert early.code() == grpc.StatusCode.FAILED_PRECONDITION and details(early)[1] == "NOT_STARTED", (early.code(), details(early))
    told("coaching.session.scheduled")

    def attend():
        try:
            return coaching.RecordAttendance(attendance, metadata=coach_auth).session
        except grpc.RpcError as e:
            if e.code() == grpc.StatusCode.FAILED_PRECONDITION and details(e)[1] == "NOT_STARTED":
                return None
            raise

    held = eventually("the session starts and its attendance is recorded", attend)
    assert held.state == cres.SESSION_STATE_HELD and len(held.attendance) == 4, held
    milestone = f"{engagement.name}/milestones/{BUSINESS_PLAN}"
    completed = coaching.CompleteMilestone(csvc.CompleteMilestoneRequest(
        name=milestone, evidence=["documents/business-plan-couture-tanger-v2.pdf"], note="Validated with the team"),
        metadata=coach_auth).milestone
    assert completed.state == cres.MILESTONE_STATE_COMPLETED, completed.state
    verified = coaching.VerifyMilestone(csvc.VerifyMilestoneRequest(name=milestone), metadata=coach_auth).milestone
    assert verified.state == cres.MILESTONE_STATE_VERIFIED and verified.HasField("verify_time"), verified
    hours = coaching.GetEngagement(csvc.GetEngagementRequest(name=engagement.name), metadata=admin).engagement.hours_used
    assert abs(hours - 1.0) < 1e-6, f"the held session counts: {hours}"
    told("coaching.milestone.verified")

    # 6. The first tranche becomes payable; maker requests, checker approves, batch, export, paid.
    def get_award():
        return grants.GetAward(gsvc.GetAwardRequest(name=award.name), metadata=manager).award

    first = eventually("the verified milestone makes the first tranche payable",
                       lambda: (lambda a: a.tranches[0] if a.tranches[0].state == gres.TRANCHE_STATE_PAYABLE else None)(get_award()))
    assert first.HasField("payable_time")
    told("grants.tranche.payable")
    later = get_award()
    assert later.tranches[1].state == gres.TRANCHE_STATE_SCHEDULED and later.tranches[2].state == gres.TRANCHE_STATE_SCHEDULED, \
        "the dated tranches wait"
    maker, checker = auth("FINANCE_OFFICER"), auth("FINANCE_CHECKER")
    requested = grants.RequestDisbursement(gsvc.RequestDisbursementRequest(tranche=first.name, request_id=str(uuid.uuid4())),
                                           metadata=maker).disbursement
    assert requested.state == gres.DISBURSEMENT_STATE_PENDING_APPROVAL, requested.state
    assert requested.requested_by == subject("FINANCE_OFFICER"), requested.requested_by
    assert requested.amount.amount_minor == amounts[0], requested.amount
    self_approval = refused("the maker's own approval",
                            lambda: grants.ApproveDisbursement(gsvc.ApproveDisbursementRequest(name=requested.name), metadata=maker))
    assert self_approval.code() == grpc.StatusCode.PERMISSION_DENIED, self_approval.code()
    assert details(self_approval)[1] == "PERMISSION_DENIED", details(self_approval)
    approved = grants.ApproveDisbursement(gsvc.ApproveDisbursementRequest(name=requested.name), metadata=checker).disbursement
    assert approved.state == gres.DISBURSEMENT_STATE_APPROVED, approved.state
    assert approved.approved_by == subject("FINANCE_CHECKER"), approved.approved_by
    batch = grants.CreatePaymentBatch(gsvc.CreatePaymentBatchRequest(
        budget=budget, currency_code="EUR", method=gres.PAYMENT_METHOD_BANK_TRANSFER, request_id=str(uuid.uuid4())),
        metadata=maker).payment_batch
    assert batch.count == 1, batch
    exported = grants.ExportPaymentBatch(gsvc.ExportPaymentBatchRequest(name=batch.name), metadata=maker).content.decode("utf-8")
    assert ACCOUNT in exported and "20000.00,EUR,2000000" in exported, f"the bank file carries the account and amount: {exported}"
    assert sum(1 for ln in exported.splitlines() if requested.name in ln or ACCOUNT in ln) == 1, exported
    imported = grants.ImportPaymentResults(gsvc.ImportPaymentResultsRequest(name=batch.name, results=[
        gsvc.PaymentResult(disbursement=requested.name, paid=True, external_reference="BMCE-2026-77812")]), metadata=maker)
    assert imported.recorded_count == 1 and imported.payment_batch.paid_count == 1, imported
    paid = grants.GetDisbursement(gsvc.GetDisbursementRequest(name=requested.name), metadata=maker).disbursement
    assert paid.state == gres.DISBURSEMENT_STATE_PAID and paid.external_reference == "BMCE-2026-77812", paid
    settled = get_award()
    assert settled.tranches[0].state == gres.TRANCHE_STATE_PAID, settled.tranches[0].state
    assert settled.disbursed.amount_minor == amounts[0], settled.disbursed
    disbursed = grants.GetBudgetLine(gsvc.GetBudgetLineRequest(name=line.name), metadata=manager).line.figures.disbursed.amount_minor
    assert disbursed - line.figures.disbursed.amount_minor == amounts[0], "the line shows the payment"
    told("grants.disbursement.paid")

    print(json.dumps({
        "call": call.name,
        "members": [{"applicant": p.name, "given": p.given_name, "language": p.languages[0], "phone": phone}
                    for p, phone in zip(people, phones)],
        "application": application, "state": res.ApplicationState.Name(accepted.state), "refused_fields": refused_fields,
        "reviews": reviews, "conflicted_refusal": conflicted_reason,
        "award": award.name, "award_refused_before_decision_arrived": len(early_awards),
        "engagement": engagement.name, "coach": coach.name, "session": held.name,
        "session_state": cres.SessionState.Name(held.state), "milestone": cres.MilestoneState.Name(verified.state),
        "tranche": first.name, "disbursement": paid.name, "disbursement_state": gres.DisbursementState.Name(paid.state),
        "requested_by": requested.requested_by, "approved_by": approved.approved_by, "batch": batch.name,
        "external_reference": paid.external_reference, "told": told_steps, "seconds": round(time.monotonic() - started, 1),
    }))


if __name__ == "__main__":
    main()
