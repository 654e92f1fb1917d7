"""Free-text helpers: PII masking, VADER sentiment scoring and term extraction.

Every text that the project publishes for BI passes through ``mask_pii`` first, and the
sentiment score and the terms are computed from the masked text. Nothing here logs text.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from importlib.metadata import version

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

# --- PII masking -------------------------------------------------------------------------

EMAIL_MASK = "[email]"
PHONE_MASK = "[phone]"
CARD_MASK = "[card]"
MASK_TOKENS = (EMAIL_MASK, PHONE_MASK, CARD_MASK)

_EMAIL = re.compile(
    r"(?<![\w.%+-])[a-z0-9][a-z0-9._%+-]*@(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,24}(?![\w-])",
    re.IGNORECASE,
)

# Payment card numbers have 13 to 19 digits. Printed cards group them 4-4-4-4(-3),
# 4-6-5 (American Express) or 4-6-4 (Diners Club), and such a layout is masked whatever
# its digits. An ungrouped run of 13-19 digits is masked only when it passes the Luhn
# check, because order, tracking and account numbers are often long digit runs too.
_CARD_GROUPED = re.compile(
    r"(?<![\w.,/+-])"
    r"(?:\d{4}(?:[ -]\d{4}){2}[ -]\d{1,4}(?:[ -]\d{1,3})?|\d{4}[ -]\d{6}[ -]\d{4,5})"
    r"(?![\w/-]|[.,]\d)"
)
_CARD_UNGROUPED = re.compile(r"(?<![\w.,/+-])\d{13,19}(?![\w/-]|[.,]\d)")

# Phone numbers are masked only in a recognizable layout, because an unformatted run of
# digits is as likely to be an order or account number:
#   international: "+" and the country code, then digits with single separators and an
#   optional bracketed group ("+44 20 7946 0958", "+1 (555) 123-4567", "+49 (0)30 1234567");
#   North American: 3-3-4 digits ("(555) 123-4567", "555.123.4567", "1-800-555-0199");
#   national with a trunk prefix 0: "030 1234567", "020 7946 0958", "06 12 34 56 78".
# The candidate's digit count is checked in _mask_phone.
_PHONE_INTERNATIONAL = re.compile(r"(?<![\w+])\+\d(?:[ .-]?(?:\(\d{1,4}\) ?|\d)){6,20}(?![\w])")
_PHONE_NORTH_AMERICAN = re.compile(
    r"(?<![\w.+/-])(?:1[ .-])?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}(?![\w/-]|[.,]\d)"
)
_PHONE_TRUNK_PREFIX = re.compile(
    r"(?<![\w.+/-])(?:\(0\d{1,4}\) ?|0\d{1,4}[ -])\d{2,8}(?:[ -]\d{2,8}){0,4}(?![\w/-]|[.,]\d)"
)
# A day-month-year date such as 01-07-2018 has the shape of a trunk-prefix number.
_DATE_PREFIX = re.compile(r"\d{1,2}-\d{1,2}-\d{4}(?!\d)")

_DIGIT = re.compile(r"\d")
_MIN_PHONE_DIGITS = 9
_MAX_PHONE_DIGITS = 15  # the ITU-T E.164 maximum, country code included


def passes_luhn(digits: str) -> bool:
    """Return whether a string of digits has a valid Luhn check digit."""
    total = 0
    for position, character in enumerate(reversed(digits)):
        value = int(character)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _mask_ungrouped_card(match: re.Match[str]) -> str:
    return CARD_MASK if passes_luhn(match.group()) else match.group()


def _mask_phone(match: re.Match[str]) -> str:
    candidate = match.group()
    digit_count = len(_DIGIT.findall(candidate))
    if not _MIN_PHONE_DIGITS <= digit_count <= _MAX_PHONE_DIGITS:
        return candidate
    if _DATE_PREFIX.match(candidate):
        return candidate
    return PHONE_MASK


def mask_pii(text: str | None) -> str | None:
    """Replace e-mail addresses, payment card numbers and phone numbers with placeholders.

    E-mail addresses become ``[email]``, card numbers ``[card]`` and phone numbers
    ``[phone]``. Dates, times, prices, version numbers, unformatted digit runs that fail
    the Luhn check, and digits inside words stay as they are. ``None`` stays ``None``.
    """
    if text is None:
        return None
    if "@" in text:
        text = _EMAIL.sub(EMAIL_MASK, text)
    if not _DIGIT.search(text):
        return text
    text = _CARD_GROUPED.sub(CARD_MASK, text)
    text = _CARD_UNGROUPED.sub(_mask_ungrouped_card, text)
    text = _PHONE_INTERNATIONAL.sub(_mask_phone, text)
    text = _PHONE_NORTH_AMERICAN.sub(_mask_phone, text)
    return _PHONE_TRUNK_PREFIX.sub(_mask_phone, text)


# --- Sentiment ---------------------------------------------------------------------------

# Stored beside every cached score, so that upgrading the scorer rescores every text.
SCORER_VERSION = f"vaderSentiment {version('vaderSentiment')}"

# Texts per task sent to a worker process. Larger chunks cost less in pickling and
# scheduling. Smaller ones balance the load better near the end of a run.
CHUNK_SIZE = 500

_analyzer: SentimentIntensityAnalyzer | None = None


def has_text(text: str | None) -> bool:
    """Return whether ``text`` contains anything besides white space."""
    return text is not None and text.strip() != ""


def text_hash(text: str) -> str:
    """Return the SHA-256 hex digest of the UTF-8 text, the key of the sentiment cache."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _get_analyzer() -> SentimentIntensityAnalyzer:
    """Return this process's analyzer; loading the VADER lexicon takes tens of milliseconds."""
    global _analyzer
    if _analyzer is None:
        _analyzer = SentimentIntensityAnalyzer()
    return _analyzer


