"""The field values an enriched line is drawn from: geos, pages, referrers, user agents, users, contexts.

`field_pools()` pre-joins runs of consecutive fields once, from a fixed seed (see `_Pools` for a
line's layout), so `lines.event_line` joins a line from ~27 pieces instead of 131 fields. Every
value is realistic Snowplow output, with the non-ASCII text, escapes and U+2028 a real archive holds.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

from .stamps import random_uuid

CTX_HEAD = '{"schema":"iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0","data":['
WEB_PAGE = '{"schema":"iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0","data":{"id":"'
_UNSTRUCT_HEAD = '{"schema":"iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0","data":'

# (country, region, city, zipcode, latitude, longitude, region_name, timezone)
GEOS = (
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


def ua_parser(family: str, major: str, minor: str, os_family: str, device: str) -> str:
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
WEB_UAS = (
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
        ua_parser("Chrome", "58", "0", "Windows", "Other"),
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
        ua_parser("Mobile Safari", "10", "0", "iOS", "iPhone"),
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
        ua_parser("Firefox", "53", "0", "Ubuntu", "Other"),
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
        ua_parser("Samsung Internet", "5", "4", "Android", "Samsung SM-G930F"),
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
SCREEN_VIEW = (
    _UNSTRUCT_HEAD + '{"schema":"iglu:com.snowplowanalytics.snowplow/screen_view/jsonschema/1-0-0"'
    ',"data":{"name":"%s","id":"%s"}}}'
)
SCREENS = ("Home", "Basket", "Produit – Café", "設定", "Checkout 🚀")

LINK_CLICKS = tuple(
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

STRUCTS = (
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


GA_COOKIES = (
    '{"schema":"iglu:com.google.analytics/cookies/jsonschema/1-0-0","data":'
    '{"__utma":"111872281.1341958201.1491553418.1491553418.1491553418.1","__utmz":'
    '"111872281.1491553418.1.1.utmcsr=(direct)|utmccn=(direct)|utmcmd=(none)"}}'
)


DERIVED_HEAD = '{"schema":"iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1","data":['
SNOWPLOW = "com.snowplowanalytics.snowplow"
_LANGS = ("fr-FR", "ja-JP", "en-US", "de-DE")  # br_lang per web user agent


def seg(*values: str) -> str:
    """Consecutive fields as one string (so a line is joined from ~27 pieces, not 131)."""
    return "\t".join(values)


def empty(n: int) -> str:
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
def field_pools() -> _Pools:
    r = random.Random(0x5A3B1E)
    geos = tuple((seg(*g[:7], "", "", "", ""), seg(g[7], "", "", "")) for g in GEOS)
    browsers = tuple(
        (
            seg(*ua[:6], lang, "1", "0", "0", "0", "0", "0", "0", "0", "0", "1", "24"),
            DERIVED_HEAD + ua[13] + "]}",
        )
        for ua, lang in zip(WEB_UAS, _LANGS, strict=True)
    )
    os_devices = tuple(
        seg(*ua[6:9], g[7] or "Europe/London", *ua[9:13], "UTF-8") for ua in WEB_UAS for g in GEOS
    )

    def ip() -> str:
        return f"{r.randrange(1, 224)}.{r.randrange(256)}.{r.randrange(256)}.x"

    web_users = []
    for _ in range(4096):
        user_id = f"u-{r.randrange(10**8):08d}" if r.random() < 0.2 else ""
        fields = seg(
            user_id,
            ip(),
            str(r.getrandbits(31)),
            f"{r.getrandbits(64):016x}",
            str(r.randrange(1, 40)),
            random_uuid(r),
        )
        width = r.randrange(320, 1900)
        viewport = seg(str(width), str(r.randrange(480, 1000)))
        document = seg(str(width), str(r.randrange(1000, 9000)))
        web_users.append((fields, viewport, document, random_uuid(r)))
    mobile_users = []
    for _ in range(1024):
        user = random_uuid(r)
        contexts = (
            _MOBILE_CONTEXT % (random_uuid(r), user)
            + ","
            + _CLIENT_SESSION % (user, random_uuid(r), r.randrange(1, 60))
        )
        mobile_users.append((seg("", ip(), "", "", "", random_uuid(r)), contexts))

    def page_ref(page: tuple[str, ...], ref: tuple[str, ...], mkt: tuple[str, ...]) -> str:
        return seg(page[0], page[1], ref[0], *page[2:8], *ref[1:6], "", *ref[6:9], *mkt)

    page_refs = tuple(page_ref(p, f, _CAMPAIGNS[0]) for p in _PAGES for f in _REFERRERS)
    campaign_page_refs = tuple(page_ref(p, f, c) for p in _PAGES for f in _REFERRERS for c in _CAMPAIGNS[1:])
    perf = tuple(_perf_timing(r) for _ in range(32))
    return _Pools(
        geos, browsers, os_devices, tuple(web_users), tuple(mobile_users), page_refs, campaign_page_refs, perf
    )
