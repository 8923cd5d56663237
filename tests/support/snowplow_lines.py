"""Enriched-event lines with the properties of the lines in Snowplow's own repositories.

Every value here is our own; only the properties were taken from the real fixtures, and each is
named with the repository and file it was observed in:

- **9-digit fractions in etl_tstamp, next to 3-digit ones in the same file**:
  snowplow/snowplow-rdb-loader `modules/transformer-batch/src/test/resources/widerow/json/input-events`
  and `modules/common-transformer-stream/src/test/resources/processing-spec/1/input/events` (Beam
  Enrich 1.2.0 wrote nanoseconds, e.g. `2021-10-13 20:22:10.423072674`; `09:05:42.365999999`).
- **3-digit fractions** (Hadoop Enrich's `yyyy-MM-dd HH:mm:ss.SSS`): snowplow/snowplow
  `3-enrich/scala-hadoop-shred/.../jobs/good/EventDeduplicationSpec.scala` (`2014-06-01 14:04:11.639`),
  snowplow/snowplow-python-analytics-sdk `tests/test_event_transformer.py` and
  snowplow/snowplow-scala-analytics-sdk `src/test/.../EventSpec.scala` (`2017-01-26 00:01:25.292`).
- **No fraction at all**: snowplow/snowplow-python-analytics-sdk `tests/test_event_transformer.py`
  holds a timestamp without one (`collector_tstamp` `2013-11-26 00:02:05`), and the Scala analytics
  SDK's `encode/TsvEncoder.scala` prints timestamps with `ISO_INSTANT`, which drops a zero fraction
  (and prints 3, 6 or 9 digits otherwise): an etl_tstamp without `.SSS` is what it writes.
- **event_fingerprint and true_tstamp both empty** (a line that ends in two tabs): most lines of
  snowplow-rdb-loader's `processing-spec/*/input/events` and `widerow/*/input-events` (more than
  four in five of its 131-field lines); a `true_tstamp` that is set only in the SDK specs above.
- **Fingerprints in lower case** (MD5 hex, 32 digits): every fingerprint in those files. The
  enrichment also offers SHA1/SHA256/SHA384/SHA512 (40/64/96/128 hex digits): snowplow/enrich
  `modules/common/src/test/.../registry/EventFingerprintEnrichmentSpec.scala`. **Upper case** was
  in none of the files surveyed (the enrichment writes lower-case hex); the line below has one
  because the manifest compares keys byte for byte, so a fingerprint must be kept exactly as read.
- **One event id, two fingerprints** (a synthetic duplicate, two manifest items):
  snowplow-rdb-loader `modules/transformer-batch/src/test/scala/.../good/EventDeduplicationSpec.scala`,
  and snowplow/snowplow `4-storage/rdb-shredder/.../good/CrossBatchDeduplicationSpec.scala`.
- **A missing fingerprint is never deduplicated**: snowplow/snowplow's Hadoop Shred
  `EventDeduplicationSpec.scala` ("The third's fingerprint is missing, so is not deduplicated"),
  and snowplow-rdb-loader's `ShredJob.scala`/`Deduplication.scala` (before 2022), which put
  `event_fingerprint.getOrElse(UUID.randomUUID().toString)` into the manifest.
- **Bad etl_tstamps**: snowplow-rdb-loader `modules/transformer-batch/src/test/resources/
  invalidtimestamp/input-events` feeds `0000-01-01 09:06:35.493256951` and
  `-2006-10-15 09:06:35.493256951`, which its transformer rejects ("before than minimum timestamp").
  Its `processing-spec/5` and `6` inputs leave etl_tstamp empty (the atomic schema allows null);
  a manifest item needs an etlTime, so populator counts such a line as a bad row.
- **130 fields** (true_tstamp missing): `processing-spec/1/input/events`, rejected by the
  transformer as `FieldNumberMismatch`.
- **Realistic contents**: IPv6 `user_ipaddress`, page and referrer URLs with their parts, a
  search referrer, user agents, `contexts` (web_page), `unstruct_event` (link_click) and
  `derived_contexts` (ua_parser_context) as self-describing JSON, as in the files above.
"""

