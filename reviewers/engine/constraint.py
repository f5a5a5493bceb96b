"""Schema-constrained decoding: every reviewer answer parses as `ReviewerOutput`, by construction.

xgrammar (chosen over llguidance; see bench/NOTES-engine.md) compiles the JSON schema generated from the
contract into a token-level grammar for one vocabulary. Per request, a matcher gives a bitmask of the
tokens allowed next; the engine sets every other logit to -inf before the argmax. The grammar is compact
JSON with properties in schema order and "," / ":" separators: exactly what `render_answer` writes, so
the shape a reviewer was trained on is the only shape it may produce.

A grammar alone does not guarantee termination within `max_new_tokens`, so `ConstrainedRow` also follows
the bytes with a `JsonPrefix` and, before accepting a token, checks that the shortest valid ending still
fits in the budget left; when it would not, it appends that ending instead (`forced_close`).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from reviewers.contract import reviewer_output_schema
from reviewers.engine.closer import JsonPrefix, schema_tree
from reviewers.prompt import TURN_END


class ConstraintError(RuntimeError):
    """The grammar and the generated tokens disagree (a bug, never the model's fault)."""


@dataclass(frozen=True)
class Vocabulary:
    """What the constraint needs from a tokenizer: each token's bytes, the stop tokens, an encoder."""

    token_bytes: Sequence[bytes]
    stop_ids: tuple[int, ...]
    size: int  # the model's vocabulary size (may exceed len(token_bytes): padding rows)
    encode: Callable[[str], list[int]] | None = None  # text -> ids without special tokens

    @classmethod
    def from_tokenizer(cls, tokenizer, size: int | None = None) -> Vocabulary:
        """From a transformers tokenizer (byte-level BPE or SentencePiece with byte fallback)."""
        import xgrammar as xgr

        size = size or len(tokenizer)
        info = xgr.TokenizerInfo.from_huggingface(tokenizer, vocab_size=size)
        stops = list(info.stop_token_ids)
        # the end of a model turn in the project's prompt format (Gemma's `<end_of_turn>`) stops a row too,
        # as it stops transformers' generate through the converted model's generation config
        turn_end = tokenizer.convert_tokens_to_ids(TURN_END)
        if isinstance(turn_end, int) and turn_end != tokenizer.unk_token_id and turn_end not in stops:
            stops.append(turn_end)
        return cls(
            token_bytes=info.decoded_vocab,
            stop_ids=tuple(stops),
            size=size,
            encode=lambda text: tokenizer.encode(text, add_special_tokens=False),
        )

    def byte_tokens(self) -> dict[int, int]:
        """byte value -> a token that is exactly that byte (for endings that are not valid text)."""
        found: dict[int, int] = {}
        for token, data in enumerate(self.token_bytes):
            if len(data) == 1 and token not in self.stop_ids:
                found.setdefault(data[0], token)
        return found


class ReviewerGrammar:
    """The `ReviewerOutput` grammar compiled once for a vocabulary; hands out per-request rows."""

    def __init__(self, vocab: Vocabulary, schema: dict | None = None) -> None:
        import xgrammar as xgr

        self.vocab = vocab
        self.schema = schema or reviewer_output_schema()
        info = xgr.TokenizerInfo(
            list(vocab.token_bytes),
            vocab_type=xgr.VocabType.RAW,
            vocab_size=vocab.size,
            stop_token_ids=list(vocab.stop_ids),
        )
        self._compiled = xgr.GrammarCompiler(info).compile_json_schema(
            json.dumps(self.schema), any_whitespace=False, separators=(",", ":"), strict_mode=True
        )
        self._tree = schema_tree(self.schema)
        self._byte_tokens = vocab.byte_tokens()
        self.words = (vocab.size + 31) // 32  # int32 words per bitmask row
        self.clean = _clean_mask(vocab, self.words)
        self.min_tokens = len(self.ending_tokens(JsonPrefix(self._tree).closing())) + 1
        self._batch = xgr.BatchGrammarMatcher()  # fills many rows' masks at once, on several threads

    def fill(self, rows: Sequence[ConstrainedRow], bitmask: torch.Tensor, indices: Sequence[int]) -> None:
        """Write each row's allowed next tokens into `bitmask[indices[k]]` (one batched, threaded call)."""
        if not rows:
            return
        self._batch.batch_fill_next_token_bitmask([row.matcher for row in rows], bitmask, list(indices))
        bitmask[list(indices)] &= self.clean

    def row(self, max_new_tokens: int) -> ConstrainedRow:
        import xgrammar as xgr

        if max_new_tokens < self.min_tokens:
            raise ValueError(
                f"max_new_tokens={max_new_tokens} is too small for a constrained answer; the shortest valid "
                f"ReviewerOutput takes {self.min_tokens} tokens"
            )
        return ConstrainedRow(self, xgr.GrammarMatcher(self._compiled), JsonPrefix(self._tree), max_new_tokens)

    def ending_tokens(self, ending: bytes) -> list[int]:
        """Tokens that spell `ending`: the tokenizer's own encoding for text, single bytes otherwise."""
        if self.vocab.encode is not None and ending.isascii():
            return self.vocab.encode(ending.decode())
        try:
            return [self._byte_tokens[b] for b in ending]
        except KeyError as exc:
            raise ConstraintError(f"the vocabulary has no token for byte {exc.args[0]:#x}") from exc

    def ending_fits(self, ending: bytes, budget: int) -> bool:
        # a byte-level tokenizer never needs more tokens than bytes, so short endings skip encoding
        return len(ending) <= budget or len(self.ending_tokens(ending)) <= budget


def _clean_mask(vocab: Vocabulary, words: int) -> torch.Tensor:
    """Bitmask of tokens without raw control bytes (< 0x20).

    xgrammar lets raw control characters into JSON strings, which strict JSON parsers (Python's json)
    reject; compact JSON has no whitespace outside strings, so no valid answer needs such a token.
    """
    ok = torch.zeros(words * 32, dtype=torch.bool)
    for token, data in enumerate(vocab.token_bytes):
        ok[token] = not any(b < 0x20 for b in data)
    for token in vocab.stop_ids:
        ok[token] = True
    bits = ok.view(words, 32).to(torch.int64) << torch.arange(32, dtype=torch.int64)
    return bits.sum(dim=1).to(torch.int64).apply_(lambda v: v - (1 << 32) if v >= 1 << 31 else v).to(torch.int32)


def allocate_bitmask(rows: int, grammar: ReviewerGrammar) -> torch.Tensor:
    return torch.full((rows, grammar.words), -1, dtype=torch.int32)


_BIT = None


def allowed_tokens(bitmask: torch.Tensor, vocab: int) -> torch.Tensor:
    """bitmask [R, words] -> [R, vocab] bool: True where the token is allowed."""
    global _BIT
    if _BIT is None or _BIT.device != bitmask.device:
        _BIT = (1 << torch.arange(32, dtype=torch.int64, device=bitmask.device)).to(torch.int32)
    allowed = (bitmask[:, :, None] & _BIT) != 0  # [R, words, 32]
    return allowed.reshape(bitmask.shape[0], -1)[:, :vocab]


def ban_tokens(row: torch.Tensor, banned: frozenset[int] | set[int]) -> None:
    """Clear `banned` tokens' bits in one bitmask row, unless that would leave no token allowed (then the
    best allowed token is picked even if banned: a repeat beats breaking the grammar)."""
    if not banned:
        return
    saved = row.clone()
    for token in banned:
        word, bit = divmod(token, 32)
        if word < row.shape[0]:
            row[word] = int(row[word]) & ~(1 << bit)  # Python's ints keep int32's two's complement
    if not bool(row.any()):
        row.copy_(saved)


def apply_bitmask(logits: torch.Tensor, bitmask: torch.Tensor, rows: torch.Tensor) -> None:
    """Set disallowed logits of `rows` to -inf in place. logits [B, V]; bitmask [len(rows), words]."""
    allowed = allowed_tokens(bitmask, logits.shape[1])
    logits[rows] = logits[rows].masked_fill(~allowed, float("-inf"))


@dataclass
class Step:
    """What happened to a constrained row after a token was chosen."""

    outcome: str  # "continue" | "stop" (object complete) | "close" (budget: `ending` appended instead)
    ending: list[int]


class ConstrainedRow:
    """One request's grammar matcher and JSON follower."""

    def __init__(self, grammar: ReviewerGrammar, matcher, prefix: JsonPrefix, budget: int) -> None:
        self.grammar = grammar
        self.matcher = matcher
        self.prefix = prefix
        self.budget = budget
        self.used = 0

    def advance(self, token: int) -> Step:
        """Take `token` if the object can still be closed within budget afterwards, else close now."""
        trial = self.prefix.clone()
        trial.feed(self.grammar.vocab.token_bytes[token])
        left_after = self.budget - self.used - 1
        if not trial.done and not self.grammar.ending_fits(trial.closing(), left_after):
            ending = self.grammar.ending_tokens(self.prefix.closing())
            return Step("close", ending)
        if not self.matcher.accept_token(token):
            raise ConstraintError(f"the grammar rejected token {token}, which its own mask allowed")
        self.prefix = trial
        self.used += 1
        return Step("stop" if trial.done else "continue", [])
