"""Evaluates the FAQ matcher on bench/faq_questions.yaml and records the figures.

    .venv/bin/python bench/faq_eval.py            # print, and write the section of bench/RESULTS.md
    .venv/bin/python bench/faq_eval.py --no-write # print only
    .venv/bin/python bench/faq_eval.py --sweep    # accuracy and refusal for a range of thresholds

Figures: top-1 accuracy on in-scope questions (the best topic is the expected one), the share
of in-scope questions answered confidently and correctly (what the user sees as an answer), and
the refusal rate on out-of-scope questions (not confident). Each for the dev half (used for
tuning), the test half (held out) and all.
"""
from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from importlib import metadata
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from dialogs import faq  # noqa: E402

QUESTIONS = ROOT / "bench" / "faq_questions.yaml"
RESULTS = ROOT / "bench" / "RESULTS.md"
SECTION = "## FAQ matching (issue 3)"
OUT = "out_of_scope"
SPLITS = ("dev", "test", "fresh", "owner", "chat", "all")
LIBRARIES = ("jieba", "rank-bm25", "opencc", "numpy", "PyYAML")


def load_questions(path: Path = QUESTIONS) -> list[dict]:
    return list((yaml.safe_load(path.read_text(encoding="utf-8")) or {})["questions"])


def evaluate(kb: "faq.KnowledgeBase", questions: list[dict], threshold: float | None = None) -> dict:
    """Runs every question; returns figures per split and the misses.

    ``threshold`` overrides the high threshold (for --sweep); the low one and the margin stay.
    """
    threshold = faq.CONFIDENT if threshold is None else threshold
    rows = []
    timings = []
    for item in questions:
        start = time.perf_counter()
        matches = kb.match(str(item["q"]), "zh_TW")
        timings.append(time.perf_counter() - start)
        best = matches[0]
        confident = faq.is_confident(matches, high=threshold)
        top3 = [m.topic.id for m in matches if not m.topic.refuse][:faq.SUGGESTIONS]
        rows.append({
            "q": str(item["q"]), "expected": item["topic"], "split": item.get("split", "dev"),
            "got": best.topic.id, "score": best.score, "confident": confident, "top3": top3,
        })
    figures = {}
    for split in SPLITS:
        part = [r for r in rows if split == "all" or r["split"] == split]
        inscope = [r for r in part if r["expected"] != OUT]
        oos = [r for r in part if r["expected"] == OUT]
        top1 = sum(r["got"] == r["expected"] for r in inscope)
        answered = sum(r["got"] == r["expected"] and r["confident"] for r in inscope)
        wrong_confident = sum(r["got"] != r["expected"] and r["confident"] for r in inscope)
        refused = sum(not r["confident"] for r in oos)
        top3 = sum(r["expected"] in r["top3"] for r in inscope)
        figures[split] = {
            "in_scope": len(inscope), "out_of_scope": len(oos),
            "top1": top1 / len(inscope) if inscope else 0.0,
            "answered": answered / len(inscope) if inscope else 0.0,
            "wrong_confident": wrong_confident / len(inscope) if inscope else 0.0,
            "top3": top3 / len(inscope) if inscope else 0.0,
            "refusal": refused / len(oos) if oos else 0.0,
        }
    misses = [r for r in rows if (r["expected"] == OUT and r["confident"])
              or (r["expected"] != OUT and (r["got"] != r["expected"] or not r["confident"]))]
    timings.sort()
    figures["timing_ms"] = {
        "mean": statistics.mean(timings) * 1000,
        "p99": timings[min(len(timings) - 1, int(len(timings) * 0.99))] * 1000,
        "max": timings[-1] * 1000,
    }
    return {"figures": figures, "misses": misses, "rows": rows, "threshold": threshold}


def machine() -> dict:
    from bench.results import cpu_model

    cpu = cpu_model()
    versions = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "versions": versions}


def pct(x: float) -> str:
    return f"{x * 100:.1f}%"


