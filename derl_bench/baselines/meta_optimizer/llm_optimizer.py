"""The LLM Meta-Optimizer (paper §3.2): a causal LM prompted with the task instruction.

One object per agent. On the first :meth:`LLMMetaOptimizer.sample` it builds the prompt from the
env's observation (:func:`.lm.instruction`), then runs the cold-start SFT on the generated corpus
(:mod:`.corpus`) with that prompt; the SFT result is cached on disk under the derl_bench cache
folder, keyed by everything that determines it (model, prompt, corpus, settings, seed), so
later agents load it in seconds. Sampling is token-level grammar-constrained
(:class:`.token_grammar.TokenGrammar`); :meth:`LLMMetaOptimizer.update` is one outer GRPO update
(:func:`.outer_update.grpo_step`) on the group.

Models: ``lora_rank > 0`` trains a LoRA adapter (peft, all linear layers): the SFT adapter is
merged into the weights and a fresh adapter is trained by the outer loop, so the SFT model (the
KL reference) is the model with the adapter disabled and costs no memory. ``lora_rank = 0``
fine-tunes every weight (the paper's setting) and keeps a frozen copy as the reference when
``kl_reference="sft"``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from derl_bench.baselines.meta_optimizer.config import DERLConfig
from derl_bench.baselines.meta_optimizer.corpus import generate_corpus
from derl_bench.baselines.meta_optimizer.lm import (
    LMSample,
    instruction,
    load_causal_lm,
    prompt_ids,
    response_log_probs,
    sample,
)
from derl_bench.baselines.meta_optimizer.model import torch_threads
from derl_bench.baselines.meta_optimizer.outer_update import (
    GRPOStats,
    grpo_step,
    outer_advantages,
)
from derl_bench.baselines.meta_optimizer.token_grammar import TokenGrammar
from derl_bench.meta_reward.limits import check_primitive_names

__all__ = ["LLMMetaOptimizer", "sft_cache_dir"]

SFT_VERSION = 1
"""Bumped when the cold-start procedure changes (invalidates cached SFT results)."""


def sft_cache_dir() -> Path:
    """Folder of cached cold-start SFT results (``$DERL_BENCH_CACHE/.../meta_optimizer_sft``)."""
    from derl_bench.inner.tiny_lm import cache_root

    return cache_root() / "meta_optimizer_sft"


class LLMMetaOptimizer:
    """A causal-LM Meta-Optimizer with cold-start SFT, constrained sampling and outer GRPO.

    Args:
        settings: The validated configuration (an LLM ``backbone``).
        primitive_names: The env's primitive names.
        seed: The run seed: seeds sampling and the outer adapter's initialisation, and the
            cold start too when ``settings.cold_start_seed`` is None (else that seed does).
        model: Optional ``(model, tokenizer)`` already loaded (tests, notebooks); by default
            ``settings.backbone`` is loaded with :func:`.lm.load_causal_lm`.
        cache_sft: Cache the SFT result on disk (default True).

    Attributes:
        corpus: The cold-start corpus (tuple of str).
        sft_losses: Mean token cross-entropy per SFT step (nats); empty if loaded from cache.
        prompt_text: The user turn, once the first observation was seen.

    Raises:
        ImportError: If peft is missing and ``lora_rank > 0``.
        RuntimeError: If the model cannot be loaded.
    """

    def __init__(
        self,
        settings: DERLConfig,
        primitive_names: Sequence[str],
        seed: int,
        *,
        model: tuple[Any, Any] | None = None,
        cache_sft: bool = True,
    ) -> None:
        self.settings = settings
        self.primitive_names = check_primitive_names(primitive_names)
        self.seed = int(seed)
        self.cold_start_seed = (
            self.seed if settings.cold_start_seed is None else int(settings.cold_start_seed)
        )
        corpus_seed, self._init_seed, self._sft_seed, _ = np.random.SeedSequence(
            self.cold_start_seed
        ).generate_state(4)
        _, run_init_seed, _, sample_seed = np.random.SeedSequence(self.seed).generate_state(4)
        self._adapter_seed = int(run_init_seed) + 1
        self.corpus = generate_corpus(self.primitive_names, settings.corpus_size, int(corpus_seed))
        self._given = model
        self._cache_sft = cache_sft
        self._sample_seed = int(sample_seed)
        self.model: Any = None
        self.tokenizer: Any = None
        self.reference: Any = None
        self.prompt: torch.Tensor | None = None
        self.prompt_text: str | None = None
        self.grammar: TokenGrammar | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.sft_losses: list[float] = []
        self._generator: torch.Generator | None = None

    # -- set-up ---------------------------------------------------------------------------------

    def setup(self, observation: Any) -> None:
        """Load the model and run (or load from the cache) the cold-start SFT, once.

        :meth:`sample` calls it on first use; call it directly to use :attr:`model` alone.

        Args:
            observation: The env observation (its ``primitives`` text fixes the prompt).
        """
        if self.model is None:
            self._setup(observation)

    def _setup(self, observation: Any) -> None:
        s = self.settings
        model, tokenizer = self._given or load_causal_lm(s.backbone, device=s.device)
        self.tokenizer = tokenizer
        self.prompt_text = instruction(observation, self.primitive_names)
        self.prompt = prompt_ids(tokenizer, self.prompt_text)
        if s.constrained:
            vocab = model.get_output_embeddings().weight.shape[0]
            self.grammar = TokenGrammar(tokenizer, self.primitive_names, vocab_size=vocab)
        key = self._sft_key(model)
        folder = sft_cache_dir() / key
        if s.lora_rank > 0:
            model = self._lora_cold_start(model, folder)
        else:
            model = self._full_cold_start(model, folder)
            if s.kl_reference == "sft" and s.kl_coef > 0:
                self.reference = copy.deepcopy(model).eval().requires_grad_(False)
        self.model = model
        trainable = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(trainable, lr=s.lr, weight_decay=0.0)
        self._generator = torch.Generator(device=model.device).manual_seed(self._sample_seed)

    def _sft_key(self, model: Any) -> str:
        s = self.settings
        record = {
            "version": SFT_VERSION,
            "backbone": s.backbone,
            "model_class": type(model).__name__,
            "parameters": int(sum(p.numel() for p in model.parameters())),
            "prompt": self.prompt_text,
            "corpus": list(self.corpus),
            "lora_rank": s.lora_rank,
            "lora_alpha": s.lora_alpha,
            "sft_epochs": s.sft_epochs,
            "sft_batch_size": s.sft_batch_size,
            "sft_lr": s.sft_lr,
            "seed": self.cold_start_seed,
            "torch": torch.__version__,
        }
        return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]

    def _lora_config(self) -> Any:
        try:
            from peft import LoraConfig
        except ImportError as error:  # pragma: no cover - peft is in the lock
            raise ImportError("lora_rank > 0 needs peft (pip install peft)") from error
        return LoraConfig(
            r=self.settings.lora_rank,
            lora_alpha=self.settings.lora_alpha,
            lora_dropout=0.0,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )

    def _with_adapter(self, model: Any, seed: int) -> Any:
        from peft import get_peft_model

        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return get_peft_model(model, self._lora_config())

    def _lora_cold_start(self, model: Any, folder: Path) -> Any:
        from peft import PeftModel

        if self._cache_sft and (folder / "adapter_config.json").exists():
            sft = PeftModel.from_pretrained(model, folder)
        else:
            sft = self._with_adapter(model, int(self._init_seed))
            self._train_sft(sft)
            if self._cache_sft:
                self._save(sft, folder)
        merged = sft.merge_and_unload()
        return self._with_adapter(merged, self._adapter_seed)

    def _full_cold_start(self, model: Any, folder: Path) -> Any:
        if self._cache_sft and (folder / "model.safetensors").exists():
            state = _load_safetensors(folder / "model.safetensors")
            model.load_state_dict(state, strict=False)
            return model
        self._train_sft(model)
        if self._cache_sft:
            self._save(model, folder)
        return model

    def _save(self, model: Any, folder: Path) -> None:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
        try:
            model.save_pretrained(tmp)
            try:
                os.replace(tmp, folder)
            except OSError:  # another process finished first
                if not folder.exists():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _train_sft(self, model: Any) -> None:
        """Teacher-forced cross-entropy on (prompt, corpus record + EOS), shuffled batches."""
        s = self.settings
        eos = int(self.tokenizer.eos_token_id)
        records = [
            LMSample(
                text=text,
                response_ids=torch.tensor(
                    [*self.tokenizer(text, add_special_tokens=False).input_ids, eos]
                ),
                masks=None,
            )
            for text in self.corpus
        ]
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(trainable, lr=s.sft_lr, weight_decay=0.0)
        generator = torch.Generator().manual_seed(int(self._sft_seed))
        model.train()
        with torch_threads(s.num_threads):
            for _ in range(s.sft_epochs):
                order = torch.randperm(len(records), generator=generator).tolist()
                for start in range(0, len(order), s.sft_batch_size):
                    batch = [records[i] for i in order[start : start + s.sft_batch_size]]
                    log_probs, valid = response_log_probs(model, self.prompt, batch, 1.0)
                    loss = -(log_probs * valid).sum() / valid.sum()
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(trainable, s.max_grad_norm)
                    optimizer.step()
                    self.sft_losses.append(float(loss.detach()))
        model.eval()

    # -- the agent's two calls ------------------------------------------------------------------

    def sample(self, observation: Any, n: int) -> list[LMSample]:
        """Draw ``n`` proposals (constrained unless ``constrained=False``).

        Args:
            observation: The env observation; its ``primitives`` text fixes the prompt on the
                first call (the paper's instruction is fixed for the run).
            n: Group size, >= 1.

        Returns:
            ``n`` samples; with constrained decoding each ``text`` parses.
        """
        if self.model is None:
            self._setup(observation)
        with torch_threads(self.settings.num_threads):
            samples, _ = sample(
                self.model,
                self.tokenizer,
                self.prompt,
                n,
                temperature=self.settings.temperature,
                max_new_tokens=self.settings.max_new_tokens,
                generator=self._generator,
                grammar=self.grammar,
                max_redraws=self.settings.max_resample_rounds,
            )
        return samples

    def update(self, samples: Sequence[LMSample], rewards: Sequence[float]) -> GRPOStats:
        """One outer GRPO update on the group (``ppo_epochs`` clipped steps, KL, advantages).

        Args:
            samples: The group's samples (after the agent's invalid-proposal handling).
            rewards: Their outer rewards, same length.

        Returns:
            Diagnostics of the update.
        """
        s = self.settings
        rewards_t = torch.tensor(list(rewards), dtype=torch.float32)
        advantages = outer_advantages(rewards_t, s.advantage, s.advantage_eps)
        model, prompt = self.model, self.prompt
        with torch_threads(s.num_threads):
            with torch.no_grad():
                old, _ = response_log_probs(model, prompt, samples, s.temperature)
                ref = old
                if s.kl_reference == "sft" and s.kl_coef > 0:
                    if s.lora_rank > 0:
                        with model.disable_adapter():
                            ref, _ = response_log_probs(model, prompt, samples, s.temperature)
                    else:
                        ref, _ = response_log_probs(self.reference, prompt, samples, s.temperature)
            model.train()
            loss, kl, clip_fraction = grpo_step(
                log_probs=lambda: response_log_probs(model, prompt, samples, s.temperature),
                old_log_probs=old,
                ref_log_probs=ref,
                advantages=advantages,
                parameters=model.parameters(),
                optimizer=self.optimizer,
                config=s,
            )
            model.eval()
        return GRPOStats(
            n_samples=len(samples),
            mean_reward=float(rewards_t.mean()),
            loss=loss,
            kl=kl,
            clip_fraction=clip_fraction,
        )


def _load_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))
