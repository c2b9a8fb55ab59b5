"""Text-env policies: action scoring over MiniLM embeddings, and LM action scoring."""

from __future__ import annotations

import copy
import hashlib
import pickle
from collections import Counter

import pytest
from tiny_text_lm import tiny_text_lm

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from derl_bench.inner.policies.action_scoring import (  # noqa: E402
    ActionScoringConfig,
    ActionScoringPolicy,
    SentenceEncoder,
    TextStepRecord,
    load_minilm,
)
from derl_bench.inner.policies.base import EpisodePolicy  # noqa: E402


class FakeHashEncoder:
    """FAKE encoder for unit tests of the head logic only: a fixed random unit vector per
    string (seeded by its SHA-256), no language understanding at all."""

    dim = 16

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def encode(self, texts):
        rows = []
        for text in texts:
            self.calls[text] += 1
            seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little")
            row = torch.randn(self.dim, generator=torch.Generator().manual_seed(seed))
            rows.append(row / row.norm())
        return torch.stack(rows) if rows else torch.zeros((0, self.dim))


def _batch(n_envs=8, n_actions=(3, 30)):
    """Observations and infos of n_envs text envs with varied numbers of valid actions."""
    sizes = [n_actions[0] + (i * 7) % (n_actions[1] - n_actions[0] + 1) for i in range(n_envs)]
    observations = [f"Room {i}. You see a table, a door and a red box." for i in range(n_envs)]
    infos = [
        {"valid_actions": [f"open thing {j} in room {i}" for j in range(k)]}
        for i, k in enumerate(sizes)
    ]
    return observations, infos


def _fake_policy(**config):
    return ActionScoringPolicy(ActionScoringConfig(**config), encoder=FakeHashEncoder())


@pytest.mark.parametrize(
    "bad",
    [
        {"hidden_size": 0},
        {"dropout": 1.0},
        {"temperature": 0.0},
        {"temperature": float("inf")},
        {"max_state_chars": 0},
    ],
)
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        ActionScoringConfig(**bad)


def test_act_returns_valid_indices_and_records():
    policy = _fake_policy(max_state_chars=10)
    assert isinstance(policy, EpisodePolicy)
    observations, infos = _batch()
    actions, records = policy.act(observations, infos, generator=torch.Generator().manual_seed(0))
    assert len(actions) == len(records) == len(observations)
    for action, record, obs, info in zip(actions, records, observations, infos, strict=True):
        assert isinstance(action, int) and 0 <= action < len(info["valid_actions"])
        assert isinstance(record, TextStepRecord)
        assert record.index == action
        assert record.actions == tuple(info["valid_actions"])
        assert record.state == obs[-10:]  # the last 10 characters
        assert record.log_prob <= 0.0


def test_act_rejects_envs_without_valid_actions_or_text():
    policy = _fake_policy()
    generator = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="env 1"):
        policy.act(
            ["a", "b"], [{"valid_actions": ["x"]}, {"valid_actions": []}], generator=generator
        )
    with pytest.raises(TypeError, match="str observations"):
        policy.act([[0.0, 1.0]], [{"valid_actions": ["x"]}], generator=generator)


def test_greedy_is_the_argmax_and_ties_go_to_the_lowest_index():
    policy = _fake_policy(init_seed=3)
    observations, infos = _batch()
    generator = torch.Generator().manual_seed(0)
    first, _ = policy.act(observations, infos, generator=generator, greedy=True)
    second, _ = policy.act(observations, infos, generator=torch.Generator(), greedy=True)
    assert first == second
    states = observations
    logits = policy.logits(states, [tuple(i["valid_actions"]) for i in infos])
    assert first == logits.argmax(dim=-1).tolist()
    # The same string twice scores the same: a tie, resolved to the first copy.
    scores = policy.logits([observations[0]], [("go north", "go south")])[0]
    worse, best = ("go north", "go south") if scores[1] > scores[0] else ("go south", "go north")
    tied = {"valid_actions": [worse, best, worse, best]}
    assert policy.act(observations[:1], [tied], generator=generator, greedy=True)[0] == [1]
    all_same = {"valid_actions": ["go north"] * 5}
    assert policy.act(["x"], [all_same], generator=generator, greedy=True)[0] == [0]


