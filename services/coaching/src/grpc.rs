//! The `work4life.coaching.v1.CoachingService` implementation: unwraps requests, names the
//! caller for the audit, makes creates idempotent, and wraps answers.

use tonic::{Request, Response, Status};
use work4life_platform::actor;
use work4life_platform::{
    ServiceError,
    auth::principal,
    idempotency::{Begun, begin_optional, check_request_id, request_hash},
    wire::{gather, refuse_if_any},
};
use work4life_proto::coaching::{
    CancelSessionRequest, CancelSessionResponse, CompleteMilestoneRequest, CompleteMilestoneResponse, CreateCoachRequest,
    CreateCoachResponse, CreateEngagementRequest, CreateEngagementResponse, GetCoachRequest, GetCoachResponse, GetEngagementRequest,
    GetEngagementResponse, GetOfficeRequest, GetOfficeResponse, GetProgressRequest, GetProgressResponse, GetSessionRequest,
    GetSessionResponse, ListCoachesRequest, ListCoachesResponse, ListEngagementsRequest, ListEngagementsResponse, ListOfficesRequest,
    ListOfficesResponse, ListSessionsRequest, ListSessionsResponse, ReassignCoachRequest, ReassignCoachResponse, RecordAttendanceRequest,
    RecordAttendanceResponse, RejectMilestoneRequest, RejectMilestoneResponse, RescheduleSessionRequest, RescheduleSessionResponse,
    ScheduleSessionRequest, ScheduleSessionResponse, UpdateOfficeHoursRequest, UpdateOfficeHoursResponse, VerifyMilestoneRequest,
    VerifyMilestoneResponse, coaching_service_server::CoachingService,
};

use crate::Coaching;

/// The gRPC face of coaching.
pub struct CoachingApi(pub Coaching);

#[tonic::async_trait]
impl CoachingService for CoachingApi {
    async fn get_office(&self, request: Request<GetOfficeRequest>) -> Result<Response<GetOfficeResponse>, Status> {
        principal(&request)?;
        Ok(Response::new(GetOfficeResponse { office: Some(self.0.get_office(&request.get_ref().name).await?) }))
    }

    async fn list_offices(&self, request: Request<ListOfficesRequest>) -> Result<Response<ListOfficesResponse>, Status> {
        principal(&request)?;
        let r = request.get_ref();
        let (offices, next_page_token) = self.0.list_offices(&r.zone, r.page_size, &r.page_token).await?;
        Ok(Response::new(ListOfficesResponse { offices, next_page_token }))
    }

