//! The `work4life.grants.v1.GrantsService` implementation: unwraps requests, names the caller
//! for the audit, makes mutations idempotent on `request_id`, and wraps answers.

use tonic::{Request, Response, Status};
use work4life_platform::{
    ServiceError, actor,
    auth::principal,
    idempotency::{Begun, begin_optional, request_hash},
};
use work4life_proto::grants::{
    AmendAwardRequest, AmendAwardResponse, ApproveDisbursementRequest, ApproveDisbursementResponse, CancelAwardRequest,
    CancelAwardResponse, ConfirmBursaryMonthRequest, ConfirmBursaryMonthResponse, CreateAwardRequest, CreateAwardResponse,
    CreateBudgetLineRequest, CreateBudgetLineResponse, CreateBudgetRequest, CreateBudgetResponse, CreatePaymentBatchRequest,
    CreatePaymentBatchResponse, ExportPaymentBatchRequest, ExportPaymentBatchResponse, GetAwardRequest, GetAwardResponse,
    GetBalancesRequest, GetBalancesResponse, GetBudgetLineRequest, GetBudgetLineResponse, GetBudgetRequest, GetBudgetResponse,
    GetDisbursementRequest, GetDisbursementResponse, GetDonorReportRequest, GetDonorReportResponse, GetPaymentBatchRequest,
    GetPaymentBatchResponse, ImportPaymentResultsRequest, ImportPaymentResultsResponse, ListAwardsRequest, ListAwardsResponse,
    ListBudgetLinesRequest, ListBudgetLinesResponse, ListBudgetsRequest, ListBudgetsResponse, ListDisbursementsRequest,
    ListDisbursementsResponse, ListPaymentBatchesRequest, ListPaymentBatchesResponse, ListPostingsRequest, ListPostingsResponse,
    RejectDisbursementRequest, RejectDisbursementResponse, ReleaseDueTranchesRequest, ReleaseDueTranchesResponse,
    RequestDisbursementRequest, RequestDisbursementResponse, RequeueDisbursementRequest, RequeueDisbursementResponse,
    grants_service_server::GrantsService,
};

use crate::{Grants, scope};

/// The gRPC face of grants.
pub struct GrantsApi(pub Grants);

/// Runs `$body` (with the transaction as `$tx`) once per `request_id`: a replay returns the
/// first response, the same id with another request is INVALID_ARGUMENT. `required`: a
/// mutation that moves money refuses to run without an id.
macro_rules! idempotent {
    ($api:expr, $method:literal, $actor:expr, $request:expr, $required:expr, $Response:ty, |$tx:ident| $body:expr) => {{
        let request_id: &str = &$request.request_id;
        if $required && request_id.is_empty() {
            return Err(ServiceError::invalid("request_id", "is required: a UUID chosen by the caller and reused on every retry").into());
        }
        let key = format!("grants.{}:{}", $method, $actor.principal.subject);
        match begin_optional::<$Response>(&$api.pool, &key, request_id, &request_hash($request)).await? {
            Begun::Replay(response) => response,
            Begun::Fresh(mut fresh) => {
                let response: $Response = {
                    let $tx = &mut *fresh.tx;
                    $body
                };
                crate::commit(fresh, &response).await?;
                response
            }
        }
    }};
}

#[tonic::async_trait]
impl GrantsService for GrantsApi {
    async fn create_budget(&self, request: Request<CreateBudgetRequest>) -> Result<Response<CreateBudgetResponse>, Status> {
        actor!(request, actor);
        scope::require_budget_owner(actor.principal)?;
        let r = request.get_ref();
        let budget = r.budget.clone().unwrap_or_default();
        let response = idempotent!(self.0, "CreateBudget", actor, r, false, CreateBudgetResponse, |tx| CreateBudgetResponse {
            budget: Some(self.0.create_budget(tx, &actor, &budget).await?)
        });
        Ok(Response::new(response))
    }

    async fn get_budget(&self, request: Request<GetBudgetRequest>) -> Result<Response<GetBudgetResponse>, Status> {
        scope::require_budget_reader(principal(&request)?)?;
        let r = request.get_ref();
        Ok(Response::new(GetBudgetResponse { budget: Some(self.0.get_budget(&r.name, r.as_of.as_ref()).await?) }))
    }

    async fn list_budgets(&self, request: Request<ListBudgetsRequest>) -> Result<Response<ListBudgetsResponse>, Status> {
        scope::require_budget_reader(principal(&request)?)?;
        let r = request.get_ref();
        let (budgets, next_page_token) = self.0.list_budgets(&r.program, r.page_size, &r.page_token).await?;
        Ok(Response::new(ListBudgetsResponse { budgets, next_page_token }))
    }

    async fn create_budget_line(&self, request: Request<CreateBudgetLineRequest>) -> Result<Response<CreateBudgetLineResponse>, Status> {
        actor!(request, actor);
        scope::require_budget_owner(actor.principal)?;
        let r = request.get_ref();
        let line = r.line.clone().unwrap_or_default();
        let response = idempotent!(self.0, "CreateBudgetLine", actor, r, false, CreateBudgetLineResponse, |tx| CreateBudgetLineResponse {
            line: Some(self.0.create_line(tx, &actor, &r.parent, &r.line_id, &line).await?)
        });
        Ok(Response::new(response))
    }

