"""``type: s3``: a CloudTrail bucket polled, driven directly against moto's S3 over real HTTP."""

from __future__ import annotations

import gzip
import json
import signal
from collections import Counter
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from tests.fault_proxy import FaultProxy
from tests.moto_server import MotoServer
from tests.s3_trail import Driver, RecordingLog, TrailBucket
from tests.test_daemon import Watcher, wait_for
from tests.tmpfs import remount
from watcher.config import S3Source
from watcher.sources.s3 import MAX_OBJECTS_HELD, lookback_floor
from watcher.state import StateStore

BUCKET = "trail-bucket"
# Sorts after every other trail prefix: once its object is read, the whole turn was listed.
LAST_ORG, LAST_ACCOUNT, LAST_REGION = "o-zzzzzzzzzz", "999999999999", "us-west-2"


@pytest.fixture
def aws(moto_server: MotoServer, monkeypatch: pytest.MonkeyPatch) -> MotoServer:
    """boto3 in this process reaches moto (AWS_ENDPOINT_URL), as the daemon would."""
    for name, value in moto_server.env().items():
        monkeypatch.setenv(name, value)
    return moto_server


@pytest.fixture
def trail(aws: MotoServer) -> TrailBucket:
    return TrailBucket(aws.client("s3"), BUCKET).create()


@pytest.fixture
def log() -> RecordingLog:
    return RecordingLog()


@pytest.fixture
def store(tmp_path: Path, log: RecordingLog) -> Iterator[StateStore]:
    state = StateStore(tmp_path / "state", log)
    yield state
    state.close()


class Drivers:
    """Start a source (``start()``) as often as a test restarts it; all closed at the end."""

    def __init__(self, store: StateStore, log: RecordingLog) -> None:
        self.store = store
        self.log = log
        self.started: list[Driver] = []

    def start(self, **options: object) -> Driver:
        settings: dict[str, object] = {"poll_interval_seconds": 0.1, "start_at": "beginning"}
        settings.update(options)
        driver = Driver((S3Source(bucket=BUCKET, **settings),), self.store, self.log)  # type: ignore[arg-type]
        self.started.append(driver)
        return driver


@pytest.fixture
def drivers(store: StateStore, log: RecordingLog) -> Iterator[Drivers]:
    made = Drivers(store, log)
    yield made
    for driver in made.started:
        driver.close()


def read_all(driver: Driver, trail: TrailBucket, keys: list[str] | None = None) -> None:
    wanted = trail.event_ids(keys)
    driver.read_until(lambda: wanted <= set(driver.event_ids()), "every denial put")


def put_last(trail: TrailBucket) -> str:
    return trail.put_trail_object(LAST_ACCOUNT, LAST_REGION, org=LAST_ORG)


