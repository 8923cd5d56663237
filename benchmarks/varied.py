"""A second archive generator, independent of `populator.samples`: parts that differ the
way real enriched archives differ from one another.

`populator.samples` writes one kind of line (one etl_tstamp per run, every event with an
MD5 fingerprint, gzip level 1, ~1.4 KB lines at 4.5:1). An archive a pipeline leaves is not that
uniform, and what a reader pays per line depends on exactly those axes, so each part here is
drawn from its own `Profile`:

- **etl_tstamp**: one per run (`run`: Hadoop Enrich stamps every event of a run with the run's
  time, `yyyy-MM-dd HH:mm:ss.SSS`); one per collector payload (`ms`: snowplow/enrich's
  `Enrich.enrichWith` reads `Clock[F].realTime` for each payload it enriches, so a stream
  archive has a new stamp every line or few); nanoseconds (`ns`: Beam Enrich 1.2.0, as in
  snowplow-rdb-loader's `widerow/json/input-events`); or whole seconds (`s`: the Scala
  analytics SDK's `ISO_INSTANT` drops a zero fraction).
- **fingerprints**: the share of events that carry one (the enrichment can be off, and
  snowplow-rdb-loader's fixtures leave most lines without one), and the hash (MD5, SHA-1,
  SHA-256, SHA-512: 32 to 128 hex digits, lower case).
- **line length**: the mix of event kinds (a server-side tracker's events of ~0.9 KB; web page
  views, pings and link clicks and mobile screen views of 1.1-2.2 KB, 1.3-1.5 KB on average;
  events with basket contexts of 2-8 KB, and now and then one of 20-45 KB).
- **compressibility**: how many sessions interleave (fewer: more repeated user, page and device
  fields inside gzip's 32 KB window) and the gzip level the writer used (1, 6 or 9): 5:1 to 11:1.
- **true_tstamp**: set on a share of the events (the tracker sent one), empty otherwise.
- **object sizes and counts**: from a few hundred events (an S3 loader flushing often) to
  60,000 or more.

Every line is a valid 131-field event, so every line's outcome is an item or a skip
(fingerprint-less): `Expected` counts both, and the distinct manifest keys. Field values are this
module's own; the properties are those of the lines in `tests/support/snowplow_lines.py` and the
Snowplow repositories it names. Deterministic for a given profile list and seed. Pure stdlib.
"""

from __future__ import annotations

import gzip
import hashlib
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

FIELD_COUNT = 131
_ETL_FIELD, _EVENT_ID_FIELD, _FINGERPRINT_FIELD = 2, 6, 129
_ETL_MODES = ("run", "ms", "ns", "s")
_MIXES = ("web", "lean", "pings", "mobile", "heavy", "server")


@dataclass(frozen=True)
class Profile:
    """How one part's lines are drawn."""

    events: int
    etl: str = "ms"  # one of _ETL_MODES
    fingerprinted: float = 1.0  # share of events with an event_fingerprint
    fingerprint_hex: int = 32  # 32 (MD5), 40 (SHA-1), 64 (SHA-256), 128 (SHA-512)
    mix: str = "web"  # one of _MIXES
    sessions: int = 400  # sessions interleaved in the part: fewer repeat more
    level: int = 6  # gzip level of the writer
    true_tstamp: float = 0.0  # share of events with a true_tstamp
    ua_parser: float = 0.2  # share of sessions with the ua_parser enrichment's derived context
    geo: bool = True  # the IP lookups enrichment on (geo_* fields set)

    def __post_init__(self) -> None:
        if self.etl not in _ETL_MODES or self.mix not in _MIXES:
            raise ValueError(f"unknown etl mode or mix in {self}")
        if self.fingerprint_hex not in (32, 40, 64, 128) or not 0 <= self.fingerprinted <= 1:
            raise ValueError(f"bad fingerprint settings in {self}")


