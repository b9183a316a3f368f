"""Every endpoint, filter and action of the monitor, through Starlette's TestClient (fakes)."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from monitor.security import Guard
from shared.read_model import ActionView, InterventionView, ListedStatus
from shared.runtime import NotAwaitingOperator, UnknownSaga
from tests.unit.monitor.monitor_fakes import (
    FakeOperator,
    FakeReadModel,
    build,
    row,
    stuck_alert,
)

ORCH, CHOR = "orchestration", "choreography"
BASE = "http://127.0.0.1:8000"


def catalogue() -> tuple[FakeReadModel, FakeReadModel]:
    orch = FakeReadModel(
        ORCH,
        [
            row(ORCH, "happy-1-a", ListedStatus.COMPLETED, 50),
            row(ORCH, "ship-1-a", ListedStatus.RUNNING, 5, step="create_shipment"),
            row(
                ORCH,
                "stuck-1-a",
                ListedStatus.NEEDS_INTERVENTION,
                40,
                step="refund_payment",
                reason="shipment_failed",
            ),
        ],
        latencies=[0.2, 0.3, 0.4, 1.0],
    )
    chor = FakeReadModel(
        CHOR,
        [
            row(CHOR, "happy-1-a", ListedStatus.COMPLETED, 45),
            row(CHOR, "slow-1-b", ListedStatus.COMPENSATING, 700, step="refund_payment"),
            row(CHOR, "stuck-1-a", ListedStatus.NEEDS_INTERVENTION, 30, step="refund_payment"),
        ],
    )
    chor.alerts_found = [stuck_alert(chor.rows[1])]
    chor.queue = [
        InterventionView(row=chor.rows[2], failed_compensations=["refund_payment"], since=1)
    ]
    return orch, chor


@pytest.fixture
def fakes() -> tuple[FakeReadModel, FakeReadModel]:
    return catalogue()


@pytest.fixture
def operators() -> dict[str, FakeOperator]:
    return {ORCH: FakeOperator(), CHOR: FakeOperator()}


@pytest.fixture
def client(
    fakes: tuple[FakeReadModel, FakeReadModel], operators: dict[str, FakeOperator]
) -> Iterator[TestClient]:
    with TestClient(build(list(fakes), operators), base_url=BASE) as opened:  # type: ignore[arg-type]
        yield opened


def sagas(client: TestClient, query: str = "") -> list[tuple[str, str]]:
    body = client.get(f"/api/sagas{query}").json()
    return [(s["variant"], s["saga_id"]) for s in body["sagas"]]


def csrf(client: TestClient, path: str) -> str:
    page = client.get(path)
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', page.text)
    assert found, "the page has no action form"
    return found.group(1)


def post(client: TestClient, path: str, data: dict[str, str], **headers: str) -> Any:
    return client.post(path, data=data, headers=headers, follow_redirects=False)


# -- the list --------------------------------------------------------------------------------


def test_the_list_shows_both_styles_open_sagas_first(client: TestClient) -> None:
    listed = sagas(client)

    assert listed[:2] == [(ORCH, "ship-1-a"), (CHOR, "slow-1-b")]
    assert set(listed) == {(v, s) for v in (ORCH, CHOR) for s in ("happy-1-a", "stuck-1-a")} | {
        (ORCH, "ship-1-a"),
        (CHOR, "slow-1-b"),
    }


def test_the_page_lists_every_saga_with_its_style_status_and_step(client: TestClient) -> None:
    page = client.get("/")

    assert page.status_code == 200
    assert page.text.count('data-saga="stuck-1-a"') >= 2
    assert 'data-variant="choreography" data-status="COMPENSATING"' in page.text
    assert "create_shipment" in page.text


def test_filters_by_style_status_step_age_and_id(client: TestClient) -> None:
    assert sagas(client, "?variant=choreography") == [
        (CHOR, "slow-1-b"),
        (CHOR, "stuck-1-a"),
        (CHOR, "happy-1-a"),
    ]
    assert set(sagas(client, "?status=NEEDS_INTERVENTION&status=RUNNING")) == {
        (ORCH, "ship-1-a"),
        (ORCH, "stuck-1-a"),
        (CHOR, "stuck-1-a"),
    }
    assert sagas(client, "?status=COMPLETED,COMPENSATING&variant=choreography") == [
        (CHOR, "slow-1-b"),
        (CHOR, "happy-1-a"),
    ]
    assert set(sagas(client, "?step=refund_payment")) == {
        (ORCH, "stuck-1-a"),
        (CHOR, "slow-1-b"),
        (CHOR, "stuck-1-a"),
    }
    assert sagas(client, "?min_age=10m") == [(CHOR, "slow-1-b")]
    assert set(sagas(client, "?max_age=35s")) == {(ORCH, "ship-1-a"), (CHOR, "stuck-1-a")}
    assert set(sagas(client, "?q=stuck-1")) == {(ORCH, "stuck-1-a"), (CHOR, "stuck-1-a")}
    assert set(sagas(client, "?q=happy-1-a")) == {(ORCH, "happy-1-a"), (CHOR, "happy-1-a")}


def test_filters_reach_each_read_api_as_one_query(
    client: TestClient, fakes: tuple[FakeReadModel, FakeReadModel]
) -> None:
    client.get("/api/sagas?status=RUNNING&step=charge_payment&min_age=90&max_age=2h&q=o-1")

    asked = fakes[0].queries[-1]
    assert asked.statuses == (ListedStatus.RUNNING,)
    assert (asked.step, asked.min_age_s, asked.max_age_s, asked.search) == (
        "charge_payment",
        90.0,
        7200.0,
        "o-1",
    )


def test_pages_follow_each_other_without_gaps_or_repeats(client: TestClient) -> None:
    seen: list[tuple[str, str]] = []
    after = ""
    for _ in range(10):
        body = client.get(f"/api/sagas?limit=2{after}").json()
        seen += [(s["variant"], s["saga_id"]) for s in body["sagas"]]
        if body["next_after"] is None:
            break
        after = f"&after={body['next_after']}"
    assert seen == sagas(client)
    assert len(seen) == 6


def test_the_page_links_to_the_next_page_keeping_the_filters(client: TestClient) -> None:
    page = client.get("/?limit=2&variant=choreography")

    link = re.search(r'rel="next" href="([^"]+)"', page.text)
    assert link is not None
    following = client.get(link.group(1).replace("&amp;", "&"))
    assert following.status_code == 200
    assert 'data-saga="happy-1-a"' in following.text
    assert (
        'data-variant="orchestration"' not in following.text.split('<table class="grid sagas"')[1]
    )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("status=BOGUS", "status 'BOGUS' is unknown"),
        ("step=drop_tables", "step 'drop_tables' is unknown"),
        ("min_age=soon", "min_age 'soon' is not a duration"),
        ("max_age=99999999", "max_age '99999999' is not a duration"),
        ("min_age=2h&max_age=1m", "min_age is larger than max_age"),
        ("limit=0", "limit '0' is out of range"),
        ("limit=201", "limit '201' is out of range"),
        ("after=yesterday", "after 'yesterday' is not a page cursor"),
        ("variant=both", "variant 'both' is unknown"),
        ("q=a%22%20OR%201%3D1", "search 'a\" OR 1=1' is invalid"),
        ("q=x&q=y", "q is given 2 times"),
    ],
)
def test_a_bad_filter_is_a_400_with_one_line(client: TestClient, query: str, message: str) -> None:
    for path in ("/api/sagas", "/", "/live/list"):
        answer = client.get(f"{path}?{query}")
        assert answer.status_code == 400, path
        shown = answer.json()["error"] if path == "/api/sagas" else html.unescape(answer.text)
        assert message in shown, path
        assert "Traceback" not in answer.text
    assert client.get(f"/api/sagas?{query}").json()["error"].count("\n") == 0


# -- one saga, an order's two sagas ---------------------------------------------------------------


def test_a_saga_page_shows_its_steps_raw_record_and_trace_link(client: TestClient) -> None:
    page = client.get("/sagas/choreography/happy-1-a")

    assert page.status_code == 200
    assert 'data-step="reserve_inventory"' in page.text
    assert "http://traces.example/trace/" + "ab" * 16 in page.text
    assert "&lt;b&gt;x&lt;/b&gt;" in page.text  # the raw record is escaped, never markup
    assert client.get("/api/sagas/choreography/happy-1-a").json()["trace_id"] == "ab" * 16


def test_an_unknown_saga_is_a_404_and_a_bad_path_a_400(client: TestClient) -> None:
    assert client.get("/sagas/orchestration/no-such-saga").status_code == 404
    assert client.get("/api/sagas/orchestration/no-such-saga").json() == {
        "error": "no orchestration saga no-such-saga"
    }
    assert client.get("/sagas/kafka/x").status_code == 400
    assert client.get("/sagas/orchestration/a.b").status_code == 400
    assert client.get("/live/sagas/orchestration/" + "x" * 65).status_code == 400


def test_an_order_shows_both_styles_sagas_side_by_side(client: TestClient) -> None:
    page = client.get("/orders/happy-1?saga=happy-1-a")

    assert page.status_code == 200
    assert 'class="side" data-variant="orchestration"' in page.text
    assert 'class="side" data-variant="choreography"' in page.text
    assert page.text.count('aria-label="orchestration step timeline"') == 1
    assert page.text.count('aria-label="choreography step timeline"') == 1


def test_an_order_that_ran_on_one_style_says_so_for_the_other(client: TestClient) -> None:
    page = client.get("/orders/ship-1")

    assert page.status_code == 200
    assert "This order did not run on choreography." in page.text
    assert client.get("/orders/nothing-here").status_code == 404
    assert client.get("/orders/bad%20id").status_code == 400


# -- overview: alerts, queue, counters ------------------------------------------------------------


def test_the_overview_lists_stuck_sagas_the_queue_and_counters(client: TestClient) -> None:
    body = client.get("/api/overview").json()

    assert [a["row"]["saga_id"] for a in body["alerts"]] == ["slow-1-b"]
    assert body["alerts"][0]["kinds"] == ["no_progress", "deadline_passed"]
    assert [i["row"]["saga_id"] for i in body["interventions"]] == ["stuck-1-a"]
    orch = next(c for c in body["counters"] if c["variant"] == ORCH)
    assert orch["in_flight"] == 1
    assert orch["per_minute"]["COMPLETED"] == 3
    assert (orch["p50_s"], orch["p95_s"]) == (0.3, 1.0)


def test_the_page_puts_alerts_and_the_queue_above_the_list(client: TestClient) -> None:
    text = client.get("/").text

    assert text.index('class="alerts"') < text.index('class="queue"') < text.index('class="list"')
    assert "no progress" in text and "deadline passed" in text


def test_a_live_fragment_is_not_sent_again_when_unchanged(client: TestClient) -> None:
    first = client.get("/live/overview")
    again = client.get("/live/overview", headers={"If-None-Match": first.headers["etag"]})

    assert first.status_code == 200 and "Stuck sagas" in first.text
    assert again.status_code == 304 and again.text == ""


def test_a_style_that_cannot_be_read_is_one_line_beside_the_other(
    fakes: tuple[FakeReadModel, FakeReadModel],
) -> None:
    fakes[0].broken = True
    with TestClient(build(list(fakes)), base_url=BASE) as client:  # type: ignore[arg-type]
        page = client.get("/")

    assert page.status_code == 200
    assert "cannot read orchestration: engine unreachable at 127.0.0.1:1" in page.text
    assert 'data-variant="choreography" data-status="COMPENSATING"' in page.text


def test_an_unexpected_failure_is_a_500_with_one_line_and_no_traceback(
    fakes: tuple[FakeReadModel, FakeReadModel],
) -> None:
    async def explode(saga_id: str) -> None:
        raise ZeroDivisionError("boom")

    fakes[1].saga = explode  # type: ignore[method-assign]
    with TestClient(build(list(fakes)), base_url=BASE, raise_server_exceptions=False) as client:  # type: ignore[arg-type]
        answer = client.get("/sagas/choreography/happy-1-a")

    assert answer.status_code == 500
    assert "internal error (ZeroDivisionError)" in answer.text
    assert "Traceback" not in answer.text and "boom" not in answer.text


# -- operator actions and their safety ------------------------------------------------------------


def test_retry_compensation_reaches_the_style_s_runtime(
    client: TestClient, operators: dict[str, FakeOperator]
) -> None:
    path = "/sagas/choreography/stuck-1-a"
    answer = post(client, f"{path}/retry", {"csrf": csrf(client, path), "who": "ann"})

    assert answer.status_code == 303
    assert answer.headers["location"] == f"{path}?done=retry"
    assert operators[CHOR].calls == [("retry", "stuck-1-a", "ann")]
    assert operators[ORCH].calls == []
    assert "recorded" in client.get(answer.headers["location"]).text


def test_retry_step_reaches_the_style_s_runtime(
    client: TestClient, operators: dict[str, FakeOperator]
) -> None:
    path = "/sagas/orchestration/stuck-1-a"
    answer = post(client, f"{path}/retry-step", {"csrf": csrf(client, path), "who": "ann"})

    assert answer.status_code == 303
    assert answer.headers["location"] == f"{path}?done=retry-step"
    assert operators[ORCH].calls == [("retry_step", "stuck-1-a", "ann")]
    assert operators[CHOR].calls == []
    assert "retry of the failed step recorded" in client.get(answer.headers["location"]).text


def forms(page: str) -> list[str]:
    """The operator actions a page offers: the last part of each form's action."""
    return re.findall(r'<form method="post" action="/sagas/[^"]+/([a-z-]+)"', page)