from __future__ import annotations

import calendar
from typing import NamedTuple

# The 131 fields of an enriched event, in order (Snowplow's canonical event model).
_NAMES = (
    "app_id platform etl_tstamp collector_tstamp dvce_created_tstamp event event_id txn_id "
    "name_tracker v_tracker v_collector v_etl user_id user_ipaddress user_fingerprint domain_userid "
    "domain_sessionidx network_userid geo_country geo_region geo_city geo_zipcode geo_latitude "
    "geo_longitude geo_region_name ip_isp ip_organization ip_domain ip_netspeed page_url page_title "
    "page_referrer page_urlscheme page_urlhost page_urlport page_urlpath page_urlquery page_urlfragment "
    "refr_urlscheme refr_urlhost refr_urlport refr_urlpath refr_urlquery refr_urlfragment refr_medium "
    "refr_source refr_term mkt_medium mkt_source mkt_term mkt_content mkt_campaign contexts se_category "
    "se_action se_label se_property se_value unstruct_event tr_orderid tr_affiliation tr_total tr_tax "
    "tr_shipping tr_city tr_state tr_country ti_orderid ti_sku ti_name ti_category ti_price ti_quantity "
    "pp_xoffset_min pp_xoffset_max pp_yoffset_min pp_yoffset_max useragent br_name br_family br_version "
    "br_type br_renderengine br_lang br_features_pdf br_features_flash br_features_java "
    "br_features_director br_features_quicktime br_features_realplayer br_features_windowsmedia "
    "br_features_gears br_features_silverlight br_cookies br_colordepth br_viewwidth br_viewheight "
    "os_name os_family os_manufacturer os_timezone dvce_type dvce_ismobile dvce_screenwidth "
    "dvce_screenheight doc_charset doc_width doc_height tr_currency tr_total_base tr_tax_base "
    "tr_shipping_base ti_currency ti_price_base base_currency geo_timezone mkt_clickid mkt_network "
    "etl_tags dvce_sent_tstamp refr_domain_userid refr_dvce_tstamp derived_contexts domain_sessionid "
    "derived_tstamp event_vendor event_name event_format event_version event_fingerprint true_tstamp"
)
FIELDS = tuple(_NAMES.split())
assert len(FIELDS) == 131
INDEX = {name: index for index, name in enumerate(FIELDS)}

_WEB_PAGE = (
    '{"schema":"iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0","data":[{"schema":'
    '"iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0","data":{"id":"%s"}}]}'
)
_LINK_CLICK = (
    '{"schema":"iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0","data":{"schema":'
    '"iglu:com.snowplowanalytics.snowplow/link_click/jsonschema/1-0-1","data":{"targetUrl":'
    '"https://shop.example.org/basket?step=2","elementId":"checkout","elementClasses":["btn","primary"]}}}'
)
_UA_PARSER = (
    '{"schema":"iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1","data":[{"schema":'
    '"iglu:com.snowplowanalytics.snowplow/ua_parser_context/jsonschema/1-0-0","data":{"useragentFamily":'
    '"Firefox","useragentMajor":"128","useragentMinor":"0","useragentPatch":null,"useragentVersion":'
    '"Firefox 128.0","osFamily":"Ubuntu","osMajor":null,"osMinor":null,"osPatch":null,"osPatchMinor":null,'
    '"osVersion":"Ubuntu","deviceFamily":"Other"}}]}'
)
_FIREFOX = "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)