# The issue-14 shape, as near as the properties allow: stream enrich (a new etl_tstamp every
# payload or so), web page views and pings of ~1.3 KB, every event fingerprinted, gzip level 6.
TYPICAL = Profile(60_000, mix="lean", ua_parser=0.0, sessions=150)

# One archive that varies along every axis above: 34 objects, about 500k lines.
VARIED: tuple[Profile, ...] = (
    TYPICAL,
    Profile(50_000, etl="run", level=1, sessions=2000),  # Hadoop Enrich, a fast writer
    Profile(40_000, fingerprinted=0.0),  # the fingerprint enrichment off
    Profile(40_000, etl="ns", fingerprinted=0.5, fingerprint_hex=64, true_tstamp=0.3),
    Profile(50_000, mix="server", level=9),  # server-side events: short, very repetitive
    Profile(40_000, mix="pings", sessions=120, level=9),
    Profile(30_000, mix="mobile", etl="s", fingerprint_hex=40, sessions=800),
    Profile(15_000, mix="heavy", fingerprint_hex=128),  # 2-8 KB lines, a few of 20-45 KB
    Profile(40_000, sessions=5000, level=1),  # many sessions: little repetition
    Profile(40_000, etl="run", fingerprinted=0.8, true_tstamp=0.1),
    *(Profile(500 + 300 * k, mix="lean", fingerprinted=0.9, sessions=60) for k in range(24)),  # small objects
)


def scaled(profiles: Sequence[Profile], factor: float) -> tuple[Profile, ...]:
    """The same parts with `factor` times the events (at least 50 each): `--quick`'s archive."""
    return tuple(replace(profile, events=max(50, round(profile.events * factor))) for profile in profiles)


@dataclass(frozen=True)
class Expected:
    """What a correct dry run over the archive finds."""

    objects: list[str]  # relative paths, in listing order
    lines: int
    items: int  # lines with a fingerprint (each a manifest item)
    no_fingerprint: int
    distinct_keys: int
    inflated_bytes: int
    compressed_bytes: int


# --------------------------------------------------------------------------- field values

_SCHEMA = "iglu:com.snowplowanalytics.snowplow"
_CONTEXTS = '{"schema":"' + _SCHEMA + '/contexts/jsonschema/1-0-0","data":['
_DERIVED = '{"schema":"' + _SCHEMA + '/contexts/jsonschema/1-0-1","data":['
_UNSTRUCT = '{"schema":"' + _SCHEMA + '/unstruct_event/jsonschema/1-0-0","data":'

