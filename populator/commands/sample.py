"""Realistic enriched-event archives for `populator demo`, the tests and the benchmarks.

`write_archive` lays out a Snowplow enriched archive (`<root>/run=YYYY-MM-DD-HH-MM-SS/part-*`)
and returns what a correct populator must find in it. The expectation comes from what the
generator chose to write (event ids, fingerprints, run times), never from reading the files back.
Everything is deterministic for a given `SampleSpec` (including `now`). Pure stdlib.
"""

from __future__ import annotations

import calendar
import functools
import gzip
import itertools
import os
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = [
    "BAD_REASONS",
    "FIELD_COUNT",
    "FORMATS",
    "MAX_LINE_BYTES",
    "TTL_SECONDS",
    "ExpectedManifest",
    "SampleSpec",
    "enriched_line",
    "run_id",
    "write_archive",
]

FIELD_COUNT = 131
TTL_SECONDS = 15_552_000  # 180 days, as the Snowplow shredder sets it
MAX_LINE_BYTES = 1 << 20
FORMATS = ("gz", "gzip", "spark", "plain", "multimember")
BAD_REASONS = ("field_count", "event_id", "etl_tstamp", "line_too_long")

_GZIP_LEVEL = 1  # fast to write; the tool's decompression cost barely depends on the level
_ETL_FIELD, _EVENT_ID_FIELD, _FINGERPRINT_FIELD = 2, 6, 129


@dataclass(frozen=True)
class SampleSpec:
    """What to put in a generated archive."""

    runs: int = 3  # run= folders, spread from first_run_days_ago up to ~1 day before `now`
    parts_per_run: int = 4
    events_per_part: int = 2500  # distinct events per part, before any extra line
    seed: int = 7
    now: datetime | None = None  # "today" (UTC); default datetime.now(UTC)
    first_run_days_ago: float = 30.0
    expired_runs: int = 0  # extra runs > 180 days before `now` (their items expired by TTL)
    duplicate_rate: float = 0.02  # share of events written twice in a row (same line)
    cross_run_duplicates: int = 20  # events repeated (same id and fingerprint) in a later run
    same_id_other_fingerprint: int = 10  # event ids seen again with another fingerprint
    # Share of the events written without an event_fingerprint (valid events the populator skips:
    # the enrichment was off when they were enriched). Snowplow's own test fixtures leave about half
    # of their lines without one; a pipeline that keeps a manifest has it on, so fewer here.
    no_fingerprint_share: float = 0.2
    bad_lines_per_part: int = 3  # cycling over every bad kind (see BAD_REASONS)
    blank_lines_per_part: int = 1
    long_line_every: int = 0  # if > 0, every Nth event carries a 20-60 KB context
    overlong_lines: int = 0  # lines over 1 MiB (bad rows, line_too_long), spread over parts
    millis_absent_runs: int = 1  # runs whose etl_tstamp has no `.SSS`
    formats: tuple[str, ...] = FORMATS  # cycled over parts (see FORMATS)
    markers: bool = True  # _SUCCESS, `_$folder$` keys, a 0-byte part, a stray/ folder
    plain_named_gz: bool = False  # one plain-text part named `.gz`


@dataclass
class ExpectedManifest:
    """The manifest and the line tallies a correct run over the archive must produce."""

    items: dict[tuple[str, str], set[int]]
    expired: set[tuple[str, str]]
    bad_rows: Counter[str]
    blank_lines: int
    good_lines: int  # lines that give a manifest item (a valid event with a fingerprint)
    lines: int
    objects: list[str]
    runs: list[str]
    no_fingerprint: int = 0  # lines that are valid events without a fingerprint: skipped, not bad

    def live_items(self) -> dict[tuple[str, str], set[int]]:
        """Items not expired by TTL as of the spec's `now`."""
        return {k: v for k, v in self.items.items() if k not in self.expired}

    def first_etl_time(self, key: tuple[str, str]) -> int:
        """Earliest etlTime of a key."""
        return min(self.items[key])


def run_id(dt: datetime) -> str:
    """The run folder name for a run started at `dt` (UTC)."""
    return dt.strftime("run=%Y-%m-%d-%H-%M-%S")


# --------------------------------------------------------------------------- small helpers


def _uuid4(rng: random.Random) -> str:
    n = rng.getrandbits(128)
    n = (n & ~(0xF000 << 64)) | (4 << 76)
    n = (n & ~(0xC000 << 48)) | (0x8000 << 48)
    h = f"{n:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _fingerprint(rng: random.Random) -> str:
    return f"{rng.getrandbits(128):032x}"


@functools.lru_cache(maxsize=1 << 16)
def _second_text(s: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s))


def _fmt_ms(ms: int) -> str:
    """Epoch milliseconds -> `yyyy-MM-dd HH:mm:ss.SSS`."""
    s, milli = divmod(ms, 1000)
    return f"{_second_text(s)}.{milli:03d}"


def _parse_etl_ms(text: str) -> int:
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S"):
        try:
            dt = datetime.strptime(text, fmt)
        except ValueError:
            continue
        return calendar.timegm(dt.timetuple()) * 1000 + dt.microsecond // 1000
    raise ValueError(f"not an etl_tstamp: {text!r}")


def _epoch_ms(dt: datetime) -> int:
    return calendar.timegm(dt.utctimetuple()) * 1000 + dt.microsecond // 1000


