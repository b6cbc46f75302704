"""A client from another ecosystem: Python stubs generated from proto/ with grpcio-tools (the
command in the README), driving the first steps of the collective start-up journey against the
running suite, and reading a refusal's google.rpc details as any client would.

Run by tests/tests/python_client.rs, which starts the suite and passes:
  W4L_INTAKE  host:port of the process serving intake
  W4L_OFFICER an officer's access token (zone tanger)
  W4L_OUT     a scratch directory for the generated code
Prints one JSON line with what it did; exits non-zero on any failure.
"""

import json
import os
import pathlib
import subprocess
import sys
import uuid

ROOT = pathlib.Path(__file__).resolve().parents[2]


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


def main() -> None:
    out = pathlib.Path(os.environ["W4L_OUT"])
    generate(out)
    sys.path.insert(0, str(out))
    import grpc
    from google.rpc import error_details_pb2, status_pb2
    from work4life.intake.v1 import intake_service_pb2 as svc, intake_service_pb2_grpc as rpc, resources_pb2 as res

    channel = grpc.insecure_channel(os.environ["W4L_INTAKE"])
    intake = rpc.IntakeServiceStub(channel)
    auth = [("authorization", "Bearer " + os.environ["W4L_OFFICER"])]

    calls = intake.ListCalls(svc.ListCallsRequest(zone="tanger", window=res.WINDOW_COLLECTIVE_STARTUP), metadata=auth).calls
    assert calls, "an open collective start-up call in Tanger"
    call = calls[0]

    people = []
    for i, (given, languages, document) in enumerate([
        ("Aminata", ["fr"], res.DOCUMENT_TYPE_PASSPORT),
        ("Fatou", ["ar", "fr"], res.DOCUMENT_TYPE_PASSPORT),
        ("Grace", ["en"], res.DOCUMENT_TYPE_RESIDENCE_CARD),
        ("Mariam", ["fr", "ar"], res.DOCUMENT_TYPE_ASYLUM_RECEIPT),
    ]):
        suffix = uuid.uuid4().int % 100_000_000
        person = res.Applicant(
            given_name=given, family_name=f"Python{suffix:08d}", birth_date=f"199{i}-05-1{i}", gender=res.GENDER_FEMALE,
            nationality="SN", languages=languages, zone="tanger", phone=f"+2126{suffix:08d}",
            identity_document=res.IdentityDocument(type=document, number=f"R{suffix:08d}", issuing_country="SN"),
            consent=res.Consent(purpose="program_participation", text_version="2026-01"),
        )
        created = intake.CreateApplicant(svc.CreateApplicantRequest(applicant=person, request_id=str(uuid.uuid4())), metadata=auth)
        assert created.applicant.name.startswith("applicants/"), created
        people.append(created.applicant)

    members = [res.Member(applicant=p.name, role=res.MEMBER_ROLE_REPRESENTATIVE if i == 0 else res.MEMBER_ROLE_MEMBER)
               for i, p in enumerate(people)]
    draft = intake.CreateApplication(svc.CreateApplicationRequest(
        application=res.Application(call=call.name, zone="tanger", title="Coopérative de couture", summary="Tailoring together",
                                    members=members, provided_documents=["business_plan"]),
        request_id=str(uuid.uuid4())), metadata=auth).application
    submitted = intake.SubmitApplication(svc.SubmitApplicationRequest(name=draft.name), metadata=auth).application
    assert submitted.state == res.APPLICATION_STATE_SUBMITTED, submitted.state

    # A refusal, read as a client reads it: the code, then google.rpc.BadRequest from the trailers.
    bad = res.Applicant(given_name="X", family_name="Y", birth_date="not a date", gender=res.GENDER_FEMALE, nationality="SN",
                        languages=["fr"], zone="tanger", phone="call me",
                        consent=res.Consent(purpose="program_participation", text_version="2026-01"))
    try:
        intake.CreateApplicant(svc.CreateApplicantRequest(applicant=bad, request_id=str(uuid.uuid4())), metadata=auth)
        raise AssertionError("a malformed applicant was accepted")
    except grpc.RpcError as refused:
        assert refused.code() == grpc.StatusCode.INVALID_ARGUMENT, refused.code()
        raw = dict(refused.trailing_metadata())["grpc-status-details-bin"]
        status = status_pb2.Status.FromString(raw)
        fields = []
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                request = error_details_pb2.BadRequest()
                detail.Unpack(request)
                fields = [v.field for v in request.field_violations]
        assert "applicant.phone" in fields and "applicant.birth_date" in fields, fields

    print(json.dumps({"call": call.name, "applicants": [p.name for p in people], "application": submitted.name,
                      "state": res.ApplicationState.Name(submitted.state), "refused_fields": fields}))


if __name__ == "__main__":
    main()
