"""Measure how many Meta-Optimizer samples parse as meta-rewards, constrained and free.

Issue 16's acceptance: 1,000 of 1,000 grammar-constrained samples from SmolLM2-135M-Instruct
parse, with the share of free (unconstrained) samples beside it. Both use the official
instruction with the env's primitive descriptions, temperature 0.7, at most 128 new tokens and
the official post-processing (first line, stripped, trailing ``.`` removed). Run::

    python -m derl_bench.baselines.meta_optimizer.parse_rate --samples 1000
        --out docs/meta_optimizer/constrained_parse.json   (one line)

The result file holds the counts, the timing, examples and the provenance (lock hash, versions).
``--cold-start`` measures the Meta-Optimizer the ``derl`` agent samples at ``cpu`` (SmolLM2 +
LoRA after the cold-start SFT on the generated corpus) instead of the un-fine-tuned model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import torch

from derl_bench.baselines.meta_optimizer.lm import (
    SMOLLM2,
    instruction,
    load_causal_lm,
    prompt_ids,
    sample,
)
from derl_bench.baselines.meta_optimizer.token_grammar import TokenGrammar
from derl_bench.meta_reward import InvalidMetaReward, parse

__all__ = ["measure_parse_rate", "main"]


def _parses(text: str, names: tuple[str, ...]) -> str | None:
    try:
        parse(text, primitive_names=names)
    except InvalidMetaReward as error:
        return error.reason
    return None


def measure_parse_rate(
    model: Any,
    tokenizer: Any,
    *,
    primitives_text: str,
    primitive_names: tuple[str, ...],
    samples: int,
    batch_size: int = 8,
    temperature: float = 0.7,
    max_new_tokens: int = 128,
    seed: int = 0,
    modes: tuple[str, ...] = ("constrained", "unconstrained"),
    progress: Any = None,
) -> dict[str, Any]:
    """Draw ``samples`` replies per mode and count those that ``parse`` accepts.

    Args:
        model: Causal LM with a chat template.
        tokenizer: Its fast tokenizer.
        primitives_text: The env observation's ``primitives`` text (one ``g<k>: ...`` a line).
        primitive_names: The env's primitive names.
        samples: Replies per mode, >= 1.
        batch_size: Replies drawn at once (the group size, official n = 8).
        temperature: Sampling temperature.
        max_new_tokens: Token budget of a reply.
        seed: Seed of the sampler.
        modes: Any of ``"constrained"`` and ``"unconstrained"``.
        progress: Optional ``progress(mode, n_drawn, seconds)``, called about every 100 samples.

    Returns:
        Per mode: ``samples``, ``parsed``, ``share``, ``redrawn`` (stuck constrained samples
        drawn again), ``seconds``, ``seconds_per_sample``, ``rejection_reasons`` and up to 10
        ``examples``; plus the settings.
    """
    prompt = prompt_ids(tokenizer, instruction({"primitives": primitives_text}, primitive_names))
    vocab = model.get_output_embeddings().weight.shape[0]
    out: dict[str, Any] = {
        "prompt_tokens": int(prompt.shape[1]),
        "temperature": temperature,
        "max_new_tokens": max_new_tokens,
        "batch_size": batch_size,
        "seed": seed,
    }
    for mode in modes:
        grammar = TokenGrammar(tokenizer, primitive_names, vocab_size=vocab)
        grammar = grammar if mode == "constrained" else None
        generator = torch.Generator(device=model.device).manual_seed(seed)
        texts: list[str] = []
        redrawn = 0
        start = time.perf_counter()
        while len(texts) < samples:
            n = min(batch_size, samples - len(texts))
            drawn, again = sample(
                model,
                tokenizer,
                prompt,
                n,
                temperature=temperature,
                max_new_tokens=max_new_tokens,
                generator=generator,
                grammar=grammar,
            )
            texts += [s.text for s in drawn]
            redrawn += again
            if progress is not None and len(texts) % 100 < n:
                progress(mode, len(texts), time.perf_counter() - start)
        seconds = time.perf_counter() - start
        reasons = Counter(_parses(t, primitive_names) for t in texts)
        parsed = reasons.pop(None, 0)
        out[mode] = {
            "samples": len(texts),
            "parsed": parsed,
            "share": parsed / len(texts),
            "redrawn": redrawn,
            "seconds": round(seconds, 1),
            "seconds_per_sample": round(seconds / len(texts), 3),
            "rejection_reasons": dict(reasons),
            "examples": texts[:10],
        }
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line: measure and write the JSON result (see the module docstring)."""
    from derl_bench.provenance import provenance

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=SMOLLM2, help="smollm2-135m, a folder or a hub id")
    parser.add_argument("--env", default="DERL-CartPole-v0", help="env whose primitives to use")
    parser.add_argument("--samples", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--modes", default="constrained,unconstrained")
    parser.add_argument(
        "--unconstrained-samples",
        type=int,
        default=None,
        help="samples of the unconstrained mode (default: --samples)",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--cold-start",
        action="store_true",
        help="measure the derl agent's cpu Meta-Optimizer after its cold-start SFT (LoRA on "
        "SmolLM2, corpus seed 0; built once and cached) instead of the un-fine-tuned model",
    )
    args = parser.parse_args(argv)
    import gymnasium

    import derl_bench  # noqa: F401  (registers the env ids)

    torch.set_num_threads(args.threads)
    env = gymnasium.make(args.env, preset="smoke")
    observation, _ = env.reset(seed=0)
    names = tuple(env.unwrapped.primitive_set.names)
    env.close()
    if args.cold_start:
        from derl_bench.baselines.meta_optimizer import config_for_preset
        from derl_bench.baselines.meta_optimizer.llm_optimizer import LLMMetaOptimizer

        optimizer = LLMMetaOptimizer(config_for_preset("cpu", backbone=args.model), names, seed=0)
        optimizer.setup(observation)  # loads the model, runs (or loads) the cold-start SFT
        model, tokenizer = optimizer.model, optimizer.tokenizer
        model.eval()
    else:
        model, tokenizer = load_causal_lm(args.model)
    result: dict[str, Any] = {
        "command": "python -m derl_bench.baselines.meta_optimizer.parse_rate "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "model": args.model,
        "cold_start": bool(args.cold_start),
        "env": args.env,
        "primitive_names": list(names),
    }
    modes = tuple(args.modes.split(","))

    def report(mode: str, drawn: int, seconds: float) -> None:
        print(f"{mode}: {drawn} samples in {seconds:.0f} s", file=sys.stderr, flush=True)

    for i, mode in enumerate(modes):  # the file is written after each mode (a partial result)
        count = args.samples if mode == "constrained" else args.unconstrained_samples
        result.update(
            measure_parse_rate(
                model,
                tokenizer,
                primitives_text=str(observation["primitives"]),
                primitive_names=names,
                samples=args.samples if count is None else count,
                seed=args.seed,
                modes=(mode,),
                progress=report,
            )
        )
        result["complete"] = i == len(modes) - 1
        result["provenance"] = provenance(torch_threads=args.threads)
        text = json.dumps(result, indent=2)
        if args.out is not None:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(text + "\n")
    print(text)
    return result


if __name__ == "__main__":
    main()