    async fn get_budget_line(&self, request: Request<GetBudgetLineRequest>) -> Result<Response<GetBudgetLineResponse>, Status> {
        scope::require_budget_reader(principal(&request)?)?;
        let r = request.get_ref();
        Ok(Response::new(GetBudgetLineResponse { line: Some(self.0.get_line(&r.name, r.as_of.as_ref()).await?) }))
    }

    async fn list_budget_lines(&self, request: Request<ListBudgetLinesRequest>) -> Result<Response<ListBudgetLinesResponse>, Status> {
        scope::require_budget_reader(principal(&request)?)?;
        let r = request.get_ref();
        let (lines, next_page_token) = self.0.list_lines(&r.parent, r.page_size, &r.page_token).await?;
        Ok(Response::new(ListBudgetLinesResponse { lines, next_page_token }))
    }

    async fn create_award(&self, request: Request<CreateAwardRequest>) -> Result<Response<CreateAwardResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        let award = r.award.clone().unwrap_or_default();
        let response = idempotent!(self.0, "CreateAward", actor, r, true, CreateAwardResponse, |tx| CreateAwardResponse {
            award: Some(self.0.create_award(tx, &actor, &award).await?)
        });
        Ok(Response::new(response))
    }

    async fn get_award(&self, request: Request<GetAwardRequest>) -> Result<Response<GetAwardResponse>, Status> {
        let p = principal(&request)?;
        Ok(Response::new(GetAwardResponse { award: Some(self.0.get_award(p, &request.get_ref().name).await?) }))
    }

    async fn list_awards(&self, request: Request<ListAwardsRequest>) -> Result<Response<ListAwardsResponse>, Status> {
        let p = principal(&request)?;
        let (awards, next_page_token) = self.0.list_awards(p, request.get_ref()).await?;
        Ok(Response::new(ListAwardsResponse { awards, next_page_token }))
    }

    async fn amend_award(&self, request: Request<AmendAwardRequest>) -> Result<Response<AmendAwardResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        let response = idempotent!(self.0, "AmendAward", actor, r, true, AmendAwardResponse, |tx| AmendAwardResponse {
            award: Some(self.0.amend_award(tx, &actor, r).await?)
        });
        Ok(Response::new(response))
    }

    async fn cancel_award(&self, request: Request<CancelAwardRequest>) -> Result<Response<CancelAwardResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        let response = idempotent!(self.0, "CancelAward", actor, r, true, CancelAwardResponse, |tx| CancelAwardResponse {
            award: Some(self.0.cancel_award(tx, &actor, &r.name, &r.reason, &r.etag).await?)
        });
        Ok(Response::new(response))
    }

    async fn confirm_bursary_month(
        &self,
        request: Request<ConfirmBursaryMonthRequest>,
    ) -> Result<Response<ConfirmBursaryMonthResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        let response = idempotent!(self.0, "ConfirmBursaryMonth", actor, r, false, ConfirmBursaryMonthResponse, |tx| {
            ConfirmBursaryMonthResponse { tranche: Some(self.0.confirm_month(tx, &actor, &r.tranche).await?) }
        });
        Ok(Response::new(response))
    }

    async fn release_due_tranches(
        &self,
        request: Request<ReleaseDueTranchesRequest>,
    ) -> Result<Response<ReleaseDueTranchesResponse>, Status> {
        let p = principal(&request)?;
        if !(p.has_role("admin") || p.has_role("finance_officer")) {
            return Err(ServiceError::PermissionDenied("admins and finance officers release due tranches").into());
        }
        let (payable_count, held_count) = self.0.release_due().await?;
        Ok(Response::new(ReleaseDueTranchesResponse { payable_count, held_count }))
    }

    async fn request_disbursement(
        &self,
        request: Request<RequestDisbursementRequest>,
    ) -> Result<Response<RequestDisbursementResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        let response = idempotent!(self.0, "RequestDisbursement", actor, r, true, RequestDisbursementResponse, |tx| {
            RequestDisbursementResponse { disbursement: Some(self.0.request_disbursement(tx, &actor, &r.tranche, None).await?) }
        });
        Ok(Response::new(response))
    }

    async fn approve_disbursement(
        &self,
        request: Request<ApproveDisbursementRequest>,
    ) -> Result<Response<ApproveDisbursementResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        let response = idempotent!(self.0, "ApproveDisbursement", actor, r, false, ApproveDisbursementResponse, |tx| {
            ApproveDisbursementResponse { disbursement: Some(self.0.approve_disbursement(tx, &actor, &r.name).await?) }
        });
        Ok(Response::new(response))
    }

    async fn reject_disbursement(
        &self,
        request: Request<RejectDisbursementRequest>,
    ) -> Result<Response<RejectDisbursementResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        let response = idempotent!(self.0, "RejectDisbursement", actor, r, false, RejectDisbursementResponse, |tx| {
            RejectDisbursementResponse { disbursement: Some(self.0.reject_disbursement(tx, &actor, &r.name, &r.reason).await?) }
        });
        Ok(Response::new(response))
    }

    async fn requeue_disbursement(
        &self,
        request: Request<RequeueDisbursementRequest>,
    ) -> Result<Response<RequeueDisbursementResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        let response = idempotent!(self.0, "RequeueDisbursement", actor, r, true, RequeueDisbursementResponse, |tx| {
            RequeueDisbursementResponse { disbursement: Some(self.0.requeue_disbursement(tx, &actor, &r.name).await?) }
        });
        Ok(Response::new(response))
    }

    async fn get_disbursement(&self, request: Request<GetDisbursementRequest>) -> Result<Response<GetDisbursementResponse>, Status> {
        let p = principal(&request)?;
        Ok(Response::new(GetDisbursementResponse { disbursement: Some(self.0.get_disbursement(p, &request.get_ref().name).await?) }))
    }

    async fn list_disbursements(&self, request: Request<ListDisbursementsRequest>) -> Result<Response<ListDisbursementsResponse>, Status> {
        let p = principal(&request)?;
        let (disbursements, next_page_token) = self.0.list_disbursements(p, request.get_ref()).await?;
        Ok(Response::new(ListDisbursementsResponse { disbursements, next_page_token }))
    }

    async fn create_payment_batch(
        &self,
        request: Request<CreatePaymentBatchRequest>,
    ) -> Result<Response<CreatePaymentBatchResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        let response = idempotent!(self.0, "CreatePaymentBatch", actor, r, true, CreatePaymentBatchResponse, |tx| {
            CreatePaymentBatchResponse { payment_batch: Some(self.0.create_batch(tx, &actor, r).await?) }
        });
        Ok(Response::new(response))
    }

    async fn get_payment_batch(&self, request: Request<GetPaymentBatchRequest>) -> Result<Response<GetPaymentBatchResponse>, Status> {
        let p = principal(&request)?;
        Ok(Response::new(GetPaymentBatchResponse { payment_batch: Some(self.0.get_batch(p, &request.get_ref().name).await?) }))
    }

    async fn list_payment_batches(
        &self,
        request: Request<ListPaymentBatchesRequest>,
    ) -> Result<Response<ListPaymentBatchesResponse>, Status> {
        let p = principal(&request)?;
        let (payment_batches, next_page_token) = self.0.list_batches(p, request.get_ref()).await?;
        Ok(Response::new(ListPaymentBatchesResponse { payment_batches, next_page_token }))
    }

    async fn export_payment_batch(
        &self,
        request: Request<ExportPaymentBatchRequest>,
    ) -> Result<Response<ExportPaymentBatchResponse>, Status> {
        actor!(request, actor);
        let mut tx = work4life_platform::db::begin(&self.0.pool).await?;
        let (batch, content) = self.0.export_batch(&mut tx, &actor, &request.get_ref().name).await?;
        work4life_platform::fault::crash_point("grants.before_commit");
        tx.commit().await.map_err(ServiceError::from)?;
        work4life_platform::fault::crash_point("grants.after_commit");
        Ok(Response::new(ExportPaymentBatchResponse { payment_batch: Some(batch), content, content_type: "text/csv".into() }))
    }

    async fn import_payment_results(
        &self,
        request: Request<ImportPaymentResultsRequest>,
    ) -> Result<Response<ImportPaymentResultsResponse>, Status> {
        actor!(request, actor);
        let r = request.get_ref();
        let response = idempotent!(self.0, "ImportPaymentResults", actor, r, false, ImportPaymentResultsResponse, |tx| {
            let (batch, recorded_count, unchanged_count) = self.0.import_results(tx, &actor, &r.name, &r.results).await?;
            ImportPaymentResultsResponse { payment_batch: Some(batch), recorded_count, unchanged_count }
        });
        Ok(Response::new(response))
    }

    async fn list_postings(&self, request: Request<ListPostingsRequest>) -> Result<Response<ListPostingsResponse>, Status> {
        scope::require_budget_reader(principal(&request)?)?;
        let (postings, next_page_token) = self.0.list_postings(request.get_ref()).await?;
        Ok(Response::new(ListPostingsResponse { postings, next_page_token }))
    }

    async fn get_balances(&self, request: Request<GetBalancesRequest>) -> Result<Response<GetBalancesResponse>, Status> {
        scope::require_budget_reader(principal(&request)?)?;
        let r = request.get_ref();
        let (balances, at) = self.0.get_balances(&r.budget, r.as_of.as_ref()).await?;
        Ok(Response::new(GetBalancesResponse { balances, as_of: Some(work4life_platform::wire::timestamp(at)) }))
    }

    async fn get_donor_report(&self, request: Request<GetDonorReportRequest>) -> Result<Response<GetDonorReportResponse>, Status> {
        scope::require_reporter(principal(&request)?)?;
        let r = request.get_ref();
        Ok(Response::new(GetDonorReportResponse { report: Some(self.0.donor_report(&r.program, r.as_of.as_ref()).await?) }))
    }
}