_BROWSERS = (  # useragent, br_name, br_family, br_version, br_renderengine, os_name, os_family, os_maker
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36",
        "Chrome 126",
        "Chrome",
        "126.0.0.0",
        "WEBKIT",
        "Windows 10",
        "Windows",
        "Microsoft Corporation",
    ),
    (
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Firefox 128",
        "Firefox",
        "128.0",
        "GECKO",
        "Ubuntu",
        "Linux",
        "Canonical Ltd.",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        "Mobile Safari",
        "Safari",
        "17.5",
        "WEBKIT",
        "iOS 17 (iPhone)",
        "iOS",
        "Apple Inc.",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4.1 Safari/605.1.15",
        "Safari 17",
        "Safari",
        "17.4.1",
        "WEBKIT",
        "Mac OS X",
        "Mac OS X",
        "Apple Inc.",
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/125.0.6422.165 Mobile Safari/537.36",
        "Chrome Mobile",
        "Chrome",
        "125.0.6422.165",
        "WEBKIT",
        "Android 14",
        "Android",
        "Google Inc.",
    ),
)
_PLACES = (  # country, region, city, zip, lat, lon, region name, timezone
    ("FR", "69", "Lyon", "69002", "45.7485", "4.8467", "Auvergne-Rhône-Alpes", "Europe/Paris"),
    ("GB", "ENG", "Manchester", "M1", "53.4809", "-2.2374", "England", "Europe/London"),
    ("US", "NY", "Brooklyn", "11201", "40.6943", "-73.9903", "New York", "America/New_York"),
    ("DE", "HH", "Hamburg", "20095", "53.5507", "9.993", "Hamburg", "Europe/Berlin"),
    ("JP", "27", "Ōsaka", "530-0001", "34.6937", "135.5022", "Ōsaka", "Asia/Tokyo"),
    ("IN", "KA", "Bengaluru", "560001", "12.9634", "77.5855", "Karnataka", "Asia/Kolkata"),
    ("", "", "", "", "", "", "", ""),
)
_PATHS = (
    ("/", "", "Acme – home"),
    ("/fr/chaussures", "couleur=bleu&taille=42", "Chaussures bleues – Boutique"),
    ("/en/blog/2024/06/why-we-moved-to-kinesis", "", "Why we moved to Kinesis | Acme blog"),
    ("/search", "q=t%C3%A9l%C3%A9phone&page=2", "Résultats pour « téléphone »"),
    ("/checkout/basket", "", "Your basket (3)"),
    ("/ja/%E8%A8%98%E4%BA%8B/123", "", "記事 123 | Acme"),
    ("/p/SKU-004217-waterproof-trail-running-jacket-men", "variant=navy&size=M", "Trail jacket, navy"),
)
_REFERRERS = (  # page_referrer, host, path, query, medium, source, term
    ("", "", "", "", "", "", ""),
    ("https://www.google.fr/", "www.google.fr", "/", "", "search", "Google", ""),
    (
        "https://www.bing.com/search?q=trail+jacket",
        "www.bing.com",
        "/search",
        "q=trail+jacket",
        "search",
        "Bing",
        "trail jacket",
    ),
    ("https://t.co/a1B2c3D4", "t.co", "/a1B2c3D4", "", "social", "Twitter", ""),
    ("https://shop.acme.example/", "shop.acme.example", "/", "", "internal", "", ""),
)
_CAMPAIGNS = (
    ("", "", "", "", ""),
    ("email", "newsletter", "", "hero", "summer_sale_2024"),
    ("cpc", "google", "trail jacket", "ad-17", "brand"),
)
_SCREENS = ("Home", "Basket", "Product – Trail jacket", "設定", "Checkout")
_PRODUCTS = tuple(
    f'{{"sku":"SKU-{n:06d}","name":"{name}","price":{price},"quantity":{quantity},"category":"{category}"}}'
    for n, (name, price, quantity, category) in enumerate(
        [
            ("Trail jacket", 129.9, 1, "outdoor/jackets"),
            ("Café moulu 250 g", 6.5, 3, "épicerie"),
            ("Thé vert 抹茶", 12.0, 1, "tea"),
            ("Running socks (3 pairs)", 14.99, 2, "outdoor/socks"),
            ("Headlamp 400 lm", 39.0, 1, "outdoor/lights"),
            ("Gift card", 50.0, 1, "gifts"),
        ]
        * 4,
        start=4100,
    )
)


def _hex(rng: random.Random, digits: int) -> str:
    return f"{rng.getrandbits(4 * digits):0{digits}x}"


def _uuid(rng: random.Random) -> str:
    h = _hex(rng, 32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[rng.getrandbits(2)]}{h[17:20]}-{h[20:]}"


def _stamp(ms: int, mode: str = "ms", ns: int = 0) -> str:
    text = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ms // 1000))
    if mode == "s":
        return text
    if mode == "ns":
        return f"{text}.{ms % 1000:03d}{ns:06d}"
    return f"{text}.{ms % 1000:03d}"


@dataclass
class _Session:
    user: list[str]  # fields 12-17
    place: tuple[str, ...]
    browser: tuple[str, ...]
    screen: tuple[str, str]
    session_id: str
    path: tuple[str, str, str]
    referrer: tuple[str, ...]
    campaign: tuple[str, ...]
    view_id: str
    pings: int
    doc_height: str
    ua_parser: bool  # the ua_parser enrichment's derived context (on for some pipelines only)


