"""Where a reviewer's answer is decided: teacher-forced probabilities at the verdict and at the findings.

Greedy decoding shows only the winning token. To see whether an adapter carries *any* signal, each
held-out record is rendered exactly as serving renders it (`reviewers.prompt.render_ids`), followed by
its expected answer, and one forward pass reads two branch points:

- the verdict: the next token after `{"verdict":"`: approve, revise or block (their first tokens);
- the findings, with the expected verdict forced: `[]` (no finding) against `[{` (a finding).

Scores are the candidates' probabilities renormalised among themselves; the AUC of P(not approve)
against "the expected verdict is not approve" (and of P(a finding) against "findings are expected")
says whether the ranking holds information even when greedy decoding always picks one side.

`--char-tokenizer` rebuilds the tokenizer GPU round 3 trained and served with (Gemma's vocabulary with
no merges and the turn markers as plain text: one token per character, issue #14), so adapters from that
round are probed in the token space they were trained in.

    python -m eval.verdict_probe --cases build/data --reviewer python --adapters runs/S --out probe.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from reviewers.contract import VERDICT_OPEN, Verdict
from reviewers.prompt import ChatMessage, render_ids

VERDICTS = tuple(v.value for v in Verdict)  # approve, revise, block
# What follows the findings key in either case; long enough that BPE merges settle before the branch.
NO_FINDING, A_FINDING = '[],"missing_checks"', '[{"path":"'


class ProbeError(ValueError):
    """A record whose answer cannot be probed (its rendering does not branch where expected)."""


class CaseProbe(BaseModel):
    """The two branch points of one record, for one model."""

    case_id: str
    expected_verdict: str
    expects_findings: bool
    verdict_probs: dict[str, float]  # raw softmax probability of each verdict's first token
    finding_probs: dict[str, float]  # "none" / "finding": raw probability of each branch's first token
    verdict_nll: float  # negative log-likelihood of the expected verdict's first token


def branch_point(sequences: Sequence[Sequence[int]]) -> tuple[int, list[int]]:
    """The first index where the token sequences differ, and each sequence's token there.

    Raises when two sequences share that token (their first tokens cannot tell them apart) or when one
    ends before they differ.
    """
    shortest = min(len(s) for s in sequences)
    index = next((i for i in range(shortest) if len({s[i] for s in sequences}) > 1), None)
    if index is None:
        raise ProbeError("the sequences do not differ before the shortest one ends")
    tokens = [s[index] for s in sequences]
    if len(set(tokens)) != len(tokens):
        raise ProbeError(f"at index {index} two sequences share a token: {tokens}")
    return index, tokens


def auc(scores: Sequence[float], positive: Sequence[bool]) -> float | None:
    """Area under the ROC curve (Mann-Whitney, ties count half); None when one class is empty."""
    pos = [s for s, p in zip(scores, positive) if p]
    neg = [s for s, p in zip(scores, positive) if not p]
    if not pos or not neg:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def not_approve_score(probe: CaseProbe) -> float:
    """P(revise or block) among the three verdict tokens."""
    total = sum(probe.verdict_probs.values())
    return (total - probe.verdict_probs["approve"]) / total if total > 0 else 0.0


def finding_score(probe: CaseProbe) -> float:
    """P(a finding) against P(no finding), after the expected verdict."""
    total = probe.finding_probs["none"] + probe.finding_probs["finding"]
    return probe.finding_probs["finding"] / total if total > 0 else 0.0


def summarize(probes: Sequence[CaseProbe]) -> dict[str, Any]:
    """AUCs, mean renormalised verdict probabilities per expected verdict, and the mass on the candidates."""
    by_verdict: dict[str, dict[str, float | int]] = {}
    for verdict in VERDICTS:
        mine = [p for p in probes if p.expected_verdict == verdict]
        if not mine:
            continue
        row: dict[str, float | int] = {"n": len(mine)}
        for candidate in VERDICTS:
            row[f"p_{candidate}"] = statistics.fmean(
                p.verdict_probs[candidate] / (sum(p.verdict_probs.values()) or 1.0) for p in mine)
        row["p_finding"] = statistics.fmean(finding_score(p) for p in mine)
        row["verdict_nll"] = statistics.fmean(p.verdict_nll for p in mine)
        by_verdict[verdict] = row
    return {
        "n": len(probes),
        "auc_not_approve": auc([not_approve_score(p) for p in probes], [p.expected_verdict != "approve" for p in probes]),
        "auc_block_vs_revise": auc([p.verdict_probs["block"] / ((p.verdict_probs["block"] + p.verdict_probs["revise"]) or 1.0)
                                    for p in probes if p.expected_verdict != "approve"],
                                   [p.expected_verdict == "block" for p in probes if p.expected_verdict != "approve"]),
        "auc_finding": auc([finding_score(p) for p in probes], [p.expects_findings for p in probes]),
        "verdict_mass": statistics.fmean(sum(p.verdict_probs.values()) for p in probes) if probes else None,
        "by_expected_verdict": by_verdict,
    }


# --- the model side (I/O) ----------------------------------------------------------------------------

def char_level_tokenizer(tokenizer: Any) -> Any:
    """The tokenizer GPU round 3 ended up with: the same vocabulary, no merges, turn markers not special."""
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerFast

    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    spec["model"]["merges"] = []
    spec["added_tokens"] = [a for a in spec["added_tokens"] if a["content"] in ("<pad>", "<eos>", "<bos>", "<unk>")]
    return PreTrainedTokenizerFast(tokenizer_object=Tokenizer.from_str(json.dumps(spec)), bos_token="<bos>",
                                   eos_token="<eos>", unk_token="<unk>", pad_token="<pad>")


def _ids(tokenizer: Any, prompt: list[ChatMessage], answer: str) -> list[int]:
    return render_ids(tokenizer, [*prompt, ChatMessage(role="assistant", content=answer)], add_generation_prompt=False)


def probe_record(model: Any, tokenizer: Any, record: dict[str, Any]) -> CaseProbe:
    """One forward pass over the record's prompt and expected answer; reads both branch points."""
    import torch

    prompt = [ChatMessage.model_validate(m) for m in record["messages"][:-1]]
    answer = record["messages"][-1]["content"]
    expected = record["expected"]["verdict"]
    full = _ids(tokenizer, prompt, answer)
    v_at, v_tokens = branch_point([_ids(tokenizer, prompt, f'{VERDICT_OPEN}{v}","findings":') for v in VERDICTS])
    head = f'{VERDICT_OPEN}{expected}","findings":'
    f_at, f_tokens = branch_point([_ids(tokenizer, prompt, head + NO_FINDING), _ids(tokenizer, prompt, head + A_FINDING)])
    expects_findings = bool(record["expected"]["findings"])
    if full[: f_at + 1] != _ids(tokenizer, prompt, head + (A_FINDING if expects_findings else NO_FINDING))[: f_at + 1]:
        raise ProbeError(f"{record['id']}: the expected answer does not tokenize like its branch up to the findings")
    # Logits only at the two branch points: the 262k-word output layer over every position would cost
    # more than the decoder itself, and the sequence is cut after the findings branch.
    positions = torch.tensor([v_at - 1, f_at - 1])
    with torch.no_grad():
        lm = model.get_base_model() if hasattr(model, "get_base_model") else model  # LoRA is injected in place
        hidden = lm.model(input_ids=torch.tensor([full[:f_at]])).last_hidden_state[0]
        logits = lm.get_output_embeddings()(hidden[positions]).float()
        softcap = getattr(lm.config.get_text_config(), "final_logit_softcapping", None)
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
    logp = torch.log_softmax(logits, dim=-1)
    verdict_probs = {v: logp[0, t].exp().item() for v, t in zip(VERDICTS, v_tokens)}
    finding_probs = {"none": logp[1, f_tokens[0]].exp().item(), "finding": logp[1, f_tokens[1]].exp().item()}
    nll = -logp[0, v_tokens[VERDICTS.index(expected)]].item()
    return CaseProbe(case_id=record["id"], expected_verdict=expected, expects_findings=expects_findings,
                     verdict_probs=verdict_probs, finding_probs=finding_probs, verdict_nll=nll)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=Path, required=True, help="`calora data build` output folder")
    parser.add_argument("--reviewer", action="append", required=True)
    parser.add_argument("--split", default="eval", choices=("eval", "train"))
    parser.add_argument("--limit", type=int, help="first N records per reviewer")
    parser.add_argument("--adapters", type=Path, help="folder of <reviewer>/ PEFT adapters; without it, the base")
    parser.add_argument("--base-model", default=None)
    parser.add_argument("--char-tokenizer", action="store_true", help="the character-level tokenizer of GPU round 3")
    parser.add_argument("--max-len", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from reviewers.models import resolve_base_model

    torch.set_num_threads(args.threads)
    ref = resolve_base_model(args.base_model)
    tokenizer = AutoTokenizer.from_pretrained(ref.source, **ref.load_kwargs())
    if args.char_tokenizer:
        tokenizer = char_level_tokenizer(tokenizer)
    base = AutoModelForCausalLM.from_pretrained(ref.source, dtype=torch.float32, **ref.load_kwargs()).eval()
    report: dict[str, Any] = {"base_model": ref.describe(), "adapters": str(args.adapters or ""),
                              "char_tokenizer": args.char_tokenizer, "split": args.split, "reviewers": {}}
    for reviewer in args.reviewer:
        model = base
        if args.adapters:
            from peft import PeftModel

            model = PeftModel.from_pretrained(base, str(args.adapters / reviewer)).eval()
        lines = (args.cases / reviewer / f"{args.split}.jsonl").read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines if line.strip()][: args.limit]
        probes, skipped = [], []
        for record in records:
            prompt_len = len(render_ids(tokenizer, [ChatMessage.model_validate(m) for m in record["messages"]],
                                        add_generation_prompt=False))
            if prompt_len > args.max_len:
                skipped.append(record["id"])
                continue
            try:
                probes.append(probe_record(model, tokenizer, record))
            except ProbeError as exc:
                skipped.append(f"{record['id']}: {exc}")
        report["reviewers"][reviewer] = {"summary": summarize(probes), "skipped": skipped,
                                         "cases": [p.model_dump() for p in probes]}
        print(reviewer, json.dumps(report["reviewers"][reviewer]["summary"]), flush=True)
        args.out.write_text(json.dumps(report, indent=1), encoding="utf-8")  # after each reviewer: runs are long
        if args.adapters:
            model.unload()  # the base again, for the next reviewer's adapter


if __name__ == "__main__":
    main()
