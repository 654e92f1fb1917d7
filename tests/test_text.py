"""PII masking, VADER scoring and term extraction on small hand-made texts."""

from __future__ import annotations

import random

import pytest

from cx_pipeline.text import (
    CHUNK_SIZE,
    STOP_WORDS,
    count_documents,
    extract_terms,
    mask_pii,
    passes_luhn,
    score_text,
    score_texts,
    sentiment_label,
    text_hash,
    tokenize_words,
)

MASKED_CASES = [
    ("write to jane.doe+alexa@mail.example.co.uk please", "write to [email] please"),
    ("JOHN_DOE@EXAMPLE.COM.", "[email]."),
    ("(a.b-c@sub.domain.org)", "([email])"),
    ("call +44 20 7946 0958 today", "call [phone] today"),
    ("call +1 (555) 123-4567", "call [phone]"),
    ("+49 (0)30 1234567", "[phone]"),
    ("+33 1 23 45 67 89", "[phone]"),
    ("+91-98765-43210", "[phone]"),
    ("+8613812345678", "[phone]"),
    ("(555) 123-4567", "[phone]"),
    ("555-123-4567", "[phone]"),
    ("555.123.4567", "[phone]"),
    ("1-800-555-0199", "[phone]"),
    ("030 1234567", "[phone]"),
    ("020 7946 0958", "[phone]"),
    ("06 12 34 56 78", "[phone]"),
    ("card 4111 1111 1111 1111 expired", "card [card] expired"),
    ("4111-1111-1111-1111", "[card]"),
    ("4111111111111111", "[card]"),
    ("amex 3782 822463 10005", "amex [card]"),
    ("4111 1111 1111 1111 123", "[card]"),
    ("mail a@b.io or call 555-123-4567", "mail [email] or call [phone]"),
]

UNCHANGED_CASES = [
    "order #123456789",
    "Order 112-7234567-1234567",
    "order 1234567890123",  # 13 digits that fail the Luhn check
    "card 4111111111111112",  # 16 digits that fail the Luhn check
    "ticket 98765",
    "invoice INV-2018-000123",
    "2018-07-01",
    "01/07/2018",
    "07.01.2018",
    "July 1, 2018",
    "2018-07-01T10:30:00Z",
    "1.7.2018 - 15.7.2018",
    "01-07-2018 10 units",
    "$1,299.99",
    "version 3.3.2",
    "192.168.100.1000",
    "abc4111111111111111xyz",
    "SN4111111111111111",
    "model B07XJ8C8F5",
    "@alexa help",
    "user@localhost",
    "1234567890",
    "at 10:30 on 12 May",
]


@pytest.mark.parametrize(("text", "expected"), MASKED_CASES, ids=[case[0] for case in MASKED_CASES])
def test_mask_pii_masks(text: str, expected: str) -> None:
    assert mask_pii(text) == expected


@pytest.mark.parametrize("text", UNCHANGED_CASES)
def test_mask_pii_keeps(text: str) -> None:
    assert mask_pii(text) == text


@pytest.mark.parametrize(
    ("text", "expected"), MASKED_CASES[:6], ids=[case[0] for case in MASKED_CASES[:6]]
)
def test_mask_pii_is_idempotent(text: str, expected: str) -> None:
    assert mask_pii(mask_pii(text)) == expected


def test_mask_pii_keeps_none() -> None:
    assert mask_pii(None) is None


def test_luhn_check_digit() -> None:
    assert passes_luhn("4111111111111111")
    assert passes_luhn("378282246310005")
    assert not passes_luhn("4111111111111112")
    assert not passes_luhn("1234567890123")


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t"])
def test_blank_text_has_no_score(text: str | None) -> None:
    assert score_text(text) is None
    assert score_texts([text]) == [None]


def test_vader_scores_polarity() -> None:
    positive = score_text("I love it, great sound and easy setup!")
    negative = score_text("Terrible. It stopped working after a week and support was useless.")
    neutral = score_text("The device is black.")
    assert positive is not None and positive >= 0.05
    assert negative is not None and negative <= -0.05
    assert neutral == 0.0


@pytest.mark.parametrize(
    ("compound", "positive", "negative", "expected"),
    [
        (None, 0.05, -0.05, None),
        (0.05, 0.05, -0.05, "positive"),
        (0.0499, 0.05, -0.05, "neutral"),
        (0.0, 0.05, -0.05, "neutral"),
        (-0.0499, 0.05, -0.05, "neutral"),
        (-0.05, 0.05, -0.05, "negative"),
        (0.5, 0.6, -0.6, "neutral"),
        (-0.7, 0.6, -0.6, "negative"),
        (1.0, 0.6, -0.6, "positive"),
    ],
)
def test_sentiment_label_thresholds(
    compound: float | None, positive: float, negative: float, expected: str | None
) -> None:
    assert sentiment_label(compound, positive, negative) == expected


def test_parallel_scores_equal_single_process() -> None:
    generator = random.Random(7)
    words = "the echo is great love it sound terrible not working alexa bad awful happy".split()
    texts: list[str | None] = [
        " ".join(generator.choice(words) for _ in range(generator.randint(3, 20)))
        for _ in range(3 * CHUNK_SIZE + 17)
    ]
    texts[5] = ""
    texts[CHUNK_SIZE + 1] = None
    single = score_texts(texts)
    parallel = score_texts(texts, workers=2, parallel_min_texts=1)
    assert parallel == single
    assert parallel[5] is None
    assert parallel[CHUNK_SIZE + 1] is None


def test_text_hash_is_sha256() -> None:
    assert text_hash("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_tokenize_drops_mask_placeholders() -> None:
    assert tokenize_words(mask_pii("Email me at a@b.io or call 555-123-4567")) == [
        "email",
        "me",
        "at",
        "or",
        "call",
    ]
    assert tokenize_words("[email] [phone] [card]") == []
    assert tokenize_words("It doesn\u2019t WORK") == ["it", "doesn't", "work"]


def test_extract_terms_removes_stop_words() -> None:
    terms, phrases = extract_terms(
        "The speaker doesn't connect to the wifi, and it's not working at all!"
    )
    assert terms == {"speaker", "connect", "wifi", "working"}
    assert phrases == {"doesn't connect", "not working"}
    assert not terms & STOP_WORDS


def test_count_documents_counts_each_comment_once() -> None:
    term_counts, phrase_counts, documents = count_documents(
        ["Battery battery battery died", "battery died again", "Great sound"]
    )
    assert documents == 3
    assert term_counts["battery"] == 2
    assert term_counts["died"] == 2
    assert term_counts["sound"] == 1
    assert phrase_counts["battery died"] == 2
    assert phrase_counts["battery battery"] == 1