class TestListing:
    def test_objects_under_several_account_and_region_prefixes_are_each_read_once(
        self, trail, drivers
    ):
        """Accounts, regions and an organisation trail's prefix: every denial once, none twice."""
        for account in ("111122223333", "444455556666"):
            for region in ("eu-west-1", "us-east-1"):
                trail.put_trail_object(account, region)
                trail.put_trail_object(account, region)
        trail.put_trail_object("777788889999", "ap-south-1", org="o-abc123")
        put_last(trail)
        driver = drivers.start()
        read_all(driver, trail)
        put_last(trail)  # a later turn lists everything again
        read_all(driver, trail)
        assert sorted(trail.event_ids()) == sorted(driver.event_ids())
        assert 6 == driver.source.progress().followed

    def test_denials_keep_their_record_context_and_name_the_object(self, trail, drivers):
        """source_path is s3://bucket/key; account and region come from the record."""
        key = trail.put_trail_object("444455556666", "eu-west-1", denials=1)
        driver = drivers.start()
        read_all(driver, trail)
        (denial,) = driver.out.denials_handed
        assert f"s3://{BUCKET}/{key}" == denial.origin.source_path
        assert ("444455556666", "eu-west-1") == (denial.account_id, denial.extra["region"])

    def test_digest_and_insight_prefixes_are_never_read(self, trail, drivers):
        """Objects under CloudTrail-Digest and CloudTrail-Insight are not listed for denials."""
        body = gzip.compress(json.dumps({"Records": [{"errorCode": "AccessDenied"}]}).encode())
        for kind in ("CloudTrail-Digest", "CloudTrail-Insight"):
            trail.put(f"AWSLogs/111122223333/{kind}/us-east-1/2026/11/29/x.json.gz", body)
        put_last(trail)
        driver = drivers.start()
        read_all(driver, trail)
        put_last(trail)
        read_all(driver, trail)
        assert sorted(trail.event_ids()) == sorted(driver.event_ids())
        assert 1 == driver.source.progress().followed

    def test_a_prefix_that_names_one_trail_prefix_is_listed_alone(self, trail, drivers):
        """prefix: AWSLogs/<account>/CloudTrail/<region>/ reads that region only."""
        wanted = trail.put_trail_object("111122223333", "eu-west-1")
        trail.put_trail_object("111122223333", "us-east-1")
        driver = drivers.start(prefix="AWSLogs/111122223333/CloudTrail/eu-west-1/")
        read_all(driver, trail, [wanted])
        later = trail.put_trail_object("111122223333", "eu-west-1")
        read_all(driver, trail, [wanted, later])
        assert sorted(trail.event_ids([wanted, later])) == sorted(driver.event_ids())

    @pytest.mark.parametrize(
        ("prefix", "regions"),
        [
            ("AWSLogs/o-abc123/111122223333/CloudTrail/", ["eu-west-1", "us-east-1"]),
            ("AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1", ["eu-west-1"]),
        ],
    )
    def test_a_prefix_at_the_account_s_cloudtrail_or_without_its_last_slash_reads(
        self, trail, drivers, prefix, regions
    ):
        """An outside tester's prefixes that read nothing, without a word: one account's
        CloudTrail/ (its regions are the trail prefixes) and a trail prefix without its
        trailing slash."""
        wanted = [trail.put_trail_object("111122223333", r, org="o-abc123") for r in regions]
        trail.put_trail_object("444455556666", "eu-west-1", org="o-abc123")
        driver = drivers.start(prefix=prefix)
        read_all(driver, trail, wanted)
        assert sorted(trail.event_ids(wanted)) == sorted(driver.event_ids())

    def test_a_prefix_with_no_trail_prefix_under_it_is_said_once(self, trail, drivers, log):
        """``prefix`` naming nothing a trail writes yet: a warning, once, not silence; a trail
        that starts writing there later is read."""
        put_last(trail)
        driver = drivers.start(prefix="logs/")
        driver.wait_until(lambda: bool(log.named("s3_no_trail_prefixes")), "the warning")
        assert [] == driver.event_ids()
        later = trail.put_trail_object_at(
            "logs/AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/29/"
            "111122223333_CloudTrail_us-east-1_20261129T1200Z_later.json.gz"
        )
        read_all(driver, trail, [later])  # listed again: the turns went on
        assert 1 == len(log.named("s3_no_trail_prefixes"))
        assert "logs/" == log.named("s3_no_trail_prefixes")[0]["prefix"]

    def test_objects_put_later_are_read_at_the_next_turn(self, trail, drivers):
        """A new object, in a known prefix or in a new one, is read once."""
        trail.put_trail_object("111122223333", "us-east-1")
        driver = drivers.start()
        read_all(driver, trail)
        trail.put_trail_object("111122223333", "us-east-1")
        trail.put_trail_object("222233334444", "ca-central-1")
        read_all(driver, trail)
        put_last(trail)
        read_all(driver, trail)
        assert sorted(trail.event_ids()) == sorted(driver.event_ids())