# --------------------------------------------------------------------------- field pools

_CTX_HEAD = '{"schema":"iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0","data":['
_WEB_PAGE = '{"schema":"iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0","data":{"id":"'
_UNSTRUCT_HEAD = '{"schema":"iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0","data":'

# (country, region, city, zipcode, latitude, longitude, region_name, timezone)
_GEOS = (
    ("FR", "IDF", "Paris", "75001", "48.8582", "2.3387", "Île-de-France", "Europe/Paris"),
    ("JP", "13", "Tokyo", "100-0001", "35.6895", "139.6917", "Tōkyō", "Asia/Tokyo"),
    ("US", "CA", "San Francisco", "94107", "37.7697", "-122.3933", "California", "America/Los_Angeles"),
    ("DE", "BE", "Berlin", "10115", "52.52", "13.405", "Land Berlin", "Europe/Berlin"),
    ("BR", "SP", "São Paulo", "01000-000", "-23.5475", "-46.6361", "São Paulo", "America/Sao_Paulo"),
    ("GB", "ENG", "London", "EC1A", "51.5085", "-0.1257", "England", "Europe/London"),
    ("", "", "", "", "", "", "", ""),
)

# (page_url, page_title, scheme, host, port, path, query, fragment)
_PAGES = (
    ("https://shop.example.com/", "Acme Shop – Home", "https", "shop.example.com", "443", "/", "", ""),
    (
        "https://shop.example.com/produits/caf%C3%A9-moulu?ref=nav",
        "Café – 日本語 🚀",
        "https",
        "shop.example.com",
        "443",
        "/produits/caf%C3%A9-moulu",
        "ref=nav",
        "",
    ),
    (
        "https://blog.example.org/2017/05/%C3%BCber-uns#team",
        "Über uns — Das Team",
        "https",
        "blog.example.org",
        "443",
        "/2017/05/%C3%BCber-uns",
        "",
        "team",
    ),
    (
        "https://www.example.jp/ja/%E8%A8%98%E4%BA%8B/123",
        "日本語のページ | 例 🎌",
        "https",
        "www.example.jp",
        "443",
        "/ja/%E8%A8%98%E4%BA%8B/123",
        "",
        "",
    ),
    (
        "https://shop.example.com/search?q=t%C3%A9l%C3%A9phone&page=2",
        "Résultats pour « téléphone » (page 2)",
        "https",
        "shop.example.com",
        "443",
        "/search",
        "q=t%C3%A9l%C3%A9phone&page=2",
        "",
    ),
    # U+2028 LINE SEPARATOR is legal in a field and must not split the line.
    (
        "https://shop.example.com/checkout/step-2",
        "Checkout\u2028Step 2 – 配送",
        "https",
        "shop.example.com",
        "443",
        "/checkout/step-2",
        "",
        "",
    ),
    (
        "http://legacy.example.com:8080/index.php?id=42",
        'Say "hi" \\ legacy',
        "http",
        "legacy.example.com",
        "8080",
        "/index.php",
        "id=42",
        "",
    ),
)

# (page_referrer, scheme, host, port, path, query, medium, source, term)
_REFERRERS = (
    ("", "", "", "", "", "", "", "", ""),
    ("https://www.google.com/", "https", "www.google.com", "443", "/", "", "search", "Google", ""),
    (
        "https://www.bing.com/search?q=caf%C3%A9+moulu",
        "https",
        "www.bing.com",
        "443",
        "/search",
        "q=caf%C3%A9+moulu",
        "search",
        "Bing",
        "café moulu",
    ),
    ("https://shop.example.com/", "https", "shop.example.com", "443", "/", "", "internal", "", ""),
    ("https://t.co/xYz12", "https", "t.co", "443", "/xYz12", "", "social", "Twitter", ""),
)

_CAMPAIGNS = (
    ("", "", "", "", ""),
    ("email", "newsletter", "", "hero-banner", "spring_sale_2017"),
    ("cpc", "google", "café moulu", "ad-7", "brand"),
)


def _ua_parser(family: str, major: str, minor: str, os_family: str, device: str) -> str:
    return (
        '{"schema":"iglu:com.snowplowanalytics.snowplow/ua_parser_context/jsonschema/1-0-0",'
        f'"data":{{"useragentFamily":"{family}","useragentMajor":"{major}",'
        f'"useragentMinor":"{minor}","useragentPatch":null,"useragentVersion":"{family} '
        f'{major}.{minor}","osFamily":"{os_family}","osMajor":null,"osMinor":null,'
        f'"osPatch":null,"osPatchMinor":null,"osVersion":"{os_family}",'
        f'"deviceFamily":"{device}"}}}}'
    )