def _session(rng: random.Random, profile: Profile) -> _Session:
    user_id = f"user-{rng.randrange(10**7):07d}" if rng.random() < 0.25 else ""
    ip = (
        f"2a01:e0a:{rng.getrandbits(12):x}:{rng.getrandbits(16):x}::{rng.getrandbits(12):x}"
        if rng.random() < 0.4
        else f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(256)}"
    )
    browser = _BROWSERS[rng.randrange(len(_BROWSERS))]
    mobile = browser[6] in ("iOS", "Android")
    screen = ("390", "844") if mobile else rng.choice((("1920", "1080"), ("2560", "1440"), ("1366", "768")))
    return _Session(
        user=[user_id, ip, str(rng.getrandbits(31)), _uuid(rng), str(rng.randrange(1, 60)), _uuid(rng)],
        place=_PLACES[rng.randrange(len(_PLACES))] if profile.geo else _PLACES[-1],
        browser=browser,
        screen=screen,
        session_id=_uuid(rng),
        path=_PATHS[rng.randrange(len(_PATHS))],
        referrer=_REFERRERS[rng.randrange(len(_REFERRERS))],
        campaign=_CAMPAIGNS[0] if rng.random() < 0.8 else _CAMPAIGNS[rng.randrange(1, len(_CAMPAIGNS))],
        view_id=_uuid(rng),
        pings=0,
        doc_height=str(2000 + rng.randrange(6000)),
        ua_parser=rng.random() < profile.ua_parser,
    )


def _ua_parser(browser: tuple[str, ...]) -> str:
    family, version = browser[2], browser[3]
    major, _, minor = version.partition(".")
    return (
        '{"schema":"iglu:com.snowplowanalytics.snowplow/ua_parser_context/jsonschema/1-0-0","data":{'
        f'"useragentFamily":"{family}","useragentMajor":"{major}","useragentMinor":"{minor.split(".")[0]}",'
        f'"useragentPatch":null,"useragentVersion":"{family} {version}","osFamily":"{browser[6]}",'
        '"osMajor":null,"osMinor":null,"osPatch":null,"osPatchMinor":null,'
        f'"osVersion":"{browser[5]}","deviceFamily":"Other"}}}}'
    )


def _kind(rng: random.Random, mix: str) -> str:
    roll = rng.random()
    if mix == "pings":
        return "page_ping" if roll < 0.9 else "page_view"
    if mix == "lean":
        return "page_ping" if roll < 0.55 else "page_view" if roll < 0.9 else "struct"
    if mix == "mobile":
        return "screen_view" if roll < 0.8 else "struct"
    if mix == "heavy":
        return "basket" if roll < 0.7 else "page_view"
    for kind, below in (("page_view", 0.4), ("page_ping", 0.7), ("link_click", 0.85)):
        if roll < below:
            return kind
    return "struct"


