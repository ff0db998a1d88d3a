"""``/jobs``: analyses that outlive a request (and a server restart)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from songmap.api.errors import ANALYSIS_ERRORS, ErrorBody, ErrorDetail, JobNotFinishedError
from songmap.api.formats import check_format, content_disposition, export_response
from songmap.api.jobs import DONE, FAILED, Job
from songmap.api.models import JobInfo
from songmap.api.overrides import UPLOAD_BODY, query_overrides
from songmap.api.routes.analyze import incoming_upload
from songmap.api.service import Service
from songmap.schema import AnalysisResult

router = APIRouter(prefix="/jobs", tags=["jobs"])

#: bpm, time_signature, first_downbeat: query parameters here, or form fields beside the file
_OVERRIDES = Depends(query_overrides)


def _service(request: Request) -> Service:
    return request.app.state.service


def job_info(job: Job) -> JobInfo:
    error = None
    if job.state == FAILED:
        error = ErrorDetail(type=job.error_type or "Error", message=job.error_message or "",
                            id=job.error_id)
    return JobInfo(
        id=job.id, state=job.state, progress=job.progress, filename=job.filename,  # type: ignore[arg-type]
        error=error, error_status=job.error_status if job.state == FAILED else None,
        created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
        result_url=f"/jobs/{job.id}/result" if job.state == DONE else None,
    )


@router.post("", status_code=202, response_model=JobInfo, responses=ANALYSIS_ERRORS,
             summary="Queue a recording for analysis", openapi_extra=UPLOAD_BODY)
async def create_job(request: Request, overrides: dict[str, str] = _OVERRIDES) -> JSONResponse:
    job = await _service(request).submit_job(incoming_upload(request), overrides)
    return JSONResponse(job_info(job).model_dump(mode="json"), status_code=202,
                        headers={"Location": f"/jobs/{job.id}"})


@router.get("/{job_id}", response_model=JobInfo,
            responses={404: {"model": ErrorBody}}, summary="A job's state and progress")
async def get_job(request: Request, job_id: str) -> JobInfo:
    return job_info(await _service(request).get_job(job_id))


@router.get("/{job_id}/result", response_model=AnalysisResult,
            responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody},
                       **ANALYSIS_ERRORS},
            summary="The result of a finished job (a failed job answers with its error)")
async def get_job_result(request: Request, job_id: str,
                         format: str = Query("json", description="json or an export format."),
                         download: bool = Query(False, description="Send as an attachment.")
                         ) -> Response:
    fmt = check_format(format)
    service = _service(request)
    job = await service.get_job(job_id)
    if job.state == FAILED:
        body = ErrorBody(error=ErrorDetail(type=job.error_type or "Error",
                                           message=job.error_message or "", id=job.error_id))
        return JSONResponse(body.model_dump(), status_code=job.error_status or 500)
    if job.state != DONE:
        raise JobNotFinishedError(f"job {job_id} is {job.state}; poll GET /jobs/{job_id}")
    result = await service.job_result(job)
    if result is None:
        raise JobNotFinishedError(f"the result of job {job_id} is no longer in the store; "
                                  "upload the file again")
    if fmt != "json":
        return await export_response(result, fmt)
    headers = {}
    if download:
        headers["Content-Disposition"] = content_disposition(job.filename, ".songmap.json")
    return Response(result.model_dump_json(indent=2), media_type="application/json",
                    headers=headers)