# Web user agents: (useragent, br_name, br_family, br_version, br_type, br_renderengine,
# os_name, os_family, os_manufacturer, dvce_type, dvce_ismobile, screen w, screen h,
# ua_parser context)
_WEB_UAS = (
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/58.0.3029.110 Safari/537.36",
        "Chrome 58",
        "Chrome",
        "58.0.3029.110",
        "Browser",
        "WEBKIT",
        "Windows 10",
        "Windows",
        "Microsoft Corporation",
        "Computer",
        "0",
        "1920",
        "1080",
        _ua_parser("Chrome", "58", "0", "Windows", "Other"),
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 10_3_2 like Mac OS X) AppleWebKit/603.2.4 (KHTML, "
        "like Gecko) Version/10.0 Mobile/14F89 Safari/602.1",
        "Mobile Safari",
        "Safari",
        "10.0",
        "Browser (mobile)",
        "WEBKIT",
        "iOS 10 (iPhone)",
        "iOS",
        "Apple Inc.",
        "Mobile",
        "1",
        "375",
        "667",
        _ua_parser("Mobile Safari", "10", "0", "iOS", "iPhone"),
    ),
    (
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:53.0) Gecko/20100101 Firefox/53.0",
        "Firefox 53",
        "Firefox",
        "53.0",
        "Browser",
        "GECKO",
        "Linux",
        "Linux",
        "Other",
        "Computer",
        "0",
        "2560",
        "1440",
        _ua_parser("Firefox", "53", "0", "Ubuntu", "Other"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 7.0; SM-G930F Build/NRD90M) AppleWebKit/537.36 (KHTML, like "
        "Gecko) SamsungBrowser/5.4 Chrome/51.0.2704.106 Mobile Safari/537.36",
        "Chrome Mobile",
        "Chrome",
        "51.0.2704.106",
        "Browser (mobile)",
        "WEBKIT",
        "Android 7.x",
        "Android",
        "Google Inc.",
        "Mobile",
        "1",
        "360",
        "640",
        _ua_parser("Samsung Internet", "5", "4", "Android", "Samsung SM-G930F"),
    ),
)

_MOBILE_CONTEXT = (
    '{"schema":"iglu:com.snowplowanalytics.snowplow/mobile_context/jsonschema/1-0-1","data":'
    '{"osType":"ios","osVersion":"10.3.2","deviceManufacturer":"Apple Inc.",'
    '"deviceModel":"iPhone9,3","carrier":"Orange F","networkType":"wifi",'
    '"networkTechnology":null,"openIdfa":null,"appleIdfa":"%s","appleIdfv":"%s"}}'
)
_CLIENT_SESSION = (
    '{"schema":"iglu:com.snowplowanalytics.snowplow/client_session/jsonschema/1-0-1","data":'
    '{"userId":"%s","sessionId":"%s","sessionIndex":%d,"previousSessionId":null,'
    '"storageMechanism":"SQLITE"}}'
)
_SCREEN_VIEW = (
    _UNSTRUCT_HEAD + '{"schema":"iglu:com.snowplowanalytics.snowplow/screen_view/jsonschema/1-0-0"'
    ',"data":{"name":"%s","id":"%s"}}}'
)
_SCREENS = ("Home", "Basket", "Produit – Café", "設定", "Checkout 🚀")

_LINK_CLICKS = tuple(
    _UNSTRUCT_HEAD
    + '{"schema":"iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1","data":'
    + f'{{"targetUrl":"{url}","elementId":"{eid}","elementClasses":{classes},'
    + f'"elementTarget":"{target}"}}}}}}'
    for url, eid, classes, target in (
        ("https://shop.example.com/panier", "cta-basket", '["btn","btn-primary"]', "_self"),
        ("https://blog.example.org/2017/05/%C3%BCber-uns", "nav-about", '["nav-link"]', ""),
        ("https://www.example.jp/ja/", "lang-ja", '["lang","flag-jp"]', "_blank"),
    )
)

_STRUCTS = (
    ("checkout", "add-to-basket", "SKU-004217", "size=M", "12.5"),
    ("video", "play", "intro-日本語", "", ""),
    ("form", "submit", "newsletter", "", ""),
    ("search", "filter", "price<50", "café", "3"),
)

# Weighted event kinds, picked with rng.choice.
_WEB_KINDS = ("page_view",) * 9 + ("page_ping",) * 5 + ("struct",) * 3 + ("unstruct",) * 2 + ("transaction",)
_MOB_KINDS = ("screen_view",) * 3 + ("struct",)


def _perf_timing(r: random.Random) -> str:
    nav = 1_496_311_200_000 + r.randrange(10**9)
    fetch = nav + r.randrange(1, 20)
    dns = fetch + r.randrange(0, 40)
    conn = dns + r.randrange(0, 60)
    req = conn + r.randrange(20, 120)
    resp = req + r.randrange(30, 400)
    resp_end = resp + r.randrange(1, 80)
    dom = resp_end + r.randrange(10, 300)
    load = dom + r.randrange(100, 1500)
    return (
        '{"schema":"iglu:org.w3/PerformanceTiming/jsonschema/1-0-0","data":{'
        f'"navigationStart":{nav},"unloadEventStart":0,"unloadEventEnd":0,"redirectStart":0,'
        f'"redirectEnd":0,"fetchStart":{fetch},"domainLookupStart":{fetch},'
        f'"domainLookupEnd":{dns},"connectStart":{dns},"connectEnd":{conn},'
        f'"secureConnectionStart":{dns + 2},"requestStart":{req},"responseStart":{resp},'
        f'"responseEnd":{resp_end},"domLoading":{resp_end + 2},"domInteractive":{dom},'
        f'"domContentLoadedEventStart":{dom + 1},"domContentLoadedEventEnd":{dom + 9},'
        f'"domComplete":{load},"loadEventStart":{load},"loadEventEnd":{load + 3}}}}}'
    )