def _line(rng: random.Random, session: _Session, profile: Profile, etl: str, collector_ms: int) -> list[str]:
    """One enriched event's 131 fields (the fingerprint field left for the caller)."""
    f = [""] * FIELD_COUNT
    kind = _kind(rng, profile.mix)
    mobile_app = profile.mix == "mobile"
    created = collector_ms - 200 - rng.randrange(3000)
    sent = created + 20 + rng.randrange(400)
    f[0], f[1] = ("acme-ios", "mob") if mobile_app else ("shop-eu", "web")
    f[2] = etl
    f[3], f[4] = _stamp(collector_ms), _stamp(created)
    f[6] = _uuid(rng)
    f[8] = "sp1" if not mobile_app else "iosTracker"
    f[9] = "js-3.23.0" if not mobile_app else "ios-6.0.1"
    f[10], f[11] = "ssc-3.2.0-kinesis", "snowplow-enrich-kinesis-4.1.0"
    f[12:18] = session.user
    place = session.place
    f[18:25], f[25:29] = place[:7], ["", "", "", ""]
    path, query, title = session.path
    if not mobile_app:
        fragment = "reviews" if rng.random() < 0.05 else ""
        url = (
            "https://shop.acme.example"
            + path
            + ("?" + query if query else "")
            + ("#" + fragment if fragment else "")
        )
        referrer = session.referrer
        f[29], f[30], f[31] = url, title, referrer[0]
        f[32:38] = ["https", "shop.acme.example", "443", path, query, fragment]
        if referrer[0]:
            f[38:44] = ["https", referrer[1], "443", referrer[2], referrer[3], ""]
            f[44:47] = referrer[4:7]
        f[47:52] = session.campaign
    if mobile_app:
        contexts = [
            f'{{"schema":"{_SCHEMA}/mobile_context/jsonschema/1-0-2","data":{{"osType":"ios",'
            '"osVersion":"17.5","deviceManufacturer":"Apple Inc.","deviceModel":"iPhone15,2",'
            '"carrier":"Orange F","networkType":"wifi"}}',
            f'{{"schema":"{_SCHEMA}/client_session/jsonschema/1-0-2","data":{{"userId":"{session.user[3]}",'
            f'"sessionId":"{session.session_id}","sessionIndex":{session.user[4]},'
            f'"storageMechanism":"SQLITE","firstEventId":"{session.view_id}"}}}}',
        ]
    else:
        contexts = [f'{{"schema":"{_SCHEMA}/web_page/jsonschema/1-0-0","data":{{"id":"{session.view_id}"}}}}']
    if kind == "page_ping":
        session.pings += 1
        x = rng.randrange(0, 40)
        y = 400 * session.pings + rng.randrange(400)
        f[5] = "page_ping"
        f[69:73] = [str(x), str(x + rng.randrange(200)), str(y), str(y + rng.randrange(900))]
        f[125:129] = ["com.snowplowanalytics.snowplow", "page_ping", "jsonschema", "1-0-0"]
    elif kind == "page_view":
        session.view_id = _uuid(rng)
        session.pings = 0
        if rng.random() < 0.3:
            session.path = _PATHS[rng.randrange(len(_PATHS))]
            session.doc_height = str(2000 + rng.randrange(6000))
        f[5] = "page_view"
        f[125:129] = ["com.snowplowanalytics.snowplow", "page_view", "jsonschema", "1-0-0"]
        if profile.mix != "lean" and rng.random() < 0.2:
            nav = collector_ms - 5000 - rng.randrange(5000)
            contexts.append(
                '{"schema":"iglu:org.w3/PerformanceTiming/jsonschema/1-0-0","data":{"navigationStart":'
                f'{nav},"fetchStart":{nav + rng.randrange(5)},"requestStart":{nav + 40 + rng.randrange(90)},'
                f'"responseStart":{nav + 150 + rng.randrange(300)},"domInteractive":'
                f'{nav + 600 + rng.randrange(900)},"domComplete":{nav + 1600 + rng.randrange(2500)},'
                f'"loadEventEnd":{nav + 1700 + rng.randrange(2600)}}}}}'
            )
    elif kind == "link_click":
        f[5] = "unstruct"
        target = _PATHS[rng.randrange(len(_PATHS))][0]
        f[58] = (
            _UNSTRUCT + '{"schema":"' + _SCHEMA + '/link_click/jsonschema/1-0-1","data":{"targetUrl":'
            f'"https://shop.acme.example{target}","elementId":"nav-{rng.randrange(40)}",'
            '"elementClasses":["nav-link","menu"],"elementTarget":""}}}'
        )
        f[125:129] = ["com.snowplowanalytics.snowplow", "link_click", "jsonschema", "1-0-1"]
    elif kind == "screen_view":
        f[5] = "unstruct"
        screen = _SCREENS[rng.randrange(len(_SCREENS))]
        f[58] = (
            f'{_UNSTRUCT}{{"schema":"{_SCHEMA}/screen_view/jsonschema/1-0-0",'
            f'"data":{{"name":"{screen}","id":"{_uuid(rng)}"}}}}}}'
        )
        f[125:129] = ["com.snowplowanalytics.snowplow", "screen_view", "jsonschema", "1-0-0"]
    elif kind == "struct":
        f[5] = "struct"
        f[52:57] = ["basket", "add", f"SKU-{rng.randrange(10**6):06d}", "size=M", str(rng.randrange(5, 200))]
        f[125:129] = ["com.google.analytics", "event", "jsonschema", "1-0-0"]
    else:  # a basket: product contexts, 2-8 KB, now and then 20-45 KB
        f[5] = "unstruct"
        count = rng.randrange(8, 60) if rng.random() > 0.01 else rng.randrange(150, 450)
        start = rng.randrange(len(_PRODUCTS))
        items = ",".join(_PRODUCTS[(start + k) % len(_PRODUCTS)] for k in range(count))
        f[58] = (
            f'{_UNSTRUCT}{{"schema":"iglu:com.acme/basket_snapshot/jsonschema/1-0-0",'
            f'"data":{{"basketId":"{_uuid(rng)}","items":[{items}]}}}}}}'
        )
        f[125:129] = ["com.acme", "basket_snapshot", "jsonschema", "1-0-0"]
    f[52] = _CONTEXTS + ",".join(contexts) + "]}"
    browser = session.browser
    if not mobile_app:
        f[77] = browser[0]
        f[78:83] = [browser[1], browser[2], browser[3], "Browser", browser[4]]
        f[83] = "fr-FR" if place[0] == "FR" else "en-US"
        f[84:94] = ["1", "0", "0", "0", "0", "0", "0", "0", "0", "1"]
        f[94:97] = ["24", str(int(session.screen[0]) - 15), str(int(session.screen[1]) - 130)]
        f[97:100] = [browser[5], browser[6], browser[7]]
        f[106:108] = [str(int(session.screen[0]) - 15), session.doc_height]
        f[122] = _DERIVED + _ua_parser(browser) + "]}" if session.ua_parser else ""
        f[123] = session.session_id
    else:
        f[77] = "Acme/6.2 CFNetwork/1494.0.7 Darwin/23.4.0"
    f[100] = place[7] or "Europe/London"
    f[101], f[102] = ("Mobile", "1") if browser[6] in ("iOS", "Android") or mobile_app else ("Computer", "0")
    f[103:105] = list(session.screen)
    f[105] = "UTF-8" if not mobile_app else ""
    f[115] = place[7]
    f[119] = _stamp(sent)
    f[124] = _stamp(collector_ms - (sent - created))
    if rng.random() < profile.true_tstamp:
        f[130] = _stamp(created - rng.randrange(50))
    return f


