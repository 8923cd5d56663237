"""One enriched line: a valid 131-field event (`enriched_line`), its long contexts, and the bad lines.

`event_line` builds a valid event from the pools of `fields`; `basket_context` is the 20-60 KB
context some events carry and `overlong_context` one over `MAX_LINE_BYTES`; `bad_line` spoils a
valid line in one of the ways `BAD_KINDS` lists, each counted as a bad row of a `BAD_REASONS` reason.
"""

from __future__ import annotations

import functools
import random

from .fields import (
    CTX_HEAD,
    DERIVED_HEAD,
    GA_COOKIES,
    GEOS,
    LINK_CLICKS,
    SCREEN_VIEW,
    SCREENS,
    SNOWPLOW,
    STRUCTS,
    WEB_PAGE,
    WEB_UAS,
    empty,
    field_pools,
    seg,
    ua_parser,
)
from .stamps import parse_etl_ms, random_fingerprint, random_uuid, second_text

FIELD_COUNT = 131
MAX_LINE_BYTES = 1 << 20
BAD_REASONS = ("field_count", "event_id", "etl_tstamp", "line_too_long")
ETL_FIELD, EVENT_ID_FIELD, FINGERPRINT_FIELD = 2, 6, 129


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


def basket_context(rng: random.Random, target_bytes: int) -> str:
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
        + random_uuid(rng)
        + '","items":['
        + ",".join(out)
        + "]}}"
    )


@functools.cache
def overlong_context() -> str:
    """A valid context far over 1 MiB (UTF-8 and characters alike)."""
    return basket_context(random.Random(0x10E), int(MAX_LINE_BYTES * 1.25))


# --------------------------------------------------------------------------- one line

_MOBILE_HEAD = seg("acme-ios", "mob")
_MOBILE_VERSIONS = seg("ios", "ios-0.6.2", "ssc-0.9.0-kinesis", "hadoop-1.9.0-common-0.29.0")
_MOBILE_BROWSER = seg("Acme/3.2.1 CFNetwork/811.5.4 Darwin/16.6.0", *[""] * 17)
_MOBILE_OS_DEVICE = seg("", "", "", "", "Mobile", "1", "", "", "")
_MOBILE_DERIVED = DERIVED_HEAD + ua_parser("CFNetwork", "811", "5", "iOS", "iPhone") + "]}"
_WEB_HEAD = seg("shop", "web")
_WEB_VERSIONS = seg("cf", "js-2.8.0", "clj-1.1.0-tom-0.2.0", "hadoop-1.9.0-common-0.29.0")

# Event kinds: (f5 event, f53-76, f125-128); page_ping, screen_view, transaction vary per line.
_NO_CURRENCY = empty(7)
_PAGE_VIEW = ("page_view", empty(24), seg(SNOWPLOW, "page_view", "jsonschema", "1-0-0"))
_PAGE_PING_TAIL = seg(SNOWPLOW, "page_ping", "jsonschema", "1-0-0")
_STRUCT_KINDS = tuple(
    ("struct", seg(*s, *[""] * 19), seg("com.google.analytics", "event", "jsonschema", "1-0-0"))
    for s in STRUCTS
)
_LINK_CLICK_KINDS = tuple(
    (
        "unstruct",
        seg("", "", "", "", "", u, *[""] * 18),
        seg(SNOWPLOW, "link_click", "jsonschema", "1-0-1"),
    )
    for u in LINK_CLICKS
)
_SCREEN_VIEW_TAIL = seg(SNOWPLOW, "screen_view", "jsonschema", "1-0-0")
_TRANSACTION_TAIL = seg(SNOWPLOW, "transaction", "jsonschema", "1-0-0")


