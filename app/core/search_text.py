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

Ranking by relevance reads the newest matches first (README, Search): a query's prefix terms
are spelled out as the words of the index that start with them (`expanded_query`, from the
`search_lexeme` table), so that the GIN index finds them as words, and its second key, the
days of an event's creation (`search_day`, `day_keys`), lets it read one stretch of time.
"""

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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
    return _vector(_positions(title, description))


def vector_and_words(title: str, description: str) -> tuple[str, list[str]]:
    """The `tsvector` literal of an event's text and the words of it that the `search_lexeme`
    table lists (every token but numbers: `spelled_out`), sorted."""
    positions = _positions(title, description)
    words = sorted(w for w in positions if not (w.isascii() and w.isdigit()))
    return _vector(positions), words


def _positions(title: str, description: str) -> dict[str, list[str]]:
    """Each token of the text with its positions as the literal writes them, in order."""
    # Intake's hot path (bench/README.md): each position is rendered once, in order.
    head = tokens(title)
    weighted = len(head)
    every = head + tokens(description)
    # Past PostgreSQL's last position a token keeps the last one (as to_tsvector does).
    last = _MAX_POSITION if len(every) > _MAX_POSITION else None
    positions: dict[str, list[str]] = {}
    for position, token in enumerate(every, start=1):
        label = str(position if last is None else min(position, last))
        if position <= weighted:
            label += "A"
        at = positions.get(token)
        if at is None:
            positions[token] = [label]
        elif len(at) < _MAX_POSITIONS:
            at.append(label)
    return positions


def _vector(positions: Mapping[str, list[str]]) -> str:
    # The lexemes need no quoting: tokens are letters and digits, never `'` or `\`.
    return " ".join([f"'{lexeme}':{','.join(at)}" for lexeme, at in positions.items()])


@dataclass(frozen=True, slots=True)
class Term:
    """One term of a query (every term must match): a word or a single CJK character is a
    prefix (`'fail':*`), a longer CJK run the phrase of its bigrams (`('延误' <-> '误两')`)."""

    literal: str  # the term in a `tsquery`
    prefix: str | None = None  # a prefix term: what the matching words start with
    bigrams: tuple[str, ...] = ()  # a phrase: its bigrams, each a word the text must hold


def search_terms(text: str) -> list[Term]:
    """The terms of what a user typed. Function words are dropped unless nothing else is
    left."""
    terms: list[tuple[bool, Term]] = []  # (is a function word, term)
    for cjk, word in _runs(text):
        if not cjk:
            prefix = word[:MAX_WORD]
            terms.append((word in STOP_WORDS, Term(f"{_quoted(prefix)}:*", prefix=prefix)))
        elif len(cjk) == 1:
            terms.append((False, Term(f"{_quoted(cjk)}:*", prefix=cjk)))
        else:
            bigrams = tuple(cjk[i : i + 2] for i in range(len(cjk) - 1))
            phrase = " <-> ".join(_quoted(b) for b in bigrams)
            terms.append((False, Term(f"({phrase})", bigrams=bigrams)))
    return [term for stop, term in terms if not stop] or [term for _, term in terms]


def search_query(text: str) -> str | None:
    """The `tsquery` literal of what a user typed: every term must match; a word or a single
    CJK character as a prefix, a longer CJK run as the phrase of its bigrams. Function words
    are dropped unless nothing else is left. None when there is nothing to search for."""
    return " & ".join(term.literal for term in search_terms(text)) or None


_NUMBER: Final = re.compile(r"[0-9]+")


def spelled_out(prefix: str) -> bool:
    """Whether a prefix is spelled out as the words that start with it: not a number (digits
    only), whose words the `search_lexeme` table leaves out: new ones come with nearly every
    event, each in few events, so a prefix of digits is cheap to read as a prefix."""
    return _NUMBER.fullmatch(prefix) is None


def expanded_query(terms: Sequence[Term], words: Mapping[str, Sequence[str] | None]) -> str | None:
    """The query of `terms` with each prefix term spelled out as the words that start with it
    (`words[prefix]`: `('fail' | 'failed' | 'fails')`, or the prefix as it is when None: too
    many to spell out). It matches the texts `search_query` matches as long as `words` lists
    every word of the index with each prefix, but the GIN index reads it word by word instead
    of gathering every match of the prefix first. None when a term can match nothing: a prefix
    that starts no word, or a phrase with a bigram no text holds (`words[bigram]` empty)."""
    parts: list[str] = []
    for term in terms:
        if term.prefix is None:
            if any(not words.get(bigram, ()) for bigram in term.bigrams):
                return None
            parts.append(term.literal)
            continue
        known = words.get(term.prefix, ())
        if known is None:
            parts.append(term.literal)
        elif not known:
            return None
        else:
            parts.append("(" + " | ".join(_quoted(word) for word in known) + ")")
    return " & ".join(parts) or None


# The second key of the search index (`event_search_days(created_at)`, migration
# 4d9f2b6c7e14): the day of an event's creation, counted in UTC from SEARCH_EPOCH, and the
# block of DAY_BLOCK days it falls in (negative: -1 - day // DAY_BLOCK), so that a stretch
# of time is a few keys (`day_keys`).
SEARCH_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)
DAY_BLOCK: Final = 16
_DAY: Final = timedelta(days=1)


def search_day(moment: datetime) -> int:
    """The day number of a moment, as the index counts it: whole days since SEARCH_EPOCH,
    truncated towards zero (PostgreSQL's `date_part('day', moment - epoch)`)."""
    days = abs(moment - SEARCH_EPOCH) // _DAY
    return days if moment >= SEARCH_EPOCH else -days


def _block(day: int) -> int:
    # SQL's integer division truncates towards zero.
    return day // DAY_BLOCK if day >= 0 else -(-day // DAY_BLOCK)


def day_keys(first: int, last: int) -> list[int]:
    """The index keys of the days `first` to `last` (both included): whole blocks as their
    block key, the days at either end as day keys (at most 2 x (DAY_BLOCK - 1) of them)."""
    keys: list[int] = []
    day = last
    while day >= first:
        start = day - DAY_BLOCK + 1
        if day >= 0 and day % DAY_BLOCK == DAY_BLOCK - 1 and start >= first:
            keys.append(-1 - _block(day))
            day = start - 1
        else:
            keys.append(day)
            day -= 1
    return keys


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