_ORDER_STATES = ("created", "paid", "shipped", "delivered", "refunded")


def _server_line(rng: random.Random, session: _Session, etl: str, collector_ms: int) -> list[str]:
    """A server-side tracker's event (platform `srv`): no page, browser or device fields, a small
    self-describing event and one context; 0.6-0.9 KB."""
    f = [""] * FIELD_COUNT
    created = collector_ms - 5 - rng.randrange(200)
    f[0], f[1], f[2] = "orders-api", "srv", etl
    f[3], f[4], f[5], f[6] = _stamp(collector_ms), _stamp(created), "unstruct", _uuid(rng)
    f[8:12] = ["orders", "py-1.0.1", "ssc-3.2.0-kinesis", "snowplow-enrich-kinesis-4.1.0"]
    f[12], f[13] = session.user[0] or f"user-{rng.randrange(10**7):07d}", "10.0.12.7"
    f[52] = (
        f'{_CONTEXTS}{{"schema":"iglu:com.acme/request/jsonschema/1-0-0","data":{{"requestId":'
        f'"{_hex(rng, 16)}","service":"orders-api","region":"eu-west-1"}}}}]}}'
    )
    state = _ORDER_STATES[rng.randrange(len(_ORDER_STATES))]
    f[58] = (
        f'{_UNSTRUCT}{{"schema":"iglu:com.acme/order_{state}/jsonschema/1-0-0","data":{{"orderId":'
        f'"ORD-{rng.randrange(10**8):08d}","total":{rng.randrange(500, 90000) / 100},"currency":"EUR"}}}}}}'
    )
    f[77] = "python-requests/2.32.3"
    f[119] = _stamp(created + 1)
    f[124] = _stamp(collector_ms - 1)
    f[125:129] = ["com.acme", "order_" + state, "jsonschema", "1-0-0"]
    return f