def test_a_waiting_saga_is_offered_only_the_retry_that_applies(
    fakes: tuple[FakeReadModel, FakeReadModel], operators: dict[str, FakeOperator]
) -> None:
    fakes[0].failures["stuck-1-a"] = {
        "failed_step": "create_shipment",
        "failed_compensations": ["refund_payment"],
    }
    fakes[1].failures["stuck-1-a"] = {"failed_step": "complete_order"}
    with TestClient(build(list(fakes), operators), base_url=BASE) as client:  # type: ignore[arg-type]
        compensation = client.get("/sagas/orchestration/stuck-1-a").text
        past_pivot = client.get("/sagas/choreography/stuck-1-a").text

    assert forms(compensation) == ["retry", "resolve"]
    assert forms(past_pivot) == ["retry-step", "resolve"]
    assert "retry complete_order" in past_pivot
    assert "retry compensation" not in past_pivot


def test_resolve_records_who_and_the_note(
    client: TestClient, operators: dict[str, FakeOperator]
) -> None:
    path = "/sagas/orchestration/stuck-1-a"
    data = {"csrf": csrf(client, path), "who": "bo", "note": "refunded by hand <ok>"}

    assert post(client, f"{path}/resolve", data).status_code == 303
    assert operators[ORCH].calls == [("resolve", "stuck-1-a", "bo", "refunded by hand <ok>")]


