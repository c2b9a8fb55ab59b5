r"""The ``smoke`` preset's policy: a tiny Qwen2-architecture LM, built and warmed up locally.

Nothing is downloaded. A byte-level BPE tokenizer is trained with ``tokenizers`` on GSM8K
training text, a 2-layer Qwen2 model is initialised at random, and the model is briefly
supervised (a short SFT) on real GSM8K training solutions from D_in so that it emits
solution-shaped text that GRPO can then shape. The final-answer line alternates between
GSM8K's ``#### N`` and ``The answer is \\boxed{N}.`` so that the format primitive g2 starts
with room to move in both directions. The result is cached on disk (folder named by a hash of
everything that defines it) and reused across processes.

The tiny LM cannot really solve GSM8K: its validation success is near 0. It exists so that the
whole pipeline (TRL GRPO on real data, primitives, validation) runs in seconds.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from derl_bench.envs.data import split_pool
from derl_bench.envs.gsm8k import load_gsm8k
from derl_bench.envs.records import MathRecord
from derl_bench.inner.threads import pinned_torch_threads

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerFast

TINY_LM_FORMAT_VERSION = 1
"""Bump when the construction below changes, so old caches are not reused."""

CACHE_ENV_VAR = "DERL_BENCH_CACHE"
"""Environment variable naming the cache folder (default ``~/.cache/derl_bench``)."""

EOS_TOKEN = "<|endoftext|>"

_CALCULATOR = re.compile(r"<<[^>]*>>")


@dataclass(frozen=True, kw_only=True)
class TinyLMConfig:
    """How the tiny policy is built and warmed up (all fields enter the cache key)."""

    vocab_size: int = 1024
    """BPE vocabulary size (tokens)."""
    hidden_size: int = 128
    """Model width."""
    intermediate_size: int = 384
    """MLP width."""
    num_hidden_layers: int = 2
    """Transformer layers."""
    num_attention_heads: int = 4
    """Attention heads."""
    num_key_value_heads: int = 2
    """Key/value heads (grouped-query attention)."""
    max_position_embeddings: int = 512
    """Longest sequence in tokens."""
    sft_examples: int = 2000
    """GSM8K D_in solutions used for the warm-up (the first ones, in split order, whose steps are
    at most ``sft_max_solution_chars`` long)."""
    sft_max_solution_chars: int = 200
    """Only short reference solutions are used, so the tiny model learns to reach the answer."""
    sft_steps: int = 600
    """Warm-up optimizer steps."""
    sft_batch_size: int = 16
    """Sequences per warm-up step."""
    sft_max_length: int = 256
    """Warm-up sequences are cut to this many tokens."""
    sft_learning_rate: float = 3e-3
    """Peak AdamW learning rate of the warm-up (cosine decay, 5 % warm-up)."""
    seed: int = 0
    """Seed of the tokenizer data order, the initialisation and the warm-up."""


@contextlib.contextmanager
def _one_builder(target: Path) -> Iterator[None]:
    """Hold an inter-process file lock (``filelock``) on ``target`` while it is built.

    Two processes that need the same model at once (the workers of a process pool, two runs)
    build it once: the second waits, then finds the first one's folder.
    """
    from filelock import FileLock

    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        yield


def cache_root() -> Path:
    """Return the folder of built models for the installed software.

    ``<$DERL_BENCH_CACHE or ~/.cache/derl_bench>/<software key>``: the key is ``lock-`` and the
    first 16 hex digits of the lock file's SHA-256 when the environment matches the lock
    (:func:`derl_bench.provenance.current_lock`), else ``env-`` and a hash of the versions of
    the packages that shape a number. A model built under another lock is therefore rebuilt,
    not trusted (the builds are seeded and single-threaded, so a rebuild under the same lock
    gives the same bytes; ``tests/test_golden.py`` checks their SHA-256).
    """
    from derl_bench.provenance import software_key

    env = os.environ.get(CACHE_ENV_VAR)
    base = Path(env).expanduser() if env else Path.home() / ".cache" / "derl_bench"
    return base / software_key()


def plain_prompt(question: str) -> str:
    r"""Prompt of the ``plain`` style: ``"Question: <q>\\nAnswer:"``."""
    return f"Question: {question.strip()}\nAnswer:"


def sft_completion(record: MathRecord, index: int) -> str:
    r"""Warm-up target for one GSM8K record: the reference steps plus a final-answer line.

    Calculator annotations ``<<…>>`` are removed. Even ``index`` ends with
    ``The answer is \\boxed{N}.``, odd ``index`` with ``#### N``.

    Raises:
        ValueError: If the record has no reference solution.
    """
    if record.solution is None:
        raise ValueError(f"record {record.uid} has no reference solution to warm up on")
    steps = _CALCULATOR.sub("", record.solution.split("####")[0]).strip()
    if index % 2 == 0:
        final = f"The answer is \\boxed{{{record.answer}}}."
    else:
        final = f"#### {record.answer}"
    return f" {steps}\n{final}"


def _cache_key(config: TinyLMConfig, data_hash: str) -> str:
    payload = json.dumps(
        {"config": asdict(config), "data": data_hash, "format": TINY_LM_FORMAT_VERSION},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _train_tokenizer(
    texts: list[str], vocab_size: int, *, split_digits: bool = False
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer (``split_digits``: every digit is its own token)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False)
    if split_digits:
        tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), byte_level]
        )
    else:
        tokenizer.pre_tokenizer = byte_level
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, eos_token=EOS_TOKEN, pad_token=EOS_TOKEN
    )


def _build_model(
    config: TinyLMConfig | ArithTinyLMConfig, tokenizer: PreTrainedTokenizerFast
) -> PreTrainedModel:
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    model_config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        num_key_value_heads=config.num_key_value_heads,
        max_position_embeddings=config.max_position_embeddings,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(config.seed)
    return Qwen2ForCausalLM(model_config)


def _warm_up(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerFast,
    pairs: list[tuple[str, str]],
    config: TinyLMConfig | ArithTinyLMConfig,
) -> list[float]:
    """Supervised warm-up on (prompt, completion) pairs; loss on completion tokens only."""
    import math

    import torch

    generator = torch.Generator().manual_seed(config.seed)
    encoded = []
    for prompt, completion in pairs:
        p = tokenizer(prompt)["input_ids"]
        c = tokenizer(completion + EOS_TOKEN)["input_ids"]
        ids = (p + c)[: config.sft_max_length]
        labels = ([-100] * len(p) + c)[: config.sft_max_length]
        encoded.append((ids, labels))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.sft_learning_rate)
    warmup = max(1, config.sft_steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, config.sft_steps - warmup)
        return 0.5 * (1 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_at)
    model.train()
    losses = []
    for _ in range(config.sft_steps):
        idx = torch.randint(len(encoded), (config.sft_batch_size,), generator=generator).tolist()
        batch = [encoded[i] for i in idx]
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), tokenizer.pad_token_id, dtype=torch.long)
        labels = torch.full((len(batch), width), -100, dtype=torch.long)
        attention = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (ids, lab) in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            labels[row, : len(lab)] = torch.tensor(lab)
            attention[row, : len(ids)] = 1
        loss = model(input_ids=input_ids, attention_mask=attention, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(float(loss.detach()))
    model.eval()
    return losses


def tiny_lm_path(config: TinyLMConfig | None = None, *, data_dir: str | None = None) -> Path:
    """Return the folder of the warmed-up tiny LM, building it on first use.

    Args:
        config: Construction settings; defaults to :class:`TinyLMConfig()`.
        data_dir: GSM8K data folder (see ``derl_bench.envs.data.data_root``).

    Returns:
        A folder loadable with ``AutoModelForCausalLM.from_pretrained`` and
        ``AutoTokenizer.from_pretrained``; it also holds ``derl_tiny_lm.json`` with the config
        and the warm-up loss curve.

    Raises:
        derl_bench.envs.data.DataFileMissing: If GSM8K train is not found.
        ImportError: If the ``llm`` extra (torch, transformers, tokenizers) is not installed.
    """
    from derl_bench.envs.data import file_sha256

    config = config or TinyLMConfig()
    train = load_gsm8k("train", data_dir=data_dir)
    from derl_bench.envs.data import data_file

    data_hash = file_sha256(data_file("gsm8k/train.jsonl", data_dir=data_dir, verify=False))
    target = cache_root() / "tiny_lm" / _cache_key(config, data_hash)
    if (target / "derl_tiny_lm.json").exists():
        return target

    with _one_builder(target):
        if (target / "derl_tiny_lm.json").exists():  # built by another process meanwhile
            return target
        import torch

        d_in = [
            r
            for r in split_pool(train, seed=0).d_in
            if len(_CALCULATOR.sub("", (r.solution or "").split("####")[0]).strip())
            <= config.sft_max_solution_chars
        ][: config.sft_examples]
        pairs = [(plain_prompt(r.question), sft_completion(r, i)) for i, r in enumerate(d_in)]
        # One thread: the same float summation order on every machine, so the same bytes.
        with torch.random.fork_rng(), pinned_torch_threads(1):
            tokenizer = _train_tokenizer([p + c for p, c in pairs], config.vocab_size)
            model = _build_model(config, tokenizer)
            losses = _warm_up(model, tokenizer, pairs, config)

        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
        try:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            (tmp / "derl_tiny_lm.json").write_text(
                json.dumps({"config": asdict(config), "data_sha256": data_hash, "sft_loss": losses})
            )
            try:
                os.replace(tmp, target)
            except OSError:  # another process finished first: keep theirs
                if not (target / "derl_tiny_lm.json").exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target


# -- the arith domain's policy ------------------------------------------------------------------

ARITH_TINY_MODEL = "tiny-arith"
"""Preset ``model`` value naming the tiny LM warmed up on generated arith solutions."""

ARITH_TINY_DIRECT_MODEL = "tiny-arith-direct"
"""Preset ``model`` value naming the arith tiny LM whose warm-up mixes in direct answers
(``ArithTinyLMConfig(direct_fraction=ARITH_DIRECT_FRACTION)``; ``DERL-Arith-v1``)."""

ARITH_DIRECT_FRACTION = 0.5
"""``direct_fraction`` of :data:`ARITH_TINY_DIRECT_MODEL`'s warm-up
(docs/signal/experiments/arith-direct-answers.md: untrained validation success 0.227)."""

ARITH_TINY_LM_FORMAT_VERSION = 1
"""Bump when the arith warm-up below changes, so old caches are not reused."""


@dataclass(frozen=True, kw_only=True)
class ArithTinyLMConfig:
    r"""How the arith domain's tiny policy is built and warmed up (all fields enter the cache key).

    The warm-up targets are generated solutions (``derl_bench.envs.arith``) in a deliberately
    mixed format, so that the format primitives start with room to move: a fraction
    ``boxed_fraction`` ends with ``The answer is \\boxed{N}.``, the rest with ``#### N`` only;
    independently, a fraction ``step_marker_fraction`` writes ``Step i:`` markers.
    """

    vocab_size: int = 1024
    """BPE vocabulary size (tokens); digits are always single tokens."""
    hidden_size: int = 128
    """Model width."""
    intermediate_size: int = 384
    """MLP width."""
    num_hidden_layers: int = 2
    """Transformer layers."""
    num_attention_heads: int = 4
    """Attention heads."""
    num_key_value_heads: int = 2
    """Key/value heads (grouped-query attention)."""
    max_position_embeddings: int = 256
    """Longest sequence in tokens."""
    sft_examples: int = 20000
    """Generated warm-up problems (problem seeds from ``WARMUP_SEED_START`` on, train range)."""
    sft_steps: int = 1200
    """Warm-up optimizer steps (about 2 minutes of one CPU core in total)."""
    sft_batch_size: int = 16
    """Sequences per warm-up step."""
    sft_max_length: int = 192
    """Warm-up sequences are cut to this many tokens."""
    sft_learning_rate: float = 3e-3
    """Peak AdamW learning rate of the warm-up (cosine decay, 5 % warm-up)."""
    boxed_fraction: float = 0.5
    """Fraction of warm-up targets ending with ``\\boxed{N}`` (the rest: ``#### N``), in [0, 1]."""
    step_marker_fraction: float = 0.5
    """Fraction of warm-up targets written with ``Step i:`` markers, in [0, 1]."""
    direct_fraction: float = 0.0
    """Fraction of warm-up targets that give the final answer without working (no ``a op b = c``
    lines, no markers), in [0, 1]. A tiny model answering a 2-3 step problem at once is mostly
    wrong, so a policy warmed up on both modes solves more when GRPO shifts it to working: the
    latent skill an outcome reward can elicit (``DERL-Arith-v1``). 0 draws nothing (v0's
    warm-up, bit for bit, under v0's cache key)."""
    seed: int = 0
    """Seed of the format draw, the initialisation and the warm-up order."""

    def __post_init__(self) -> None:
        problems = []
        for name in ("boxed_fraction", "step_marker_fraction", "direct_fraction"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                problems.append(f"{name}={value} must be in [0, 1]")
        if self.sft_examples < 1 or self.sft_steps < 1:
            problems.append(
                f"sft_examples={self.sft_examples} and sft_steps={self.sft_steps} must be >= 1"
            )
        if problems:
            raise ValueError("Invalid ArithTinyLMConfig: " + "; ".join(problems))


def arith_sft_pairs(config: ArithTinyLMConfig) -> list[tuple[str, str]]:
    """The warm-up (prompt, completion) pairs of the arith tiny LM, in order.

    Returns:
        ``config.sft_examples`` pairs: ``plain_prompt(question)`` and a leading space plus a
        mixed-format solution (see :class:`ArithTinyLMConfig`).
    """
    import random

    from derl_bench.envs.arith import WARMUP_SEED_START, generate_problem, solution_text

    rng = random.Random(config.seed)
    pairs = []
    for i in range(config.sft_examples):
        problem = generate_problem(WARMUP_SEED_START + i)
        final = "boxed" if rng.random() < config.boxed_fraction else "hashes"
        markers = rng.random() < config.step_marker_fraction
        working = not (config.direct_fraction > 0 and rng.random() < config.direct_fraction)
        completion = solution_text(
            problem, step_markers=markers and working, final=final, working=working
        )
        pairs.append((plain_prompt(problem.question), f" {completion}"))
    return pairs


def arith_tiny_lm_path(config: ArithTinyLMConfig | None = None) -> Path:
    """Return the folder of the arith domain's warmed-up tiny LM, building it on first use.

    The folder is ``<cache_root()>/tiny_lm_arith/<hash>``, the hash covering the config, the
    generator version (``derl_bench.envs.arith.ARITH_GENERATOR_VERSION``) and
    :data:`ARITH_TINY_LM_FORMAT_VERSION`; the same config gives the same weights (seeded).
    Building takes about a minute on 2 CPU cores.

    Args:
        config: Construction settings; defaults to :class:`ArithTinyLMConfig()`.

    Returns:
        A folder loadable with ``AutoModelForCausalLM.from_pretrained`` and
        ``AutoTokenizer.from_pretrained``; its ``derl_tiny_lm.json`` holds the config and the
        warm-up loss curve.

    Raises:
        ImportError: If the ``llm`` extra (torch, transformers, tokenizers) is not installed.
    """
    from derl_bench.envs.arith import ARITH_GENERATOR_VERSION

    config = config or ArithTinyLMConfig()
    fields = asdict(config)
    if fields["direct_fraction"] == 0.0:  # v0's warm-up keeps v0's cache key
        del fields["direct_fraction"]
    payload = json.dumps(
        {
            "config": fields,
            "generator": ARITH_GENERATOR_VERSION,
            "format": ARITH_TINY_LM_FORMAT_VERSION,
        },
        sort_keys=True,
    )
    key = hashlib.sha256(payload.encode()).hexdigest()[:16]
    target = cache_root() / "tiny_lm_arith" / key
    if (target / "derl_tiny_lm.json").exists():
        return target

    with _one_builder(target):
        if (target / "derl_tiny_lm.json").exists():  # built by another process meanwhile
            return target
        import torch

        pairs = arith_sft_pairs(config)
        threads = torch.get_num_threads()
        # One thread: as fast for a model this small, many times faster on a busy machine, and the
        # same float summation order everywhere.
        torch.set_num_threads(1)
        try:
            with torch.random.fork_rng():
                tokenizer = _train_tokenizer(
                    [p + c for p, c in pairs], config.vocab_size, split_digits=True
                )
                model = _build_model(config, tokenizer)
                losses = _warm_up(model, tokenizer, pairs, config)
        finally:
            torch.set_num_threads(threads)

        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=target.parent))
        try:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            (tmp / "derl_tiny_lm.json").write_text(
                json.dumps(
                    {
                        "config": fields,  # v0's: without direct_fraction (the same bytes)
                        "generator": ARITH_GENERATOR_VERSION,
                        "sft_loss": losses,
                    }
                )
            )
            try:
                os.replace(tmp, target)
            except OSError:  # another process finished first: keep theirs
                if not (target / "derl_tiny_lm.json").exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return target
