"""Free-text questions about the program, answered from the edition's knowledge base.

The knowledge base (``storage/editions/<edition>/faq.yaml``) holds topics: an answer in zh_TW
and en, the paragraph of the guidelines it comes from, and sample phrasings. A question is
matched on meaning rather than exact words:

* the text is normalised (`dialogs.text.normalise`: full-width → half-width, 台 → 臺) and
  converted from Traditional to Simplified Chinese with OpenCC, because jieba's dictionary is
  a Simplified one (segmentation of Traditional text is poor without it);
* jieba cuts it into words, with a user dictionary of program terms (統編, 意向書, 稅籍登記 …);
* a synonym table (``dialogs/faq_lexicon.yaml``) maps every way of saying a thing to one
  concept token (截止 / 期限 / 最後一天 / deadline → ``~deadline``), and a few patterns turn
  "12個人" into "headcount", "60家" into "number of enterprises" and so on;
* two BM25 indexes (rank-bm25) score each topic: one on those words, one on character
  bigrams (robust to segmentation mistakes and words the dictionary does not know);
* the topics about the chat itself (``tier: bot``: the bot's own steps, small talk) add words
  that change every weight, so the program's topics are also scored without them and keep the
  better score: the bot's topics never cost a program question its answer.

Each score is divided by what the question could score at most (the sum of the IDF of its
terms, a word no topic knows counting 1.5 times a rare one), so it reads as "how much of the
question this topic explains": about 0 for unrelated text, 1 and more for a close match. The
bot answers outright when the best topic reaches `CONFIDENT`, or `CONFIDENT_LOW` while
leading the runner-up by `MARGIN`; otherwise it says it is not sure, offers the closest topics
as buttons and gives the program office's contact (§玖). Out-of-scope anchors in faq.yaml
(tax rates, insurance, loans, small talk) catch questions that share one word with a topic.
The rule and weights were chosen with ``bench/faq_eval.py`` (figures in bench/RESULTS.md).

Why these libraries: jieba is the usual Chinese word segmenter (pure Python, user
dictionaries); OpenCC is the reference Traditional/Simplified converter; rank-bm25 is a small,
dependency-light BM25. Together they are deterministic, explainable (the tokens and scores can
be printed), need no model download (none can be fetched here) and match in well under a
millisecond over ~50 topics. Embedding models would need weights from a hub.

Loading (jieba's dictionary, the indexes) happens once per file and is cached; a match takes
well under a millisecond.
"""
from __future__ import annotations

import functools
import logging
import math
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal, Optional, Union

import numpy as np
import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from dialogs.cards import text_parts
from dialogs.i18n import _, current_locale, use_locale
from dialogs.messages import Choice, Message, Text
from dialogs.text import normalise

log = logging.getLogger("gonghao.faq")

LOCALES = ("zh_TW", "en")
EDITIONS_DIR = Path(__file__).resolve().parent.parent / "storage" / "editions"
DEFAULT_EDITION_DIR = EDITIONS_DIR / "112"
LEXICON_PATH = Path(__file__).resolve().parent / "faq_lexicon.yaml"

# Decided from bench/faq_eval.py (tuned on the "dev" half, checked on the "test" half).
CONFIDENT = 0.48  # the best topic's normalised score must reach this, ...
CONFIDENT_LOW = 0.28  # ... or at least this while leading the runner-up by MARGIN
MARGIN = 0.10
SUGGESTIONS = 3
WORD_WEIGHT = 0.65  # share of the word index in the score; the rest is character bigrams
TITLE_REPEAT = 2  # the title counts as this many phrasings
ANSWER_WEIGHT = 0.0  # share of a third index, on the answers' own words
BM25_K1 = 1.2
BM25_B = 0.5  # topics with many phrasings are long; do not punish length too much
UNKNOWN_WEIGHT = 1.5  # a word no topic uses weighs this many times a word only one topic uses

# ---------------------------------------------------------------------------------------------
# Text → tokens


