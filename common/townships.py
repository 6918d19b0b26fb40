"""Taiwan's counties/cities (縣市) and townships (鄉鎮市區), from the MOI codes.

The table is storage/data/tw-townships.csv (see storage/data/README.md for its
source), loaded once. Matching is 台/臺 insensitive and forgiving of what people
type: "台北" finds 臺北市, "大安" finds 大安區, "板橋市" (the pre-2010 name) finds
板橋區, "臺北市大安區" and "台北 大安" are split into county and town.
"""
from __future__ import annotations

import csv
import functools
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

DATA_FILE = Path(__file__).resolve().parent.parent / "storage" / "data" / "tw-townships.csv"

# North to south along the west coast, then the east, then the islands, as on
# common Taiwanese address forms.
COUNTY_ORDER = (
    "10017",  # 基隆市
    "63000",  # 臺北市
    "65000",  # 新北市
    "68000",  # 桃園市
    "10018",  # 新竹市
    "10004",  # 新竹縣
    "10005",  # 苗栗縣
    "66000",  # 臺中市
    "10007",  # 彰化縣
    "10008",  # 南投縣
    "10009",  # 雲林縣
    "10020",  # 嘉義市
    "10010",  # 嘉義縣
    "67000",  # 臺南市
    "64000",  # 高雄市
    "10013",  # 屏東縣
    "10002",  # 宜蘭縣
    "10015",  # 花蓮縣
    "10014",  # 臺東縣
    "10016",  # 澎湖縣
    "09020",  # 金門縣
    "09007",  # 連江縣
)

# Names people still type for counties that were merged or renamed, and short forms.
COUNTY_ALIASES = {
    "臺北縣": "65000",  # became 新北市 in 2010
    "桃園縣": "68000",  # became 桃園市 in 2014
    "臺中縣": "66000",
    "臺南縣": "67000",
    "高雄縣": "64000",
    "北市": "63000",
    "中市": "66000",
    "南市": "67000",
    "高市": "64000",
    "桃市": "68000",
    "竹市": "10018",
    "竹縣": "10004",
    "馬祖": "09007",
}

_TOWN_SUFFIXES = ("區", "鄉", "鎮", "市")
_COUNTY_SUFFIXES = ("市", "縣")
_SEPARATORS = " ,，、/-_()（）"


@dataclass(frozen=True)
class County:
    code: str
    name: str
    name_en: str


@dataclass(frozen=True)
class Town:
    code: str
    name: str
    county_code: str


def _key(text: str) -> str:
    """NFKC, 台→臺, no spaces or separators, lower case."""
    text = unicodedata.normalize("NFKC", text or "").replace("台", "臺").lower()
    return "".join(ch for ch in text if ch not in _SEPARATORS and not ch.isspace())


def _stem(name: str, suffixes: tuple[str, ...]) -> str:
    """臺北市 -> 臺北, 大安區 -> 大安; never shorter than one character."""
    if len(name) >= 2 and name.endswith(suffixes):  # 東區 -> 東 is still unique in its county
        return name[:-1]
    return name


@functools.lru_cache(maxsize=1)
def _table() -> tuple[dict[str, County], dict[str, list[Town]]]:
    counties: dict[str, County] = {}
    towns: dict[str, list[Town]] = {}
    with DATA_FILE.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            code = row["county_code"].strip()
            if code not in counties:
                counties[code] = County(code, row["county_name"].strip(), row["county_name_en"].strip())
                towns[code] = []
            towns[code].append(Town(row["town_code"].strip(), row["town_name"].strip(), code))
    return counties, towns


def counties() -> list[County]:
    """All 22 counties/cities, north to south then east and islands."""
    table, _towns = _table()
    ordered = [table[c] for c in COUNTY_ORDER if c in table]
    ordered += [c for code, c in sorted(table.items()) if code not in COUNTY_ORDER]
    return ordered


def county(code: str) -> Optional[County]:
    return _table()[0].get(code)


def towns(county_code: str) -> list[Town]:
    """The townships of a county, in the MOI code order."""
    return list(_table()[1].get(county_code, ()))


def town(code: str) -> Optional[Town]:
    """A town by its 8-digit code."""
    for t in _table()[1].get(code[:5], ()):
        if t.code == code:
            return t
    return None


@functools.lru_cache(maxsize=1)
def _county_key_table() -> list[tuple[str, Optional[str]]]:
    """(key, county code, or None when the key fits several counties), longest keys first."""
    found: dict[str, set] = {}

    def add(key: str, code: Optional[str]):
        found.setdefault(key, set()).add(code)

    for c in counties():
        add(_key(c.name), c.code)
        add(_key(c.code), c.code)
        add(_stem(c.name, _COUNTY_SUFFIXES), c.code)  # 新竹 -> {新竹縣, 新竹市}: ambiguous
        add(_key(c.name_en), c.code)
        en_stem = _key(c.name_en.replace(" County", "").replace(" City", ""))
        add(en_stem, c.code)
    for alias, code in COUNTY_ALIASES.items():
        add(_key(alias), code)
    table = [(k, next(iter(v)) if len(v) == 1 else None) for k, v in found.items() if k]
    table.sort(key=lambda kv: -len(kv[0]))
    return table


