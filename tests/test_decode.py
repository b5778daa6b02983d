"""decode: real boto3 over HTTP to a local STS: cache, retries, faults, credentials, bounds."""

from __future__ import annotations

import io
import json
import os
import socket
import stat
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from tests.conftest import BLOB_OF, BLOBS, DECODED, fake_blob, validate_event
from watcher.config import AccountCredentials, DecodeSettings
from watcher.decode import MAX_ATTEMPTS, DecodeCache, StsDecoder, TokenBucket, blob_key
from watcher.explain import decoded_shape_problem
from watcher.log import configure_logging
from watcher.model import DecodeStatus, Origin
from watcher.pipeline import MAX_EVENT_BYTES, DenialBuilder, OrderedDecodingEmitter
from watcher.state import StateStore

KNOWN = BLOB_OF["d003"]
PREFIX = "Encoded authorization failure message: "


@pytest.fixture
def credentials(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIADEFAULTTESTKEY00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test-secret-not-real")


def decoder_for(sts, log_stream=None, cache=None, **settings) -> StsDecoder:
    options = {"endpoint_url": sts.url, "timeout_seconds": 5.0, **settings}
    return StsDecoder(
        DecodeSettings(**options), configure_logging(log_stream or io.StringIO()), cache
    )


def log_events(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.usefixtures("credentials")
class TestDecode:
    def test_known_blob_is_decoded_then_cached(self, sts):
        decoder = decoder_for(sts)
        first = decoder.decode(KNOWN)
        second = decoder.decode(KNOWN)
        assert (DecodeStatus.DECODED, DECODED["d003"]["decoded"]) == (first.status, first.message)
        assert (DecodeStatus.CACHED, first.message) == (second.status, second.message)
        assert 1 == len(sts.decode_calls())
        assert "AKIADEFAULTTESTKEY00" == sts.decode_calls()[0].access_key

    def test_persistent_cache_survives_a_new_decoder_and_expires(self, sts, tmp_path):
        now = [1_000_000.0]
        store = StateStore(tmp_path / "state", configure_logging(io.StringIO()))
        try:
            decoder_for(sts, cache=DecodeCache(60, store, clock=lambda: now[0])).decode(KNOWN)
            fresh = decoder_for(sts, cache=DecodeCache(60, store, clock=lambda: now[0]))
            assert DecodeStatus.CACHED == fresh.decode(KNOWN).status
            assert 1 == len(sts.decode_calls())
            now[0] += 61
            expired = decoder_for(sts, cache=DecodeCache(60, store, clock=lambda: now[0]))
            assert DecodeStatus.DECODED == expired.decode(KNOWN).status
            assert 2 == len(sts.decode_calls())
        finally:
            store.close()

    def test_state_database_is_private(self, tmp_path):
        store = StateStore(tmp_path / "state", configure_logging(io.StringIO()))
        store.store_decode(blob_key(KNOWN), "{}", time.time(), 60)
        store.close()
        for path in (tmp_path / "state").iterdir():
            assert 0o600 == stat.S_IMODE(path.stat().st_mode), path

    def test_expired_cache_rows_are_removed(self, tmp_path):
        store = StateStore(tmp_path / "state", configure_logging(io.StringIO()))
        try:
            store.store_decode("old", "{}", 100.0, 60)
            store.store_decode("fresh", "{}", 100.0, 6000)
            assert 1 == store.expire_decodes(200.0)
            assert (None, "{}") == (
                store.cached_decode("old", 0.0),
                store.cached_decode("fresh", 200.0),
            )
        finally:
            store.close()

    def test_corrupt_state_is_set_aside_not_fatal(self, tmp_path):
        directory = tmp_path / "state"
        directory.mkdir()
        (directory / "state.sqlite3").write_bytes(b"this is not a database" * 100)
        stream = io.StringIO()
        store = StateStore(directory, configure_logging(stream))
        store.store_decode("k", "{}", 1.0, 60)
        store.close()
        assert ["state_corrupt"] == [e["event"] for e in log_events(stream)]
        assert any(p.name.startswith("state.sqlite3.corrupt-") for p in directory.iterdir())

    def test_throttling_and_5xx_are_retried(self, sts):
        sts.behaviour.faults.extend(["throttle", "503"])
        result = decoder_for(sts).decode(KNOWN)
        assert DecodeStatus.DECODED == result.status
        assert 3 == len(sts.decode_calls())

    @pytest.mark.parametrize(("fault", "code"), [("throttle", "Throttling"), ("500", "Internal")])
    def test_persistent_throttling_or_5xx_fails_after_bounded_attempts(self, sts, fault, code):
        sts.behaviour.always = fault
        result = decoder_for(sts).decode(KNOWN)
        assert DecodeStatus.FAILED == result.status
        assert result.error is not None
        assert code in result.error
        assert MAX_ATTEMPTS == len(sts.decode_calls())

    def test_access_denied_fails_and_warns_once_with_the_statement(self, sts):
        sts.behaviour.always = "access_denied"
        stream = io.StringIO()
        decoder = decoder_for(sts, log_stream=stream)
        results = [decoder.decode(fake_blob(seed)) for seed in range(100, 103)]
        assert {DecodeStatus.FAILED} == {r.status for r in results}
        assert all(r.error and r.error.startswith("AccessDenied") for r in results)
        (warning,) = log_events(stream)
        assert "decode_access_denied" == warning["event"]
        assert "sts:DecodeAuthorizationMessage" == warning["statement"]["Action"]

    def test_invalid_or_expired_message(self, sts):
        result = decoder_for(sts).decode(fake_blob(999))
        assert DecodeStatus.FAILED == result.status
        assert result.error is not None
        assert "InvalidAuthorizationMessageException" in result.error
        assert "expired" in result.error

    def test_endpoint_that_never_answers_fails_within_bounded_time(self, sts):
        sts.behaviour.always = "timeout"
        started = time.monotonic()
        result = decoder_for(sts, timeout_seconds=0.5).decode(KNOWN)
        elapsed = time.monotonic() - started
        assert DecodeStatus.FAILED == result.status
        assert result.error is not None
        assert "did not answer" in result.error
        assert elapsed < MAX_ATTEMPTS * 0.5 + 10  # attempts x timeout, plus backoff

    def test_unreachable_endpoint_fails(self):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        settings = DecodeSettings(endpoint_url=f"http://127.0.0.1:{port}", timeout_seconds=1)
        result = StsDecoder(settings, configure_logging(io.StringIO())).decode(KNOWN)
        assert DecodeStatus.FAILED == result.status
        assert result.error is not None
        assert "unreachable" in result.error


class TestCredentials:
    def test_no_credentials_fails_without_calling_and_warns_once(self, sts):
        stream = io.StringIO()
        decoder = decoder_for(sts, log_stream=stream)
        results = [decoder.decode(KNOWN), decoder.decode(fake_blob(5))]
        assert [("failed", "no AWS credentials found")] * 2 == [
            (r.status.value, r.error) for r in results
        ]
        assert [] == sts.decode_calls()
        assert ["decode_no_credentials"] == [e["event"] for e in log_events(stream)]

    def test_per_account_profiles_and_source_profile(self, sts, tmp_path, monkeypatch):
        credentials = tmp_path / "credentials"
        credentials.write_text(
            "[default]\naws_access_key_id = AKIADEFAULTTESTKEY00\naws_secret_access_key = x\n"
            "[acct-b]\naws_access_key_id = AKIAACCOUNTBTESTKEY\naws_secret_access_key = y\n"
            "[source]\naws_access_key_id = AKIASOURCETESTKEY00\naws_secret_access_key = z\n"
        )
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(credentials))
        decoder = decoder_for(sts, accounts={"222233334444": AccountCredentials(profile="acct-b")})
        decoder.decode(BLOB_OF["d003"], account_id="222233334444")
        decoder.decode(BLOB_OF["d008"], account_id="999988887777")
        decoder.decode(BLOB_OF["d012"], profile="source")
        assert ["AKIAACCOUNTBTESTKEY", "AKIADEFAULTTESTKEY00", "AKIASOURCETESTKEY00"] == [
            call.access_key for call in sts.decode_calls()
        ]

    @pytest.mark.usefixtures("credentials")
    def test_role_per_account_is_assumed_with_external_id(self, sts):
        role = AccountCredentials(
            role_arn="arn:aws:iam::333344445555:role/decoder", external_id="ext-123"
        )
        decoder = decoder_for(sts, accounts={"333344445555": role})
        first = decoder.decode(BLOB_OF["d003"], account_id="333344445555")
        second = decoder.decode(BLOB_OF["d008"], account_id="333344445555")
        assert (DecodeStatus.DECODED, DecodeStatus.DECODED) == (first.status, second.status)
        actions = [(c.action, c.access_key) for c in sts.calls]
        assert ("AssumeRole", "AKIADEFAULTTESTKEY00") == actions[0]
        assert [("DecodeAuthorizationMessage", "ASIADECODERXXXXX")] * 2 == actions[1:]
        assert "ext-123" == sts.calls[0].external_id


class TestTokenBucket:
    def test_bursts_up_to_the_rate_then_waits(self):
        now = [0.0]
        sleeps: list[float] = []
        bucket = TokenBucket(10, clock=lambda: now[0], sleep=sleeps.append)
        for _ in range(25):
            bucket.acquire()
        assert 15 == len(sleeps)
        assert pytest.approx(1.5) == max(sleeps)

    def test_tokens_come_back_with_time(self):
        now = [0.0]
        sleeps: list[float] = []
        bucket = TokenBucket(2, clock=lambda: now[0], sleep=sleeps.append)
        bucket.acquire()
        bucket.acquire()
        now[0] = 1.0
        bucket.acquire()
        bucket.acquire()
        assert [] == sleeps


@pytest.mark.usefixtures("credentials")
class TestOrderedDecoding:
    def test_bounded_concurrency_and_input_order(self, sts):
        sts.behaviour.latency_seconds = 0.05
        blobs = [fake_blob(seed) for seed in range(200, 232)]
        sts.behaviour.messages.update(dict.fromkeys(blobs, DECODED["d013"]["decoded"]))
        decoder = decoder_for(sts, max_requests_per_second=1000)
        emitted: list[dict] = []
        emitter = OrderedDecodingEmitter(
            DenialBuilder(decoder=decoder), emitted.append, max_concurrency=4
        )
        origin_time = datetime(2026, 11, 28, tzinfo=UTC)
        try:
            for index, blob in enumerate(blobs):
                origin = Origin("file", "/var/log/x.log", source_offset=index)
                emitter.add(f"{PREFIX}{blob}", origin, origin_time)
        finally:
            emitter.close()
        assert blobs == [e["encoded_message"] for e in emitted]
        assert {"decoded"} == {e["decode_status"] for e in emitted}
        assert 2 <= sts.max_in_flight <= 4
        for event in emitted:
            validate_event(event)


@pytest.mark.usefixtures("credentials")
class TestDecodedEvents:
    @pytest.mark.parametrize("sample_id", list(DECODED))
    def test_decoded_event_matches_the_corpus(self, sts, sample_id):
        builder = DenialBuilder(decoder=decoder_for(sts))
        (event,) = builder.events(
            f"{PREFIX}{BLOB_OF[sample_id]}", Origin("file", "x"), datetime.now(UTC)
        )
        expected = DECODED[sample_id]["expected"]
        validate_event(event)
        assert (
            expected["explicit_deny"],
            expected["resource"],
            expected["principal_arn"],
        ) == (event["explicit_deny"], event["resource"], event["principal_arn"])
        action = expected["action"] if ":" in expected["action"] else f"ec2:{expected['action']}"
        assert action == event["action"]
        assert (event["suggested_policy"] is None) == expected["explicit_deny"]

    def test_truncated_blob_makes_no_call(self, sts):
        builder = DenialBuilder(decoder=decoder_for(sts))
        text = f'"errorMessage": "{PREFIX}{BLOB_OF["d003"][:900]}...",'
        (event,) = builder.events(text, Origin("file", "x"), datetime.now(UTC))
        assert "truncated" == event["decode_status"]
        assert [] == sts.decode_calls()

    def test_statement_id_and_conditions_reach_the_event(self, sts):
        builder = DenialBuilder(decoder=decoder_for(sts))
        (event,) = builder.events(
            f"{PREFIX}{BLOB_OF['d012']}", Origin("file", "x"), datetime.now(UTC)
        )
        assert "Explicitly denied by statement 'VisualEditor0'" in event["reason"]
        assert ["t2.micro"] == event["conditions"]["ec2:InstanceType"]
        assert ("111122223333", "us-east-1") == (event["account_id"], event["region"])
        assert "VisualEditor0" == event["matched_statements"][0]["statementId"]

    def test_implicit_deny_suggests_the_missing_statement(self, sts):
        builder = DenialBuilder(decoder=decoder_for(sts))
        (event,) = builder.events(
            f"{PREFIX}{BLOB_OF['d003']}", Origin("file", "x"), datetime.now(UTC)
        )
        assert event["reason"].startswith(
            "No policy allows ec2:CreateLaunchTemplate on "
            "arn:aws:ec2:ap-northeast-2:123456789012:launch-template/*; add an Allow for it to "
            "an identity-based policy of the role eks-node-role-dev"
        )
        statement = event["suggested_policy"]["Statement"][0]
        assert (
            "ec2:CreateLaunchTemplate",
            "arn:aws:ec2:ap-northeast-2:123456789012:launch-template/*",
        ) == (
            statement["Action"],
            statement["Resource"],
        )


def test_environment_is_isolated_from_real_aws():
    """The suite itself never sees real credentials or instance metadata."""
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
    assert "AWS_ACCESS_KEY_ID" not in os.environ
    assert BLOBS


@pytest.mark.usefixtures("credentials")
class TestAtScale:
    def test_the_same_blob_decoded_at_once_is_one_call(self, sts):
        """Twenty concurrent requests for one blob wait for the one in flight."""
        sts.behaviour.latency_seconds = 0.3
        decoder = decoder_for(sts)
        with ThreadPoolExecutor(20) as pool:
            results = list(pool.map(lambda _: decoder.decode(KNOWN), range(20)))
        assert 1 == len(sts.decode_calls())
        assert [DecodeStatus.DECODED] + [DecodeStatus.CACHED] * 19 == sorted(
            (r.status for r in results), key=lambda s: s is DecodeStatus.CACHED
        )
        assert {json.dumps(DECODED["d003"]["decoded"])} == {json.dumps(r.message) for r in results}

    def test_a_permanent_failure_is_cached_like_a_success(self, sts):
        """The same invalid blob 300 times is one STS call, and 300 named failures."""
        decoder = decoder_for(sts)
        results = [decoder.decode(fake_blob(999)) for _ in range(300)]
        assert 1 == len(sts.decode_calls())
        assert {"InvalidAuthorizationMessageException"} == {
            (r.error or "").split(":", 1)[0] for r in results
        }

    def test_a_transient_failure_is_not_cached(self, sts):
        """After a 5xx that outlasted the retries, the next request asks STS again."""
        sts.behaviour.faults.extend(["500"] * MAX_ATTEMPTS)
        decoder = decoder_for(sts)
        assert DecodeStatus.FAILED == decoder.decode(KNOWN).status
        assert DecodeStatus.DECODED == decoder.decode(KNOWN).status

    def test_every_attempt_takes_a_token(self, sts):
        """Two throttled attempts and a retry: three tokens, so a 1/s bucket waits twice."""
        now = [0.0]
        waits: list[float] = []

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            now[0] += seconds

        bucket = TokenBucket(1.0, clock=lambda: now[0], sleep=sleep)
        decoder = StsDecoder(
            DecodeSettings(endpoint_url=sts.url, timeout_seconds=5.0),
            configure_logging(io.StringIO()),
            rate_limiter=bucket,
        )
        sts.behaviour.faults.extend(["throttle", "throttle"])
        assert DecodeStatus.DECODED == decoder.decode(KNOWN).status
        assert (3, [1.0, 1.0]) == (len(sts.decode_calls()), waits)

    def test_a_role_that_cannot_be_assumed_is_named_and_not_retried_per_blob(self, sts):
        """The error names AssumeRole, the role and the reason; 20 blobs, one AssumeRole."""
        role_arn = "arn:aws:iam::333344445555:role/decoder"
        sts.behaviour.unassumable_roles.add(role_arn)
        stream = io.StringIO()
        decoder = decoder_for(
            sts, log_stream=stream, accounts={"333344445555": AccountCredentials(role_arn=role_arn)}
        )
        results = [decoder.decode(fake_blob(i), account_id="333344445555") for i in range(20)]
        error = results[0].error or ""
        assert ("AssumeRole", True, True) == (
            error.split(" ", 1)[0],
            role_arn in error,
            "AccessDenied: Not authorized to assume" in error,
        )
        assert {error} == {r.error for r in results}
        assert ["AssumeRole"] == [c.action for c in sts.calls]
        assert ["decode_assume_role_failed"] == [e["event"] for e in log_events(stream)]

    def test_assumed_credentials_are_reused_for_the_accounts_blobs(self, sts):
        """Twenty blobs of one account: one AssumeRole, twenty decodes with its credentials."""
        role = AccountCredentials(role_arn="arn:aws:iam::333344445555:role/decoder")
        decoder = decoder_for(sts, accounts={"333344445555": role})
        for i in range(20):
            decoder.decode(fake_blob(i), account_id="333344445555")
        assert ["AssumeRole"] + ["DecodeAuthorizationMessage"] * 20 == [c.action for c in sts.calls]


@pytest.mark.usefixtures("credentials")
class TestWrongShape:
    @pytest.mark.parametrize(
        ("change", "reason"),
        [
            ({"explicitDeny": "false"}, "explicitDeny is str 'false', expected true/false"),
            (
                {"matchedStatements": {"items": "zzz"}},
                "matchedStatements.items is str 'zzz', expected a list",
            ),
            ({"context": ["x"]}, "context is list ['x'], expected an object"),
        ],
    )
    def test_a_decoded_message_of_the_wrong_shape_is_failed_with_the_reason(
        self, sts, change, reason
    ):
        """Never guessed: the event is failed, and says which field was wrong and how."""
        blob = fake_blob(4242)
        sts.behaviour.messages[blob] = {**DECODED["d003"]["decoded"], **change}
        decoder = decoder_for(sts)
        results = [decoder.decode(blob) for _ in range(2)]  # fresh, then from the cache
        assert [DecodeStatus.FAILED] * 2 == [r.status for r in results]
        assert {f"STS returned a decoded message of the wrong shape: {reason}"} == {
            r.error for r in results
        }

    def test_the_corpus_is_well_shaped(self):
        """Every real decoded message passes the shape check."""
        assert [] == [
            (sample_id, problem)
            for sample_id, sample in DECODED.items()
            if (problem := decoded_shape_problem(sample["decoded"])) is not None
        ]


@pytest.mark.usefixtures("credentials")
class TestBoundedEvents:
    def test_five_thousand_conditions_make_an_event_under_64_kib_that_says_so(self, sts):
        """The event keeps the first conditions, names the cut field, and still validates."""
        blob = fake_blob(5000)
        message = json.loads(json.dumps(DECODED["d012"]["decoded"]))
        message["context"]["conditions"]["items"] = [
            {"key": f"aws:Tag/k{i}", "values": {"items": [{"value": "v" * 900}]}}
            for i in range(5000)
        ]
        sts.behaviour.messages[blob] = message
        builder = DenialBuilder(decoder=decoder_for(sts))
        (event,) = builder.events(f"{PREFIX}{blob}", Origin("file", "x"), datetime.now(UTC))
        validate_event(event)
        line = json.dumps(event, separators=(",", ":")).encode()
        assert (True, ["conditions"]) == (len(line) <= MAX_EVENT_BYTES, event["truncated_fields"])
        assert ["v" * 900] == event["conditions"]["aws:Tag/k0"]
        assert 0 < len(event["conditions"]) < 5000

    def test_an_ordinary_event_is_untouched(self, sts):
        """Below the bound nothing is cut: truncated_fields is null."""
        builder = DenialBuilder(decoder=decoder_for(sts))
        (event,) = builder.events(
            f"{PREFIX}{BLOB_OF['d012']}", Origin("file", "x"), datetime.now(UTC)
        )
        assert event["truncated_fields"] is None