class TestRestarts:
    def test_a_graceful_restart_reads_nothing_twice(self, trail, drivers):
        """Everything handed on and acknowledged before the stop is not read again."""
        for region in ("eu-west-1", "us-east-1"):
            trail.put_trail_object("111122223333", region)
        first = drivers.start()
        read_all(first, trail)
        first.acknowledge()
        first.close()
        new = trail.put_trail_object("111122223333", "eu-west-1")
        last = put_last(trail)
        second = drivers.start()
        read_all(second, trail, [new, last])
        assert sorted(trail.event_ids([new, last])) == sorted(second.event_ids())

    def test_after_a_crash_what_was_not_acknowledged_comes_again_with_the_same_ids(
        self, trail, drivers
    ):
        """Handed on but never saved (the sinks never confirmed): read again, same event_id."""
        acknowledged = trail.put_trail_object("111122223333", "us-east-1")
        first = drivers.start()
        read_all(first, trail)
        first.acknowledge()
        unacknowledged = trail.put_trail_object("111122223333", "us-east-1")
        read_all(first, trail)
        first.close()  # a crash: the save of the second object never ran
        second = drivers.start()
        put_last(trail)
        read_all(second, trail, [unacknowledged])
        assert trail.event_ids([unacknowledged]) <= set(first.event_ids())
        assert not trail.event_ids([acknowledged]) & set(second.event_ids())

    def test_an_older_save_run_after_a_newer_one_takes_nothing_back(self, trail, drivers):
        """Saves record keys done; one run late does not make a restart read anything again."""
        trail.put_trail_object("111122223333", "us-east-1")
        driver = drivers.start()
        read_all(driver, trail)
        older = driver.source.checkpoint()
        trail.put_trail_object("111122223333", "us-east-1")
        read_all(driver, trail)
        driver.acknowledge()
        assert older is not None
        older()
        driver.close()
        again = drivers.start()
        last = put_last(trail)
        read_all(again, trail, [last])
        assert sorted(trail.event_ids([last])) == sorted(again.event_ids())