def test_same_generator_seed_gives_the_same_samples():
    policy = _fake_policy()
    observations, infos = _batch()

    def sample(seed):
        generator = torch.Generator().manual_seed(seed)
        return [policy.act(observations, infos, generator=generator)[0] for _ in range(5)]

    assert sample(11) == sample(11)
    assert sample(11) != sample(12)


def test_samples_follow_the_softmax_probabilities():
    policy = _fake_policy(init_seed=1, temperature=0.25)
    with torch.no_grad():
        policy.out.weight.normal_(
            generator=torch.Generator().manual_seed(0)
        )  # far from uniform, so the check below has teeth
    obs, info = "You are in the kitchen.", {"valid_actions": ["open fridge", "go east", "look"]}
    generator = torch.Generator().manual_seed(0)
    _, records = policy.act([obs] * 3000, [info] * 3000, generator=generator)
    probs = policy.log_prob([records[0]._replace(index=j) for j in range(3)]).exp().detach()
    freq = torch.bincount(torch.tensor([r.index for r in records]), minlength=3) / 3000
    assert probs.max() > 0.5 and probs.min() > 0.01, probs
    torch.testing.assert_close(freq, probs, atol=0.03, rtol=0)


def test_log_prob_matches_act_and_has_gradient_for_the_head():
    policy = _fake_policy(temperature=0.5)
    observations, infos = _batch()
    _, records = policy.act(observations, infos, generator=torch.Generator().manual_seed(4))
    _, more = policy.act(observations[:3], infos[:3], generator=torch.Generator().manual_seed(5))
    log_probs = policy.log_prob(records + more)  # a different batch and padding than in act
    assert log_probs.dtype == torch.float32 and log_probs.shape == (len(records) + len(more),)
    expected = torch.tensor([r.log_prob for r in records + more])
    torch.testing.assert_close(log_probs.detach(), expected, atol=1e-5, rtol=0)
    log_probs.sum().backward()
    for name, parameter in policy.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert policy.log_prob([]).shape == (0,)


def test_state_dict_is_the_head_and_reloads():
    encoder = FakeHashEncoder()
    policy = ActionScoringPolicy(ActionScoringConfig(init_seed=0), encoder=encoder)
    other = ActionScoringPolicy(ActionScoringConfig(init_seed=1), encoder=encoder)
    observations, infos = _batch(3)
    actions = [tuple(i["valid_actions"]) for i in infos]
    assert not torch.equal(
        policy.logits(observations, actions), other.logits(observations, actions)
    )
    state = policy.state_dict()
    assert set(state) == {
        "state_proj.weight",
        "state_proj.bias",
        "action_proj.weight",
        "product_proj.weight",
        "out.weight",
        "out.bias",
    }
    other.load_state_dict(state)
    assert torch.equal(policy.logits(observations, actions), other.logits(observations, actions))
    reference = copy.deepcopy(policy)  # e.g. the GRPO reference policy
    assert torch.equal(
        reference.logits(observations, actions), policy.logits(observations, actions)
    )
    with pytest.raises(TypeError, match="non-Module"):
        ActionScoringPolicy(encoder=torch.nn.Linear(2, 2))


# --- the real all-MiniLM-L6-v2 ------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm():
    try:
        return load_minilm()
    except ImportError as error:
        pytest.skip(str(error))


@pytest.mark.slow
def test_minilm_embeddings_follow_the_model_card_recipe(minilm):
    assert load_minilm() is minilm  # one per process
    emb = minilm.encode(
        ["A man is eating food.", "A man is eating a piece of bread.", "A man is riding a horse."]
    )
    assert emb.dtype == torch.float32 and emb.shape == (3, 384) and not emb.requires_grad
    torch.testing.assert_close(emb.norm(dim=-1), torch.ones(3))
    similarity = emb @ emb.T
    # A regression pin of this loader's value for the model card's example pair (we believe the
    # sentence-transformers docs print the same 0.7553; not checkable offline).
    assert similarity[0, 1] == pytest.approx(0.7553, abs=2e-3)
    assert similarity[0, 1] > similarity[0, 2]
    assert copy.deepcopy(minilm) is minilm
    assert pickle.loads(pickle.dumps(minilm)) is minilm  # re-attaches to the process's encoder