_GA_COOKIES = (
    '{"schema":"iglu:com.google.analytics/cookies/jsonschema/1-0-0","data":'
    '{"__utma":"111872281.1341958201.1491553418.1491553418.1491553418.1","__utmz":'
    '"111872281.1491553418.1.1.utmcsr=(direct)|utmccn=(direct)|utmcmd=(none)"}}'
)


_DERIVED_HEAD = '{"schema":"iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1","data":['
_SNOWPLOW = "com.snowplowanalytics.snowplow"
_LANGS = ("fr-FR", "ja-JP", "en-US", "de-DE")  # br_lang per web user agent


def _seg(*values: str) -> str:
    """Consecutive fields as one string (so a line is joined from ~27 pieces, not 131)."""
    return "\t".join(values)


def _empty(n: int) -> str:
    """`n` consecutive empty fields."""
    return "\t" * (n - 1)


@dataclass(frozen=True)
class _Pools:
    """Pre-joined runs of fields, built once from a fixed seed.

    A line is `"\\t".join` of, in order: f0-1 head, f2 etl, f3 collector, f4 created, f5 event,
    f6 event_id, f7 txn_id, f8-11 versions, f12-17 user, f18-28 geo, f29-51 page/referrer/
    campaign, f52 contexts, f53-76 kind fields, f77-94 browser, f95-96 viewport, f97-105 os
    and device, f106-107 document size, f108-114 currencies, f115-118 timezone, f119 sent,
    f120-121, f122 derived contexts, f123 session, f124 derived tstamp, f125-128 event
    vendor/name/format/version, f129 fingerprint, f130 true_tstamp.
    """

    geos: tuple[tuple[str, str], ...]  # (f18-28, f115-118)
    browsers: tuple[tuple[str, str], ...]  # (f77-94, f122) per web user agent
    os_devices: tuple[str, ...]  # f97-105 per (web user agent, geo)
    web_users: tuple[tuple[str, str, str, str], ...]  # (f12-17, f95-96, f106-107, f123)
    mobile_users: tuple[tuple[str, str], ...]  # (f12-17, mobile contexts)
    page_refs: tuple[str, ...]  # f29-51 per (page, referrer), no campaign
    campaign_page_refs: tuple[str, ...]  # f29-51 per (page, referrer, campaign)
    perf: tuple[str, ...]


@functools.cache
def _pools() -> _Pools:
    r = random.Random(0x5A3B1E)
    geos = tuple((_seg(*g[:7], "", "", "", ""), _seg(g[7], "", "", "")) for g in _GEOS)
    browsers = tuple(
        (
            _seg(*ua[:6], lang, "1", "0", "0", "0", "0", "0", "0", "0", "0", "1", "24"),
            _DERIVED_HEAD + ua[13] + "]}",
        )
        for ua, lang in zip(_WEB_UAS, _LANGS, strict=True)
    )
    os_devices = tuple(
        _seg(*ua[6:9], g[7] or "Europe/London", *ua[9:13], "UTF-8") for ua in _WEB_UAS for g in _GEOS
    )

    def ip() -> str:
        return f"{r.randrange(1, 224)}.{r.randrange(256)}.{r.randrange(256)}.x"

    web_users = []
    for _ in range(4096):
        user_id = f"u-{r.randrange(10**8):08d}" if r.random() < 0.2 else ""
        fields = _seg(
            user_id,
            ip(),
            str(r.getrandbits(31)),
            f"{r.getrandbits(64):016x}",
            str(r.randrange(1, 40)),
            _uuid4(r),
        )
        width = r.randrange(320, 1900)
        viewport = _seg(str(width), str(r.randrange(480, 1000)))
        document = _seg(str(width), str(r.randrange(1000, 9000)))
        web_users.append((fields, viewport, document, _uuid4(r)))
    mobile_users = []
    for _ in range(1024):
        user = _uuid4(r)
        contexts = (
            _MOBILE_CONTEXT % (_uuid4(r), user)
            + ","
            + _CLIENT_SESSION % (user, _uuid4(r), r.randrange(1, 60))
        )
        mobile_users.append((_seg("", ip(), "", "", "", _uuid4(r)), contexts))

    def page_ref(page: tuple[str, ...], ref: tuple[str, ...], mkt: tuple[str, ...]) -> str:
        return _seg(page[0], page[1], ref[0], *page[2:8], *ref[1:6], "", *ref[6:9], *mkt)

    page_refs = tuple(page_ref(p, f, _CAMPAIGNS[0]) for p in _PAGES for f in _REFERRERS)
    campaign_page_refs = tuple(page_ref(p, f, c) for p in _PAGES for f in _REFERRERS for c in _CAMPAIGNS[1:])
    perf = tuple(_perf_timing(r) for _ in range(32))
    return _Pools(
        geos, browsers, os_devices, tuple(web_users), tuple(mobile_users), page_refs, campaign_page_refs, perf
    )


@functools.cache
def _basket_items() -> tuple[str, ...]:
    r = random.Random(0xBA5CE7)
    names = (
        "Café moulu 250 g",
        "Thé vert 抹茶",
        "Tasse 🚀",
        "Filtre n°4",
        "Bouilloire",
        "Moulin à café",
        "Sirop d'érable",
        "Chocolat 70 %",
    )
    return tuple(
        f'{{"sku":"SKU-{r.randrange(10**6):06d}","name":"{r.choice(names)}",'
        f'"price":{r.randrange(100, 9999) / 100},"quantity":{r.randrange(1, 6)},'
        f'"tags":["{r.choice(("promo", "new", "bio", "fairtrade"))}","lot-{r.randrange(999)}"]}}'
        for _ in range(1500)
    )


