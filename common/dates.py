"""The ROC (民國) calendar and the Asia/Taipei zone: year - 1911, read as government forms write it."""
from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

TAIPEI = ZoneInfo("Asia/Taipei")
ROC_OFFSET = 1911


def roc_year(d: date) -> int:
    return d.year - ROC_OFFSET


def parse_roc(text: str) -> date:
    """Reads '112/3/16', '112-03-16' or '112年3月16日' as a date."""
    cleaned = text.strip().replace("年", "/").replace("月", "/").replace("日", "").replace("-", "/")
    year, month, day = (int(p) for p in cleaned.split("/")[:3])
    return date(year + ROC_OFFSET, month, day)