@pytest.mark.slow
def test_encoder_runs_each_distinct_string_once(minilm):
    encoder = SentenceEncoder(minilm.model, minilm.tokenizer, batch_size=4)  # fresh cache
    rows_seen = []
    hook = encoder.model.register_forward_hook(
        lambda module, args, kwargs, output: rows_seen.append(kwargs["input_ids"].shape[0]),
        with_kwargs=True,
    )
    try:
        texts = ["open door", "go north", "open door", "look around", "go north"] * 3
        first = encoder.encode(texts)
        assert encoder.n_encoded == 3 and sum(rows_seen) == 3
        second = encoder.encode(["look around", "open door", "take key"])
        assert encoder.n_encoded == 4 and sum(rows_seen) == 4 and len(encoder) == 4
    finally:
        hook.remove()
    torch.testing.assert_close(second[1], first[0])
    torch.testing.assert_close(first[1], minilm.encode(["go north"])[0])  # cached == fresh


def _count_forward_rows(encoder):  # noqa: ANN001, ANN202
    rows: list[int] = []
    hook = encoder.model.register_forward_hook(
        lambda module, args, kwargs, output: rows.append(kwargs["input_ids"].shape[0]),
        with_kwargs=True,
    )
    return rows, hook


@pytest.mark.slow
def test_embedding_store_serves_later_encoders_the_same_bits_without_the_model(minilm, tmp_path):
    from derl_bench.inner.policies.sentence_encoder import EmbeddingStore

    path = tmp_path / "store" / "minilm.sqlite3"
    texts = [
        "Task: boil water.\nObservation: You are in the kitchen.",
        "open door to kitchen",
        "pick up metal pot",
        "open door to kitchen",
    ]
    first = SentenceEncoder(
        minilm.model, minilm.tokenizer, batch_size=1, store=EmbeddingStore(path, 384)
    )
    written = first.encode(texts)
    assert first.n_encoded == 3 and len(first.store) == 3 and first.store.n_written == 3
    # a later process: its own in-memory cache (empty) and its own connection to the file
    later_store = pickle.loads(pickle.dumps(EmbeddingStore(path, 384)))
    later = SentenceEncoder(minilm.model, minilm.tokenizer, batch_size=1, store=later_store)
    rows, hook = _count_forward_rows(later)
    try:
        served = later.encode(texts + ["go to hallway"])
    finally:
        hook.remove()
    assert sum(rows) == 1 and later.n_encoded == 1 and later_store.n_hits == 3  # only the new one
    assert torch.equal(served[:4], written)
    capped = EmbeddingStore(path, 384, max_rows=4)  # holds 4 now: read, never written
    capped.put({"inventory": served[0]})
    assert capped.full and len(capped) == 4 and capped.get(["inventory"]) == {}
    # bit-identical to an encoder that computes every row itself
    plain = SentenceEncoder(minilm.model, minilm.tokenizer, batch_size=1)
    assert torch.equal(plain.encode(texts + ["go to hallway"]), served)


@pytest.mark.slow
def test_embedding_store_is_refused_by_a_batching_encoder_and_a_broken_one_only_warns(
    minilm, tmp_path
):
    from derl_bench.inner.policies.sentence_encoder import EmbeddingStore

    with pytest.raises(ValueError, match="batch_size=1"):
        SentenceEncoder(minilm.model, minilm.tokenizer, store=EmbeddingStore(tmp_path / "s", 384))
    (tmp_path / "not-a-file").mkdir()  # SQLite cannot open a folder
    broken = SentenceEncoder(
        minilm.model,
        minilm.tokenizer,
        batch_size=1,
        store=EmbeddingStore(tmp_path / "not-a-file", 384),
    )
    with pytest.warns(RuntimeWarning, match="not usable"):
        rows = broken.encode(["open door", "go north"])
    assert rows.shape == (2, 384) and broken.n_encoded == 2  # the embeddings still come
    assert torch.equal(broken.encode(["go north"]), rows[1:])


