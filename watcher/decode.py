"""decode: an encoded authorization message -> the decoded JSON, through STS and boto3.

Sits between extract and explain. ``StsDecoder.decode`` is synchronous and thread-safe: the
caller runs it on a bounded pool (``max_concurrency``) and this module adds the rest of the
contract: a token bucket (``max_requests_per_second``), a cache (in memory, and in the state
database when one is given) keyed by the blob's SHA-256, per-account credentials (a blob
decodes only in the account where the request failed), botocore's standard retries for
throttling and 5xx, bounded connect/read timeouts, and one clear operator warning for the
failures an operator must fix (no credentials, AccessDenied on the decode call itself, a
role that cannot be assumed). Every outcome is a ``DecodeResult``; nothing here raises for a
bad blob or a bad endpoint.

At scale: concurrent decodes of one blob share the call in flight (``SingleFlight``); a
permanent failure (invalid or expired message) is cached like a success; every attempt,
botocore's retries included, takes a token; a role that cannot be assumed is not tried again
for ``ASSUME_ROLE_RETRY_SECONDS``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config as BotocoreConfig
from botocore.credentials import (
    CredentialProvider,
    CredentialResolver,
    DeferredRefreshableCredentials,
    create_assume_role_refresher,
)
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError
from botocore.session import Session as BotocoreSession

from watcher.config import AccountCredentials, DecodeSettings
from watcher.explain import decoded_shape_problem
from watcher.log import Logger
from watcher.model import DecodeResult, DecodeStatus

if TYPE_CHECKING:
    from mypy_boto3_sts import STSClient

    from watcher.state import StateStore

ERROR_CHARS = 300  # of a reason quoted from a peer, in decode_error
MAX_ATTEMPTS = 3  # in all, with botocore "standard" retries for throttling, 5xx, connections
MEMORY_CACHE_ENTRIES = 4096
ASSUME_ROLE_RETRY_SECONDS = 60.0  # a role that could not be assumed is tried again after this
PERMANENT_FAILURE_CODES = frozenset({"InvalidAuthorizationMessageException"})
DEFAULT_REGION = "us-east-1"  # STS answers in every region; one is needed to build a client
ROLE_SESSION_NAME = "authz-watcher"
THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequestsException"}
)
ACCESS_DENIED_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"})
REQUIRED_STATEMENT = {
    "Effect": "Allow",
    "Action": "sts:DecodeAuthorizationMessage",
    "Resource": "*",
}


def unreadable_reply(exc: ResponseParserError) -> str:
    """The first line of botocore's complaint, without the body it quotes."""
    first_line = str(exc).split("\n", 1)[0].removesuffix(":")
    first_line = first_line.removesuffix(" Further retries may succeed")
    return f"STS sent a reply that is not STS XML (a proxy's page?): {first_line}"[:ERROR_CHARS]


def blob_key(blob: str) -> str:
    return hashlib.sha256(blob.encode("ascii", "replace")).hexdigest()