_STOPWORDS = {
    # zh (Simplified, as after conversion)
    "的", "了", "吗", "呢", "吧", "啊", "呀", "喔", "哦", "嘛", "啦", "欸", "耶", "是", "我", "我们", "你", "你们",
    "您", "他", "她", "它", "他们", "有", "要", "会", "在", "和", "跟", "与", "及", "或", "或是", "就", "都",
    "还", "也", "请问", "想", "想问", "问", "问一下", "一下", "这个", "那个", "这", "那", "什么", "甚么", "可以",
    "能", "能够", "可", "不", "不能", "是否", "如果", "的话", "因为", "所以", "但是", "现在", "目前", "需要", "需",
    "得", "该", "应该", "吗？", "怎么办", "多", "最", "个", "里", "对", "给", "让", "把", "被", "到", "从", "为",
    "自己", "家里", "一样", "这样", "那样", "还是", "请", "麻烦", "好", "嗯", "哪", "哪些", "一个", "又",
    "再", "才", "很", "太", "一定", "必须", "多少", "会不会", "是不是", "有没有", "能不能", "要不要", "一些", "这些", "那些", "东西", "相关", "之后", "以后", "时", "的时候", "比较", "已经", "还能", "能否", "行", "不行", "可不可以", "算", "吗?", "之", "其",
    # en
    "the", "a", "an", "is", "are", "am", "was", "were", "be", "been", "do", "does", "did", "i", "we", "you", "my",
    "our", "your", "me", "us", "it", "its", "this", "that", "these", "those", "can", "could", "should", "would",
    "will", "shall", "may", "might", "must", "to", "of", "for", "in", "on", "at", "by", "with", "from", "and", "or",
    "if", "what", "which", "who", "whom", "whose", "there", "here", "please", "hi", "hello", "any", "some", "still",
    "have", "has", "had", "need", "needs", "about", "as", "so", "than", "then", "too", "very", "just", "get", "got",
    "into", "up", "out", "yes", "much", "many", "more", "most", "also", "only", "there", "thing", "things",
    "ok", "okay",
}
_STOP_CHARS = set("的了吗呢吧啊呀是我你您他她们有要会在和跟与及或就都还也请问想一下这那个么什可以能不哪")

_CJK = re.compile(r"[\u3400-\u9fff]+")
_WORD = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")

# Patterns that carry meaning beyond their words (applied to the normalised Traditional text).
_NUM = r"(?:\d+|[一二兩三四五六七八九十百]+)"
_PATTERNS = [
    # dates: "3/16", "3月16日", "3月16號" → one token, so a date in a question finds its topic
    (re.compile(r"(?<![\d/])(?:1\d\d\s*/\s*|1\d\d\s*年\s*)?(\d{1,2})\s*(?:/|月)\s*(\d{1,2})\s*(?:日|號|号)?(?![\d/])"),
     lambda m: f" date{int(m.group(1)):02d}{int(m.group(2)):02d} "),
    (re.compile(_NUM + r"\s*(?:個|位|名)?\s*(?:人|員工|職員|夥計|伙計|正職)"), " 員工人數 "),
    (re.compile(r"\d+\s*(?:employees|employee|people|persons|staff|workers|workers)\b"), " headcount "),
    (re.compile(_NUM + r"\s*(?:家|間)(?!人)"), " 家數 "),
    (re.compile(r"\d+\s*(?:businesses|enterprises|shops|stores|companies)\b"), " enterprise_count "),
    (re.compile(_NUM + r"\s*頁"), " 頁數 "),
    (re.compile(r"\d+(?:\.\d+)?\s*%"), " 比例 "),
    # "早餐店", "美甲店", "咖啡館": a kind of shop, whatever the kind ("我的店" is not one)
    (re.compile(r"(?<![\u4e00-\u9fff])?(?:(?![的我你他這那本開家])[\u4e00-\u9fff]){1,3}?(?:店|館|坊|廳|鋪|舖|攤|工廠|工作室)(?!家|長|員)"),
     " 店型 "),
    (re.compile(r"\d+\s*pages?\b"), " pages "),
    (re.compile(r"\d+(?:\.\d+)?\s*(?:mb|m|g|gb)\b"), " 檔案大小 "),
]