def enriched(**fields: str) -> bytes:
    """A 131-field line (no newline): a web page view from a search referrer, then `fields`."""
    values = [""] * 131
    base = {
        "app_id": "shop-eu",
        "platform": "web",
        "etl_tstamp": "2021-09-17 09:05:52.076",
        "collector_tstamp": "2021-09-17 09:05:30.608",
        "dvce_created_tstamp": "2021-09-17 09:05:29.912",
        "event": "page_view",
        "event_id": "3f1c9a52-7d0e-4b8a-9c61-2e5f0a7b8d43",
        "name_tracker": "sp1",
        "v_tracker": "js-3.17.0",
        "v_collector": "ssc-2.10.0-kinesis",
        "v_etl": "snowplow-enrich-kinesis-3.9.0",
        "user_ipaddress": "2a02:c7f:5e4a:ee00:ad8:9a3:1f2e:7b11",
        "domain_userid": "a7d2e9f0-3b41-4c5d-8e6f-1a2b3c4d5e6f",
        "domain_sessionidx": "3",
        "network_userid": "0e9d8c7b-6a5f-4e3d-2c1b-0a9f8e7d6c5b",
        "geo_country": "FR",
        "geo_region": "69",
        "geo_city": "Lyon",
        "geo_latitude": "45.7485",
        "geo_longitude": "4.8467",
        "page_url": "https://shop.example.org/fr/chaussures?couleur=bleu&taille=42#avis",
        "page_title": "Chaussures bleues – Boutique",
        "page_referrer": "https://www.google.fr/",
        "page_urlscheme": "https",
        "page_urlhost": "shop.example.org",
        "page_urlport": "443",
        "page_urlpath": "/fr/chaussures",
        "page_urlquery": "couleur=bleu&taille=42",
        "page_urlfragment": "avis",
        "refr_urlscheme": "https",
        "refr_urlhost": "www.google.fr",
        "refr_urlport": "443",
        "refr_urlpath": "/",
        "refr_medium": "search",
        "refr_source": "Google",
        "contexts": _WEB_PAGE % "5b7c1d2e-8f90-4a1b-b2c3-d4e5f6a7b8c9",
        "useragent": _FIREFOX,
        "br_lang": "fr-FR",
        "br_cookies": "1",
        "br_colordepth": "24",
        "br_viewwidth": "1280",
        "br_viewheight": "701",
        "os_timezone": "Europe/Paris",
        "dvce_screenwidth": "1920",
        "dvce_screenheight": "1080",
        "doc_charset": "UTF-8",
        "doc_width": "1265",
        "doc_height": "4312",
        "geo_timezone": "Europe/Paris",
        "dvce_sent_tstamp": "2021-09-17 09:05:30.102",
        "derived_contexts": _UA_PARSER,
        "domain_sessionid": "c4b3a291-8e7d-4c6b-a5f4-e3d2c1b0a998",
        "derived_tstamp": "2021-09-17 09:05:30.418",
        "event_vendor": "com.snowplowanalytics.snowplow",
        "event_name": "page_view",
        "event_format": "jsonschema",
        "event_version": "1-0-0",
        "event_fingerprint": "9e107d9d372bb6826bd81d3542a419d6",
        "true_tstamp": "",
    }
    for name, value in {**base, **fields}.items():
        values[INDEX[name]] = value
    return "\t".join(values).encode()


def epoch(text: str) -> int:
    """Whole epoch seconds of a `yyyy-MM-dd HH:mm:ss[.f]` UTC stamp (by hand, for expectations)."""
    date, time = text.split(" ")
    year, month, day = map(int, date.split("-"))
    hour, minute, second = map(int, time.split(".")[0].split(":"))
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0))


class Case(NamedTuple):
    line: bytes  # without its newline
    expected: tuple[str, str, int] | str  # (event_id, fingerprint, etlTime), or a reason


_SAME_ID = "7b2e4f1a-0c3d-4e5f-9a8b-6c7d8e9f0a1b"