class TestLateDeliveries:
    def test_an_object_whose_key_sorts_before_keys_already_read_is_read(self, trail, drivers):
        """Same minute, smaller random part, delivered later (or a late delivery): read once."""
        prefix = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/29/"
        name = "111122223333_CloudTrail_us-east-1_20261129T1205Z_{}.json.gz"
        first = trail.put_trail_object_at(prefix + name.format("zzzz"))
        driver = drivers.start()
        read_all(driver, trail)
        driver.acknowledge()
        late = trail.put_trail_object_at(prefix + name.format("aaaa"))
        yesterday = trail.put_trail_object_at(
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/28/"
            "111122223333_CloudTrail_us-east-1_20261128T2355Z_late.json.gz"
        )
        read_all(driver, trail, [late, yesterday])
        driver.acknowledge()
        driver.close()
        again = drivers.start()  # the keys done are in the state database
        last = put_last(trail)
        read_all(again, trail, [last])
        assert sorted(trail.event_ids([first, late, yesterday])) == sorted(driver.event_ids())
        assert sorted(trail.event_ids([last])) == sorted(again.event_ids())

    @staticmethod
    def _late_key_behind_a_long_listing(
        trail: TrailBucket, drivers: Drivers, **options: object
    ) -> tuple[Driver, str, str]:
        """1,020 keys of the 30th (two ListObjectsV2 pages); once the lister waits on a full
        hand-off, a key of the 29th (behind its position) and one of 1 December are put.
        Returns the driver, the late key and the next day's."""
        trail_prefix = "AWSLogs/111122223333/CloudTrail/us-east-1/"
        name = "111122223333_CloudTrail_us-east-1_{}_{:06d}.json.gz"
        for serial in range(1020):
            trail.put_trail_object_at(
                f"{trail_prefix}2026/11/30/" + name.format("20261130T1200Z", serial), denials=1
            )
        driver = drivers.start(**options)
        driver.wait_until(lambda: MAX_OBJECTS_HELD == driver.source.held_objects, "page 1 read")
        late = trail.put_trail_object_at(
            f"{trail_prefix}2026/11/29/" + name.format("20261129T2355Z", 0), denials=1
        )
        next_day = trail.put_trail_object_at(
            f"{trail_prefix}2026/12/01/" + name.format("20261201T0005Z", 0), denials=1
        )
        return driver, late, next_day

    def test_a_late_key_put_while_a_listing_runs_behind_its_position_is_read_next(
        self, trail, drivers
    ):
        """An outside tester's intermittent loss: a key of the 29th put while a long listing
        (two pages) of the 30th ran, behind its position, and a key of 1 December put then
        too, read on the listing's second page: the next listing started from the day before
        1 December and never saw the 29th's key. The window now starts from the newest key
        done when the previous listing began."""
        driver, late, next_day = self._late_key_behind_a_long_listing(trail, drivers)
        read_all(driver, trail, [k for k in trail.denials if k != late])
        read_all(driver, trail, [late])
        assert sorted(trail.event_ids()) == sorted(driver.event_ids())  # each once
        assert next_day in trail.denials

    def test_a_late_key_put_behind_a_listing_is_read_after_a_restart_before_the_next(
        self, trail, drivers
    ):
        """The same late key, with the watcher stopped (gracefully) before its next listing:
        the window was kept in memory only, so the restart listed from the day before the
        newest key saved (1 December) and the 29th's key was never read. The window's basis
        is saved with the keys now."""
        first, late, _ = self._late_key_behind_a_long_listing(
            trail,
            drivers,
            poll_interval_seconds=3600.0,  # one listing, then the stop
        )
        read_all(first, trail, [k for k in trail.denials if k != late])
        first.acknowledge()
        first.close()
        assert not trail.event_ids([late]) & set(first.event_ids())  # its listing passed it
        second = drivers.start()
        read_all(second, trail, [late])
        assert sorted(trail.event_ids([late])) == sorted(second.event_ids())  # nothing again

    @pytest.mark.parametrize("start_at", ["end", "beginning"])
    def test_a_stray_object_in_a_trail_prefix_does_not_move_the_window_past_later_keys(
        self, trail, drivers, start_at
    ):
        """An outside tester's loss: ``notes.txt`` put in a trail prefix sorts after every
        dated key; taken for the newest key done it became the window's floor, and no later
        CloudTrail object there was listed again (for good once a second one came, across
        restarts). The window follows the dated keys only. A second attack found such an
        object read all the same when it held CloudTrail's JSON: it is skipped by its name."""
        trail_prefix = "AWSLogs/111122223333/CloudTrail/us-east-1/"
        name = trail_prefix + "2026/11/{}/111122223333_CloudTrail_us-east-1_202611{}Z_{}.json.gz"
        old = trail.put_trail_object_at(name.format("28", "28T1200", "aaaa"))
        stray = trail.put_trail_object_at(trail_prefix + "notes.txt")  # CloudTrail's JSON in it
        driver = drivers.start(start_at=start_at)
        driver.wait_until(lambda: driver.source.turns >= 2, "a first whole listing")
        wanted = [trail.put_trail_object_at(name.format("29", "29T0100", "bbbb"))]
        read_all(driver, trail, wanted)
        trail.put(trail_prefix + "notes2.txt", b"nor this\n")
        wanted.append(trail.put_trail_object_at(name.format("29", "29T0200", "cccc")))
        read_all(driver, trail, wanted)
        driver.acknowledge()
        driver.close()
        again = drivers.start(start_at=start_at)
        last = trail.put_trail_object_at(name.format("29", "29T0300", "dddd"))
        read_all(again, trail, [last])
        seen = driver.event_ids() + again.event_ids()
        expected = trail.event_ids([*wanted, last]) | (
            trail.event_ids([old]) if start_at == "beginning" else set()
        )
        assert sorted(expected) == sorted(seen)
        assert not trail.event_ids([stray]) & set(seen)

    def test_keys_before_the_look_back_window_are_forgotten(self, trail, drivers, store):
        """The state keeps the keys done from the window's floor (the day before its basis)
        on; older go. The first listings have no window (nothing was done when they began):
        a restart after them lists everything again, so nothing is forgotten until then."""
        trail_prefix = "AWSLogs/111122223333/CloudTrail/us-east-1/"
        days = [date(2026, 11, 20), date(2026, 11, 28)]
        keys = [trail.put_trail_object("111122223333", "us-east-1", day=day) for day in days]
        driver = drivers.start()
        read_all(driver, trail)
        driver.acknowledge()
        assert set(keys) == store.s3_done_keys(BUCKET)[trail_prefix]
        driver.wait_until(lambda: driver.source.turns >= 3, "a turn begun with keys done")
        keys.append(trail.put_trail_object("111122223333", "us-east-1", day=date(2026, 11, 29)))
        read_all(driver, trail)
        driver.acknowledge()
        assert set(keys[1:]) == store.s3_done_keys(BUCKET)[trail_prefix]