@pytest.mark.parametrize(
    ("data", "status", "message"),
    [
        ({"who": "ann"}, 403, "missing or stale form token"),
        ({"who": "ann", "csrf": "0" * 64}, 403, "missing or stale form token"),
        ({"who": "", "csrf": "TOKEN"}, 400, "who: give your name"),
        ({"who": "<script>", "csrf": "TOKEN"}, 400, "who: give your name"),
    ],
)
def test_an_action_without_a_valid_form_is_refused(
    client: TestClient,
    operators: dict[str, FakeOperator],
    data: dict[str, str],
    status: int,
    message: str,
) -> None:
    path = "/sagas/choreography/stuck-1-a"
    token = csrf(client, path)
    data = {k: token if v == "TOKEN" else v for k, v in data.items()}

    answer = post(client, f"{path}/retry", data)

    assert answer.status_code == status
    assert message in answer.text
    assert operators[CHOR].calls == []


def test_resolve_needs_a_note_of_sane_length(
    client: TestClient, operators: dict[str, FakeOperator]
) -> None:
    path = "/sagas/choreography/stuck-1-a"
    token = csrf(client, path)

    for note, message in (("", "say what was done"), ("x" * 501, "keep it to 500")):
        answer = post(client, f"{path}/resolve", {"csrf": token, "who": "ann", "note": note})
        assert answer.status_code == 400 and message in answer.text
    answer = post(client, f"{path}/resolve", {"csrf": token, "who": "ann", "note": "a\x00b"})
    assert answer.status_code == 400
    assert operators[CHOR].calls == []