def county_candidates(text: str) -> list[County]:
    """The counties ``text`` could mean: one, several (新竹, 嘉義), or none."""
    key = _key(text)
    if not key:
        return []
    exact = [code for k, code in _county_key_table() if k == key]
    if exact:
        if exact[0]:
            return [county(exact[0])]
        stem_matches = [c for c in counties() if _stem(c.name, _COUNTY_SUFFIXES) == key
                        or _key(c.name_en.replace(" County", "").replace(" City", "")) == key]
        return stem_matches
    return []


def find_county(text: str) -> Optional[County]:
    """The county ``text`` names ("台北", "臺北市", "Taipei", "63000"); None if none or ambiguous."""
    found = county_candidates(text)
    return found[0] if len(found) == 1 else None


def find_town(county_code: str, text: str) -> Optional[Town]:
    """The town of ``county_code`` that ``text`` names ("大安", "大安區", "臺北市大安區", its code)."""
    key = _key(text)
    if not key:
        return None
    candidates = towns(county_code)
    c = county(county_code)
    if c is not None:  # "臺北市大安區": drop the county's name in front
        for prefix in sorted({_key(c.name), _stem(c.name, _COUNTY_SUFFIXES)}, key=len, reverse=True):
            if key.startswith(prefix) and len(key) > len(prefix):
                rest = key[len(prefix):]
                if any(_key(t.name) == rest or _stem(t.name, _TOWN_SUFFIXES) == rest
                       or _stem(t.name, _TOWN_SUFFIXES) == _stem(rest, _TOWN_SUFFIXES) for t in candidates):
                    key = rest
                    break
    for t in candidates:
        if key in (t.code, _key(t.name)):
            return t
    stem = _stem(key, _TOWN_SUFFIXES)
    matches = [t for t in candidates if _stem(t.name, _TOWN_SUFFIXES) in (key, stem)]
    return matches[0] if len(matches) == 1 else None


def towns_named(text: str) -> list[Town]:
    """Towns anywhere in Taiwan that ``text`` names (大安 -> 臺北市大安區 and 臺中市大安區)."""
    found = []
    for c in counties():
        t = find_town(c.code, text)
        if t is not None:
            found.append(t)
    return found


def parse_location(text: str) -> tuple[Optional[County], Optional[Town]]:
    """Splits a typed "臺北市大安區" / "台北 大安" / "板橋區" into (County, Town).

    Returns (County, None) when only the county is clear, (None, None) when no
    county can be told (not found, or ambiguous like "新竹" alone). A town that
    exists in only one county ("板橋") gives its county too; an ambiguous
    county ("新竹 東區") is settled by the town.
    """
    key = _key(text)
    if not key:
        return None, None
    # the whole text is a county
    whole = county_candidates(key)
    if len(whole) == 1:
        return whole[0], None
    # a county name (or an ambiguous stem) in front, a town after it
    fallback: Optional[County] = None
    for prefix, code in _county_key_table():
        if not key.startswith(prefix):
            continue
        rest = key[len(prefix):]
        options = [county(code)] if code else county_candidates(prefix)
        hits = [(c, find_town(c.code, rest)) for c in options] if rest else []
        hits = [(c, t) for c, t in hits if t is not None]
        if len(hits) == 1:
            return hits[0]
        if fallback is None and len(options) == 1 and not key.isdigit():
            fallback = options[0]
    # only a town ("板橋區", "台東市"): fine when it exists in one county
    named = towns_named(key)
    if len(named) == 1 and (fallback is None or named[0].county_code == fallback.code):
        return county(named[0].county_code), named[0]
    return fallback, None


def find_county_in(text: str) -> Optional[County]:
    """The county whose full name (or former name, e.g. 臺北縣) appears in ``text`` (an address)."""
    key = _key(text)
    for c in counties():
        if _key(c.name) in key:
            return c
    for alias, code in COUNTY_ALIASES.items():
        if code and len(alias) == 3 and _key(alias) in key:
            return county(code)
    for t in _county_cities():  # 竹北市, 臺東市: a city of a county, named without the county
        if _key(t.name) in key:
            return county(t.county_code)
    return None


@functools.lru_cache(maxsize=1)
def _county_cities() -> tuple[Town, ...]:
    """The towns named …市 whose name is unique in Taiwan (縣轄市 such as 竹北市, 臺東市)."""
    all_towns = [t for c in counties() for t in towns(c.code)]
    names = [t.name for t in all_towns]
    return tuple(t for t in all_towns if t.name.endswith("市") and names.count(t.name) == 1)


def place(county_code: Optional[str], town_code: Optional[str]) -> str:
    """所在地 as 附件一 writes it: 縣市/鄉鎮 (臺北市/大安區); empty when neither is known."""
    names = [x.name for x in (county(county_code or ""), town(town_code or "")) if x is not None]
    return "/".join(names)