class TestLookBackFloor:
    def test_the_floor_is_the_start_of_the_day_before_the_newest_key(self):
        """A CloudTrail key's date gives the floor; another layout gives the key itself."""
        prefix = "AWSLogs/1/CloudTrail/r/"
        assert f"{prefix}2026/02/28/" == lookback_floor(prefix, f"{prefix}2026/03/01/x.json.gz")
        assert f"{prefix}odd.json.gz" == lookback_floor(prefix, f"{prefix}odd.json.gz")
        assert None is lookback_floor(prefix, None)


class TestStartAt:
    def test_end_reads_only_objects_put_after_the_first_listing(self, trail, drivers, log):
        """start_at: end skips what is there at the first start, in every prefix; a prefix
        that appears later is read from its first object."""
        trail.put_trail_object("111122223333", "us-east-1")
        trail.put_trail_object("444455556666", "eu-west-1")
        driver = drivers.start(start_at="end")
        driver.read_until(lambda: bool(log.named("s3_listing_started")), "the first listing")
        after = [
            trail.put_trail_object("111122223333", "us-east-1"),
            trail.put_trail_object("555566667777", "us-east-2"),
            put_last(trail),
        ]
        read_all(driver, trail, after)
        assert sorted(trail.event_ids(after)) == sorted(driver.event_ids())

    def test_end_reads_a_later_delivery_that_sorts_before_the_newest_key_at_start(
        self, trail, drivers, log
    ):
        """An outsider found it: the same minute's next file (smaller random part) put after
        the first listing was skipped because it sorted before the newest key then."""
        prefix = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/29/"
        name = "111122223333_CloudTrail_us-east-1_20261129T1205Z_{}.json.gz"
        trail.put_trail_object_at(prefix + name.format("ffff0000"))
        driver = drivers.start(start_at="end")
        driver.read_until(lambda: bool(log.named("s3_listing_started")), "the first listing")
        after = [
            trail.put_trail_object_at(prefix + name.format("01234567")),
            trail.put_trail_object_at(prefix + name.format("ffff1111")),
            put_last(trail),
        ]
        read_all(driver, trail, after)
        assert sorted(trail.event_ids(after)) == sorted(driver.event_ids())

    def test_end_is_chosen_once_a_restart_reads_what_came_while_stopped(self, trail, drivers, log):
        """The start positions are saved at the first listing; a restart does not skip again."""
        trail.put_trail_object("111122223333", "us-east-1")
        first = drivers.start(start_at="end")
        first.read_until(lambda: bool(log.named("s3_listing_started")), "the first listing")
        first.close()
        while_stopped = trail.put_trail_object("111122223333", "us-east-1")
        second = drivers.start(start_at="end")
        read_all(second, trail, [while_stopped])
        assert sorted(trail.event_ids([while_stopped])) == sorted(second.event_ids())

    def test_a_date_reads_that_day_and_later(self, trail, drivers):
        """start_at: 2026-11-28 reads keys of the 28th and later, in every prefix."""
        trail.put_trail_object("111122223333", "us-east-1", day=date(2026, 11, 27))
        trail.put_trail_object("444455556666", "us-east-1", day=date(2026, 10, 30))
        wanted = [
            trail.put_trail_object("111122223333", "us-east-1", day=date(2026, 11, 28)),
            trail.put_trail_object("444455556666", "us-east-1", day=date(2026, 12, 1)),
            trail.put_trail_object(LAST_ACCOUNT, LAST_REGION, day=date(2026, 11, 29), org=LAST_ORG),
        ]
        driver = drivers.start(start_at="2026-11-28")
        read_all(driver, trail, wanted)
        assert sorted(trail.event_ids(wanted)) == sorted(driver.event_ids())

    def test_beginning_reads_everything(self, trail, drivers):
        """start_at: beginning reads every object already there."""
        trail.put_trail_object("111122223333", "us-east-1", day=date(2020, 1, 1))
        put_last(trail)
        driver = drivers.start(start_at="beginning")
        read_all(driver, trail)
        assert sorted(trail.event_ids()) == sorted(driver.event_ids())