def score_text(text: str | None) -> float | None:
    """Return the VADER compound score in [-1, 1], or None for a missing or blank text."""
    if not has_text(text):
        return None
    return float(_get_analyzer().polarity_scores(text)["compound"])


def _score_chunk(texts: list[str]) -> list[float | None]:
    return [score_text(text) for text in texts]


def available_cpus() -> int:
    """Return the number of CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not available on macOS and Windows
        return os.cpu_count() or 1


def _process_context() -> multiprocessing.context.BaseContext:
    # A forked copy of a multi-threaded parent (Dagster, DuckDB) can deadlock on a lock
    # that another thread held at the fork, so workers start from a clean process.
    if "forkserver" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("forkserver")
    return multiprocessing.get_context("spawn")


def uses_process_pool(text_count: int, workers: int, parallel_min_texts: int) -> bool:
    """Return whether score_texts scores ``text_count`` texts in a pool of worker processes."""
    return workers > 1 and text_count >= max(parallel_min_texts, 2)


def score_texts(
    texts: Sequence[str | None], workers: int = 1, parallel_min_texts: int = 0
) -> list[float | None]:
    """Return the VADER compound score of every text, in input order.

    Texts are scored in ``workers`` processes when ``workers`` is above 1 and there are
    at least ``parallel_min_texts`` texts. Otherwise they are scored in this process,
    because starting the workers costs more than it saves on small inputs. The result
    does not depend on the number of workers. Worker processes import the main module,
    so a script that scores in a pool must guard its entry point with
    ``if __name__ == "__main__":``.
    """
    if not uses_process_pool(len(texts), workers, parallel_min_texts):
        return _score_chunk(list(texts))
    chunks = [list(texts[start : start + CHUNK_SIZE]) for start in range(0, len(texts), CHUNK_SIZE)]
    with ProcessPoolExecutor(
        max_workers=min(workers, len(chunks)), mp_context=_process_context()
    ) as pool:
        scored = pool.map(_score_chunk, chunks)
        return [score for chunk in scored for score in chunk]


def sentiment_label(
    compound: float | None, positive_threshold: float, negative_threshold: float
) -> str | None:
    """Return positive, negative or neutral for a compound score, and None for no score.

    A score at or above ``positive_threshold`` is positive and one at or below
    ``negative_threshold`` is negative. VADER's authors suggest 0.05 and -0.05.
    """
    if compound is None:
        return None
    if compound >= positive_threshold:
        return "positive"
    if compound <= negative_threshold:
        return "negative"
    return "neutral"


# --- Terms and phrases -------------------------------------------------------------------

# Function words of English that carry no topic, lower-case, in the spellings that
# tokenize_words returns (apostrophes kept, curly ones straightened).
STOP_WORDS = frozenset(
    """
    a about above after again against all almost along already also although always am
    among an and another any anybody anyone anything anyway anywhere are around as at
    back be became because become been before being below beside besides between both but
    by came can come could did do does doing done down during each either else enough
    etc even ever every everyone everything few for from further get gets getting go goes
    going got gotten had has have having he her here hers herself him himself his how
    however i i'd i'll i'm i've if in into is it it's its itself just let let's like
    made make makes many may me might mine more most much must my myself need needs now
    of off often on once one only onto or other others otherwise our ours ourselves out
    over own per put quite rather really said same say says see seem seems several shall
    she should since so some somebody someone something sometimes still such than that
    that's the their theirs them themselves then there there's these they they'd they'll
    they're they've thing things this those though through thus to too toward towards
    under until up upon us use used uses using very via want wants was way we we'd we'll
    we're we've well went were what what's whatever when where whether which while who
    whom whose why will with within without would yet you you'd you'll you're you've your
    yours yourself yourselves
    """.split()
)

# Negations are kept out of single terms (on their own they say nothing about a topic),
# but may start a phrase, so that "not working" and "doesn't connect" surface as themes.
NEGATIONS = frozenset(
    """
    no not never nothing nobody none nor cannot can't won't don't doesn't didn't isn't
    aren't wasn't weren't hasn't haven't hadn't couldn't shouldn't wouldn't
    """.split()
)

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
_MASK_PATTERN = re.compile("|".join(re.escape(token) for token in MASK_TOKENS))


def tokenize_words(text: str) -> list[str]:
    """Split a text into lower-case words, dropping the placeholders of masked PII."""
    cleaned = _MASK_PATTERN.sub(" ", text).lower().replace("\u2019", "'")
    return _WORD.findall(cleaned)


def extract_terms(text: str) -> tuple[set[str], set[str]]:
    """Return the distinct terms and two-word phrases of a text.

    A term is a word of two or more letters that is neither a stop word nor a negation.
    A phrase is two adjacent words of which the second is a term and the first is a term
    or a negation.
    """
    words = tokenize_words(text)
    is_term = [len(word) > 1 and word not in STOP_WORDS and word not in NEGATIONS for word in words]
    terms = {word for word, keep in zip(words, is_term, strict=True) if keep}
    phrases = {
        f"{words[i]} {words[i + 1]}"
        for i in range(len(words) - 1)
        if is_term[i + 1] and (is_term[i] or words[i] in NEGATIONS)
    }
    return terms, phrases


def count_documents(texts: Iterable[str]) -> tuple[dict[str, int], dict[str, int], int]:
    """Count in how many texts each term and each phrase occurs, and how many texts there are."""
    term_counts: dict[str, int] = {}
    phrase_counts: dict[str, int] = {}
    documents = 0
    for text in texts:
        documents += 1
        terms, phrases = extract_terms(text)
        for term in terms:
            term_counts[term] = term_counts.get(term, 0) + 1
        for phrase in phrases:
            phrase_counts[phrase] = phrase_counts.get(phrase, 0) + 1
    return term_counts, phrase_counts, documents
