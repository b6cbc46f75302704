//! The `work4life.intake.v1.IntakeService` implementation: unwraps requests, names the caller
//! for the audit, makes creates idempotent, and wraps answers. The rules live in the rooms.

use tonic::{Request, Response, Status};
use work4life_platform::actor;
use work4life_platform::{
    FieldViolation, ServiceError,
    auth::principal,
    idempotency::{Begun, begin_optional, request_hash},
    wire::{gather, parse_name},
};
use work4life_proto::intake::{
    AddMemberRequest, AddMemberResponse, Applicant, ApplicantView, Application, AssignReviewerRequest, AssignReviewerResponse,
    BatchGetApplicantContactsRequest, BatchGetApplicantContactsResponse, CheckEligibilityRequest, CheckEligibilityResponse,
    CloseCallRequest, CloseCallResponse, CreateApplicantRequest, CreateApplicantResponse, CreateApplicationRequest,
    CreateApplicationResponse, CreateCallRequest, CreateCallResponse, CreateProgramRequest, CreateProgramResponse,
    DecideApplicationRequest, DecideApplicationResponse, DeclareConflictRequest, DeclareConflictResponse, ErasePersonalDataRequest,
    ErasePersonalDataResponse, ExportApplicantsRequest, ExportApplicantsResponse, GetApplicantRequest, GetApplicantResponse,
    GetApplicationRequest, GetApplicationResponse, GetCallRequest, GetCallResponse, GetProgramRequest, GetProgramResponse,
    ListApplicantsRequest, ListApplicantsResponse, ListApplicationsRequest, ListApplicationsResponse, ListCallsRequest, ListCallsResponse,
    ListProgramsRequest, ListProgramsResponse, ListReviewsRequest, ListReviewsResponse, MarkDuplicateRequest, MarkDuplicateResponse,
    RemoveMemberRequest, RemoveMemberResponse, ScoreApplicationRequest, ScoreApplicationResponse, StartReviewRequest, StartReviewResponse,
    StartScreeningRequest, StartScreeningResponse, SubmitApplicationRequest, SubmitApplicationResponse, UpdateApplicantRequest,
    UpdateApplicantResponse, UpdateApplicationRequest, UpdateApplicationResponse, WithdrawApplicationRequest, WithdrawApplicationResponse,
    intake_service_server::IntakeService,
};

use crate::{Intake, rules::Step};

/// The gRPC face of intake.
pub struct IntakeApi(pub Intake);

fn required<T>(field: &str, value: &Option<T>) -> Result<(), ServiceError> {
    if value.is_none() { Err(ServiceError::invalid(field, "is required")) } else { Ok(()) }
}

fn mask_paths(mask: &Option<prost_types::FieldMask>) -> Vec<String> {
    mask.as_ref().map(|m| m.paths.clone()).unwrap_or_default()
}

