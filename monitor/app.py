"""The monitor's web app: pages, live fragments, a JSON API and operator actions (Starlette).

Pages are rendered on the server; `static/monitor.js` re-fetches each ``data-live`` fragment
every few seconds (answered 304 when nothing changed) so the page updates without a reload.
Every input is validated (`monitor.params`); what a user can get wrong is a 4xx with one line,
and anything else a 500 with one line — never a traceback in the page.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import asdict, is_dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode

from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from monitor import params
from monitor.board import Board, NoActions, one_line
from monitor.params import BadInput
from monitor.security import SESSION_COOKIE, Guard, Refused, WrongHost
from monitor.views import HERE, make_templates, span_s
from shared.read_model import ListedStatus
from shared.runtime import NotAwaitingOperator, OperatorUnavailable

log = logging.getLogger(__name__)
MAX_FORM_BYTES = 16_384
ACTIONS = ("retry", "retry-step", "resolve")
"""The operator's actions, as the last part of their form's path: retry the failed
compensations, retry the failed step past the pivot, mark resolved."""
BoardOpener = Callable[[], AbstractAsyncContextManager[Board]]


def fixed(board: Board) -> BoardOpener:
    """A board that is already open (the embedded runtimes of the same process)."""

    @asynccontextmanager
    async def opened() -> AsyncIterator[Board]:
        yield board

    return opened


def create_app(open_board: BoardOpener, guard: Guard) -> Starlette:
    """The monitor over the board ``open_board`` yields while the app runs."""
    templates = make_templates()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with open_board() as board:
            app.state.board = board
            yield

    def board_of(request: Request) -> Board:
        board: Board = request.app.state.board
        return board

    def page(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
        session = request.cookies.get(SESSION_COOKIE) or guard.new_session()
        board = board_of(request)
        settings = board.settings
        context = {
            **context,
            "csrf": guard.csrf_for(session),
            "needs_token": guard.needs_token,
            "read_only": guard.read_only,
            "refresh_ms": settings.refresh_ms,
            "trace_url": settings.trace_url,
            "can_act": board.can_act,
        }
        response = templates.TemplateResponse(request, name, context, status_code=status)
        if SESSION_COOKIE not in request.cookies:
            response.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict", path="/")
        return response

    def live(request: Request, name: str, context: dict[str, Any]) -> Response:
        """A fragment, answered 304 when the page already shows this very content."""
        board = board_of(request)
        context = {**context, "trace_url": board.settings.trace_url, "can_act": board.can_act}
        body = templates.get_template(name).render(context).encode()
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return Response(body, media_type="text/html; charset=utf-8", headers=headers)

    async def index(request: Request) -> Response:
        context = await _list_context(request)
        context["overview"] = await board_of(request).overview()
        return page(request, "index.html", context)

    async def live_list(request: Request) -> Response:
        return live(request, "_list.html", await _list_context(request))

    async def live_overview(request: Request) -> Response:
        return live(request, "_overview.html", {"overview": await board_of(request).overview()})

    async def _list_context(request: Request) -> dict[str, Any]:
        asked = params.list_request(_multi(request), board_of(request).steps)
        board = board_of(request)
        found = await board.page(asked)
        kept = [(k, v) for k, v in request.query_params.multi_items() if k != "after"]
        return {
            "asked": asked,
            "form": _form_values(request),
            "list_page": found,
            "first_href": "/?" + urlencode(kept) if asked.query.after else None,
            "next_href": (
                "/?" + urlencode([*kept, ("after", found.next_after)]) if found.next_after else None
            ),
            "steps": board_of(request).steps,
            "statuses": [s.value for s in ListedStatus],
            "variants": params.VARIANTS,
            "live_query": request.url.query,
        }

    async def saga_page(request: Request) -> Response:
        return page(request, "saga.html", await _saga_context(request))

    async def live_saga(request: Request) -> Response:
        return live(request, "_saga.html", await _saga_context(request))

    async def _saga_context(request: Request) -> dict[str, Any]:
        variant, saga_id = _saga_path(request)
        detail = await board_of(request).saga(variant, saga_id)
        if detail is None:
            raise HTTPException(404, f"no {variant} saga {saga_id}")
        done = request.query_params.get("done")
        return {
            "detail": detail,
            "scale_s": span_s(detail),
            "done": done if done in ACTIONS else None,
        }

    async def order_page(request: Request) -> Response:
        return page(request, "order.html", await _order_context(request))

    async def live_order(request: Request) -> Response:
        return live(request, "_order.html", await _order_context(request))

    async def _order_context(request: Request) -> dict[str, Any]:
        order_id = params.saga_key(request.path_params["order_id"], "order id")
        wanted = params.one(_multi(request), "saga")
        saga_id = None if wanted is None else params.saga_key(wanted)
        pairs = await board_of(request).order(order_id, saga_id)
        if not any(pairs.values()):
            raise HTTPException(404, f"no saga of order {order_id}")
        return {
            "order_id": order_id,
            "pairs": pairs,
            "scale_s": max(span_s(d) for d in pairs.values()),
        }

    async def act(request: Request) -> Response:
        variant, saga_id = _saga_path(request)
        action = request.path_params["action"]
        if action not in ACTIONS:
            raise HTTPException(404, f"no action {action[:20]!r}; use retry, retry-step or resolve")
        form = await _small_form(request)
        # Who acts is who authenticated: the operator a token names, never the form's say.
        operator = guard.check_post(request, form.get("csrf"), form.get("token"))
        who = operator or params.who(form.get("who"))
        board = board_of(request)
        if action == "retry":
            await board.retry_compensation(variant, saga_id, who)
        elif action == "retry-step":
            await board.retry_step(variant, saga_id, who)
        else:
            await board.resolve(variant, saga_id, who, params.note(form.get("note")))
        return RedirectResponse(f"/sagas/{variant}/{saga_id}?done={action}", status_code=303)

    async def api_sagas(request: Request) -> Response:
        asked = params.list_request(_multi(request), board_of(request).steps)
        found = await board_of(request).page(asked)
        return _json({"sagas": found.rows, "next_after": found.next_after, "errors": found.errors})

    async def api_saga(request: Request) -> Response:
        variant, saga_id = _saga_path(request)
        detail = await board_of(request).saga(variant, saga_id)
        if detail is None:
            raise HTTPException(404, f"no {variant} saga {saga_id}")
        return _json(detail)

    async def api_overview(request: Request) -> Response:
        return _json(await board_of(request).overview())

    async def favicon(request: Request) -> Response:
        """Browsers ask for /favicon.ico whatever the page links: the same icon."""
        return FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml")

    routes = [
        Route("/", index),
        Route("/live/list", live_list),
        Route("/live/overview", live_overview),
        Route("/sagas/{variant}/{saga_id}", saga_page),
        Route("/live/sagas/{variant}/{saga_id}", live_saga),
        Route("/sagas/{variant}/{saga_id}/{action}", act, methods=["POST"]),
        Route("/orders/{order_id}", order_page),
        Route("/live/orders/{order_id}", live_order),
        Route("/api/sagas", api_sagas),
        Route("/api/sagas/{variant}/{saga_id}", api_saga),
        Route("/api/overview", api_overview),
        Route("/favicon.ico", favicon),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    handlers: Mapping[Any, Any] = {
        BadInput: _answer(400),
        WrongHost: _answer(400),
        Refused: _answer(403),
        NoActions: _answer(409),
        NotAwaitingOperator: _answer(409),
        OperatorUnavailable: _answer(503),
        LookupError: _answer(404),
        HTTPException: _http_error,
        Exception: _internal,
    }
    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers=dict(handlers))
    app.add_middleware(_HostCheck, guard=guard)
    app.state.guard = guard
    return app


def _answer(status: int) -> Callable[[Request, Exception], Response]:
    def handler(request: Request, error: Exception) -> Response:
        return _error(request, status, one_line(error))

    return handler


def _http_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, HTTPException)
    return _error(request, error.status_code, str(error.detail))


def _internal(request: Request, error: Exception) -> Response:
    log.error("monitor request %s failed", request.url.path, exc_info=error)
    return _error(request, 500, f"internal error ({type(error).__name__}); see the monitor's log")


def _error(request: Request, status: int, message: str) -> Response:
    """One line: JSON for the API, a plain line for fragments, a small page otherwise."""
    if request.url.path.startswith("/api/"):
        return JSONResponse({"error": message}, status_code=status)
    if request.url.path.startswith("/live/"):
        return Response(message, status_code=status, media_type="text/plain; charset=utf-8")
    body = (
        "<!doctype html><html lang=en><meta charset=utf-8><title>saga monitor: error</title>"
        '<link rel=stylesheet href="/static/monitor.css"><main><p class="error" role="alert">'
        f'{_escape(message)}</p><p><a href="/">back to the list</a></p></main></html>'
    )
    return Response(body, status_code=status, media_type="text/html; charset=utf-8")


def _escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    )


def _multi(request: Request) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for key, value in request.query_params.multi_items():
        found.setdefault(key, []).append(value)
    return found


def _form_values(request: Request) -> dict[str, Any]:
    """The filter form as submitted, to show it filled in (escaped by the template)."""
    multi = _multi(request)
    values: dict[str, Any] = {k: (v[0] if v else "") for k, v in multi.items()}
    values["status"] = [s for v in multi.get("status", []) for s in v.split(",")]
    return values


def _saga_path(request: Request) -> tuple[str, str]:
    variant = params.variant(request.path_params["variant"])
    return variant, params.saga_key(request.path_params["saga_id"])


async def _small_form(request: Request) -> dict[str, str]:
    """An urlencoded form of at most `MAX_FORM_BYTES` (no upload, no multipart)."""
    length = request.headers.get("content-length", "")
    if not length.isdigit() or int(length) > MAX_FORM_BYTES:
        raise HTTPException(413, f"form missing or over {MAX_FORM_BYTES} bytes")
    kind = request.headers.get("content-type", "").split(";")[0].strip()
    if kind != "application/x-www-form-urlencoded":
        raise HTTPException(415, "send the form urlencoded (application/x-www-form-urlencoded)")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise HTTPException(413, f"form over {MAX_FORM_BYTES} bytes")
    try:
        fields = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        raise BadInput("the form is not valid UTF-8 urlencoded text") from None
    return {key: values[0] for key, values in fields.items()}


def _json(value: Any) -> Response:
    return JSONResponse(_plain(value))


def _plain(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if is_dataclass(value) and not isinstance(value, type):
        return {k: _plain(getattr(value, k)) for k in asdict(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


class _HostCheck:
    """Answer only to loopback names when bound to loopback (DNS rebinding)."""

    def __init__(self, app: ASGIApp, guard: Guard) -> None:
        self.app = app
        self.guard = guard

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            request = Request(scope)
            try:
                self.guard.check_host(request)
            except WrongHost as error:
                await _error(request, 400, str(error))(scope, receive, send)
                return
        await self.app(scope, receive, send)