@pytest.mark.slow
def test_training_the_head_raises_the_preferred_action_probability(minilm):
    """A few Adam steps maximising log_prob of the thermometer action make it more likely."""
    policy = ActionScoringPolicy(ActionScoringConfig(hidden_size=64))
    assert all(not p.requires_grad for p in minilm.model.parameters())
    observations = [
        "This room is called the kitchen. In it, you see a fridge, a stove and a thermometer.",
        "This room is called the workshop. You see a table with a battery and a thermometer.",
        "This room is called the hallway. A door leads to the kitchen. A thermometer hangs.",
    ]
    base = ["open fridge", "go to hallway", "look around", "activate stove", "wait", "inventory"]
    infos = [{"valid_actions": base[i:] + ["pick up thermometer"] + base[:i]} for i in range(3)]
    generator = torch.Generator().manual_seed(0)
    _, records = policy.act(observations, infos, generator=generator)
    target = [r._replace(index=r.actions.index("pick up thermometer")) for r in records]
    before = policy.log_prob(target).exp().detach()
    optimizer = torch.optim.Adam(policy.parameters(), lr=1e-2)
    for _ in range(15):
        loss = -policy.log_prob(target).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = policy.log_prob(target).exp().detach()
    assert torch.all(before < 0.2) and torch.all(after > 0.6), (before, after)
    assert all(p.grad is None for p in minilm.model.parameters())  # the encoder stayed frozen
    greedy, _ = policy.act(observations, infos, generator=generator, greedy=True)
    assert [info["valid_actions"][g] for g, info in zip(greedy, infos, strict=True)] == [
        "pick up thermometer"
    ] * 3


# --- LMActionPolicy with a tiny random Qwen2 -------------------------------------------------

QWEN_LIKE_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_lm():
    """A random 2-layer Qwen2 (about 30 k parameters) with a 300-token BPE trained here."""
    texts = [
        "You are in the kitchen. You see a fridge, a stove, a table and a thermometer.",
        "Admissible actions: open fridge, go to hallway, look around, pick up thermometer.",
        "Reply with exactly one admissible action. You are an agent in a text environment.",
    ] * 10
    return tiny_text_lm(texts, max_position_embeddings=2048)


def _lm_policy(tiny_lm, *, chat=False, **config):
    from derl_bench.inner.policies.lm_action import LMActionConfig, LMActionPolicy

    model, tokenizer = tiny_lm
    model = copy.deepcopy(model)  # tests that train must not change the shared model
    tokenizer = copy.deepcopy(tokenizer)
    if chat:
        tokenizer.chat_template = QWEN_LIKE_TEMPLATE
    return LMActionPolicy(model, tokenizer, LMActionConfig(**config))


def _lm_batch():
    observations = [
        "You are in the kitchen. You see a fridge and a thermometer.",
        "Hallway.",
        "You are in the kitchen. The fridge is open. " * 4,
    ]
    infos = [
        {"valid_actions": ["open fridge", "go to hallway", "look around", "pick up thermometer"]},
        {"valid_actions": ["go to kitchen", "look"]},
        {"valid_actions": [f"take item {j} from fridge" for j in range(9)] + ["close fridge"]},
    ]
    return observations, infos