def part_lines(profile: Profile, seed: int, start_ms: int) -> tuple[list[bytes], int, set[tuple[str, str]]]:
    """The lines of one part (each with its newline), its fingerprinted count, and its keys."""
    rng = random.Random(seed)
    sessions = [_session(rng, profile) for _ in range(profile.sessions)]
    lines: list[bytes] = []
    keys: set[tuple[str, str]] = set()
    fingerprinted = 0
    collector_ms = start_ms
    etl_ms = start_ms + 45_000
    run_etl = _stamp(etl_ms, "s" if profile.etl == "s" else "ms")
    etl_text = run_etl
    for _ in range(profile.events):
        collector_ms += rng.randrange(0, 4)
        if profile.etl != "run" and rng.random() < 0.7:  # a new payload: a new etl_tstamp
            etl_ms = max(etl_ms + rng.randrange(0, 3), collector_ms + 200 + rng.randrange(400))
            etl_text = _stamp(etl_ms, profile.etl, rng.randrange(10**6))
        session = sessions[rng.randrange(len(sessions))]
        if rng.random() < 0.002:  # sessions end, others start
            sessions[sessions.index(session)] = session = _session(rng, profile)
        if profile.mix == "server":
            fields = _server_line(rng, session, etl_text, collector_ms)
        else:
            fields = _line(rng, session, profile, etl_text, collector_ms)
        if rng.random() < profile.fingerprinted:
            fields[_FINGERPRINT_FIELD] = _hex(rng, profile.fingerprint_hex)
            fingerprinted += 1
            keys.add((fields[_EVENT_ID_FIELD], fields[_FINGERPRINT_FIELD]))
        lines.append(("\t".join(fields) + "\n").encode())
    return lines, fingerprinted, keys


def write_archive(
    root: Path, profiles: Sequence[Profile], seed: int = 14
) -> tuple[Expected, set[tuple[str, str]]]:
    """One run folder under `root` with a gzip part per profile; what a dry run must find, and
    the manifest keys a run must write."""
    run = root / "run=2026-11-20-10-00-00"
    run.mkdir(parents=True, exist_ok=True)
    start_ms = 1_795_168_800_000  # 2026-11-20 10:00:00 UTC
    objects: list[str] = []
    lines = items = inflated = compressed = 0
    keys: set[tuple[str, str]] = set()
    for index, profile in enumerate(profiles):
        part_seed = int.from_bytes(hashlib.sha256(f"{seed}/{index}".encode()).digest()[:8], "big")
        part, fingerprinted, part_keys = part_lines(profile, part_seed, start_ms + index * 600_000)
        data = b"".join(part)
        packed = _gzip(data, profile.level)
        name = f"part-{index:05d}.gz"
        (run / name).write_bytes(packed)
        objects.append(f"{run.name}/{name}")
        lines += len(part)
        items += fingerprinted
        inflated += len(data)
        compressed += len(packed)
        keys |= part_keys
    return Expected(objects, lines, items, lines - items, len(keys), inflated, compressed), keys


def _gzip(data: bytes, level: int) -> bytes:
    """A gzip member as `gzip -<level>` writes it (mtime 0, so the bytes are reproducible)."""
    return gzip.compress(data, compresslevel=level, mtime=0)