def _basket_context(rng: random.Random, target_bytes: int) -> str:
    items = _basket_items()
    start = rng.randrange(len(items))
    out: list[str] = []
    size = 0
    i = start
    while size < target_bytes:
        item = items[i % len(items)]
        out.append(item)
        size += len(item) + 1
        i += 1
    return (
        '{"schema":"iglu:com.acme/basket_snapshot/jsonschema/1-0-0","data":{"basketId":"'
        + _uuid4(rng)
        + '","items":['
        + ",".join(out)
        + "]}}"
    )


@functools.cache
def _overlong_context() -> str:
    """A valid context far over 1 MiB (UTF-8 and characters alike)."""
    return _basket_context(random.Random(0x10E), int(MAX_LINE_BYTES * 1.25))


# --------------------------------------------------------------------------- one line

_MOBILE_HEAD = _seg("acme-ios", "mob")
_MOBILE_VERSIONS = _seg("ios", "ios-0.6.2", "ssc-0.9.0-kinesis", "hadoop-1.9.0-common-0.29.0")
_MOBILE_BROWSER = _seg("Acme/3.2.1 CFNetwork/811.5.4 Darwin/16.6.0", *[""] * 17)
_MOBILE_OS_DEVICE = _seg("", "", "", "", "Mobile", "1", "", "", "")
_MOBILE_DERIVED = _DERIVED_HEAD + _ua_parser("CFNetwork", "811", "5", "iOS", "iPhone") + "]}"
_WEB_HEAD = _seg("shop", "web")
_WEB_VERSIONS = _seg("cf", "js-2.8.0", "clj-1.1.0-tom-0.2.0", "hadoop-1.9.0-common-0.29.0")

# Event kinds: (f5 event, f53-76, f125-128); page_ping, screen_view, transaction vary per line.
_NO_CURRENCY = _empty(7)
_PAGE_VIEW = ("page_view", _empty(24), _seg(_SNOWPLOW, "page_view", "jsonschema", "1-0-0"))
_PAGE_PING_TAIL = _seg(_SNOWPLOW, "page_ping", "jsonschema", "1-0-0")
_STRUCT_KINDS = tuple(
    ("struct", _seg(*s, *[""] * 19), _seg("com.google.analytics", "event", "jsonschema", "1-0-0"))
    for s in _STRUCTS
)
_LINK_CLICK_KINDS = tuple(
    (
        "unstruct",
        _seg("", "", "", "", "", u, *[""] * 18),
        _seg(_SNOWPLOW, "link_click", "jsonschema", "1-0-1"),
    )
    for u in _LINK_CLICKS
)
_SCREEN_VIEW_TAIL = _seg(_SNOWPLOW, "screen_view", "jsonschema", "1-0-0")
_TRANSACTION_TAIL = _seg(_SNOWPLOW, "transaction", "jsonschema", "1-0-0")