def test_lm_config_rejects_bad_values():
    from derl_bench.inner.policies.lm_action import LMActionConfig

    for bad in ({"temperature": -1.0}, {"max_rows_per_forward": 0}, {"max_observation_chars": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            LMActionConfig(**bad)


@pytest.mark.parametrize("chat", [False, True], ids=["plain", "chat-template"])
def test_lm_scores_are_summed_action_token_log_probs(tiny_lm, chat):
    """Batched, cached, padded scoring equals scoring each full sequence alone."""
    policy = _lm_policy(tiny_lm, chat=chat, max_rows_per_forward=5)  # several groups
    observations, infos = _lm_batch()
    actions = [tuple(i["valid_actions"]) for i in infos]
    with torch.no_grad():
        scores = policy.logits(observations, actions)
    assert scores.shape == (3, 10) and torch.isinf(scores[1, 2:]).all()
    tokenizer, model = policy.tokenizer, policy.model
    for i, (state, row) in enumerate(zip(observations, actions, strict=True)):
        prompt_text = policy.prompt(state, row)
        if chat:
            assert prompt_text.endswith("<|im_start|>assistant\n")
        prompt = tokenizer(prompt_text)["input_ids"]
        for j, action in enumerate(row):
            ids = tokenizer(action if chat else " " + action)["input_ids"]
            ids = ids + [tokenizer.eos_token_id]
            with torch.no_grad():
                logits = model(torch.tensor([prompt + ids])).logits[0]
            logp = torch.log_softmax(logits, dim=-1)
            expected = sum(float(logp[len(prompt) + t - 1, tok]) for t, tok in enumerate(ids))
            assert float(scores[i, j]) == pytest.approx(expected, abs=1e-4)


def test_lm_act_log_prob_and_sampling(tiny_lm):
    # Summed log-probs of a random LM favour the shortest action by far; the per-token mean
    # is close to uniform, so different seeds give different samples.
    policy = _lm_policy(tiny_lm, length_normalize=True)
    assert isinstance(policy, EpisodePolicy)
    observations, infos = _lm_batch()

    def sample(seed):
        generator = torch.Generator().manual_seed(seed)
        return [policy.act(observations, infos, generator=generator) for _ in range(3)]

    first, again, other = sample(1), sample(1), sample(2)
    assert [a for a, _ in first] == [a for a, _ in again]
    assert [a for a, _ in first] != [a for a, _ in other]
    records = [r for _, recs in first for r in recs]
    for record in records:
        assert 0 <= record.index < len(record.actions)
    greedy = [policy.act(observations, infos, generator=torch.Generator(), greedy=True)[0]]
    greedy.append(policy.act(observations, infos, generator=torch.Generator(), greedy=True)[0])
    assert greedy[0] == greedy[1]
    assert (
        greedy[0]
        == policy.logits(observations, [i["valid_actions"] for i in infos]).argmax(dim=-1).tolist()
    )

    log_probs = policy.log_prob(records[::-1])  # another batch composition than in act
    assert log_probs.dtype == torch.float32 and log_probs.shape == (len(records),)
    expected = torch.tensor([r.log_prob for r in records[::-1]])
    torch.testing.assert_close(log_probs.detach(), expected, atol=1e-5, rtol=0)
    log_probs.sum().backward()
    grads = [p.grad for p in policy.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


def test_lm_training_raises_the_preferred_action_probability(tiny_lm):
    policy = _lm_policy(tiny_lm, chat=True)
    observations, infos = _lm_batch()
    observations, infos = observations[:1], infos[:1]
    _, records = policy.act(observations, infos, generator=torch.Generator().manual_seed(0))
    target = [records[0]._replace(index=3)]  # "pick up thermometer"
    before = float(policy.log_prob(target).detach().exp())
    initial = [p.detach().clone() for p in policy.parameters()]
    optimizer = torch.optim.Adam(policy.parameters(), lr=2e-2)
    for _ in range(15):
        loss = -policy.log_prob(target).sum()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    after = float(policy.log_prob(target).detach().exp())
    assert before < 0.1 and after > 0.9, (before, after)
    assert any(not torch.equal(p, q) for p, q in zip(policy.parameters(), initial, strict=True))
    greedy, _ = policy.act(observations, infos, generator=torch.Generator(), greedy=True)
    assert greedy == [3]


@pytest.mark.slow
def test_unbatched_encoder_runs_threads_model_calls_together_with_the_same_bits(minilm):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    texts = [
        f"Observation {i}: you see a {thing} on the table."
        for i, thing in enumerate(["mug", "key", "pot", "apple", "book", "lamp", "knife", "plate"])
    ]
    serial = SentenceEncoder(minilm.model, minilm.tokenizer, batch_size=1).encode(texts)
    shared = SentenceEncoder(minilm.model, minilm.tokenizer, batch_size=1)
    inside = threading.Barrier(2, timeout=30)
    met = []

    def meet(module, args, kwargs, output):  # noqa: ANN001, ANN202, ARG001
        # both threads must be inside a model call at once, which the lock would forbid
        if not met:
            inside.wait()
            met.append(True)

    hook = shared.model.register_forward_hook(meet, with_kwargs=True)
    try:
        with ThreadPoolExecutor(2) as pool:
            halves = list(pool.map(shared.encode, [texts[:4], texts[4:]]))
    finally:
        hook.remove()
    assert met and torch.equal(torch.cat(halves), serial)
    assert shared.n_encoded == 8 and shared.n_lookups == 8 and len(shared) == 8
    assert torch.equal(shared.encode(texts), serial)  # now all from the cache
    assert shared.n_encoded == 8