@pytest.mark.parametrize(
    ("refusal", "status", "message"),
    [
        (
            NotAwaitingOperator("stuck-1-a", "resolved"),
            409,
            "saga stuck-1-a does not wait for an operator (it is resolved)",
        ),
        (UnknownSaga("stuck-1-a"), 404, "unknown saga 'stuck-1-a'"),
    ],
)
def test_an_action_the_runtime_refuses_is_a_4xx_with_one_line(
    client: TestClient,
    operators: dict[str, FakeOperator],
    refusal: Exception,
    status: int,
    message: str,
) -> None:
    """Another operator acted first, or the saga is gone: the runtime says so, in one line."""
    path = "/sagas/orchestration/stuck-1-a"
    operators[ORCH].refusal = refusal
    token = csrf(client, path)

    retry = post(client, f"{path}/retry", {"csrf": token, "who": "ann"})
    resolve = post(client, f"{path}/resolve", {"csrf": token, "who": "ann", "note": "done"})

    for answer in (retry, resolve):
        assert answer.status_code == status
        assert message in answer.text
        assert "Traceback" not in answer.text
        assert len(html.unescape(re.sub(r"<[^>]+>", "\n", answer.text)).split(message)) == 2


def test_the_saga_page_shows_recorded_actions_and_offers_none_once_resolved(
    fakes: tuple[FakeReadModel, FakeReadModel], operators: dict[str, FakeOperator]
) -> None:
    orch = fakes[0]
    orch.actions["stuck-1-a"] = [
        ActionView(action="retry_compensation", who="ann", at=1.0, result="still_failing"),
        ActionView(
            action="resolve", who="bo", at=2.0, note="refunded <by hand>", result="resolved"
        ),
    ]
    with TestClient(build(list(fakes), operators), base_url=BASE) as client:  # type: ignore[arg-type]
        page = client.get("/sagas/orchestration/stuck-1-a").text
        waiting = client.get("/sagas/choreography/stuck-1-a").text

    assert re.findall(r'<td class="result">([a-z_]+)</td>', page) == ["still_failing", "resolved"]
    assert "refunded &lt;by hand&gt;" in page
    assert 'name="csrf"' not in page and 'data-waiting="no"' in page
    assert 'name="csrf"' in waiting and 'data-waiting="yes"' in waiting