def _line(
    rng: random.Random,
    etl_ms: int,
    etl_text: str,
    event_id: str,
    fingerprint: str,
    extra_context: str = "",
) -> str:
    """One valid enriched event processed at `etl_ms` (see `_Pools` for the layout).

    Random choices come from two 64-bit draws, sliced, to keep generation fast.
    """
    pools = _pools()
    currency = _NO_CURRENCY
    a = rng.getrandbits(64)
    b = rng.getrandbits(64)
    collector = etl_ms - 60_000 - (a & 0xFFFFFF) % 21_540_000  # 1 min to 6 h before ETL
    created = collector - 40 - (a >> 24 & 0xFFF)
    sent = created + 5 + (a >> 36 & 0x3FF)
    derived = collector - (sent - created)
    sec = _second_text
    kind_pick = (b >> 8 & 0xFF) % 20
    pick = a >> 50
    geo = (b >> 24 & 0xFF) % len(_GEOS)
    geo_fields, tz_fields = pools.geos[geo]
    if (b & 0xFF) < 16:  # ~6 % mobile app events
        head, versions = _MOBILE_HEAD, _MOBILE_VERSIONS
        user, contexts = pools.mobile_users[b >> 32 & 0x3FF]
        page_ref = _empty(23)
        browser, viewport, os_device, document = _MOBILE_BROWSER, "\t", _MOBILE_OS_DEVICE, "\t"
        derived_contexts, session = _MOBILE_DERIVED, ""
        if kind_pick < 15:
            screen = _SCREEN_VIEW % (_SCREENS[pick % len(_SCREENS)], _uuid4(rng))
            kind = ("unstruct", _seg("", "", "", "", "", screen, *[""] * 18), _SCREEN_VIEW_TAIL)
        else:
            kind = _STRUCT_KINDS[pick % len(_STRUCT_KINDS)]
    else:
        head, versions = _WEB_HEAD, _WEB_VERSIONS
        ua = (b >> 16 & 0xFF) % len(_WEB_UAS)
        browser, derived_contexts = pools.browsers[ua]
        os_device = pools.os_devices[ua * len(_GEOS) + geo]
        user, viewport, document, session = pools.web_users[b >> 32 & 0xFFF]
        c = a >> 46
        if c & 0xF:
            page_ref = pools.page_refs[(b >> 44) % len(pools.page_refs)]
        else:
            page_ref = pools.campaign_page_refs[(b >> 44) % len(pools.campaign_page_refs)]
        contexts = _WEB_PAGE + _uuid4(rng) + '"}}'
        if c & 0xF0 == 0:  # a sixteenth of the events carry page timing
            contexts += "," + pools.perf[(c >> 10) & 31]
        if c >> 12 == 0:
            contexts += "," + _GA_COOKIES
        if kind_pick < 9:
            kind = _PAGE_VIEW
        elif kind_pick < 14:
            x, y = pick & 0xFF, pick >> 2 & 0x1FFF
            offsets = f"{x}\t{x + (pick & 0x1FF)}\t{y}\t{y + (pick >> 4 & 0x3FF)}"
            kind = ("page_ping", "\t" * 20 + offsets, _PAGE_PING_TAIL)
        elif kind_pick < 17:
            kind = _STRUCT_KINDS[pick % len(_STRUCT_KINDS)]
        elif kind_pick < 19:
            kind = _LINK_CLICK_KINDS[pick % len(_LINK_CLICK_KINDS)]
        else:
            total = 5 + pick % 39_000 / 100
            amounts = (f"{total:.2f}", f"{total / 6:.2f}", "4.90")
            order = _seg(
                "",
                "",
                "",
                "",
                "",
                "",
                f"ORD-{pick % 10**7:07d}",
                "web",
                *amounts,
                "Lyon",
                "Rhône",
                "France",
                *[""] * 10,
            )
            kind = ("transaction", order, _TRANSACTION_TAIL)
            currency = _seg("EUR", *amounts, "", "", "EUR")
    if extra_context:
        contexts += "," + extra_context
    return "\t".join(
        (
            head,
            etl_text,
            f"{sec(collector // 1000)}.{collector % 1000:03d}",
            f"{sec(created // 1000)}.{created % 1000:03d}",
            kind[0],
            event_id,
            str(100_000 + (a >> 46) % 900_000),
            versions,
            user,
            geo_fields,
            page_ref,
            _CTX_HEAD + contexts + "]}",
            kind[1],
            browser,
            viewport,
            os_device,
            document,
            currency,
            tz_fields,
            f"{sec(sent // 1000)}.{sent % 1000:03d}",
            "\t",  # f120 refr_domain_userid, f121 refr_dvce_tstamp
            derived_contexts if a >> 61 == 0 else "",  # the ua_parser enrichment, on 1/8 of the time
            session,
            f"{sec(derived // 1000)}.{derived % 1000:03d}",
            kind[2],
            fingerprint,
            "",
        )
    )


def enriched_line(
    rng: random.Random,
    *,
    event_id: str,
    etl_tstamp: str,
    fingerprint: str,
    long_contexts: bool = False,
) -> str:
    """One valid 131-field enriched event line (no newline).

    `etl_tstamp` must be `yyyy-MM-dd HH:mm:ss[.SSS]`; the other timestamps precede it.
    `long_contexts` adds a 20-60 KB context.
    """
    etl_ms = _parse_etl_ms(etl_tstamp)
    extra = _basket_context(rng, rng.randrange(20_000, 60_000)) if long_contexts else ""
    return _line(rng, etl_ms, etl_tstamp, event_id, fingerprint, extra)


# --------------------------------------------------------------------------- bad lines

_BAD_KINDS = ("fields_130", "fields_132", "no_tab", "event_id", "etl_month", "etl_word", "etl_year_zero")
_BAD_REASON = {
    "fields_130": "field_count",
    "fields_132": "field_count",
    "no_tab": "field_count",
    "event_id": "event_id",
    "etl_month": "etl_tstamp",
    "etl_word": "etl_tstamp",
    "etl_year_zero": "etl_tstamp",
}
_NO_TAB_LINES = (
    '{"line":"MjAxNy0wNi0wMQlTRk8yCTIwMw==","errors":[{"level":"error","message":'
    '"Line does not match CloudFront header or data regex"}],'
    '"failure_tstamp":"2017-06-01T10:17:42.000Z"}',
    "#Version: 1.0",
    "this is not an enriched event at all – ceci n'est pas un événement",
)


def _bad_line(rng: random.Random, kind: str, etl_ms: int, etl_text: str) -> str:
    if kind == "no_tab":
        return rng.choice(_NO_TAB_LINES)
    f = _line(rng, etl_ms, etl_text, _uuid4(rng), _fingerprint(rng)).split("\t")
    if kind == "fields_130":
        del f[-1]
    elif kind == "fields_132":
        # An unescaped tab inside the user agent: the classic way to gain a field.
        f[77:78] = ["Mozilla/5.0 (compatible; Weird", "Bot/1.0)"]
    elif kind == "event_id":
        f[_EVENT_ID_FIELD] = "not-a-uuid"
    elif kind == "etl_month":
        f[_ETL_FIELD] = "2017-13-45 99:00:00"
    elif kind == "etl_word":
        f[_ETL_FIELD] = "yesterday"
    else:  # the bad etl_tstamp snowplow-rdb-loader's transformer specs feed (year 0, nanoseconds)
        f[_ETL_FIELD] = "0000-01-01 09:06:35.493256951"
    return "\t".join(f)


# --------------------------------------------------------------------------- archive


@dataclass
class _Run:
    id: str
    etl_ms: int
    etl_text: str
    etl_time: int
    spark_uuid: str
    parts: list[list[str]]  # part -> units: one line, or a line + "\n" + its duplicate