    async fn update_office_hours(&self, request: Request<UpdateOfficeHoursRequest>) -> Result<Response<UpdateOfficeHoursResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        Ok(Response::new(UpdateOfficeHoursResponse {
            office: Some(self.0.update_office_hours(&actor, &r.name, &r.opening_hours, &r.closures).await?),
        }))
    }

    async fn create_coach(&self, request: Request<CreateCoachRequest>) -> Result<Response<CreateCoachResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        // A missing profile is one more bad field, reported with the account's.
        Ok(Response::new(CreateCoachResponse { coach: Some(self.0.create_coach(&actor, &r.account, r.coach.as_ref()).await?) }))
    }

    async fn get_coach(&self, request: Request<GetCoachRequest>) -> Result<Response<GetCoachResponse>, Status> {
        principal(&request)?;
        Ok(Response::new(GetCoachResponse { coach: Some(self.0.get_coach(&request.get_ref().name).await?) }))
    }

    async fn list_coaches(&self, request: Request<ListCoachesRequest>) -> Result<Response<ListCoachesResponse>, Status> {
        principal(&request)?;
        let r = request.get_ref();
        let (coaches, next_page_token) = self.0.list_coaches(&r.office, &r.zone, r.page_size, &r.page_token).await?;
        Ok(Response::new(ListCoachesResponse { coaches, next_page_token }))
    }

    async fn create_engagement(&self, request: Request<CreateEngagementRequest>) -> Result<Response<CreateEngagementResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        let mut v = Vec::new();
        check_request_id(&mut v, &r.request_id);
        match &r.engagement {
            None => v.push(work4life_platform::FieldViolation::new("engagement", "is required")),
            Some(e) => {
                gather(&mut v, crate::engagements::validate(e));
            }
        }
        refuse_if_any(v)?;
        let scope = format!("coaching.CreateEngagement:{}", actor.principal.subject);
        match begin_optional::<CreateEngagementResponse>(&self.0.pool, &scope, &r.request_id, &request_hash(r)).await? {
            Begun::Replay(response) => Ok(Response::new(response)),
            Begun::Fresh(mut fresh) => {
                let engagement =
                    self.0.create_engagement(&mut fresh.tx, &actor, r.engagement.as_ref().unwrap_or(&Default::default())).await?;
                let response = CreateEngagementResponse { engagement: Some(engagement) };
                fresh.commit(&response).await?;
                Ok(Response::new(response))
            }
        }
    }

    async fn get_engagement(&self, request: Request<GetEngagementRequest>) -> Result<Response<GetEngagementResponse>, Status> {
        actor!(request, actor);
        Ok(Response::new(GetEngagementResponse { engagement: Some(self.0.get_engagement(&actor, &request.get_ref().name).await?) }))
    }

    async fn list_engagements(&self, request: Request<ListEngagementsRequest>) -> Result<Response<ListEngagementsResponse>, Status> {
        actor!(request, actor);
        let (engagements, next_page_token) = self.0.list_engagements(&actor, request.get_ref()).await?;
        Ok(Response::new(ListEngagementsResponse { engagements, next_page_token }))
    }

    async fn reassign_coach(&self, request: Request<ReassignCoachRequest>) -> Result<Response<ReassignCoachResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        Ok(Response::new(ReassignCoachResponse { engagement: Some(self.0.reassign(&actor, &r.name, &r.coach, &r.reason).await?) }))
    }

    async fn schedule_session(&self, request: Request<ScheduleSessionRequest>) -> Result<Response<ScheduleSessionResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        let mut v = Vec::new();
        check_request_id(&mut v, &r.request_id);
        let session = r.session.clone().unwrap_or_default();
        let valid = match &r.session {
            None => {
                v.push(work4life_platform::FieldViolation::new("session", "is required"));
                None
            }
            Some(s) => crate::sessions::validate_session(&mut v, s),
        };
        let (Some(valid), true) = (valid, v.is_empty()) else { return Err(ServiceError::InvalidArgument(v).into()) };
        let scope = format!("coaching.ScheduleSession:{}", actor.principal.subject);
        // Concurrent inserts checking the same exclusion constraints can deadlock in PostgreSQL;
        // the victim runs again, and then finds the winner's booking: DOUBLE_BOOKED, not ABORTED.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = match begin_optional::<ScheduleSessionResponse>(&self.0.pool, &scope, &r.request_id, &request_hash(r)).await? {
                Begun::Replay(response) => Ok(response),
                Begun::Fresh(mut fresh) => match self.0.schedule(&mut fresh.tx, &actor, &session, valid.clone()).await {
                    Ok(session) => {
                        let response = ScheduleSessionResponse { session: Some(session) };
                        fresh.commit(&response).await.map(|()| response)
                    }
                    Err(err) => Err(err),
                },
            };
            match outcome {
                Err(ServiceError::Aborted { reason: "CONCURRENT_UPDATE", .. }) if attempt < 3 => continue,
                other => return Ok(Response::new(other?)),
            }
        }
    }

    async fn get_session(&self, request: Request<GetSessionRequest>) -> Result<Response<GetSessionResponse>, Status> {
        actor!(request, actor);
        Ok(Response::new(GetSessionResponse { session: Some(self.0.get_session(&actor, &request.get_ref().name).await?) }))
    }

    async fn list_sessions(&self, request: Request<ListSessionsRequest>) -> Result<Response<ListSessionsResponse>, Status> {
        actor!(request, actor);
        let (sessions, next_page_token) = self.0.list_sessions(&actor, request.get_ref()).await?;
        Ok(Response::new(ListSessionsResponse { sessions, next_page_token }))
    }

    async fn reschedule_session(&self, request: Request<RescheduleSessionRequest>) -> Result<Response<RescheduleSessionResponse>, Status> {
        actor!(request, actor);
        Ok(Response::new(RescheduleSessionResponse { session: Some(self.0.reschedule(&actor, request.get_ref()).await?) }))
    }

    async fn cancel_session(&self, request: Request<CancelSessionRequest>) -> Result<Response<CancelSessionResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        Ok(Response::new(CancelSessionResponse { session: Some(self.0.cancel(&actor, &r.name, &r.reason).await?) }))
    }

    async fn record_attendance(&self, request: Request<RecordAttendanceRequest>) -> Result<Response<RecordAttendanceResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        Ok(Response::new(RecordAttendanceResponse {
            session: Some(self.0.record_attendance(&actor, &r.name, &r.attendance, &r.notes).await?),
        }))
    }

    async fn complete_milestone(&self, request: Request<CompleteMilestoneRequest>) -> Result<Response<CompleteMilestoneResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        Ok(Response::new(CompleteMilestoneResponse {
            milestone: Some(self.0.complete_milestone(&actor, &r.name, &r.evidence, &r.note).await?),
        }))
    }

    async fn verify_milestone(&self, request: Request<VerifyMilestoneRequest>) -> Result<Response<VerifyMilestoneResponse>, Status> {
        actor!(request, actor);
        Ok(Response::new(VerifyMilestoneResponse { milestone: Some(self.0.verify_milestone(&actor, &request.get_ref().name).await?) }))
    }

    async fn reject_milestone(&self, request: Request<RejectMilestoneRequest>) -> Result<Response<RejectMilestoneResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        Ok(Response::new(RejectMilestoneResponse { milestone: Some(self.0.reject_milestone(&actor, &r.name, &r.reason).await?) }))
    }

    async fn get_progress(&self, request: Request<GetProgressRequest>) -> Result<Response<GetProgressResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        let progress = self.0.progress(&actor, &r.engagement, &r.window, &r.zone, &r.office, &r.as_of).await?;
        Ok(Response::new(GetProgressResponse { progress: Some(progress) }))
    }
}