_CONTRACTIONS = re.compile(r"n't|'(?:s|re|m|ll|ve|d)\b")


def _en_stem(word: str) -> str:
    """A light English stemmer: plurals and a few endings (enough for short questions)."""
    for suffix, repl in (("ies", "y"), ("sses", "ss"), ("ing", ""), ("ed", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            return word[: -len(suffix)] + repl
    return word


def _bigrams(text: str) -> list[str]:
    """Character bigrams of the Chinese runs (single characters too) and the English stems of ``text``."""
    bigrams: list[str] = []
    for run in _CJK.findall(text):
        if len(run) == 1 and run not in _STOP_CHARS:
            bigrams.append(run)
        for a, b in zip(run, run[1:]):
            if a in _STOP_CHARS and b in _STOP_CHARS:
                continue
            bigrams.append(a + b)
    for word in _WORD.findall(text):
        if word not in _STOPWORDS and not word.startswith("zzc"):
            bigrams.append(_en_stem(word))
    return bigrams


class Lexicon:
    """jieba (with program terms), OpenCC, the synonym table and the stopwords, built once."""

    def __init__(self, terms: Iterable[str], synonyms: dict[str, list[str]]):
        import jieba
        import opencc

        jieba.setLogLevel(logging.WARNING)
        self._cc = opencc.OpenCC("tw2s")
        self._jieba = jieba.Tokenizer()
        self._jieba.initialize()
        self._lock = threading.Lock()
        self._concepts: dict[str, set[str]] = {}  # surface form (simplified, lower) -> concepts
        self._phrases: list[tuple[re.Pattern, str]] = []  # multi-word English forms
        self.add(terms, synonyms)

    def add(self, terms: Iterable[str], synonyms: dict[str, list[str]]) -> None:
        with self._lock:
            for term in terms:
                self._add_word(term)
            for concept, forms in (synonyms or {}).items():
                for form in forms:
                    form = str(form)
                    key = self.simplify(form)
                    if re.fullmatch(r"[a-z0-9 \-']+", key) and " " in key.strip():
                        placeholder = "zzc" + re.sub(r"[^a-z0-9]", "", concept)
                        self._phrases.append((re.compile(r"\b" + re.escape(key.strip()) + r"\b"), f" {placeholder} "))
                        self._concepts.setdefault(placeholder, set()).add(concept)
                        continue
                    if _CJK.search(key):
                        self._add_word(form)
                    elif not re.fullmatch(r"[a-z0-9\-']+", key):
                        continue
                    else:
                        key = _en_stem(key)
                    self._concepts.setdefault(key, set()).add(concept)
            self._phrases.sort(key=lambda p: -len(p[0].pattern))

    def _add_word(self, word: str) -> None:
        simplified = self.simplify(word)
        if _CJK.search(simplified):
            self._jieba.add_word(simplified, freq=max(2000, self._jieba.suggest_freq(simplified)))

    def simplify(self, text: str) -> str:
        """Normalised, lower case, Simplified Chinese: the form every comparison is made in."""
        return self._cc.convert(normalise(text).lower())

    def tokens(self, text: str) -> tuple[list[str], list[str]]:
        """Words (synonyms folded into ``~concept`` tokens) and character bigrams of ``text``."""
        text = self._prepared(text)
        words: list[str] = []
        for piece in self._jieba.cut(text):
            words.extend(self._word(piece.strip()))
        return words, _bigrams(text)

    def _prepared(self, text: str) -> str:
        """Normalised, contractions and patterns applied, Simplified, the lexicon's phrases as placeholders."""
        text = normalise(text).lower()
        text = _CONTRACTIONS.sub(lambda m: " not" if m.group(0) == "n't" else "", text.replace("’", "'"))
        for pattern, repl in _PATTERNS:
            text = pattern.sub(repl, text)
        text = self._cc.convert(text)
        for pattern, placeholder in self._phrases:
            text = pattern.sub(placeholder, text)
        return text

    def _word(self, piece: str) -> list[str]:
        """The tokens of one segmented piece: its concepts, or itself (stemmed); none for stop words."""
        if _CJK.fullmatch(piece):
            key = piece
        elif _WORD.fullmatch(piece):
            key = _en_stem(piece) if not piece.startswith("zzc") else piece
        else:
            return []  # punctuation, symbols, nothing
        if piece in _STOPWORDS or key in _STOPWORDS:
            return []
        concepts = self._concepts.get(key) or self._concepts.get(piece)
        return ["~" + c for c in sorted(concepts)] if concepts else [key]


_LOADING = threading.RLock()


@functools.lru_cache(maxsize=1)
def _base_lexicon() -> Lexicon:
    data = yaml.safe_load(LEXICON_PATH.read_text(encoding="utf-8")) or {}
    return Lexicon(data.get("terms") or [], data.get("synonyms") or {})


# ---------------------------------------------------------------------------------------------
# The knowledge base


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _citation(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(_("the citation is missing (the paragraph of the guidelines, e.g. \"§伍.三\")"))
    return value.strip()


def _stripped(texts: dict[str, str]) -> dict[str, str]:
    return {locale: str(text).strip() for locale, text in texts.items()}


def _phrasings(value: Any) -> Any:
    return value or {}


Phrasings = Annotated[dict[str, list[Union[str, int]]], BeforeValidator(_phrasings)]


class TopicButton(_Model):
    """A button under a topic's answer that leads to the feature (更正意向書 → correct)."""

    label: dict[str, str] = Field(min_length=1)  # by locale; LINE shows at most 20 characters
    value: str

    def label_in(self, locale: str) -> str:
        return (self.label.get(locale) or self.label.get("zh_TW") or "")[:20]


class Topic(_Model):
    """One answer of the knowledge base, with how people ask it and the paragraph it comes from."""

    id: str
    citation: Annotated[str, BeforeValidator(_citation)]
    title: dict[str, str] = Field(min_length=1)  # button labels, at most 20 characters
    answer: Annotated[dict[str, str], AfterValidator(_stripped)] = Field(min_length=1)
    phrasings: Phrasings = {}
    stated: bool = True  # False: the guidelines do not answer it, the answer says so
    refuse: bool = False  # an out-of-scope anchor: when it matches best, the bot is not sure
    weight: float = 1.0  # prior: the topic people usually mean by a vague question (>1) or rarely (<1)
    buttons: tuple[TopicButton, ...] = ()  # to the feature the answer is about
    small_talk: bool = False  # thanks, goodbye, "are you human": answered briefly, without a source line
    # "program": about the guidelines; "bot": about the chat itself (its own steps, small talk), whose words
    # never lower a program topic's score (see KnowledgeBase)
    tier: Literal["program", "bot"] = "program"
    # the `contact` topic also carries the program office's details (§玖)
    unit: Optional[dict[str, str]] = None
    phone: str = ""
    extensions: tuple[str, ...] = ()
    fax: str = ""
    email: str = ""
    address: Optional[dict[str, str]] = None
    facebook: str = ""

    def title_in(self, locale: str) -> str:
        return self.title.get(locale) or self.title.get("zh_TW", self.id)

    def answer_in(self, locale: str) -> str:
        return self.answer.get(locale) or self.answer.get("zh_TW", "")


class OutOfScope(_Model):
    """A subject people also ask that this program does not answer: when it matches best, the bot is not sure."""

    id: str
    phrasings: Phrasings = {}


class KnowledgeBaseFile(_Model):
    """A faq.yaml: the topics of one edition, the anchors out of scope, and extra synonyms."""

    edition: int
    source: str = ""
    popular: list[str] = ["who_is_eligible", "proposal_deadline", "documents_required", "contact"]
    out_of_scope: list[OutOfScope] = []
    synonyms: Optional[dict[str, list[str]]] = None
    terms: list[str] = []
    topics: list[Topic] = Field(min_length=1)


@dataclass(frozen=True)
class Match:
    topic: Topic
    score: float


@dataclass(frozen=True)
class FaqAnswer:
    topic: Optional[Topic]
    confident: bool
    suggestions: list = field(default_factory=list)
    score: float = 0.0


@dataclass(frozen=True)
class Contact:
    """The program office (§玖), read from the knowledge base's `contact` topic."""

    phone: str
    email: str
    extensions: tuple = ()
    citation: str = "§玖"

    def phone_text(self) -> str:
        if not self.extensions:
            return self.phone
        exts = ("、" if current_locale() != "en" else ", ").join(e.split()[0] for e in self.extensions)
        return _("{phone} ext. {extensions}").format(phone=self.phone, extensions=exts)


class _Index:
    """BM25 over one kind of token, with scores normalised to 'share of the question explained'."""

    def __init__(self, docs: list[list[str]]):
        from rank_bm25 import BM25Okapi

        self.bm25 = BM25Okapi(docs, k1=BM25_K1, b=BM25_B)
        n = len(docs)
        self.rare_idf = math.log(n - 1 + 0.5) - math.log(1 + 0.5)  # a term found in one topic

    def scores(self, query: list[str]):
        terms = list(dict.fromkeys(query))
        if not terms:
            return None
        idf = self.bm25.idf
        best = sum(idf[t] if t in idf else self.rare_idf * UNKNOWN_WEIGHT for t in terms)
        raw = self.bm25.get_scores(terms)
        return raw / best if best > 0 else raw * 0


class _Scorer:
    """BM25 indexes over some topics (their words, character bigrams and answers) and how they score a question."""

    def __init__(self, topics: list[Topic], lexicon: Lexicon):
        word_docs, bigram_docs, answer_docs = [], [], []
        for topic in topics:
            words, bigrams = _topic_tokens(topic, lexicon)
            word_docs.append(words)
            bigram_docs.append(bigrams)
            answer_docs.append([w for locale in LOCALES for w in lexicon.tokens(topic.answer.get(locale, ""))[0]])
        self.words = _Index(word_docs)
        self.bigrams = _Index(bigram_docs)
        self.answers = _Index(answer_docs)

    def scores(self, words: list[str], bigrams: list[str]):
        """Each topic's normalised score (None when the question has no tokens)."""
        w = self.words.scores(words)
        b = self.bigrams.scores(bigrams)
        if w is None and b is None:
            return None
        if w is None:
            combined = b * (1 - WORD_WEIGHT)
        elif b is None:
            combined = w * WORD_WEIGHT
        else:
            combined = w * WORD_WEIGHT + b * (1 - WORD_WEIGHT)
        if ANSWER_WEIGHT and w is not None:
            combined = combined * (1 - ANSWER_WEIGHT) + self.answers.scores(words) * ANSWER_WEIGHT
        return combined


def _topic_tokens(topic: Topic, lexicon: Lexicon) -> tuple[list[str], list[str]]:
    """The words and bigrams of a topic's titles (repeated) and phrasings, in both languages."""
    words, bigrams = [], []
    texts = [topic.title.get(l, "") for l in LOCALES] * TITLE_REPEAT
    for locale in LOCALES:
        texts += [str(p) for p in topic.phrasings.get(locale) or []]
    for text in texts:
        w, b = lexicon.tokens(text)
        words += w
        bigrams += b
    return words, bigrams


class KnowledgeBase:
    """The topics of one faq.yaml and how a question is matched to them.

    Every topic is scored in indexes over all topics. The program's topics (``tier: program``) are
    also scored in indexes of their own, as if the bot's own steps and small talk (``tier: bot``)
    did not exist, and keep the better of the two scores: the bot's topics add words and change
    every BM25 weight (IDF), and that must never cost a program question its answer.
    """

    def __init__(self, topics: list[Topic], lexicon: Lexicon, popular: list[str] = (), source: str = ""):
        if not topics:
            raise ValueError("a knowledge base needs topics")
        self.topics = topics
        self.source = source
        self._by_id = {t.id: t for t in topics}
        if len(self._by_id) != len(topics):
            raise ValueError("topic ids must be unique")
        self.lexicon = lexicon
        self.popular = [self._by_id[i] for i in popular if i in self._by_id]
        self._everything = _Scorer(topics, lexicon)
        self._program = [i for i, t in enumerate(topics) if t.tier == "program"]
        self._program_alone = (_Scorer([topics[i] for i in self._program], lexicon)
                               if self._program and len(self._program) < len(topics) else None)
        self._weights = np.array([t.weight for t in topics])

    # -- loading ---------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: Union[str, Path]) -> "KnowledgeBase":
        """The knowledge base in ``path`` (a faq.yaml, or an edition folder holding one); cached."""
        path = Path(path)
        if path.is_dir():
            path = path / "faq.yaml"
        path = path.resolve()
        with _LOADING:  # one thread builds it; the others wait (each build holds a jieba dictionary: ~15 MB)
            return _load_cached(str(path), path.stat().st_mtime_ns)

    @classmethod
    def from_data(cls, data: dict, source: str = "") -> "KnowledgeBase":
        """The knowledge base of a faq.yaml's data; raises pydantic's ValidationError naming each problem."""
        found = KnowledgeBaseFile.model_validate(data)
        lexicon = _base_lexicon()
        if found.synonyms or found.terms:
            lexicon.add(found.terms, found.synonyms)
        topics = list(found.topics) + [Topic.model_construct(id=o.id, citation="", title={}, answer={},
                                                              phrasings=o.phrasings, refuse=True)
                                       for o in found.out_of_scope]
        return cls(topics, lexicon, found.popular, source)

    # -- lookup ----------------------------------------------------------------------------------
    def topic(self, topic_id: str) -> Optional[Topic]:
        topic = self._by_id.get(topic_id)
        return None if topic is None or topic.refuse else topic

    @property
    def answerable(self) -> list[Topic]:
        """The topics the bot can answer (without the out-of-scope anchors)."""
        return [t for t in self.topics if not t.refuse]

    @property
    def contact(self) -> Contact:
        topic = self._by_id.get("contact")
        if topic is None:
            raise KeyError("the knowledge base has no `contact` topic")
        return Contact(
            phone=topic.phone,
            email=topic.email,
            extensions=topic.extensions,
            citation=topic.citation,
        )

    def match(self, text: str, locale: str = "zh_TW") -> list[Match]:
        """All topics, best first, with a score of about 0 (unrelated) to 1 (fully explained).

        Both languages are indexed together, so ``locale`` does not change the ranking; it is
        accepted for symmetry with `answer`.
        """
        words, bigrams = self.lexicon.tokens(text)
        combined = self._everything.scores(words, bigrams)
        if combined is None:
            return [Match(t, 0.0) for t in self.topics]
        if self._program_alone is not None:
            alone = self._program_alone.scores(words, bigrams)
            combined[self._program] = np.maximum(combined[self._program], alone)
        combined = combined * self._weights
        order = sorted(range(len(self.topics)), key=lambda i: -combined[i])
        return [Match(self.topics[i], round(float(combined[i]), 4)) for i in order]

    def answer(self, text: str, locale: str = "zh_TW") -> FaqAnswer:
        """The best topic when confident; otherwise the closest topics to offer."""
        matches = self.match(text, locale)
        best = matches[0]
        confident = is_confident(matches)
        real = [m for m in matches if not m.topic.refuse]
        if confident:
            others = [m.topic for m in real[1:SUGGESTIONS] if m.score >= CONFIDENT / 2]
            return FaqAnswer(best.topic, True, others, best.score)
        suggestions = [] if best.topic.refuse else [m.topic for m in real[:SUGGESTIONS] if m.score >= CONFIDENT_LOW / 2]
        for topic in self.popular:
            if len(suggestions) >= SUGGESTIONS:
                break
            if topic not in suggestions:
                suggestions.append(topic)
        return FaqAnswer(None, False, suggestions, best.score)


def is_confident(matches: list[Match], high: float = None, low: float = None, margin: float = None) -> bool:
    """The rule for answering outright (thresholds from bench/faq_eval.py)."""
    high = CONFIDENT if high is None else high
    low = CONFIDENT_LOW if low is None else low
    margin = MARGIN if margin is None else margin
    if not matches or matches[0].topic.refuse:
        return False
    best = matches[0].score
    lead = best - (matches[1].score if len(matches) > 1 else 0.0)
    return best >= high or (best >= low and lead >= margin)


@functools.lru_cache(maxsize=8)
def _load_cached(path: str, mtime_ns: int) -> KnowledgeBase:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return KnowledgeBase.from_data(data, source=path)


# ---------------------------------------------------------------------------------------------
# Messages


def source_line(citation: str) -> str:
    return _("(Source: {citation})").format(citation=citation)


def topic_messages(topic: Topic, locale: str) -> list[Message]:
    """The topic's answer with its source line (none for small talk) and its buttons to the feature.

    An answer longer than a phone shows whole is said in two texts (cut between its lines or sentences).
    """
    with use_locale(locale):
        choices = tuple(Choice(button.label_in(locale), button.value) for button in topic.buttons)
        lines = topic.answer_in(locale).split("\n") + ([] if topic.small_talk else [source_line(topic.citation)])
        parts = text_parts(lines)
        return [Text(part) for part in parts[:-1]] + [Text(parts[-1], choices)]


def faq_messages(answer: FaqAnswer, locale: str, contact: Union[Contact, dict]) -> list[Message]:
    """A confident answer with its citation, or a not-sure reply with topics and the office's contact."""
    if isinstance(contact, dict):
        contact = Contact(phone=str(contact.get("phone", "")), email=str(contact.get("email", "")),
                          extensions=tuple(contact.get("extensions") or ()))
    if answer.confident and answer.topic is not None:
        return topic_messages(answer.topic, locale)
    with use_locale(locale):
        lines = [_("I am not sure I understood your question.")]
        if answer.suggestions:
            lines.append(_("Is it one of these? Tap a topic."))
        lines.append(_("You can also ask the program office: phone {phone}, e-mail {email}.").format(
            phone=contact.phone_text(), email=contact.email))
        choices = tuple(Choice(t.title_in(locale), f"faq:{t.id}") for t in answer.suggestions)
        return [Text("\n".join(lines), choices)]


def _knowledge_base(edition_dir_or_kb: Any) -> KnowledgeBase:
    if isinstance(edition_dir_or_kb, KnowledgeBase):
        return edition_dir_or_kb
    return KnowledgeBase.load(edition_dir_or_kb or DEFAULT_EDITION_DIR)


def answer_question(text: str, locale: str, edition_dir_or_kb: Any = None,
                    inside_dialog: bool = False) -> Optional[list[Message]]:
    """What the conversation says to a free-text question.

    A tapped suggestion ("faq:<id>") answers that topic. Inside a dialog, returns None unless
    confident (so the dialog's own refusal is shown); outside, always returns messages.
    """
    kb = _knowledge_base(edition_dir_or_kb)
    raw = normalise(text)
    if raw.lower().startswith("faq:"):
        topic = kb.topic(raw[4:].strip())
        if topic is not None:
            return topic_messages(topic, locale)
    answer = kb.answer(raw, locale)
    if inside_dialog and not answer.confident:
        return None
    return faq_messages(answer, locale, kb.contact)