def render(result: dict, info: dict, load_seconds: float) -> str:
    f = result["figures"]
    lines = [
        SECTION,
        "",
        f"Run {dt.date.today().isoformat()} with `.venv/bin/python bench/faq_eval.py` on {info['nproc']} CPU(s), "
        f"{info['cpu']}, Python {info['python']}; "
        + ", ".join(f"{k} {v}" for k, v in info["versions"].items()) + ".",
        "",
        f"Question set: `bench/faq_questions.yaml` ({f['all']['in_scope']} in-scope, "
        f"{f['all']['out_of_scope']} out-of-scope questions, written apart from the knowledge base, "
        "colloquial zh_TW with some English). Knowledge base: `storage/editions/112/faq.yaml` "
        "(+ `dialogs/faq_lexicon.yaml`). Answered outright when the best topic scores "
        f"≥ {faq.CONFIDENT}, or ≥ {faq.CONFIDENT_LOW} while leading the runner-up by ≥ {faq.MARGIN}; "
        "otherwise the bot says it is not sure and offers the top 3 topics as buttons with the office's contact.",
        "",
        "How honest each split is:",
        "",
        "- **dev** was used to tune everything (lexicon, knowledge-base phrasings, weights): its figures are optimistic.",
        "- **test** was not used to change the lexicon or the knowledge base (phrasings that had drifted "
        "too close to test questions were removed), but it was used, with dev, to choose the "
        "confidence rule and the score weights; its misses were seen once early on.",
        "- **fresh** was written after all tuning and run once: top-1 96.9%, top 3 100%, "
        "answered outright and right 90.6%, refusal 75.0% (6/8). One of its misses showed a wrong "
        "synonym (\"two\" meaning \"several cases\"), which was then fixed; the row below is after that fix.",
        "- **owner** (the bot's own steps: invite codes, who receives the letter, 更正, 撤回, the seals, the "
        "test links, after sending, stopping reminders, a half-filled letter, my data) and **chat** (small talk "
        "and out-of-scope chatter) were written for issue 10 before the knowledge-base entries they test. "
        "First run: owner top-1 76%, answered right 72%; its misses were then used to add phrasings (none "
        "copied from the set), three topic weights and two words taken off the stopword list (谢谢, thank), so "
        "these two splits are tuned like dev. One test question "
        "(\"你是機器人嗎\") was relabelled from out-of-scope to `chat_human`: issue 10 makes small talk an answer.",
        "",
        "The bot's own topics and the program's (issue 10, later): adding the owner-process and small-talk topics "
        "moved every BM25 weight (IDF), and the existing splits got worse: dev answered outright and right "
        "98.6% → 95.9%, test top-1 87.5% (63/72) → 86.3% (63/73; one test question, 想刪除我留的個人資料怎麼辦, "
        "went to `bot_my_data`). Now the topics about the chat itself are marked `tier: bot` in faq.yaml, and "
        "the program's topics are also scored in indexes of their own, as if the bot's topics did not exist, "
        "keeping the better of the two scores (`dialogs/faq.py`, `KnowledgeBase`); the bot's topics are scored "
        "among all. A first variant that scored the two tiers wholly apart was dropped: owner top-1 fell to 74% "
        "and one test question (協會可不可以來提案) went to `bot_invite_code` — the test misses were seen while "
        "choosing between the two, so test also helped choose this rule, as it did the confidence rule. Nothing "
        "in the lexicon or the knowledge base was changed for test. After the change one owner question (前測填完"
        "要跟誰說) lost its top-1 to `capability_tests`; two phrasings were added to `bot_test_links` "
        "(評量填完了, 後測做完了; tuned on owner).",
        "",
        "Before the bot's topics (the knowledge base of issue 3 alone): dev 100.0% / 98.6% / 100.0%, test 87.5% / "
        "80.6% / 90.9%, fresh 96.9% / 90.6% / 87.5% (top-1 / answered outright and right / refusal). With them, "
        "before this change: dev 100.0% / 95.9% / 100.0%, test 86.3% / 79.5% / 90.0%, fresh 96.9% / 90.6% / "
        "87.5%, owner 96.0% / 92.0%, chat 90.0% / 90.0% / 100.0%.",
        "",
        "Top-1 is the best topic whatever its score; when the bot is not sure it still shows the top 3 as "
        "buttons, so \"in top 3\" is the share one tap away from the answer.",
        "",
        "| split | in-scope | top-1 accuracy | in top 3 (buttons) | answered outright and right | answered outright but wrong | out-of-scope | refusal rate |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for split in SPLITS:
        s = f[split]
        lines.append(f"| {split} | {s['in_scope']} | {pct(s['top1'])} | {pct(s['top3'])} | {pct(s['answered'])} | {pct(s['wrong_confident'])} "
                     f"| {s['out_of_scope']} | {pct(s['refusal'])} |")
    t = f["timing_ms"]
    lines += [
        "",
        f"Targets: top-1 ≥ 90% and refusal ≥ 90%. Matching one question: mean {t['mean']:.2f} ms, "
        f"p99 {t['p99']:.2f} ms, max {t['max']:.2f} ms (after loading, which took {load_seconds:.2f} s once: "
        "jieba's dictionary and the indexes).",
        "",
        "Misses (wrong topic, not confident, or an out-of-scope question answered):",
        "",
    ]
    if result["misses"]:
        for r in result["misses"]:
            state = "confident" if r["confident"] else "not sure"
            lines.append(f"- [{r['split']}] {r['q']} — expected `{r['expected']}`, got `{r['got']}` "
                         f"({r['score']:.2f}, {state})")
    else:
        lines.append("- none")
    return "\n".join(lines) + "\n"


def write_section(text: str) -> None:
    from bench.results import write_section as write

    write(SECTION, text, RESULTS)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kb", default=str(faq.DEFAULT_EDITION_DIR), help="edition folder or faq.yaml")
    parser.add_argument("--questions", default=str(QUESTIONS))
    parser.add_argument("--no-write", action="store_true", help="do not update bench/RESULTS.md")
    parser.add_argument("--sweep", action="store_true", help="figures for a range of thresholds")
    parser.add_argument("--verbose", action="store_true", help="print every question")
    parser.add_argument("--show", choices=("dev", "test", "fresh", "all"), default="all",
                        help="list misses of this split only (tune looking at dev only)")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    kb = faq.KnowledgeBase.load(args.kb)
    load_seconds = time.perf_counter() - start
    questions = load_questions(Path(args.questions))

    if args.sweep:
        print("threshold  split  top1    answered  wrong-conf  refusal")
        for step in range(10, 80, 2):
            th = step / 100
            f = evaluate(kb, questions, th)["figures"]
            for split in ("dev", "test", "fresh"):
                s = f[split]
                print(f"{th:9.2f}  {split:5}  {pct(s['top1']):6}  {pct(s['answered']):8}  "
                      f"{pct(s['wrong_confident']):10}  {pct(s['refusal'])}")
        return 0

    result = evaluate(kb, questions)
    if args.show != "all":
        result["misses"] = [r for r in result["misses"] if r["split"] == args.show]
        result["rows"] = [r for r in result["rows"] if r["split"] == args.show]
        args.no_write = True
    info = machine()
    text = render(result, info, load_seconds)
    if args.verbose:
        for r in result["rows"]:
            mark = "ok " if (r["got"] == r["expected"]) == (r["expected"] != "out_of_scope") else "   "
            print(f"{mark}{r['split']:4} {r['score']:.2f} {'C' if r['confident'] else '-'} {r['q']} → {r['got']} "
                  f"(want {r['expected']})")
    print(text)
    if not args.no_write:
        write_section(text)
        print(f"written to {RESULTS.relative_to(ROOT)}")
    f = result["figures"]["all"]
    return 0 if f["top1"] >= 0.9 and f["refusal"] >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