def _check(spec: SampleSpec) -> None:
    negative = [
        k
        for k, v in vars(spec).items()
        if isinstance(v, int) and not isinstance(v, bool) and k != "seed" and v < 0
    ]
    if negative:
        raise ValueError(f"SampleSpec fields must not be negative: {', '.join(negative)}")
    if spec.runs + spec.expired_runs < 1 or spec.parts_per_run < 1:
        raise ValueError("SampleSpec needs at least one run and one part per run")
    if not spec.formats or set(spec.formats) - set(FORMATS):
        raise ValueError(f"SampleSpec.formats must be a non-empty subset of {FORMATS}")
    if not 0.0 <= spec.duplicate_rate <= 1.0:
        raise ValueError("SampleSpec.duplicate_rate must be within [0, 1]")
    if not 0.0 <= spec.no_fingerprint_share <= 1.0:
        raise ValueError("SampleSpec.no_fingerprint_share must be within [0, 1]")


def _plan_runs(spec: SampleSpec, now: datetime, rng: random.Random) -> list[_Run]:
    starts: list[datetime] = []
    for i in range(spec.expired_runs):
        days = 200 + 7 * (spec.expired_runs - 1 - i)
        starts.append(now - timedelta(days=days, minutes=rng.randrange(600)))
    first = spec.first_run_days_ago
    spacing = (first - 1.0) / (spec.runs - 1) if spec.runs > 1 else 0.0
    jitter = min(1800.0, abs(spacing) * 86400 / 4)
    for i in range(spec.runs):
        days = first - spacing * i
        starts.append(now - timedelta(days=days, seconds=rng.uniform(-jitter, jitter)))
    starts.sort()
    absent = set(rng.sample(range(len(starts)), min(spec.millis_absent_runs, len(starts))))
    runs: list[_Run] = []
    previous_etl: datetime | None = None
    for i, start in enumerate(starts):
        start = start.replace(microsecond=0)
        if previous_etl is not None and start <= previous_etl:
            start = previous_etl.replace(microsecond=0) + timedelta(minutes=1)
        etl = start + timedelta(seconds=rng.randrange(120, 600))
        if i not in absent:
            etl += timedelta(milliseconds=rng.randrange(1000))
        previous_etl = etl
        etl_ms = _epoch_ms(etl)
        text = _fmt_ms(etl_ms)
        runs.append(
            _Run(
                id=run_id(start),
                etl_ms=etl_ms,
                etl_text=text[:-4] if i in absent else text,
                etl_time=etl_ms // 1000,
                spark_uuid=_uuid4(rng),
                parts=[[] for _ in range(spec.parts_per_run)],
            )
        )
    return runs


def _part_name(fmt: str, index: int, run: _Run, plain_as_gz: bool) -> str:
    if fmt == "gzip":
        return f"part-{index:05d}.gzip"
    if fmt == "spark":
        return f"part-{index:05d}-{run.spark_uuid}.txt.gz"
    if fmt == "plain":
        return f"part-{index:05d}.gz" if plain_as_gz else f"part-{index:05d}"
    return f"part-{index:05d}.gz"


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=_GZIP_LEVEL, mtime=0)