def event_line(
    rng: random.Random,
    etl_ms: int,
    etl_text: str,
    event_id: str,
    fingerprint: str,
    extra_context: str = "",
) -> str:
    """One valid enriched event processed at `etl_ms` (see `fields._Pools` for the layout).

    Random choices come from two 64-bit draws, sliced, to keep generation fast.
    """
    pools = field_pools()
    currency = _NO_CURRENCY
    a = rng.getrandbits(64)
    b = rng.getrandbits(64)
    collector = etl_ms - 60_000 - (a & 0xFFFFFF) % 21_540_000  # 1 min to 6 h before ETL
    created = collector - 40 - (a >> 24 & 0xFFF)
    sent = created + 5 + (a >> 36 & 0x3FF)
    derived = collector - (sent - created)
    sec = second_text
    kind_pick = (b >> 8 & 0xFF) % 20
    pick = a >> 50
    geo = (b >> 24 & 0xFF) % len(GEOS)
    geo_fields, tz_fields = pools.geos[geo]
    if (b & 0xFF) < 16:  # ~6 % mobile app events
        head, versions = _MOBILE_HEAD, _MOBILE_VERSIONS
        user, contexts = pools.mobile_users[b >> 32 & 0x3FF]
        page_ref = empty(23)
        browser, viewport, os_device, document = _MOBILE_BROWSER, "\t", _MOBILE_OS_DEVICE, "\t"
        derived_contexts, session = _MOBILE_DERIVED, ""
        if kind_pick < 15:
            screen = SCREEN_VIEW % (SCREENS[pick % len(SCREENS)], random_uuid(rng))
            kind = ("unstruct", seg("", "", "", "", "", screen, *[""] * 18), _SCREEN_VIEW_TAIL)
        else:
            kind = _STRUCT_KINDS[pick % len(_STRUCT_KINDS)]
    else:
        head, versions = _WEB_HEAD, _WEB_VERSIONS
        ua = (b >> 16 & 0xFF) % len(WEB_UAS)
        browser, derived_contexts = pools.browsers[ua]
        os_device = pools.os_devices[ua * len(GEOS) + geo]
        user, viewport, document, session = pools.web_users[b >> 32 & 0xFFF]
        c = a >> 46
        if c & 0xF:
            page_ref = pools.page_refs[(b >> 44) % len(pools.page_refs)]
        else:
            page_ref = pools.campaign_page_refs[(b >> 44) % len(pools.campaign_page_refs)]
        contexts = WEB_PAGE + random_uuid(rng) + '"}}'
        if c & 0xF0 == 0:  # a sixteenth of the events carry page timing
            contexts += "," + pools.perf[(c >> 10) & 31]
        if c >> 12 == 0:
            contexts += "," + GA_COOKIES
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
            order = seg(
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
            currency = seg("EUR", *amounts, "", "", "EUR")
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
            CTX_HEAD + contexts + "]}",
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
    etl_ms = parse_etl_ms(etl_tstamp)
    extra = basket_context(rng, rng.randrange(20_000, 60_000)) if long_contexts else ""
    return event_line(rng, etl_ms, etl_tstamp, event_id, fingerprint, extra)


# --------------------------------------------------------------------------- bad lines

BAD_KINDS = ("fields_130", "fields_132", "no_tab", "event_id", "etl_month", "etl_word", "etl_year_zero")
BAD_KIND_REASON = {
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


def bad_line(rng: random.Random, kind: str, etl_ms: int, etl_text: str) -> str:
    if kind == "no_tab":
        return rng.choice(_NO_TAB_LINES)
    f = event_line(rng, etl_ms, etl_text, random_uuid(rng), random_fingerprint(rng)).split("\t")
    if kind == "fields_130":
        del f[-1]
    elif kind == "fields_132":
        # An unescaped tab inside the user agent: the classic way to gain a field.
        f[77:78] = ["Mozilla/5.0 (compatible; Weird", "Bot/1.0)"]
    elif kind == "event_id":
        f[EVENT_ID_FIELD] = "not-a-uuid"
    elif kind == "etl_month":
        f[ETL_FIELD] = "2017-13-45 99:00:00"
    elif kind == "etl_word":
        f[ETL_FIELD] = "yesterday"
    else:  # the bad etl_tstamp snowplow-rdb-loader's transformer specs feed (year 0, nanoseconds)
        f[ETL_FIELD] = "0000-01-01 09:06:35.493256951"
    return "\t".join(f)