class TestBadObjects:
    def test_a_bad_object_among_good_ones_is_logged_once_by_name_and_passed(
        self, trail, drivers, log
    ):
        """Not gzip/JSON, not CloudTrail, truncated gzip: one line each naming the object;
        the good objects around them are read, and a later turn does not report them again."""
        prefix = "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/29/"
        good = [trail.put_trail_object("111122223333", "us-east-1")]
        bad = {
            f"{prefix}111122223333_CloudTrail_us-east-1_20261129T0100Z_a.json.gz": b"\x00 garbage",
            f"{prefix}111122223333_CloudTrail_us-east-1_20261129T0100Z_b.json.gz": gzip.compress(
                b'{"something": "else"}'
            ),
            f"{prefix}111122223333_CloudTrail_us-east-1_20261129T0100Z_c.json.gz": gzip.compress(
                json.dumps({"Records": [{"eventID": "x"}] * 50}).encode()
            )[:40],
        }
        for key, body in bad.items():
            trail.put(key, body)
        good.append(put_last(trail))
        driver = drivers.start()
        read_all(driver, trail, good)
        put_last(trail)
        read_all(driver, trail)
        assert sorted(trail.event_ids()) == sorted(driver.event_ids())
        skipped = Counter(str(fields["path"]) for fields in log.named("s3_object_skipped"))
        assert {f"s3://{BUCKET}/{key}": 1 for key in bad} == dict(skipped)
        assert all(fields["error"] for fields in log.named("s3_object_skipped"))

    def test_an_object_deleted_between_listing_and_download_is_logged_and_passed(
        self, trail, drivers, log
    ):
        """NoSuchKey: named in one log line, the objects after it still read."""
        keys = [trail.put_trail_object("111122223333", "us-east-1") for _ in range(20)]
        driver = drivers.start()
        # The lister fills the hand-off and waits, holding the listing it already has.
        driver.wait_until(lambda: MAX_OBJECTS_HELD == driver.source.held_objects, "a full hand-off")
        gone = keys[-1]
        trail.client.delete_object(Bucket=BUCKET, Key=gone)
        read_all(driver, trail, keys[:-1])
        driver.read_until(lambda: bool(log.named("s3_object_skipped")), "the skip to be logged")
        assert [f"s3://{BUCKET}/{gone}"] == [f["path"] for f in log.named("s3_object_skipped")]
        assert "NoSuchKey" in str(log.named("s3_object_skipped")[0]["error"])

    def test_an_archived_object_is_logged_by_name_and_passed(self, trail, drivers, log):
        """GLACIER storage class (GetObject: InvalidObjectState): named, passed, rest read."""
        archived = trail.put_trail_object("111122223333", "us-east-1")
        trail.client.copy_object(
            Bucket=BUCKET, Key=archived, CopySource={"Bucket": BUCKET, "Key": archived},
            StorageClass="GLACIER",
        )  # fmt: skip
        after = [trail.put_trail_object("111122223333", "us-east-1"), put_last(trail)]
        driver = drivers.start()
        read_all(driver, trail, after)
        driver.read_until(lambda: bool(log.named("s3_object_skipped")), "the skip to be logged")
        (skipped,) = log.named("s3_object_skipped")
        assert f"s3://{BUCKET}/{archived}" == skipped["path"]
        assert "archived" in str(skipped["error"])
        assert sorted(trail.event_ids(after)) == sorted(driver.event_ids())


