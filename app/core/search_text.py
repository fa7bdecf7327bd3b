"""Text search that reads Chinese and English (issue 16 item 4; R7.2 analysis, R1.1 the same
problem again): the tokens of an event's text, its search vector and a query, all pure.

PostgreSQL's `simple` configuration splits on spaces and punctuation, so a run of Chinese is
one "word" and `快递` never matches inside `快递延误两周`. Here the text is split into runs of
CJK characters and runs of other letters and digits (after NFKC, so full-width forms read as
ASCII, and case folding):

* a CJK run gives its overlapping bigrams (`快递延误` -> `快递 递延 延误`) and its last
  character, so every character starts a token: a one-character query is a prefix (`快:*`),
  a longer one the phrase of its bigrams (`'快递' <-> '递延'`), exact inside any longer run;
* another run is one word (`fails`); a query word is a prefix (`fail:*` finds "fails");
  a few English function words are left out of the index (they make every text alike).

The vector is a `tsvector` literal with positions (title words weighted A, so a title match
ranks higher) that PostgreSQL stores as it is: no parser, no dictionary, no locale. Similar
events are scored with Dice's coefficient over the two sets of tokens (`similarity`); the
repository computes the same number in SQL.
"""

import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Final

# Han (with extension A and the compatibility block), kana and Hangul syllables; the
# supplementary planes' ideographs (extensions B to H).
_CJK_RANGES: Final = (
    "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\U00020000-\U0003134f"
)
_TOKEN: Final = re.compile(rf"([{_CJK_RANGES}]+)|([^\W_{_CJK_RANGES}]+)")
# Longer "words" are not words (hashes, base64): left out, as PostgreSQL leaves out long ones.
MAX_WORD: Final = 64
# PostgreSQL's limits of a tsvector: positions up to 16383, at most 256 per lexeme.
_MAX_POSITION: Final = 16383
_MAX_POSITIONS: Final = 256
# Candidates of a similar-event lookup share at least one of the source's first tokens.
MAX_QUERY_LEXEMES: Final = 64
STOP_WORDS: Final = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "in",
        "is",
        "it",
        "of",
        "on",
        "or",
        "that",
        "the",
        "this",
        "to",
        "was",
        "were",
        "with",
    ]
)


def normalise(text: str) -> str:
    """NFKC (full-width letters and digits read as ASCII) and case folded."""
    return unicodedata.normalize("NFKC", text).casefold()


def _runs(text: str) -> list[tuple[str, str]]:
    """(CJK run, other run) in order, one of the two empty (intake's hot path: `findall`
    rather than a generator of match objects)."""
    return _TOKEN.findall(normalise(text))


def tokens(text: str) -> list[str]:
    """The index tokens of a text, in order: words, and each CJK run's bigrams and last
    character."""
    out: list[str] = []
    for cjk, run in _runs(text):
        if cjk:
            out.extend([cjk[i : i + 2] for i in range(len(cjk) - 1)])
            out.append(cjk[-1])
        elif len(run) <= MAX_WORD and run not in STOP_WORDS:
            out.append(run)
    return out


def _quoted(lexeme: str) -> str:
    # Tokens are letters and digits: the escapes are for what a caller types elsewhere.
    if "'" in lexeme or "\\" in lexeme:
        lexeme = lexeme.replace("\\", "\\\\").replace("'", "''")
    return "'" + lexeme + "'"


def search_vector(title: str, description: str) -> str:
    """The `tsvector` literal of an event's text: every token with its positions, the
    title's weighted A (`'快递':3A,9`)."""
    head = tokens(title)
    weighted = len(head)
    positions: dict[str, list[int]] = {}
    for position, token in enumerate([*head, *tokens(description)], start=1):
        at = positions.get(token)
        if at is None:
            positions[token] = [position]
        elif len(at) < _MAX_POSITIONS:
            at.append(position)
    # Past PostgreSQL's last position a token keeps the last one (as to_tsvector does).
    return " ".join(
        _quoted(lexeme)
        + ":"
        + ",".join(
            f"{min(n, _MAX_POSITION)}A" if n <= weighted else str(min(n, _MAX_POSITION)) for n in at
        )
        for lexeme, at in positions.items()
    )


def search_query(text: str) -> str | None:
    """The `tsquery` literal of what a user typed: every term must match; a word or a single
    CJK character as a prefix, a longer CJK run as the phrase of its bigrams. Function words
    are dropped unless nothing else is left. None when there is nothing to search for."""
    terms: list[tuple[bool, str]] = []  # (is a function word, term)
    for cjk, word in _runs(text):
        if not cjk:
            terms.append((word in STOP_WORDS, f"{_quoted(word[:MAX_WORD])}:*"))
        elif len(cjk) == 1:
            terms.append((False, f"{_quoted(cjk)}:*"))
        else:
            phrase = " <-> ".join(_quoted(cjk[i : i + 2]) for i in range(len(cjk) - 1))
            terms.append((False, f"({phrase})"))
    kept = [term for stop, term in terms if not stop] or [term for _, term in terms]
    return " & ".join(kept) or None


def lexemes(title: str, description: str) -> list[str]:
    """The distinct tokens of an event's text, in order of first appearance (what its search
    vector holds)."""
    return list(dict.fromkeys([*tokens(title), *tokens(description)]))


def any_of(words: Sequence[str]) -> str | None:
    """A `tsquery` literal matching a text that has any of the first `MAX_QUERY_LEXEMES`
    words (the candidates of a similar-event lookup); None for none."""
    return " | ".join(_quoted(w) for w in words[:MAX_QUERY_LEXEMES]) or None


def similarity(a: Iterable[str], b: Iterable[str]) -> float:
    """Dice's coefficient of two token sets, 0 (nothing shared) to 1 (the same tokens)."""
    left, right = set(a), set(b)
    if not left and not right:
        return 0.0
    return 2 * len(left & right) / (len(left) + len(right))