def _multimember(data: bytes, members: int, mid_line: bool) -> bytes:
    """`data` as `members` concatenated gzip members; optionally one cut falls mid-line."""
    cuts = [0]
    for k in range(1, members):
        target = max(len(data) * k // members, cuts[-1])
        nl = data.find(b"\n", target)
        cut = len(data) if nl < 0 else nl + 1
        if mid_line and k == 1:
            # Move the cut 40 bytes into a following line long enough to hold it.
            while 0 <= nl < len(data):
                nxt = data.find(b"\n", nl + 1)
                if nxt < 0:
                    break
                if nxt - nl > 41:
                    cut = nl + 41
                    break
                nl = nxt
        cuts.append(max(cut, cuts[-1]))
    cuts.append(len(data))
    return b"".join(_gzip(data[a:b]) for a, b in itertools.pairwise(cuts))


def _write_part(path: Path, fmt: str, units: list[str], members: int, mid_line: bool) -> int:
    """Encode, compress and write one part; return its size in bytes."""
    data = ("\n".join(units) + "\n").encode() if units else b""
    if fmt == "multimember":
        payload = _multimember(data, members, mid_line)
    elif fmt == "plain":
        payload = data
    else:
        payload = _gzip(data)
    path.write_bytes(payload)
    return len(payload)


def write_archive(root: Path, spec: SampleSpec = SampleSpec()) -> ExpectedManifest:
    """Write a sample archive under `root` (created if needed) and return what it holds."""
    _check(spec)
    now = spec.now or datetime.now(UTC)
    now = now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)
    rng = random.Random(spec.seed)
    runs = _plan_runs(spec, now, rng)
    items: dict[tuple[str, str], set[int]] = {}
    originals: list[tuple[int, str, str, str]] = []  # (run index, event_id, fingerprint, line)
    good = blank = no_fingerprint = 0
    bad: Counter[str] = Counter()

    # Good events, with natural duplicates right after their original; a share of them without
    # a fingerprint (no draw at all when the share is 0: the archive stays what it was).
    n_good = 0
    every = spec.long_line_every
    share = spec.no_fingerprint_share
    for r, run in enumerate(runs):
        for part in run.parts:
            for _ in range(spec.events_per_part):
                event_id, fp = _uuid4(rng), _fingerprint(rng)
                if share and rng.random() < share:
                    fp = ""
                extra = ""
                n_good += 1
                if every > 0 and n_good % every == 0:
                    extra = _basket_context(rng, rng.randrange(20_000, 60_000))
                line = _line(rng, run.etl_ms, run.etl_text, event_id, fp, extra)
                copies = 2 if rng.random() < spec.duplicate_rate else 1
                part.append("\n".join([line] * copies))
                if not fp:
                    no_fingerprint += copies
                    continue
                good += copies
                items[(event_id, fp)] = {run.etl_time}
                originals.append((r, event_id, fp, line))

    def insert(run: _Run, unit: str) -> None:
        part = rng.choice(run.parts)
        part.insert(rng.randrange(len(part) + 1), unit)

    # The same event (id and fingerprint) enriched again in a later run.
    earlier = [o for o in originals if o[0] < len(runs) - 1]
    for r, event_id, fp, line in rng.sample(earlier, min(spec.cross_run_duplicates, len(earlier))):
        target = runs[rng.randrange(r + 1, len(runs))]
        fields = line.split("\t")
        fields[_ETL_FIELD] = target.etl_text
        insert(target, "\t".join(fields))
        items[(event_id, fp)].add(target.etl_time)
        good += 1

    # An event id seen again with another fingerprint: a distinct manifest item.
    picks = rng.sample(originals, min(spec.same_id_other_fingerprint, len(originals)))
    for r, event_id, _fp, line in picks:
        target = runs[rng.randrange(r, len(runs))]
        fp = _fingerprint(rng)
        fields = line.split("\t")
        fields[_ETL_FIELD], fields[_FINGERPRINT_FIELD] = target.etl_text, fp
        fields[119] = _fmt_ms(target.etl_ms - rng.randrange(60_000, 3_600_000))
        insert(target, "\t".join(fields))
        items.setdefault((event_id, fp), set()).add(target.etl_time)
        good += 1

    # Bad and blank lines in every part, overlong lines spread over the parts.
    all_parts = [(run, part) for run in runs for part in run.parts]
    k = 0
    for run, part in all_parts:
        for _ in range(spec.bad_lines_per_part):
            kind = _BAD_KINDS[k % len(_BAD_KINDS)]
            k += 1
            part.insert(rng.randrange(len(part) + 1), _bad_line(rng, kind, run.etl_ms, run.etl_text))
            bad[_BAD_REASON[kind]] += 1
        for _ in range(spec.blank_lines_per_part):
            part.insert(rng.randrange(len(part) + 1), "")
            blank += 1
    for i in range(spec.overlong_lines):
        run, part = all_parts[i * len(all_parts) // spec.overlong_lines]
        line = _line(rng, run.etl_ms, run.etl_text, _uuid4(rng), _fingerprint(rng), _overlong_context())
        part.insert(rng.randrange(len(part) + 1), line)
        bad["line_too_long"] += 1

    # Write the parts (compression releases the GIL, so a few threads help).
    root.mkdir(parents=True, exist_ok=True)
    jobs: list[tuple[Path, str, list[str], int, bool]] = []
    mid_line_pending = True
    plain_as_gz_pending = spec.plain_named_gz
    for p, (run, part) in enumerate(all_parts):
        index = p % spec.parts_per_run
        fmt = spec.formats[p % len(spec.formats)]
        plain_as_gz = fmt == "plain" and plain_as_gz_pending
        plain_as_gz_pending = plain_as_gz_pending and not plain_as_gz
        mid_line = fmt == "multimember" and mid_line_pending
        mid_line_pending = mid_line_pending and not mid_line
        (root / run.id).mkdir(exist_ok=True)
        path = root / run.id / _part_name(fmt, index, run, plain_as_gz)
        jobs.append((path, fmt, part, 3 + index % 2, mid_line))
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        sizes = list(pool.map(lambda job: _write_part(*job), jobs))
    objects = [job[0].relative_to(root).as_posix() for job, size in zip(jobs, sizes, strict=True) if size]

    if spec.markers:
        for run in runs:
            (root / run.id).mkdir(exist_ok=True)
            (root / run.id / "_SUCCESS").write_bytes(b"")
            (root / f"{run.id}_$folder$").write_bytes(b"")
        (root / runs[0].id / f"part-{spec.parts_per_run:05d}").write_bytes(b"")
        stray = root / "stray"
        stray.mkdir(exist_ok=True)
        stray_lines = [
            _line(rng, runs[0].etl_ms, runs[0].etl_text, _uuid4(rng), _fingerprint(rng)) for _ in range(5)
        ]
        (stray / "part-00000.gz").write_bytes(_gzip(("\n".join(stray_lines) + "\n").encode()))
        (root / "stray_$folder$").write_bytes(b"")

    now_s = now.timestamp()
    expired = {k for k, times in items.items() if max(times) + TTL_SECONDS < now_s}
    return ExpectedManifest(
        items=items,
        expired=expired,
        bad_rows=bad,
        blank_lines=blank,
        good_lines=good,
        lines=good + blank + sum(bad.values()) + no_fingerprint,
        objects=sorted(objects),
        runs=[run.id for run in runs],
        no_fingerprint=no_fingerprint,
    )