class TestFailures:
    def test_an_object_refused_holds_back_its_prefix_only_until_it_can_be_read(
        self, aws, trail, drivers, log, monkeypatch
    ):
        """403 AccessDenied on one object (a KMS key not granted): logged once; the objects
        after it in its prefix wait, the other prefixes are read; once it is granted, all
        are read, each once."""
        before = trail.put_trail_object("111122223333", "us-east-1")
        refused = trail.put_trail_object("111122223333", "us-east-1")
        waiting = trail.put_trail_object("111122223333", "us-east-1")
        other = put_last(trail)
        with FaultProxy(aws.url) as proxy:
            proxy.refused.add(refused)
            monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
            driver = drivers.start()
            read_all(driver, trail, [before, other])
            driver.wait_until(lambda: proxy.refusals >= 2, "a retry of the refused object")
            driver.read_once()
            assert not trail.event_ids([refused, waiting]) & set(driver.event_ids())
            proxy.refused.clear()
            read_all(driver, trail)
            driver.close()
        assert sorted(trail.event_ids()) == sorted(driver.event_ids())
        (failed,) = log.named("s3_listing_failed")
        assert "AccessDenied" in str(failed["error"])
        assert 1 == len(log.named("s3_listing_recovered"))

    def test_an_unreachable_endpoint_is_logged_once_and_retried_until_it_answers(
        self, monkeypatch, drivers, log
    ):
        """Nothing listens at first: one s3_listing_failed line; once the endpoint is up the
        listing recovers (logged) and reads the objects."""
        server = MotoServer()  # its port is chosen; nothing listens there yet
        for name, value in server.env().items():
            monkeypatch.setenv(name, value)
        driver = drivers.start()
        driver.read_until(lambda: bool(log.named("s3_listing_failed")), "the failure logged")
        with server:
            trail = TrailBucket(server.client("s3"), BUCKET).create()
            trail.put_trail_object()
            read_all(driver, trail)
            driver.close()  # before the server goes
        failures = log.named("s3_listing_failed")
        unreachable = [f for f in failures if "Could not connect" in str(f["error"])]
        assert 1 == len(unreachable), failures
        assert 1 == len(log.named("s3_listing_recovered"))
        assert sorted(trail.event_ids()) == sorted(driver.event_ids())


def s3_daemon(root: Path, aws: MotoServer, start_at: str = "beginning") -> Watcher:
    """The real daemon (a subprocess) reading the bucket, events to a file sink."""
    daemon = Watcher(root, env=aws.env())
    daemon.config.write_text(
        f"state_dir: {root / 'state'}\n"
        "sources:\n"
        f"  - type: s3\n    bucket: {BUCKET}\n    poll_interval: 0.2\n    start_at: {start_at}\n"
        "decode:\n  enabled: false\n"
        f"sinks:\n  - type: file\n    path: {daemon.events_path}\n"
    )
    return daemon


@pytest.fixture
def daemon(tmp_path: Path, aws: MotoServer) -> Iterator[Watcher]:
    running = s3_daemon(tmp_path, aws)
    yield running
    running.kill()


def daemon_ids(daemon: Watcher) -> list[str]:
    return [e["event_id"] for e in daemon.events() if e["event"] == "authz_denial"]


def wait_for_denials(daemon: Watcher, wanted: set[str], what: str) -> None:
    wait_for(lambda: wanted <= set(daemon_ids(daemon)), what)