CASES: dict[str, Case] = {
    "page view, 3-digit etl_tstamp, MD5 fingerprint, empty true_tstamp": Case(
        enriched(),
        (
            "3f1c9a52-7d0e-4b8a-9c61-2e5f0a7b8d43",
            "9e107d9d372bb6826bd81d3542a419d6",
            epoch("2021-09-17 09:05:52"),
        ),
    ),
    "link click, 9-digit etl_tstamp, fingerprint and true_tstamp empty": Case(
        enriched(
            etl_tstamp="2021-10-14 07:41:03.918204377",
            collector_tstamp="2021-10-14 07:40:51.200204377",
            event="unstruct",
            event_id="8a0f3e6d-2b9c-4d1e-a7f5-3c6b9e2d0f14",
            unstruct_event=_LINK_CLICK,
            event_name="link_click",
            event_version="1-0-1",
            event_fingerprint="",
        ),
        "no_fingerprint",
    ),
    "struct event, 9-digit etl_tstamp ending in 999999, MD5 fingerprint": Case(
        enriched(
            etl_tstamp="2021-09-17 10:12:08.270999999",
            event="struct",
            event_id="d5e4c3b2-a190-4f8e-b7d6-c5b4a3928170",
            se_category="basket",
            se_action="add",
            se_label="SKU-000412",
            se_value="59.9",
            event_name="event",
            event_fingerprint="5f4dcc3b5aa765d61d8327deb882cf99",
        ),
        (
            "d5e4c3b2-a190-4f8e-b7d6-c5b4a3928170",
            "5f4dcc3b5aa765d61d8327deb882cf99",
            epoch("2021-09-17 10:12:08"),
        ),
    ),
    "no fraction in etl_tstamp, SHA1 fingerprint, true_tstamp set": Case(
        enriched(
            etl_tstamp="2019-03-04 05:12:40",
            collector_tstamp="2019-03-04 04:58:11",
            event_id="c9a1e0b2-5d4f-4a3e-8b7c-1d2e3f4a5b6c",
            event_fingerprint="2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
            true_tstamp="2019-03-04 04:58:09.730",
        ),
        (
            "c9a1e0b2-5d4f-4a3e-8b7c-1d2e3f4a5b6c",
            "2fd4e1c67a2d28fced849ee1bb76e7391b93eb12",
            epoch("2019-03-04 05:12:40"),
        ),
    ),
    "upper-case fingerprint, mobile Safari": Case(
        enriched(
            event_id="E2B7C9D0-1A3F-4E5B-8C6D-7F8A9B0C1D2E",
            useragent=_SAFARI,
            derived_contexts="",
            event_fingerprint="D41D8CD98F00B204E9800998ECF8427E",
        ),
        (
            "E2B7C9D0-1A3F-4E5B-8C6D-7F8A9B0C1D2E",
            "D41D8CD98F00B204E9800998ECF8427E",
            epoch("2021-09-17 09:05:52"),
        ),
    ),
    "SHA512 fingerprint (128 hex digits)": Case(
        enriched(event_id="1b4e28ba-2fa1-41d2-883f-0016d3cca427", event_fingerprint="ab" * 64),
        ("1b4e28ba-2fa1-41d2-883f-0016d3cca427", "ab" * 64, epoch("2021-09-17 09:05:52")),
    ),
    "one event id, first fingerprint": Case(
        enriched(event_id=_SAME_ID, event_fingerprint="6f1ed002ab5595859014ebf0951522d9"),
        (_SAME_ID, "6f1ed002ab5595859014ebf0951522d9", epoch("2021-09-17 09:05:52")),
    ),
    "one event id, second fingerprint": Case(
        enriched(
            event_id=_SAME_ID,
            dvce_created_tstamp="2021-09-17 09:05:29.913",
            event_fingerprint="0cc175b9c0f1b6a831c399e269772661",
        ),
        (_SAME_ID, "0cc175b9c0f1b6a831c399e269772661", epoch("2021-09-17 09:05:52")),
    ),
    "etl_tstamp in year 0000": Case(enriched(etl_tstamp="0000-01-01 09:06:35.493256951"), "etl_tstamp"),
    "etl_tstamp in a negative year": Case(
        enriched(etl_tstamp="-2006-10-15 09:06:35.493256951"), "etl_tstamp"
    ),
    "etl_tstamp empty": Case(enriched(etl_tstamp="", event_fingerprint=""), "etl_tstamp"),
    "130 fields (no true_tstamp)": Case(enriched().rsplit(b"\t", 1)[0], "field_count"),
}

LINES = [case.line for case in CASES.values()]