def test_a_cross_site_post_is_refused(
    client: TestClient, operators: dict[str, FakeOperator]
) -> None:
    path = "/sagas/choreography/stuck-1-a"
    data = {"csrf": csrf(client, path), "who": "ann"}

    cross = post(client, f"{path}/retry", data, **{"Sec-Fetch-Site": "cross-site"})
    other = post(client, f"{path}/retry", data, Origin="http://evil.example")

    assert (cross.status_code, other.status_code) == (403, 403)
    assert "cross-site request refused" in cross.text
    assert "another origin" in other.text
    assert post(client, f"{path}/retry", data, Origin=BASE).status_code == 303
    assert len(operators[CHOR].calls) == 1


def test_an_action_on_a_style_without_operator_methods_is_a_409(
    fakes: tuple[FakeReadModel, FakeReadModel],
) -> None:
    with TestClient(build(list(fakes), {}), base_url=BASE) as client:  # type: ignore[arg-type]
        path = "/sagas/orchestration/stuck-1-a"
        assert "not available here" in client.get(path).text
        answer = post(client, f"{path}/retry", {"csrf": _csrf_from_cookie(client), "who": "ann"})

    assert answer.status_code == 409
    assert "operator actions are not available for orchestration" in answer.text


def _csrf_from_cookie(client: TestClient) -> str:
    # The page hides the forms when no action is possible; the token is still the session's.
    guard: Guard = client.app.state.guard  # type: ignore[attr-defined]
    return guard.csrf_for(client.cookies["saga_monitor_session"])


def test_beyond_loopback_actions_need_the_operator_token(
    fakes: tuple[FakeReadModel, FakeReadModel], operators: dict[str, FakeOperator]
) -> None:
    guard = Guard(loopback=False, token="s3cret-token-of-16+")
    app = build(list(fakes), operators, guard)
    with TestClient(app, base_url="http://monitor.example") as client:  # type: ignore[arg-type]
        path = "/sagas/choreography/stuck-1-a"
        token = csrf(client, path)
        without = post(client, f"{path}/retry", {"csrf": token, "who": "ann"})
        wrong = post(client, f"{path}/retry", {"csrf": token, "who": "ann", "token": "nope"})
        form = post(
            client, f"{path}/retry", {"csrf": token, "who": "ann", "token": guard.token or ""}
        )
        bearer = post(
            client,
            f"{path}/retry",
            {"csrf": token, "who": "ann"},
            Authorization=f"Bearer {guard.token}",
        )

    assert (without.status_code, wrong.status_code) == (403, 403)
    assert "operator token missing or wrong" in wrong.text
    assert (form.status_code, bearer.status_code) == (303, 303)
    assert len(operators[CHOR].calls) == 2