class TestDaemon:
    def test_sigterm_then_start_emits_every_denial_once(self, trail, daemon):
        """Objects in several prefixes, a graceful stop, objects put while stopped, a start:
        every denial exactly once, each event naming its object."""
        for account in ("111122223333", "444455556666"):
            for region in ("eu-west-1", "us-east-1"):
                trail.put_trail_object(account, region)
        daemon.start()
        wait_for_denials(daemon, trail.event_ids(), "the first objects' denials")
        assert 0 == daemon.stop()
        trail.put_trail_object("111122223333", "eu-west-1")
        trail.put_trail_object("555566667777", "us-east-2")
        daemon.start()
        put_last(trail)
        wait_for_denials(daemon, trail.event_ids(), "the later objects' denials")
        assert 0 == daemon.stop()
        assert sorted(trail.event_ids()) == sorted(daemon_ids(daemon))
        paths = {e["source_path"] for e in daemon.events()}
        assert {f"s3://{BUCKET}/{key}" for key in trail.denials} == paths

    def test_kill_9_loses_nothing_and_repeats_carry_the_same_id(self, trail, daemon):
        """A crash while objects are being read: after a restart every denial is there; a
        denial emitted twice has one event_id (the ids are those of the CloudTrail eventIDs)."""
        for serial in range(30):
            trail.put_trail_object(("111122223333", "444455556666")[serial % 2], denials=5)
        daemon.start()
        wait_for(lambda: len(daemon_ids(daemon)) >= 20, "some denials before the kill")
        daemon.kill()
        daemon.start()
        put_last(trail)
        wait_for_denials(daemon, trail.event_ids(), "every denial after the restart")
        assert 0 == daemon.stop()
        assert trail.event_ids() == set(daemon_ids(daemon))
        events = [e for e in daemon.events() if e["event"] == "authz_denial"]
        by_id = {(e["event_id"], e["source_path"], e["record_index"]) for e in events}
        assert len(by_id) == len(set(daemon_ids(daemon)))  # a repeat is the same denial

    def test_kill_9_with_events_out_but_not_committed_repeats_them_with_their_ids(
        self, trail, daemon, tmp_path, tmpfs
    ):
        """A second sink on a full disk holds commits back while the first has the events;
        kill -9 then: after space returns, a restart reads the uncommitted objects again, so
        the first sink has their denials twice, with the same event_id, and nothing is lost."""
        full = tmpfs(tmp_path / "full", "size=64k")
        daemon.config.write_text(
            daemon.config.read_text() + f"  - type: file\n    path: {full / 'events.jsonl'}\n"
        )
        for serial in range(40):
            trail.put_trail_object(("111122223333", "444455556666")[serial % 2], denials=5)
        daemon.start()
        wait_for(lambda: "sink_retry" in daemon.stderr(), "the full disk to hold commits back")
        wait_for(lambda: daemon_ids(daemon), "events in the first sink")
        before_kill = set(daemon_ids(daemon))
        daemon.kill()
        remount(full, "size=8m")
        daemon.start()
        put_last(trail)
        wait_for_denials(daemon, trail.event_ids(), "every denial after the restart")
        assert 0 == daemon.stop()
        ids = Counter(daemon_ids(daemon))
        assert trail.event_ids() == set(ids)
        repeated = {event_id for event_id, times in ids.items() if times > 1}
        assert repeated  # the objects out but not committed were read again...
        assert set() == repeated - before_kill  # ...and only those
        places = {(e["event_id"], e["source_path"], e["record_index"]) for e in daemon.events()}
        assert len(ids) == len(places)  # a repeat is the same denial from the same place

    def test_a_reload_that_changes_the_source_repeats_nothing(self, trail, daemon):
        """SIGHUP with a new poll_interval rebuilds the source (what the sinks took is saved
        first): objects put before and after are each read once."""
        trail.put_trail_object("111122223333", "us-east-1")
        daemon.start()
        wait_for_denials(daemon, trail.event_ids(), "the first object's denials")
        daemon.config.write_text(
            daemon.config.read_text().replace("poll_interval: 0.2", "poll_interval: 0.3")
        )
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: "config_reloaded" in daemon.stderr(), "the reload")
        trail.put_trail_object("111122223333", "us-east-1")
        put_last(trail)
        wait_for_denials(daemon, trail.event_ids(), "the later objects' denials")
        assert 0 == daemon.stop()
        assert sorted(trail.event_ids()) == sorted(daemon_ids(daemon))
        assert 1 == daemon.stderr().count("s3_listing_started")  # start_at applied once

    def test_a_bad_object_is_logged_by_the_daemon_and_the_rest_is_read(self, trail, daemon):
        """One log line names the object; the denials of the good objects are emitted."""
        bad = (
            "AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/29/"
            "111122223333_CloudTrail_us-east-1_20261129T0000Z_bad.json.gz"
        )
        trail.put_trail_object("111122223333", "us-east-1")
        trail.put(bad, b"not gzip, not JSON")
        put_last(trail)
        daemon.start()
        wait_for_denials(daemon, trail.event_ids(), "the good objects' denials")
        assert 0 == daemon.stop()
        skipped = [e for e in daemon.log_events() if e["event"] == "s3_object_skipped"]
        assert [f"s3://{BUCKET}/{bad}"] == [e["path"] for e in skipped]