class TokenBucket:
    """At most ``rate`` acquisitions per second on average, bursts up to ``rate``."""

    def __init__(
        self,
        rate: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._rate = rate
        self._capacity = max(1.0, rate)
        self._tokens = self._capacity
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Take one token, waiting for it if the bucket is empty."""
        with self._lock:
            now = self._clock()
            self._tokens = min(self._capacity, self._tokens + (now - self._updated) * self._rate)
            self._updated = now
            self._tokens -= 1.0
            wait = -self._tokens / self._rate if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)  # this is the rate limit itself, not synchronisation


class DecodeCache:
    """An in-memory LRU in front of the state database's decode cache (if there is one)."""

    def __init__(
        self,
        ttl_seconds: float,
        store: StateStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._ttl = ttl_seconds
        self._store = store
        self._clock = clock
        self._memory: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> dict[str, Any] | None:
        now = self._clock()
        with self._lock:
            entry = self._memory.get(key)
            if entry is not None:
                expires_at, message = entry
                if expires_at > now:
                    self._memory.move_to_end(key)
                    return message
                del self._memory[key]
        if self._store is None:
            return None
        stored = self._store.cached_decode(key, now)
        if stored is None:
            return None
        decoded: dict[str, Any] = json.loads(stored)
        self._remember(key, decoded, now)
        return decoded

    def put(self, key: str, message: dict[str, Any]) -> None:
        now = self._clock()
        self._remember(key, message, now)
        if self._store is not None:
            self._store.store_decode(key, json.dumps(message), now, self._ttl)

    def _remember(self, key: str, message: dict[str, Any], now: float) -> None:
        with self._lock:
            self._memory[key] = (now + self._ttl, message)
            self._memory.move_to_end(key)
            while len(self._memory) > MEMORY_CACHE_ENTRIES:
                self._memory.popitem(last=False)


def _well_shaped(result: DecodeResult) -> DecodeResult:
    """A decoded message of the wrong shape is a failure with the reason, not a guess."""
    if result.message is None:
        return result
    problem = decoded_shape_problem(result.message)
    if problem is None:
        return result
    return DecodeResult(
        DecodeStatus.FAILED, error=f"STS returned a decoded message of the wrong shape: {problem}"
    )


class FailureCache:
    """Permanent decode failures (invalid or expired messages), in memory for ``ttl``: the
    same bad blob seen again is answered without an STS call."""

    def __init__(self, ttl_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self._ttl = ttl_seconds
        self._clock = clock
        self._errors: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> str | None:
        with self._lock:
            entry = self._errors.get(key)
            if entry is None or entry[0] <= self._clock():
                return None
            return entry[1]

    def put(self, key: str, error: str) -> None:
        with self._lock:
            self._errors[key] = (self._clock() + self._ttl, error)
            self._errors.move_to_end(key)
            while len(self._errors) > MEMORY_CACHE_ENTRIES:
                self._errors.popitem(last=False)


class SingleFlight:
    """Concurrent calls for one key wait for the call in flight and share its result."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, tuple[threading.Event, list[DecodeResult]]] = {}

    def run(self, key: str, call: Callable[[], DecodeResult]) -> tuple[DecodeResult, bool]:
        """The result, and whether this caller made the call (False: it waited for another)."""
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = (threading.Event(), [])
        done, result = flight
        if not leader:
            done.wait()
            return result[0], False
        try:
            result.append(call())
        except BaseException:
            result.append(DecodeResult(DecodeStatus.FAILED, error="decode failed unexpectedly"))
            raise
        finally:
            with self._lock:
                del self._flights[key]
            done.set()
        return result[0], True


class _AssumeRoleProvider(CredentialProvider):
    """Credentials of an assumed role, refreshed by botocore before they expire."""

    METHOD = "authz-watcher-assume-role"
    CANONICAL_NAME = "AuthzWatcherAssumeRole"

    def __init__(self, refresh: Callable[[], dict[str, Any]]) -> None:
        super().__init__()
        self._refresh = refresh

    def load(self) -> DeferredRefreshableCredentials:
        return DeferredRefreshableCredentials(refresh_using=self._refresh, method=self.METHOD)


class StsDecoder:
    """Decodes blobs with ``sts:DecodeAuthorizationMessage``; safe to call from many threads."""

    def __init__(
        self,
        settings: DecodeSettings,
        log: Logger,
        cache: DecodeCache | None = None,
        *,
        rate_limiter: TokenBucket | None = None,
        on_call: Callable[[str, float], None] | None = None,
    ) -> None:
        self._settings = settings
        self._on_call = on_call  # (result, seconds) of every STS call, for the metrics
        self._log = log
        self._cache = cache or DecodeCache(settings.cache_ttl_seconds)
        self._bucket = rate_limiter or TokenBucket(settings.max_requests_per_second)
        self._failures = FailureCache(settings.cache_ttl_seconds)
        self._flights = SingleFlight()
        self._assume_role_failures: dict[str, tuple[float, str]] = {}  # account -> until, error
        self._clients: dict[tuple[str, str], STSClient | None] = {}
        self._client_errors: dict[tuple[str, str], str] = {}
        self._clients_lock = threading.Lock()
        self._warned: set[str] = set()
        self._warned_lock = threading.Lock()
        self._botocore_config = BotocoreConfig(
            connect_timeout=settings.timeout_seconds,
            read_timeout=settings.timeout_seconds,
            retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
            user_agent_extra="authz-watcher",
        )

    def decode(
        self, blob: str, *, account_id: str | None = None, profile: str | None = None
    ) -> DecodeResult:
        """Decode one blob, from the cache when possible. Never raises for AWS-side failures."""
        key = blob_key(blob)
        known = self._known(key)
        if known is not None:
            return _well_shaped(known)
        result, called = self._flights.run(
            key, lambda: self._known(key) or self._decode_uncached(blob, key, account_id, profile)
        )
        if not called and result.status is DecodeStatus.DECODED:
            return _well_shaped(DecodeResult(DecodeStatus.CACHED, result.message))
        return _well_shaped(result)

    def _known(self, key: str) -> DecodeResult | None:
        """The cached outcome of a blob: its decoded message, or its permanent failure."""
        cached = self._cache.get(key)
        if cached is not None:
            return DecodeResult(DecodeStatus.CACHED, cached)
        failure = self._failures.get(key)
        if failure is not None:
            return DecodeResult(DecodeStatus.FAILED, error=failure)
        return None

    def _decode_uncached(
        self, blob: str, key: str, account_id: str | None, profile: str | None
    ) -> DecodeResult:
        role_failure = self._assume_role_failures.get(account_id or "")
        if role_failure is not None and role_failure[0] > time.monotonic():
            return DecodeResult(DecodeStatus.FAILED, error=role_failure[1])
        client, client_error = self._client_for(account_id, profile)
        if client is None:
            return DecodeResult(DecodeStatus.FAILED, error=client_error)
        started = time.monotonic()
        result = self._call(client, blob, account_id)
        if self._on_call is not None:
            self._on_call(result.status.value, time.monotonic() - started)
        if result.error is not None and result.error.split(":", 1)[0] in PERMANENT_FAILURE_CODES:
            self._failures.put(key, result.error)
        return result

    def _call(self, client: STSClient, blob: str, account_id: str | None) -> DecodeResult:
        try:
            response = client.decode_authorization_message(EncodedMessage=blob)
        except NoCredentialsError:
            return self._failed_without_credentials()
        except ClientError as exc:
            return self._failed_call(exc, account_id)
        except (EndpointConnectionError, ConnectTimeoutError, ConnectionClosedError) as exc:
            return DecodeResult(
                DecodeStatus.FAILED,
                error=f"STS endpoint unreachable after {MAX_ATTEMPTS} attempts: {exc}",
            )
        except ReadTimeoutError as exc:
            return DecodeResult(
                DecodeStatus.FAILED,
                error=f"STS did not answer within {self._settings.timeout_seconds:g} s "
                f"({MAX_ATTEMPTS} attempts): {exc}",
            )
        except BotoCoreError as exc:
            return DecodeResult(DecodeStatus.FAILED, error=f"STS call failed: {exc}")
        except ResponseParserError as exc:  # a captive proxy's page, garbage, cut-off XML
            return DecodeResult(DecodeStatus.FAILED, error=unreadable_reply(exc))
        except Exception as exc:  # noqa: BLE001 - a hostile reply must fail one blob, not us
            return DecodeResult(
                DecodeStatus.FAILED,
                error=f"STS reply could not be read ({type(exc).__name__}): {exc}"[:ERROR_CHARS],
            )
        try:
            message = json.loads(response["DecodedMessage"])
        except RecursionError:
            return DecodeResult(DecodeStatus.FAILED, error="STS returned JSON nested too deeply")
        except (KeyError, TypeError, ValueError) as exc:
            return DecodeResult(
                DecodeStatus.FAILED, error=f"STS returned a message that is not JSON: {exc}"
            )
        if not isinstance(message, dict):
            return DecodeResult(
                DecodeStatus.FAILED, error="STS returned JSON that is not an object"
            )
        self._cache.put(blob_key(blob), message)
        return DecodeResult(DecodeStatus.DECODED, message)

    # -- credentials -------------------------------------------------------------------------

    def _client_for(
        self, account_id: str | None, source_profile: str | None
    ) -> tuple[STSClient | None, str | None]:
        account = self._settings.accounts.get(account_id) if account_id else None
        if account is not None and account_id is not None:
            key = ("account", account_id)
        elif source_profile is not None:
            key = ("profile", source_profile)
        else:
            key = ("default", self._settings.profile or "")
        with self._clients_lock:
            if key not in self._clients:
                self._clients[key] = self._build_client(key, account, source_profile)
            return self._clients[key], self._client_errors.get(key)

    def _build_client(
        self, key: tuple[str, str], account: AccountCredentials | None, source_profile: str | None
    ) -> STSClient | None:
        profile = source_profile or self._settings.profile
        if account is not None and account.profile is not None:
            profile = account.profile
        try:
            session = boto3.Session(profile_name=profile, region_name=self._settings.region)
            if account is not None and account.role_arn is not None:
                session = self._assumed_role_session(session, account)
            elif session.get_credentials() is None:
                self._client_errors[key] = self._failed_without_credentials().error or ""
                return None
            client = session.client(
                "sts",
                region_name=session.region_name or DEFAULT_REGION,
                endpoint_url=self._settings.endpoint_url,
                config=self._botocore_config,
            )
        except ProfileNotFound as exc:
            self._client_errors[key] = f"AWS profile not found: {exc}"
        except (NoRegionError, BotoCoreError, ValueError) as exc:
            self._client_errors[key] = f"cannot set up an STS client: {exc}"
        else:
            # Each attempt, botocore's retries included, takes a token as it is sent.
            client.meta.events.register(
                "before-send.sts.DecodeAuthorizationMessage", self._take_token
            )
            return client
        self._warn_once(
            f"client:{key}", "decode_setup_failed", error=self._client_errors[key], profile=profile
        )
        return None

    def _assumed_role_session(
        self, source: boto3.Session, account: AccountCredentials
    ) -> boto3.Session:
        source_client = source.client(
            "sts",
            region_name=source.region_name or DEFAULT_REGION,
            endpoint_url=self._settings.endpoint_url,
            config=self._botocore_config,
        )
        params: dict[str, Any] = {"RoleArn": account.role_arn, "RoleSessionName": ROLE_SESSION_NAME}
        if account.external_id is not None:
            params["ExternalId"] = account.external_id
        botocore_session = BotocoreSession()
        botocore_session.register_component(
            "credential_provider",
            CredentialResolver(
                providers=[_AssumeRoleProvider(create_assume_role_refresher(source_client, params))]
            ),
        )
        return boto3.Session(
            botocore_session=botocore_session,
            region_name=source.region_name or self._settings.region or DEFAULT_REGION,
        )

    def _take_token(self, **_: object) -> None:
        self._bucket.acquire()

    # -- failures ----------------------------------------------------------------------------

    def _failed_without_credentials(self) -> DecodeResult:
        self._warn_once(
            "no-credentials",
            "decode_no_credentials",
            detail="no AWS credentials found: blobs are reported undecoded. Give the watcher "
            "credentials through the standard chain (instance role, AWS_PROFILE, "
            "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY) or decode.profile in the configuration.",
        )
        return DecodeResult(DecodeStatus.FAILED, error="no AWS credentials found")

    def _failed_call(self, exc: ClientError, account_id: str | None) -> DecodeResult:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "Unknown"))
        message = str(error.get("Message", "")).strip()
        if exc.operation_name == "AssumeRole":
            return self._failed_assume_role(code, message, account_id)
        if code in ACCESS_DENIED_CODES:
            self._warn_once(
                f"denied:{account_id}",
                "decode_access_denied",
                account_id=account_id,
                error=message,
                detail="the watcher's credentials may not call sts:DecodeAuthorizationMessage; "
                "add this statement to their identity-based policy",
                statement=REQUIRED_STATEMENT,
            )
            return DecodeResult(
                DecodeStatus.FAILED,
                error=f"{code}: the watcher's credentials are not allowed "
                f"sts:DecodeAuthorizationMessage ({message})",
            )
        if code == "InvalidAuthorizationMessageException":
            return DecodeResult(
                DecodeStatus.FAILED,
                error=f"{code}: the message is invalid, expired, or from another account "
                f"({message})",
            )
        if code in THROTTLING_CODES:
            return DecodeResult(
                DecodeStatus.FAILED,
                error=f"{code}: STS kept throttling after {MAX_ATTEMPTS} attempts ({message})",
            )
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return DecodeResult(
            DecodeStatus.FAILED, error=f"{code} (HTTP {status}) from STS: {message}".strip()
        )

    def _failed_assume_role(self, code: str, message: str, account_id: str | None) -> DecodeResult:
        account = self._settings.accounts.get(account_id) if account_id else None
        role_arn = account.role_arn if account is not None else None
        error = (
            f"AssumeRole of {role_arn} (decode.accounts.{account_id}) failed: {code}: {message}; "
            "check the role's trust policy, its external_id, and that the watcher may call "
            "sts:AssumeRole on it"
        )
        self._assume_role_failures[account_id or ""] = (
            time.monotonic() + ASSUME_ROLE_RETRY_SECONDS,
            error,
        )
        self._warn_once(
            f"assume:{account_id}",
            "decode_assume_role_failed",
            account_id=account_id,
            role_arn=role_arn,
            error=f"{code}: {message}",
            retry_seconds=ASSUME_ROLE_RETRY_SECONDS,
        )
        return DecodeResult(DecodeStatus.FAILED, error=error)

    def _warn_once(self, key: str, event: str, **fields: object) -> None:
        with self._warned_lock:
            if key in self._warned:
                return
            self._warned.add(key)
        self._log.warning(event, stage="decode", **fields)
