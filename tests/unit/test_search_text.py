"""The tokeniser of search (issue 16 item 4; README, Search): CJK bigrams, words, prefixes."""

# Chinese text is what these tests are about: its full-width punctuation is meant.
# ruff: noqa: RUF001

import pytest

from app.core.search_text import (
    MAX_QUERY_LEXEMES,
    any_of,
    lexemes,
    search_query,
    search_vector,
    similarity,
    tokens,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "客户投诉：快递延误两周",
            ["客户", "户投", "投诉", "诉", "快递", "递延", "延误", "误两", "两周", "周"],
        ),
        ("快", ["快"]),
        ("Payment FAILS", ["payment", "fails"]),
        ("the order of a parcel", ["order", "parcel"]),  # function words left out
        ("iPhone15屏幕碎了", ["iphone15", "屏幕", "幕碎", "碎了", "了"]),
        ("ＡＢＣ１２３ café", ["abc123", "café"]),  # NFKC: full-width reads as ASCII
        ("snake_case-word", ["snake", "case", "word"]),
        ("x" * 65 + " ok", ["ok"]),  # no "word" longer than 64 characters
        ("。，！？ ...", []),
    ],
)
def test_tokens(text: str, expected: list[str]) -> None:
    assert tokens(text) == expected


def test_the_vector_weights_the_title_and_keeps_positions() -> None:
    assert search_vector("快递延误", "Late parcel, late") == (
        "'快递':1A '递延':2A '延误':3A '误':4A 'late':5,7 'parcel':6"
    )
    assert search_vector("", "") == ""


def test_the_vector_quotes_and_bounds_what_postgresql_would_refuse() -> None:
    vector = search_vector("a'b", " ".join(["word"] * 300))
    assert "'word':" in vector
    assert vector.count(",") == 255  # at most 256 positions of one lexeme
    long = search_vector("", " ".join(f"w{i}" for i in range(17_000)))
    assert long.endswith("'w16999':16383")  # past the last position: the last one


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("快递", "('快递')"),
        ("快", "'快':*"),
        ("延误两周", "('延误' <-> '误两' <-> '两周')"),
        ("fail", "'fail':*"),
        ("the fail", "'fail':*"),
        ("the", "'the':*"),  # only function words: kept, as prefixes
        ("屏幕 Screen", "('屏幕') & 'screen':*"),
        ("：，。", None),
    ],
)
def test_search_query(text: str, expected: str | None) -> None:
    assert search_query(text) == expected


def test_similarity_is_dice_over_token_sets() -> None:
    """The 快递 pair of issue 14 shares 快递 and 延误: 2 x 2 / (10 + 8)."""
    a = lexemes("客户投诉：快递延误两周", "")
    b = lexemes("快递又延误了三天", "")
    assert similarity(a, b) == pytest.approx(4 / 18)
    assert similarity(a, a) == 1.0
    assert similarity(a, lexemes("打印机坏了", "")) == 0.0
    assert similarity([], []) == 0.0


def test_any_of_takes_the_first_lexemes() -> None:
    words = [f"w{i}" for i in range(100)]
    query = any_of(words)
    assert query is not None
    assert query.count("|") == MAX_QUERY_LEXEMES - 1
    assert query.startswith("'w0' | 'w1'")
    assert any_of([]) is None
