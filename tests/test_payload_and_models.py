"""Unit tests of the layer below the network: payload checks, jobs, endpoints, config."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.api.errors import PayloadError
from tui.api.models import (
    TERMINAL_STATUSES,
    Endpoint,
    EndpointKind,
    Job,
    Route,
    decode_error,
    guess_kind,
)
from tui.api.payload import LIMITS, MB, check_size, parse_input, parse_json
from tui.config import Config, ConfigError, load_config, save_config

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FOUR_TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}

# --- payload ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{\n  "a": 1,\n  "b": \n}',
        '{"a": 1,}',
        "{'a': 1}",
        '{\n  "a": 1\n  "b": 2\n}',
        '{"a": [1, 2}',
        "{\n\n\n   nope",
    ],
)
def test_invalid_json_reports_line_and_column(text: str) -> None:
    with pytest.raises(json.JSONDecodeError) as expected:
        json.loads(text)
    with pytest.raises(PayloadError) as info:
        parse_json(text)
    err = info.value
    assert (err.line, err.column) == (expected.value.lineno, expected.value.colno)
    message = str(err)
    assert "line" in message and "column" in message
    assert f"line {expected.value.lineno}" in message
    assert f"column {expected.value.colno}" in message
    assert err.exit_code == 2


def test_invalid_json_example_position() -> None:
    with pytest.raises(PayloadError) as info:
        parse_input('{\n  "a": 1,\n  "b": \n}')
    assert (info.value.line, info.value.column) == (4, 1)


@pytest.mark.parametrize("text", ["", "   ", "\n\t\n"])
def test_empty_text(text: str) -> None:
    with pytest.raises(PayloadError) as info:
        parse_json(text)
    assert "empty" in str(info.value)
    with pytest.raises(PayloadError):
        parse_input(text)


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("[1, 2]", "array"),
        ("[]", "array"),
        ('"hello"', "string"),
        ("42", "number"),
        ("4.5", "number"),
        ("null", "null"),
        ("true", "boolean"),
    ],
)
def test_non_object_input_names_what_it_got(text: str, named: str) -> None:
    assert parse_json(text) == json.loads(text)  # fine as JSON ...
    with pytest.raises(PayloadError) as info:
        parse_input(text)  # ... but not as a job's input
    message = str(info.value)
    assert "object" in message
    assert named in message


def test_empty_object_is_refused_saying_runpod_strips_it() -> None:
    with pytest.raises(PayloadError) as info:
        parse_input(" { } ")
    message = str(info.value)
    assert "empty" in message
    assert "strips" in message
    assert "Runpod" in message


def test_parse_input_accepts_an_object() -> None:
    assert parse_input('{"prompt": "hi", "n": [1, {"x": null}]}') == {
        "prompt": "hi",
        "n": [1, {"x": None}],
    }


def test_deeply_nested_json_is_a_payload_error() -> None:
    with pytest.raises(PayloadError):
        parse_json("[" * 200_000 + "]" * 200_000)


@pytest.mark.parametrize(("route", "megabytes"), [("run", 10), ("runsync", 20), ("lb", 30)])
def test_check_size_limits(route: str, megabytes: int) -> None:
    limit = megabytes * MB
    assert LIMITS[route] == limit
    check_size(b"x" * (limit - 1), route)  # just under
    check_size(b"x" * limit, route)  # at the limit
    with pytest.raises(PayloadError) as info:
        check_size(b"x" * (limit + 1), route)
    message = str(info.value)
    assert f"{megabytes} MB" in message
    assert "limit" in message
    if route != "lb":
        assert f"/{route}" in message


# --- Job.apply ----------------------------------------------------------------------------


def new_job() -> Job:
    return Job(endpoint="ep", id="job-1", submitted_at=0.0, updated_at=0.0)


def test_apply_keeps_unknown_fields_and_reports_changes() -> None:
    job = new_job()
    changed = job.apply(
        {"id": "job-1", "status": "IN_PROGRESS", "output": {"p": 0.5}, "custom": [1, 2]},
        now=10.0,
    )
    # Unknown fields count as a change too ("raw"), so a detail view refreshes for them.
    assert changed == {"status", "output", "raw"}
    assert job.raw["custom"] == [1, 2]
    assert job.raw["id"] == "job-1"
    assert job.status == "IN_PROGRESS"
    assert job.output == {"p": 0.5}
    assert job.updated_at == 10.0
    assert not job.is_terminal
    assert job.ended_at is None
    # The same answer again changes nothing.
    assert job.apply({"id": "job-1", "status": "IN_PROGRESS", "output": {"p": 0.5}}) == set()
    # A later answer keeps the unknown field it did not repeat.
    job.apply({"status": "IN_PROGRESS", "extra": True})
    assert job.raw["custom"] == [1, 2] and job.raw["extra"] is True


def test_apply_does_not_adopt_another_id() -> None:
    job = new_job()
    job.apply({"id": "someone-else", "status": "IN_PROGRESS"})
    assert job.id == "job-1"
    assert "id" not in job.raw
    assert job.status == "IN_PROGRESS"


@pytest.mark.parametrize("status", ["RUNNING", "WEIRD", "in_progress", "", "completed"])
def test_unknown_status_is_not_terminal_and_shown_as_it_came(status: str) -> None:
    job = new_job()
    job.apply({"status": status})
    assert job.status == status
    assert not job.is_terminal
    assert not job.is_final
    assert job.ended_at is None


@pytest.mark.parametrize("status", sorted(FOUR_TERMINAL))
def test_terminal_status_sets_ended_at(status: str) -> None:
    job = new_job()
    job.apply({"status": "IN_PROGRESS"}, now=5.0)
    assert job.ended_at is None
    changed = job.apply({"status": status}, now=7.0)
    assert "ended_at" in changed
    assert job.is_terminal and job.is_final
    assert job.ended_at == 7.0
    # A later answer does not move the end.
    job.apply({"status": status, "note": "again"}, now=9.0)
    assert job.ended_at == 7.0


def test_terminal_statuses_constant() -> None:
    assert set(TERMINAL_STATUSES) == FOUR_TERMINAL


def test_retry_clears_the_old_result() -> None:
    job = new_job()
    job.apply({"status": "FAILED", "error": "boom", "output": {"partial": 1}}, now=3.0)
    assert job.ended_at == 3.0 and job.error == "boom"
    changed = job.apply({"id": "job-1", "status": "IN_QUEUE", "retries": 1}, now=4.0)
    assert {"status", "output", "error", "retries"} <= changed
    assert job.status == "IN_QUEUE"
    assert job.output is None and job.error is None
    assert "output" not in job.raw and "error" not in job.raw
    assert job.ended_at is None
    assert job.retries == 1
    assert not job.is_terminal
    job.apply({"status": "COMPLETED", "output": "ok"}, now=6.0)
    assert job.ended_at == 6.0 and job.output == "ok" and job.error is None


def test_missing_fields_are_fine() -> None:
    job = new_job()
    assert job.apply({}) == set()
    assert job.status == "IN_QUEUE"
    job.apply({"status": "COMPLETED"})
    assert job.is_terminal
    assert job.output is None and job.error is None
    assert job.delay_ms is None and job.execution_ms is None
    assert job.worker_id is None and job.retries is None
    assert job.worker_error is None


def test_wrong_types_do_not_crash() -> None:
    job = new_job()
    job.apply(
        {
            "status": "COMPLETED",
            "delayTime": "123",
            "executionTime": True,
            "workerId": 42,
            "retries": "2",
            "error": {"not": "a string"},
        }
    )
    assert job.delay_ms is None
    assert job.execution_ms is None
    assert job.worker_id == "42"
    assert job.retries is None
    assert job.raw["delayTime"] == "123"  # kept as it came
    assert job.worker_error is None
    job.apply({"delayTime": 12, "executionTime": 3.5, "retries": 0})
    assert job.delay_ms == 12.0 and job.execution_ms == 3.5 and job.retries == 0


def test_non_string_status_is_shown_as_text() -> None:
    job = new_job()
    job.apply({"status": 3})
    assert job.status == "3"
    assert not job.is_terminal


def test_decode_error_worker_sdk_format() -> None:
    text = json.dumps(
        {
            "error_type": "<class 'ValueError'>",
            "error_message": "bad",
            "error_traceback": "Traceback (most recent call last):\n...",
            "hostname": "w1",
        }
    )
    err = decode_error(text)
    assert err is not None
    assert err.type == "<class 'ValueError'>"
    assert err.message == "bad"
    assert err.traceback.startswith("Traceback")
    assert err.extra == {"hostname": "w1"}
    assert decode_error("plain words") is None
    assert decode_error('{"other": 1}') is None
    assert decode_error("{not json") is None
    assert decode_error(None) is None
    assert decode_error({"error_message": "m"}) is not None


# --- properties ---------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**18), max_value=10**18)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=15,
)
ANSWER_KEYS = [
    "id",
    "status",
    "output",
    "error",
    "delayTime",
    "executionTime",
    "workerId",
    "retries",
    "stream",
]
statuses = (
    st.sampled_from(["IN_QUEUE", "IN_PROGRESS", "RUNNING", "WEIRD", *sorted(FOUR_TERMINAL)])
    | json_values
)
answers = st.dictionaries(
    st.sampled_from(ANSWER_KEYS) | st.text(max_size=10),
    json_values,
    max_size=8,
).flatmap(
    lambda d: st.one_of(
        st.just(d),
        statuses.map(lambda s: {**d, "status": s}),
        st.just({**d, "id": "job-1"}),
    )
)


@settings(max_examples=300, deadline=None)
@given(answers)
def test_apply_never_raises_and_keeps_every_key(answer: dict[str, Any]) -> None:
    job = new_job()
    job.apply(answer, now=1.0)
    for key, value in answer.items():
        if key == "id" and value != job.id:
            assert "id" not in job.raw
            continue
        assert key in job.raw
        assert job.raw[key] == value
    status = answer.get("status")
    expected = "IN_QUEUE" if status is None else str(status)
    assert job.status == expected
    assert job.is_terminal == (expected in FOUR_TERMINAL)
    assert (job.ended_at is not None) == (expected in TERMINAL_STATUSES)


@settings(max_examples=100, deadline=None)
@given(st.lists(answers, max_size=6))
def test_apply_sequences_never_raise(sequence: list[dict[str, Any]]) -> None:
    job = new_job()
    for i, answer in enumerate(sequence):
        job.apply(answer, now=float(i))
        assert job.is_terminal == (job.status in FOUR_TERMINAL)
        if job.is_final:
            assert job.ended_at is not None
        _ = job.worker_error


@settings(max_examples=300, deadline=None)
@given(
    st.text()
    | json_values
    | json_values.map(json.dumps)
    | st.dictionaries(
        st.sampled_from(["error_type", "error_message", "error_traceback", "x"]),
        json_values,
    ).flatmap(lambda d: st.sampled_from([d, json.dumps(d), " " + json.dumps(d) + "\n"]))
)
def test_decode_error_never_raises(value: Any) -> None:
    err = decode_error(value)
    if err is not None:
        assert isinstance(err.type, str)
        assert isinstance(err.message, str)
        assert isinstance(err.traceback, str)


def test_decode_error_deeply_nested_string() -> None:
    assert decode_error('{"a":' * 100_000) is None


# --- endpoints ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind", "endpoint_id"),
    [
        ("https://api.runpod.ai/v2/abc123", EndpointKind.QUEUE, "abc123"),
        ("https://api.runpod.ai/v2/abc123/", EndpointKind.QUEUE, "abc123"),
        ("https://abc123.api.runpod.ai", EndpointKind.LB, "abc123"),
        ("https://abc123.api.runpod.ai/", EndpointKind.LB, "abc123"),
        ("http://127.0.0.1:8787/lb/api", EndpointKind.LB, "api"),
        ("http://127.0.0.1:8787/v2/echo", EndpointKind.QUEUE, "echo"),
        ("http://localhost:8000", None, None),
        ("http://localhost:8000/", None, None),
        ("not a url", None, None),
    ],
)
def test_guess_kind_and_endpoint_id(
    url: str, kind: EndpointKind | None, endpoint_id: str | None
) -> None:
    assert guess_kind(url) == kind
    if kind is not None:
        assert Endpoint(name="n", kind=kind, url=url).endpoint_id == endpoint_id


def test_endpoint_id_of_a_local_worker_is_its_name() -> None:
    endpoint = Endpoint(name="dev", kind=EndpointKind.WORKER, url="http://localhost:8000/")
    assert endpoint.url == "http://localhost:8000"
    assert endpoint.endpoint_id == "dev"


@pytest.mark.parametrize(
    ("url", "allow_insecure", "safe"),
    [
        ("https://api.runpod.ai/v2/abc", False, True),
        ("https://10.0.0.5/v2/abc", False, True),
        ("http://127.0.0.1:8787/v2/echo", False, True),
        ("http://127.5.6.7:8787/v2/echo", False, True),
        ("http://localhost:8787/v2/echo", False, True),
        ("http://[::1]:8787/v2/echo", False, True),
        ("http://10.0.0.5:8787/v2/echo", False, False),
        ("http://10.0.0.5:8787/v2/echo", True, True),
        ("http://example.com/v2/echo", False, False),
        ("http://localhost.example.com/v2/echo", False, False),
    ],
)
def test_key_is_safe_to_send(url: str, allow_insecure: bool, safe: bool) -> None:
    endpoint = Endpoint(name="n", kind=EndpointKind.QUEUE, url=url, allow_insecure=allow_insecure)
    assert endpoint.key_is_safe_to_send is safe


# --- config -------------------------------------------------------------------------------


def test_load_missing_config(tmp_path: Path) -> None:
    config = load_config(tmp_path / "nowhere" / "config.toml")
    assert config.endpoints == []
    assert config.error is None


def test_broken_config_is_reported_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    original = b'[[endpoints]]\nname = "a"\nurl = "https://api.runpod.ai/v2/abc"\nkind = \n'
    path.write_bytes(original)
    config = load_config(path)
    assert config.error is not None
    assert str(path) in config.error
    assert "line 4" in config.error
    assert config.endpoints == []
    config.endpoints.append(
        Endpoint(name="new", kind=EndpointKind.QUEUE, url="https://api.runpod.ai/v2/new")
    )
    with pytest.raises(ConfigError) as info:
        save_config(config)
    assert str(path) in str(info.value)
    assert path.read_bytes() == original
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # no temp file left


def test_invalid_endpoint_in_config_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    original = b'[[endpoints]]\nname = "a"\nurl = "ftp://x"\n'
    path.write_bytes(original)
    config = load_config(path)
    assert config.error is not None and "url" in config.error
    with pytest.raises(ConfigError):
        save_config(config)
    assert path.read_bytes() == original


def sample_endpoints() -> list[Endpoint]:
    return [
        Endpoint(
            name="queue-one",
            kind=EndpointKind.QUEUE,
            url="https://api.runpod.ai/v2/abc123",
            example_input={"prompt": "héllo", "n": [1, 2.5, True], "deep": {"k": "v"}},
        ),
        Endpoint(
            name="api",
            kind=EndpointKind.LB,
            url="https://abc123.api.runpod.ai",
            routes=[
                Route("POST", "/echo", {"message": "hi"}, "Echo it"),
                Route("GET", "/ping"),
            ],
        ),
        Endpoint(
            name="dev",
            kind=EndpointKind.WORKER,
            url="http://localhost:8000",
            allow_insecure=True,
        ),
    ]


def test_config_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.toml"
    config = Config(
        path=path,
        endpoints=sample_endpoints(),
        drafts={"queue-one": '{"prompt": "draft"}', "gone": "{}"},
        theme="nord",
    )
    save_config(config)
    loaded = load_config(path)
    assert loaded.error is None
    assert loaded.endpoints == sample_endpoints()
    assert [e.routes for e in loaded.endpoints] == [e.routes for e in sample_endpoints()]
    assert loaded.endpoints[0].example_input == sample_endpoints()[0].example_input
    assert loaded.drafts == {"queue-one": '{"prompt": "draft"}'}
    assert loaded.theme == "nord"
    # Saving what was loaded gives the same bytes.
    before = path.read_bytes()
    save_config(loaded)
    assert path.read_bytes() == before


def test_saved_config_is_private(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("")
    path.chmod(0o644)
    config = load_config(path)
    config.endpoints = sample_endpoints()
    save_config(config)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_env_key_is_never_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "rpa_TESTSECRET_0123456789"
    sandbox_secret = "sandbox-only-secret"
    monkeypatch.setenv("RUNPOD_API_KEY", secret)
    path = tmp_path / "config.toml"
    config = load_config(path)
    assert config.key() == secret
    assert config.key_source() == "$RUNPOD_API_KEY"
    config.endpoints = sample_endpoints()
    config.endpoints.append(
        Endpoint(
            name="sandbox",
            kind=EndpointKind.QUEUE,
            url="http://127.0.0.1:8787/v2/echo",
            api_key=sandbox_secret,
        )
    )
    config.endpoints.append(
        Endpoint(
            name="from-cli",
            kind=EndpointKind.QUEUE,
            url="https://api.runpod.ai/v2/cli",
            source="cli",
        )
    )
    save_config(config)
    text = path.read_text()
    assert secret not in text
    assert sandbox_secret not in text
    assert "api_key" not in text
    assert "from-cli" not in text
    loaded = load_config(path)
    assert loaded.api_key is None
    monkeypatch.delenv("RUNPOD_API_KEY")
    assert loaded.key() is None
    assert loaded.key_source() == "none"


# --- layering -----------------------------------------------------------------------------


def test_client_layer_imports_no_textual() -> None:
    code = (
        "import tui.api.client, tui.api.models, tui.config, tui.cli, sys; "
        "print('textual' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
