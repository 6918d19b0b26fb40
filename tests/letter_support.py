"""Shared pieces of the letter-of-intent tests: a case, a quick fill, and looking into every table."""
from __future__ import annotations

from urllib.parse import urlparse

from sqlalchemy import inspect, text

from storage import letters as store

CASE = dict(edition=112, proposer_name="好客雲端股份有限公司", plan_name="好客數位共好計畫", case_type="popularization",
            theme=None, vendor_name="好客雲端股份有限公司", solution_name="好客POS雲端收銀",
            solution_content="雲端POS、線上點餐與會員管理", sla="服務可用率99.5%，客服週一至週五9:00-18:00",
            period="112年5月1日至113年4月30日", other_content="教育訓練3場、行銷活動1場", planned_count=60)

# What the owner types in the quick fill, and what must be on the letter afterwards.
OWNER = dict(company="好客小吃店", number="22099131", contact="王小明", mobile="0912345678", mobile_shown="0912-345-678",
             phone="(02)2553-3988 轉 603", phone_shown="(02)2553-3988 轉 603", email="wang.xiaoming@example.com.tw",
             representative="林大同", address="臺北市大安區和平東路一段1號", products="滷肉飯與便當外送")


def quick(bot):
    """No reorder window: each test message waits for its answer anyway."""
    bot.services.queue.reorder_ms = 0
    return bot


def make_case(services, **changes) -> store.Case:
    with services.db.session() as s:
        return store.create_case(s, **{**CASE, **changes})


def answers(owner: dict = OWNER) -> list[str]:
    """Every answer of the letter dialog, in order, all valid."""
    return [owner["company"], owner["number"], "1", "5", "臺北市大安區", owner["products"], "none", owner["contact"],
            owner["mobile"], owner["phone"], owner["email"], owner["representative"], owner["address"],
            "agree", "agree", "agree", "agree", "agree"]


def join_and_fill(bot, user: str, code: str, owner: dict = OWNER, submit: bool = True) -> list[str]:
    """Joins with the code, agrees to the notice, answers everything and (by default) sends."""
    bot.says(user, code)
    bot.taps(user, "agree")
    said = []
    for answer in answers(owner):
        said = bot.says(user, answer)
    assert "請確認您的企業合作意向書" in said[-1], said
    if submit:
        said = bot.taps(user, "confirm")
        assert any("已送給" in t for t in said), said
    return said


def letter_row(services, user: str, case_id: int):
    with services.db.session() as s:
        return store.letter_of(s, case_id, user)


def uris(bot, user: str) -> list[str]:
    """Every URI of a button the bot sent the user, oldest first."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            if node.get("type") == "uri" and "uri" in node:
                found.append(node["uri"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(bot.line.messages_to(user))
    return found


def path_of(url: str) -> str:
    return urlparse(url).path


def last_buttons(bot, user: str) -> list[tuple[str, str]]:
    """(label, data) of the quick replies under the last message the user got."""
    last = bot.line.messages_to(user)[-1]
    return [(i["action"]["label"], i["action"].get("data", "")) for i in (last.get("quickReply") or {}).get("items", [])]


def every_row(services) -> dict[str, list[str]]:
    """Every row of every table, as text, by table name."""
    dump = {}
    engine = services.db.engine
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            rows = conn.execute(text(f'SELECT * FROM "{table}"')).all()
            dump[table] = [" | ".join(str(v) for v in row) for row in rows]
    return dump


def every_redis_value(services) -> list[str]:
    """Every value this bot keeps in Redis (strings, streams, hashes, sets), as text.

    Only this bot's keys (its prefix): tests running beside it keep their own.
    """
    redis = services.redis
    if redis is None:
        return []
    values = []
    for key in redis.scan_iter(match=services.config.redis_prefix + "*", count=1000):
        kind = redis.type(key).decode()
        if kind == "string":
            values.append(redis.get(key).decode("utf-8", "replace"))
        elif kind == "stream":
            values += [v.decode("utf-8", "replace") for _id, fields in redis.xrange(key) for v in fields.values()]
        elif kind == "hash":
            values += [v.decode("utf-8", "replace") for v in redis.hgetall(key).values()]
        elif kind in ("set", "zset", "list"):
            values.append(key.decode())
    return values
