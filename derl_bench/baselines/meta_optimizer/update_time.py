"""Measure one outer GRPO update of the LLM Meta-Optimizer on a group of 8, and its sampling.

Issue 16 asks for the time of one update of 8 samples on CPU. The cold-start SFT is skipped
(its weights do not change the cost); everything else is the agent's code path
(:class:`.llm_optimizer.LLMMetaOptimizer`). Run::

    python -m derl_bench.baselines.meta_optimizer.update_time --out
        docs/meta_optimizer/outer_update_time.json   (one line; --set key=value overrides)
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from derl_bench.baselines.meta_optimizer.config import config_for_preset
from derl_bench.baselines.meta_optimizer.llm_optimizer import LLMMetaOptimizer

__all__ = ["main"]

_OBS = {
    "primitives": "g1: task success: 1 if the episode solved the task, else 0\n"
    "g2: mean step score (0..1) over the first third of the episode's steps\n"
    "g3: mean step score (0..1) over the middle third of the episode's steps\n"
    "g4: mean step score (0..1) over the last third of the episode's steps"
}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Command line (see the module docstring)."""
    from derl_bench.provenance import provenance

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--group", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], help="DERLConfig key=value")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {"num_threads": args.threads}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key] = json.loads(value) if value[:1].isdigit() or value[:1] == "-" else value
    settings = config_for_preset(args.preset, **overrides)
    names = ("g1", "g2", "g3", "g4")
    optimizer = LLMMetaOptimizer(settings, names, seed=0, cache_sft=False)
    optimizer._train_sft = lambda model: None  # type: ignore[method-assign]  # timing only
    start = time.perf_counter()
    optimizer.sample(_OBS, 1)  # loads the model and builds the grammar
    load = time.perf_counter() - start
    start = time.perf_counter()
    samples = optimizer.sample(_OBS, args.group)
    sampling = time.perf_counter() - start
    rewards = [i / args.group for i in range(args.group)]  # any distinct rewards: timing only
    start = time.perf_counter()
    stats = optimizer.update(samples, rewards)
    update = time.perf_counter() - start
    result = {
        "command": "python -m derl_bench.baselines.meta_optimizer.update_time "
        + " ".join(argv if argv is not None else __import__("sys").argv[1:]),
        "settings": settings.as_dict(),
        "group": args.group,
        "prompt_tokens": int(optimizer.prompt.shape[1]),
        "response_tokens": [len(s.response_ids) for s in samples],
        "proposals": [s.text for s in samples],
        "load_seconds": round(load, 1),
        "sampling_seconds": round(sampling, 1),
        "update_seconds": round(update, 1),
        "update_seconds_per_ppo_epoch": round(update / settings.ppo_epochs, 1),
        "stats": stats._asdict(),
        "torch_threads": torch.get_num_threads(),
        "provenance": provenance(torch_threads=args.threads),
    }
    text = json.dumps(result, indent=2)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text)
    return result


if __name__ == "__main__":
    main()
