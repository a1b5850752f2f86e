"""The API's endpoints; the work is in :class:`~sketchseg.serve.service.SegmentService`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse

from sketchseg.serve.schemas import Example, Health, ModelCard, SegmentBody, SegmentResponse
from sketchseg.serve.service import SegmentService

STATIC = Path(__file__).resolve().parent / "static"
ERRORS = {
    400: {"description": "The body is not JSON, or the Host header names no host this server answers to."},
    408: {"description": "The request's headers and body did not arrive in time."},
    413: {"description": "Body, image pixels, strokes, points, stroke length or memory over the limit (/v1/model)."},
    415: {"description": "The body is not sent as JSON (Content-Type: application/json)."},
    422: {"description": "Missing, conflicting or invalid fields (over 32 categories, also from a caption), or an "
          "input that cannot be decoded."},
    500: {"description": "An internal error: the detail names a reference to the server's log, nothing else."},
    503: {"description": "No memory free for the request in time: retry after the Retry-After header's seconds."},
}

router = APIRouter()


def service(request: Request) -> SegmentService:
    return request.app.state.service


Service = Annotated[SegmentService, Depends(service)]


@router.post("/v1/segment", response_model=SegmentResponse, responses=ERRORS, tags=["segment"])
async def segment(body: SegmentBody, svc: Service, request: Request) -> SegmentResponse:
    """Label the strokes of one sketch with the given categories (or a caption's nouns)."""
    length = request.headers.get("content-length", "")
    return await svc.segment(body, int(length) if length.isdigit() else 0)


@router.get("/v1/model", response_model=ModelCard, tags=["model"])
def model_card(svc: Service) -> ModelCard:
    """The weights being served, the input size, the text cache's size, limits, memory and batching so far."""
    return svc.model_card()


@router.get("/v1/examples", response_model=list[Example], tags=["model"])
def examples(svc: Service) -> list[Example]:
    """Example scene sketches from the synthetic generator (strokes, caption, categories)."""
    return svc.examples()


@router.get("/healthz", response_model=Health, tags=["model"])
async def healthz(svc: Service) -> Health:
    """Liveness; answers while the model works on other requests."""
    return svc.health()


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    """The drawing page."""
    return FileResponse(STATIC / "index.html", media_type="text/html")