#[tonic::async_trait]
impl IntakeService for IntakeApi {
    async fn create_program(&self, request: Request<CreateProgramRequest>) -> Result<Response<CreateProgramResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        required("program", &r.program)?;
        let scope = format!("intake.CreateProgram:{}", actor.principal.subject);
        match begin_optional(&self.0.pool, &scope, &r.request_id, &request_hash(r)).await? {
            Begun::Replay(response) => Ok(Response::new(response)),
            Begun::Fresh(mut fresh) => {
                let program =
                    self.0.create_program(&mut fresh.tx, &actor, r.program.as_ref().unwrap_or(&Default::default()), &r.program_id).await?;
                let response = CreateProgramResponse { program: Some(program) };
                fresh.commit(&response).await?;
                Ok(Response::new(response))
            }
        }
    }

    async fn get_program(&self, request: Request<GetProgramRequest>) -> Result<Response<GetProgramResponse>, Status> {
        principal(&request)?;
        Ok(Response::new(GetProgramResponse { program: Some(self.0.get_program(&request.get_ref().name).await?) }))
    }

    async fn list_programs(&self, request: Request<ListProgramsRequest>) -> Result<Response<ListProgramsResponse>, Status> {
        principal(&request)?;
        let r = request.get_ref();
        let (programs, next_page_token) = self.0.list_programs(r.page_size, &r.page_token).await?;
        Ok(Response::new(ListProgramsResponse { programs, next_page_token }))
    }

    async fn create_applicant(&self, request: Request<CreateApplicantRequest>) -> Result<Response<CreateApplicantResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        required("applicant", &r.applicant)?;
        let scope = format!("intake.CreateApplicant:{}", actor.principal.subject);
        let digest = self.0.vault.request_digest(&prost::Message::encode_to_vec(r));
        match begin_optional::<CreateApplicantResponse>(&self.0.pool, &scope, &r.request_id, &digest).await? {
            Begun::Replay(stored) => {
                let id = parse_name("request_id", "applicants", &stored.applicant.unwrap_or_default().name)?;
                Ok(Response::new(CreateApplicantResponse { applicant: Some(self.0.get_applicant(&actor, id, false).await?) }))
            }
            Begun::Fresh(mut fresh) => {
                let applicant = self.0.create_applicant(&mut fresh.tx, &actor, r.applicant.as_ref().unwrap_or(&Default::default())).await?;
                // Only the name rests with the request id: no personal data outlives an erasure there.
                fresh
                    .commit(&CreateApplicantResponse { applicant: Some(Applicant { name: applicant.name.clone(), ..Default::default() }) })
                    .await?;
                Ok(Response::new(CreateApplicantResponse { applicant: Some(applicant) }))
            }
        }
    }

    async fn get_applicant(&self, request: Request<GetApplicantRequest>) -> Result<Response<GetApplicantResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        let id = parse_name("name", "applicants", &r.name)?;
        let full = match ApplicantView::try_from(r.view) {
            Ok(ApplicantView::Full) => true,
            Ok(_) => false,
            Err(_) => return Err(ServiceError::invalid("view", "is not BASIC or FULL").into()),
        };
        Ok(Response::new(GetApplicantResponse { applicant: Some(self.0.get_applicant(&actor, id, full).await?) }))
    }

    async fn batch_get_applicant_contacts(
        &self,
        request: Request<BatchGetApplicantContactsRequest>,
    ) -> Result<Response<BatchGetApplicantContactsResponse>, Status> {
        actor!(request, actor);
        let names = &request.get_ref().names;
        if names.is_empty() || names.len() > 100 {
            return Err(ServiceError::invalid("names", "give 1 to 100 names").into());
        }
        let mut ids = Vec::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            ids.push(parse_name(&format!("names[{i}]"), "applicants", name)?);
        }
        Ok(Response::new(BatchGetApplicantContactsResponse { contacts: self.0.contacts(&actor, &ids).await? }))
    }

    async fn list_applicants(&self, request: Request<ListApplicantsRequest>) -> Result<Response<ListApplicantsResponse>, Status> {
        actor!(request, actor);
        let (applicants, next_page_token) = self.0.list_applicants(&actor, request.get_ref()).await?;
        Ok(Response::new(ListApplicantsResponse { applicants, next_page_token }))
    }

    async fn update_applicant(&self, request: Request<UpdateApplicantRequest>) -> Result<Response<UpdateApplicantResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        required("applicant", &r.applicant)?;
        let applicant =
            self.0.update_applicant(&actor, r.applicant.as_ref().unwrap_or(&Default::default()), &mask_paths(&r.update_mask)).await?;
        Ok(Response::new(UpdateApplicantResponse { applicant: Some(applicant) }))
    }

    async fn mark_duplicate(&self, request: Request<MarkDuplicateRequest>) -> Result<Response<MarkDuplicateResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        let mut v = Vec::new();
        let id = gather(&mut v, parse_name("name", "applicants", &r.name));
        let keep = gather(&mut v, parse_name("keep", "applicants", &r.keep));
        if r.reason.trim().is_empty() {
            v.push(FieldViolation::new("reason", "is required"));
        }
        let (Some(id), Some(keep), true) = (id, keep, v.is_empty()) else { return Err(ServiceError::InvalidArgument(v).into()) };
        Ok(Response::new(MarkDuplicateResponse { applicant: Some(self.0.mark_duplicate(&actor, id, keep, r.reason.trim()).await?) }))
    }

    async fn erase_personal_data(&self, request: Request<ErasePersonalDataRequest>) -> Result<Response<ErasePersonalDataResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        let mut v = Vec::new();
        let id = gather(&mut v, parse_name("name", "applicants", &r.name));
        if r.reason.trim().is_empty() {
            v.push(FieldViolation::new("reason", "is required: record why the data is erased"));
        }
        let (Some(id), true) = (id, v.is_empty()) else { return Err(ServiceError::InvalidArgument(v).into()) };
        Ok(Response::new(ErasePersonalDataResponse { applicant: Some(self.0.erase(&actor, id, r.reason.trim()).await?) }))
    }

    async fn export_applicants(&self, request: Request<ExportApplicantsRequest>) -> Result<Response<ExportApplicantsResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        let (applicants, next_page_token) = self.0.export(&actor, r.zone.trim(), r.page_size, &r.page_token).await?;
        Ok(Response::new(ExportApplicantsResponse { applicants, next_page_token }))
    }

    async fn create_call(&self, request: Request<CreateCallRequest>) -> Result<Response<CreateCallResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        required("call", &r.call)?;
        let scope = format!("intake.CreateCall:{}", actor.principal.subject);
        match begin_optional(&self.0.pool, &scope, &r.request_id, &request_hash(r)).await? {
            Begun::Replay(response) => Ok(Response::new(response)),
            Begun::Fresh(mut fresh) => {
                let call = self.0.create_call(&mut fresh.tx, &actor, r.call.as_ref().unwrap_or(&Default::default())).await?;
                let response = CreateCallResponse { call: Some(call) };
                fresh.commit(&response).await?;
                Ok(Response::new(response))
            }
        }
    }

    async fn get_call(&self, request: Request<GetCallRequest>) -> Result<Response<GetCallResponse>, Status> {
        principal(&request)?;
        Ok(Response::new(GetCallResponse { call: Some(self.0.get_call(&request.get_ref().name).await?) }))
    }

    async fn list_calls(&self, request: Request<ListCallsRequest>) -> Result<Response<ListCallsResponse>, Status> {
        principal(&request)?;
        let (calls, next_page_token) = self.0.list_calls(request.get_ref()).await?;
        Ok(Response::new(ListCallsResponse { calls, next_page_token }))
    }

    async fn close_call(&self, request: Request<CloseCallRequest>) -> Result<Response<CloseCallResponse>, Status> {
        actor!(request, actor);
        Ok(Response::new(CloseCallResponse { call: Some(self.0.close_call(&actor, request.get_ref()).await?) }))
    }

    async fn create_application(&self, request: Request<CreateApplicationRequest>) -> Result<Response<CreateApplicationResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        required("application", &r.application)?;
        let scope = format!("intake.CreateApplication:{}", actor.principal.subject);
        match begin_optional::<CreateApplicationResponse>(&self.0.pool, &scope, &r.request_id, &request_hash(r)).await? {
            Begun::Replay(stored) => {
                let id = parse_name("request_id", "applications", &stored.application.unwrap_or_default().name)?;
                Ok(Response::new(CreateApplicationResponse { application: Some(self.0.get_application(&actor, id).await?) }))
            }
            Begun::Fresh(mut fresh) => {
                let application =
                    self.0.create_application(&mut fresh.tx, &actor, r.application.as_ref().unwrap_or(&Default::default())).await?;
                // Only the name rests with the request id (members' names are personal data).
                let stored = Application { name: application.name.clone(), ..Default::default() };
                fresh.commit(&CreateApplicationResponse { application: Some(stored) }).await?;
                Ok(Response::new(CreateApplicationResponse { application: Some(application) }))
            }
        }
    }

    async fn get_application(&self, request: Request<GetApplicationRequest>) -> Result<Response<GetApplicationResponse>, Status> {
        actor!(request, actor);
        let id = parse_name("name", "applications", &request.get_ref().name)?;
        Ok(Response::new(GetApplicationResponse { application: Some(self.0.get_application(&actor, id).await?) }))
    }

    async fn list_applications(&self, request: Request<ListApplicationsRequest>) -> Result<Response<ListApplicationsResponse>, Status> {
        actor!(request, actor);
        let (applications, next_page_token) = self.0.list_applications(&actor, request.get_ref()).await?;
        Ok(Response::new(ListApplicationsResponse { applications, next_page_token }))
    }

    async fn update_application(&self, request: Request<UpdateApplicationRequest>) -> Result<Response<UpdateApplicationResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        required("application", &r.application)?;
        let application =
            self.0.update_application(&actor, r.application.as_ref().unwrap_or(&Default::default()), &mask_paths(&r.update_mask)).await?;
        Ok(Response::new(UpdateApplicationResponse { application: Some(application) }))
    }

    async fn add_member(&self, request: Request<AddMemberRequest>) -> Result<Response<AddMemberResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        Ok(Response::new(AddMemberResponse {
            application: Some(self.0.add_member(&actor, &r.application, r.member.as_ref(), &r.etag).await?),
        }))
    }

    async fn remove_member(&self, request: Request<RemoveMemberRequest>) -> Result<Response<RemoveMemberResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        Ok(Response::new(RemoveMemberResponse {
            application: Some(self.0.remove_member(&actor, &r.application, &r.applicant, &r.etag).await?),
        }))
    }

    async fn check_eligibility(&self, request: Request<CheckEligibilityRequest>) -> Result<Response<CheckEligibilityResponse>, Status> {
        actor!(request, actor);
        let findings = self.0.check_eligibility(&actor, &request.get_ref().name).await?;
        Ok(Response::new(CheckEligibilityResponse { eligible: findings.is_empty(), findings }))
    }

    async fn submit_application(&self, request: Request<SubmitApplicationRequest>) -> Result<Response<SubmitApplicationResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        Ok(Response::new(SubmitApplicationResponse { application: Some(self.0.submit(&actor, &r.name, &r.etag).await?) }))
    }

    async fn withdraw_application(
        &self,
        request: Request<WithdrawApplicationRequest>,
    ) -> Result<Response<WithdrawApplicationResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        Ok(Response::new(WithdrawApplicationResponse { application: Some(self.0.withdraw(&actor, &r.name, &r.reason, &r.etag).await?) }))
    }

    async fn start_screening(&self, request: Request<StartScreeningRequest>) -> Result<Response<StartScreeningResponse>, Status> {
        actor!(request, actor);
        Ok(Response::new(StartScreeningResponse {
            application: Some(self.0.advance(&actor, &request.get_ref().name, Step::StartScreening).await?),
        }))
    }

    async fn start_review(&self, request: Request<StartReviewRequest>) -> Result<Response<StartReviewResponse>, Status> {
        actor!(request, actor);
        Ok(Response::new(StartReviewResponse {
            application: Some(self.0.advance(&actor, &request.get_ref().name, Step::StartReview).await?),
        }))
    }

    async fn decide_application(&self, request: Request<DecideApplicationRequest>) -> Result<Response<DecideApplicationResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        Ok(Response::new(DecideApplicationResponse { application: Some(self.0.decide(&actor, &r.name, r.outcome, &r.reason).await?) }))
    }

    async fn assign_reviewer(&self, request: Request<AssignReviewerRequest>) -> Result<Response<AssignReviewerResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        Ok(Response::new(AssignReviewerResponse { review: Some(self.0.assign_reviewer(&actor, &r.application, &r.reviewer).await?) }))
    }

    async fn declare_conflict(&self, request: Request<DeclareConflictRequest>) -> Result<Response<DeclareConflictResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        Ok(Response::new(DeclareConflictResponse { review: Some(self.0.declare_conflict(&actor, &r.name, &r.reason).await?) }))
    }

    async fn score_application(&self, request: Request<ScoreApplicationRequest>) -> Result<Response<ScoreApplicationResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        Ok(Response::new(ScoreApplicationResponse { review: Some(self.0.score(&actor, &r.name, &r.scores, &r.comment).await?) }))
    }

    async fn list_reviews(&self, request: Request<ListReviewsRequest>) -> Result<Response<ListReviewsResponse>, Status> {
        actor!(request, actor);
        let (reviews, average_score, scored_count) = self.0.list_reviews(&actor, &request.get_ref().parent).await?;
        Ok(Response::new(ListReviewsResponse { reviews, average_score, scored_count }))
    }
}
