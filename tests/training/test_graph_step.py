"""The fixed-shape step a CUDA graph records computes what the ordinary packed step computes."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from training.graph_step import GraphedStep, StaticShape, StaticShapeError, pad_to_static, sequence_slots
from training.loss import AnswerLossModel, answer_cross_entropy
from training.packing import IGNORE_INDEX, TokenizedExample, collate_packed


def examples(lengths: list[int], vocab: int, seed: int) -> list[TokenizedExample]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i, n in enumerate(lengths):
        ids = tuple(torch.randint(0, vocab, (n,), generator=g).tolist())
        prompt = n // 2  # answer-only targets: the second half of each sequence
        targets = (IGNORE_INDEX,) * prompt + ids[prompt + 1:] + (IGNORE_INDEX,)
        out.append(TokenizedExample(f"e{i}", ids, targets))
    return out


def test_padding_adds_ignored_segments_and_empty_sequences() -> None:
    batch = collate_packed(examples([5, 7], vocab=50, seed=0))
    static = pad_to_static(batch, StaticShape(tokens=24, max_sequences=6, max_seqlen=8))
    assert static.input_ids.shape == (1, 24)
    assert static.cu_seqlens.tolist() == [0, 5, 12, 20, 24, 24, 24]  # two padding segments (8 + 4), two empty
    assert static.position_ids[0, 12:].tolist() == [*range(8), *range(4)]
    assert (static.targets[0, 12:] == IGNORE_INDEX).all()
    assert torch.equal(static.targets[0, :12], batch.targets[0])
    assert static.max_seqlen == 8


@pytest.mark.parametrize(("lengths", "shape", "message"), [
    ([20, 20], StaticShape(32, 8, 32), "over the step's 32"),
    ([9], StaticShape(32, 8, 8), "longer than max_seqlen 8"),
    ([4, 4, 4], StaticShape(40, 4, 8), "over max_sequences 4"),
])
def test_a_batch_that_does_not_fit_is_refused(lengths: list[int], shape: StaticShape, message: str) -> None:
    with pytest.raises(StaticShapeError, match=message):
        pad_to_static(collate_packed(examples(lengths, 50, 1)), shape)


@pytest.mark.parametrize("lengths", [[1], [1, 1, 1], [3, 5], [8, 8, 8], [2] * 12, [7, 1, 7, 1]])
def test_the_sequence_slots_hold_any_batch_of_that_many_sequences_with_its_padding(lengths: list[int]) -> None:
    tokens, max_seqlen = 24, 8
    shape = StaticShape(tokens, sequence_slots(len(lengths), tokens, max_seqlen), max_seqlen)
    assert pad_to_static(collate_packed(examples(lengths, 50, 2)), shape).input_ids.shape == (1, tokens)
    tight = StaticShape(tokens, shape.max_sequences - 2, max_seqlen)
    if len(lengths) + -(-(tokens - sum(lengths)) // max_seqlen) > tight.max_sequences:
        with pytest.raises(StaticShapeError):
            pad_to_static(collate_packed(examples(lengths, 50, 2)), tight)


@pytest.mark.parametrize("softcap", [None, 30.0])
def test_static_rows_loss_and_gradient_match_the_answer_rows_one(softcap: float | None) -> None:
    torch.manual_seed(0)
    hidden = torch.randn(1, 30, 16, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(97, 16, dtype=torch.float64)
    targets = torch.randint(0, 97, (1, 30))
    targets[0, ::3] = IGNORE_INDEX
    weights = torch.rand(1, 30, dtype=torch.float64) + 0.5
    results = []
    for static in (False, True):
        hidden.grad = None
        loss = answer_cross_entropy(hidden, weight, targets, softcap=softcap, chunk_bytes=4 * 97 * 7,
                                    position_weights=weights, static_rows=static)
        loss.backward()
        results.append((loss.detach(), hidden.grad.clone()))
    torch.testing.assert_close(results[1][0], results[0][0])
    torch.testing.assert_close(results[1][1], results[0][1])


def test_graphed_step_on_cpu_trains_like_the_ordinary_step() -> None:
    """Same model, same batches: the padded fixed-shape step and the ordinary packed step give the same
    losses and the same adapter weights after three updates (padding changes nothing for real tokens)."""
    from peft import LoraConfig, get_peft_model

    from training.attention import register_varlen_attention
    from training.tiny import tiny_llama

    batches = [collate_packed(examples(lengths, 120, seed)) for seed, lengths in
               enumerate([[9, 14], [20], [6, 6, 11]])]
    runs = []
    for graphed in (False, True):
        torch.manual_seed(0)
        base = tiny_llama(vocab_size=120, hidden=32)
        base.config._attn_implementation = register_varlen_attention()  # empty trailing sequences included
        model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0))
        loss_model = AnswerLossModel(model)
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=1e-2)
        losses = []
        if graphed:
            step = GraphedStep(loss_model, optimizer, StaticShape(tokens=32, max_sequences=8, max_seqlen=24),
                               torch.device("cpu"), torch.float32)
            assert not step.use_graph
            losses = [float(step(b)) for b in batches]
        else:
            for b in batches:
                loss = loss_model(b.input_ids, b.position_ids, b.targets, None, b.cu_seqlens, b.max_seqlen)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(float(loss.detach()))
        runs.append((losses, [p.detach().clone() for p in trainable]))
    (plain_losses, plain_params), (graph_losses, graph_params) = runs
    assert graph_losses == pytest.approx(plain_losses, rel=1e-5)
    for a, b in zip(plain_params, graph_params, strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-6)
    assert plain_losses[0] != plain_losses[2]


def test_a_graphed_step_needs_a_capturable_optimizer() -> None:
    from training.tiny import tiny_llama

    model = tiny_llama(vocab_size=50, hidden=16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    with pytest.raises(ValueError, match="capturable=True"):
        GraphedStep(AnswerLossModel(model), optimizer, StaticShape(16, 4, 8), torch.device("cpu"), torch.float32,
                    use_graph=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="a CUDA graph needs a GPU (CI has none)")
def test_trainer_with_a_cuda_graph_follows_the_eager_trainer_on_a_gpu(
    tiny_base: Path, chat_data: Path, tmp_path: Path
) -> None:
    """On a GPU: three eager steps, the recording, then replays; the losses follow the ordinary trainer's
    (bf16, so not bit for bit) and the scheduler's learning rate reaches the recorded update."""
    import json

    from training.config import TrainConfig
    from training.train import train

    def run(name: str, graph: bool) -> list[dict[str, float]]:
        cfg = TrainConfig.model_validate({
            "reviewer": "python", "data_dir": chat_data, "run_dir": tmp_path / name, "base_model": str(tiny_base),
            "gguf_file": None, "epochs": 4, "max_steps": 10, "tokens_per_batch": 200, "lora_r": 4,
            "device": "cuda", "warmup_steps": 2, "learning_rate": 1e-2, "cuda_graph": graph,
        })
        train(cfg)
        return [json.loads(x) for x in (tmp_path / name / "metrics.jsonl").read_text().splitlines()]

    eager, graphed = run("eager", False), run("graphed", True)
    assert [r["lr"] for r in graphed] == pytest.approx([r["lr"] for r in eager])
    assert [r["loss"] for r in graphed] == pytest.approx([r["loss"] for r in eager], rel=3e-2)
    assert eager[-1]["loss"] < eager[0]["loss"]  # it learns, so a replay that updated nothing would differ
