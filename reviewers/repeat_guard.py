"""A no-repeat n-gram rule over prose tokens: the one repetition guard of greedy decoding.

Gemma 3 270M with a LoRA answers in the contract's shape, but greedy decoding falls into loops ("on the
default of the pull requirement on the default of the pull requirement ...") that run to the token cap.
The guard forbids the next token when it would complete an n-gram of *prose* tokens the answer already
contains. JSON structure repeats legitimately (`", "severity": "` in every finding), so an n-gram counts
only when none of its tokens holds a double quote: keys, separators and string ends all do. The engine
and the transformers backend both decode with this class, so they pick the same tokens.

Pure: token ids in, token ids out; which token is prose is a callable handed in (it needs the vocabulary).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable


def quote_free(token_bytes: bytes) -> bool:
    """Whether a token is prose for the guard: it holds no `"`, so it is inside a string, not JSON syntax."""
    return b'"' not in token_bytes


class RepeatGuard:
    """Tracks one answer's tokens; `banned()` names the tokens that would repeat a prose n-gram."""

    def __init__(self, n: int, is_prose: Callable[[int], bool]) -> None:
        if n < 2:
            raise ValueError(f"a repeat guard needs n >= 2, got {n}")
        self.n = n
        self.is_prose = is_prose
        self._tail: list[int] = []  # the last n-1 tokens
        self._prose_run = 0  # how many of the newest tokens are prose, capped at n
        self._next_after: dict[tuple[int, ...], set[int]] = {}

    def push(self, token: int) -> None:
        """Record a generated token."""
        prose = self.is_prose(token)
        if prose and self._prose_run >= self.n - 1:
            self._next_after.setdefault(tuple(self._tail), set()).add(token)
        self._prose_run = min(self._prose_run + 1, self.n) if prose else 0
        self._tail.append(token)
        if len(self._tail) > self.n - 1:
            del self._tail[0]

    def extend(self, tokens: Iterable[int]) -> None:
        for token in tokens:
            self.push(token)

    def banned(self) -> frozenset[int] | set[int]:
        """Tokens that, picked next, would repeat an all-prose n-gram already in the answer."""
        if self._prose_run < self.n - 1:
            return frozenset()
        return self._next_after.get(tuple(self._tail), frozenset())


def pick_unbanned(ranked: Iterable[int], banned: frozenset[int] | set[int]) -> int | None:
    """The first token of `ranked` (best first, only tokens the grammar allows) that is not banned."""
    for token in ranked:
        if token not in banned:
            return token
    return None