def test_beyond_loopback_without_a_token_the_monitor_is_read_only(
    fakes: tuple[FakeReadModel, FakeReadModel], operators: dict[str, FakeOperator]
) -> None:
    app = build(list(fakes), operators, Guard(loopback=False))
    with TestClient(app, base_url="http://monitor.example") as client:  # type: ignore[arg-type]
        path = "/sagas/choreography/stuck-1-a"
        page = client.get(path)
        answer = post(client, f"{path}/retry", {"csrf": _csrf_from_cookie(client), "who": "ann"})

    assert "read-only" in page.text and 'name="csrf"' not in page.text
    assert answer.status_code == 403 and "read-only" in answer.text
    assert operators[CHOR].calls == []


def test_on_loopback_another_host_name_is_refused(client: TestClient) -> None:
    answer = client.get("/", headers={"Host": "rebound.example"})

    assert answer.status_code == 400
    assert "is not this monitor" in answer.text
    assert client.get("/", headers={"Host": "localhost:8000"}).status_code == 200


@pytest.mark.parametrize("host", ["127.0.0.2:8765", "127.1.2.3", "[::1]:8765"])
def test_on_loopback_any_loopback_address_is_this_monitor(client: TestClient, host: str) -> None:
    assert client.get("/api/overview", headers={"Host": host}).status_code == 200


@pytest.mark.parametrize("host", ["10.0.0.1", "127.0.0.1.rebound.example", "0.0.0.0"])
def test_on_loopback_an_address_beyond_loopback_is_refused(client: TestClient, host: str) -> None:
    assert client.get("/api/overview", headers={"Host": host}).status_code == 400


def test_an_oversized_or_unknown_action_is_refused(client: TestClient) -> None:
    path = "/sagas/choreography/stuck-1-a"
    data = {"csrf": csrf(client, path), "who": "ann", "note": "x" * 20_000}

    assert post(client, f"{path}/resolve", data).status_code == 413
    assert post(client, f"{path}/delete", {"csrf": "x", "who": "a"}).status_code == 404
    assert client.get(f"{path}/retry").status_code == 405


def test_static_files_are_served_from_the_package(client: TestClient) -> None:
    script = client.get("/static/monitor.js")

    assert script.status_code == 200
    assert "data-live" in script.text
    assert client.get("/static/monitor.css").status_code == 200


def test_beyond_loopback_an_action_is_recorded_as_the_operator_the_token_names(
    fakes: tuple[FakeReadModel, FakeReadModel], operators: dict[str, FakeOperator]
) -> None:
    """Who acted comes from the authenticated request, never from what the form says."""
    guard = Guard(loopback=False, token="s3cret-token-of-16+")
    app = build(list(fakes), operators, guard)
    with TestClient(app, base_url="http://monitor.example") as client:  # type: ignore[arg-type]
        path = "/sagas/choreography/stuck-1-a"
        token = csrf(client, path)
        answer = post(
            client, f"{path}/retry", {"csrf": token, "who": "mallory", "token": guard.token or ""}
        )

    assert answer.status_code == 303
    assert operators[CHOR].calls == [("retry", "stuck-1-a", "operator")]


def test_each_operator_token_names_its_own_operator(
    fakes: tuple[FakeReadModel, FakeReadModel], operators: dict[str, FakeOperator]
) -> None:
    guard = Guard(
        loopback=False, operators={"ann": "ann-token-0123456789", "bo": "bo-token-0123456789"}
    )
    app = build(list(fakes), operators, guard)
    with TestClient(app, base_url="http://monitor.example") as client:  # type: ignore[arg-type]
        path = "/sagas/choreography/stuck-1-a"
        token = csrf(client, path)
        post(client, f"{path}/retry", {"csrf": token}, Authorization="Bearer bo-token-0123456789")
        data = {"csrf": token, "who": "ann", "note": "done", "token": "ann-token-0123456789"}
        post(client, f"{path}/resolve", data)
        page = client.get(path).text

    assert operators[CHOR].calls == [
        ("retry", "stuck-1-a", "bo"),
        ("resolve", "stuck-1-a", "ann", "done"),
    ]
    assert 'name="who"' not in page  # beyond loopback the token says who you are
