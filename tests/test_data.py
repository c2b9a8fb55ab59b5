from __future__ import annotations

import hashlib
import shutil
import sys
import types
from pathlib import Path

import pytest

from derl_bench.envs import data as data_mod
from derl_bench.envs import gsm8k as gsm8k_mod
from derl_bench.envs import math_data as math_mod
from derl_bench.envs.data import (
    DATA_ENV_VAR,
    EXPECTED_SHA256,
    ChecksumMismatch,
    DataFileMissing,
    DataSourceUnavailable,
    data_hashes,
    data_root,
    file_sha256,
    recording_data_files,
    split_pool,
    verify_sha256,
)
from derl_bench.envs.gsm8k import load_gsm8k
from derl_bench.envs.math_data import MATH_PROMPT_SUFFIX, last_boxed_content, load_math
from derl_bench.envs.records import MathRecord

SHARED = data_root()


@pytest.fixture(autouse=True)
def _isolated_data_hashes(monkeypatch):
    # Tampered copies under tmp_path must not leak into data_hashes() for later tests.
    monkeypatch.setattr(data_mod, "_USED_FILES", {})


def _copy_data_file(rel: str, dest_root: Path) -> Path:
    dest = dest_root / rel
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(SHARED / rel, dest)
    return dest


# --- real data: counts and hand-checked rows -------------------------------------------------


@pytest.mark.data
@pytest.mark.parametrize(
    ("loader", "split", "n"),
    [
        (load_gsm8k, "train", 7473),
        (load_gsm8k, "test", 1319),
        (load_math, "train", 7500),
        (load_math, "test", 5000),
        (load_math, "math500", 500),
    ],
)
def test_row_counts_and_uids(loader, split, n):
    records = loader(split)
    assert len(records) == n
    assert all(isinstance(r, MathRecord) for r in records)
    assert len({r.uid for r in records}) == n
    assert records[-1].uid.endswith(f"/{split}/{n - 1}")
    assert all(r.answer.strip() == r.answer for r in records)
    empty = [r.uid for r in records if not r.answer]
    # Two MATH train rows have an empty ground truth in the verl file (kept, never rewarded).
    assert empty == (
        ["math/train/5341", "math/train/5343"] if split == "train" and n == 7500 else []
    )


@pytest.mark.data
def test_gsm8k_train_row0():
    r = load_gsm8k("train")[0]
    assert r.uid == "gsm8k/train/0"
    assert r.source == "gsm8k"
    assert r.question.startswith("Natalia sold clips to 48 of her friends in April")
    assert r.answer == "72"
    assert r.solution is not None
    assert r.solution.startswith("Natalia sold 48/2 = <<48/2=24>>24 clips in May.")
    assert r.solution.endswith("#### 72")


@pytest.mark.data
def test_gsm8k_answer_commas_removed():
    r = load_gsm8k("train")[345]
    assert r.solution is not None and r.solution.endswith("#### 1,080")
    assert r.answer == "1080"
    assert not any("," in x.answer for x in load_gsm8k("train") + load_gsm8k("test"))


@pytest.mark.data
def test_gsm8k_test_row0():
    r = load_gsm8k("test")[0]
    assert r.uid == "gsm8k/test/0"
    assert r.question.startswith("Janet’s ducks lay 16 eggs per day.")
    assert r.answer == "18"


@pytest.mark.data
def test_math_train_rows_strip_suffix():
    records = load_math("train")
    r0 = records[0]
    assert r0.uid == "math/train/0"
    assert r0.source == "math"
    assert r0.answer == "0"
    assert r0.solution is None
    assert r0.question.startswith("Let \\[f(x) = \\left\\{")
    assert r0.question.endswith("without lifting your pencil from the paper).")
    assert (
        records[5].question
        == "Find the center of the circle with equation $x^2 - 6x + y^2 + 2y = 9$."
    )
    assert records[5].answer == "(3, -1)"
    assert not any("Let's think step by step" in r.question for r in records)
    assert not any(r.question.endswith(MATH_PROMPT_SUFFIX) for r in records)


@pytest.mark.data
def test_math_test_answers_from_last_box():
    records = load_math("test")
    assert records[0].uid == "math/test/0"
    assert records[0].question.startswith("How many vertical asymptotes does the graph of")
    assert records[0].answer == "2"
    assert records[2].answer == "\\dfrac{9}{7}"
    assert records[9].answer == "-\\frac{1}{8}"
    assert records[10].answer == "\\frac{x+2}{7}"


@pytest.mark.data
def test_math500_row0_and_answer_field_agrees_with_box_extraction():
    records = load_math("math500")
    r = records[0]
    assert r.uid == "math/math500/0"
    assert r.question.startswith("Convert the point $(0,3)$ in rectangular coordinates")
    assert r.answer == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert records[4].answer == "\\text{Evelyn}"
    # The file's answer field is the last box of the solution for every row: a real-data check
    # of last_boxed_content on 500 solutions.
    assert all(last_boxed_content(x.solution or "") == x.answer for x in records)


@pytest.mark.data
def test_loads_are_cached_in_process():
    assert load_gsm8k("test") is load_gsm8k("test")
    assert load_math("math500") is load_math("math500")


# --- last_boxed_content ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
        ("\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}", "\\left( 3, \\frac{\\pi}{2} \\right)"),
        ("\\boxed{1} then \\boxed{\\sqrt{\\frac{a}{b}}}", "\\sqrt{\\frac{a}{b}}"),
        ("first \\fbox{7}", "7"),
        ("\\boxed{3} and last \\fbox{{4}}", "{4}"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("the answer is $\\boxed 5$.", "5"),
        ("\\boxed {12}", "12"),
        ("no box here", None),
        ("\\boxed{\\frac{1}{2}", None),
        ("\\fboxsep=1pt \\boxed{9} \\fboxrule", "9"),
    ],
)
def test_last_boxed_content(text, expected):
    assert last_boxed_content(text) == expected


# --- split_pool ------------------------------------------------------------------------------


@pytest.mark.data
def test_split_pool_sizes_disjoint_and_complete():
    records = load_gsm8k("train")
    pool = split_pool(records)
    assert (len(pool.d_in), len(pool.val)) == (5978, 1495)
    d_in = {r.uid for r in pool.d_in}
    val = {r.uid for r in pool.val}
    assert not d_in & val
    assert d_in | val == {r.uid for r in records}
    math_pool = split_pool(load_math("train"))
    assert (len(math_pool.d_in), len(math_pool.val)) == (6000, 1500)


def test_split_pool_deterministic_and_pinned():
    items = list(range(100))
    a = split_pool(items, seed=0)
    b = split_pool(items, seed=0)
    assert a == b
    assert a.d_in == tuple(sorted(a.d_in)) and a.val == tuple(sorted(a.val))
    assert split_pool(items, seed=1).val != a.val
    # Pinned: the same split in every process, on every platform (guards the NumPy stream).
    assert a.val == (7, 29, 31, 33, 38, 41, 48, 54, 56, 59, 63, 69, 73, 76, 77, 78, 79, 88, 89, 95)


@pytest.mark.data
def test_split_pool_pinned_on_gsm8k():
    pool = split_pool(load_gsm8k("train"), seed=0)
    assert [r.uid for r in pool.val[:3]] == ["gsm8k/train/3", "gsm8k/train/6", "gsm8k/train/8"]
    digest = hashlib.sha256("\n".join(r.uid for r in pool.val).encode()).hexdigest()
    assert digest == "bdd55d0336617e920a687c58e9a7948ac710e3d7a9b729cb63ccbd0d0a2ed8ff"


def test_split_pool_rejects_bad_ratio():
    with pytest.raises(ValueError, match="ratio must be in"):
        split_pool([1, 2, 3], ratio=1.0)
    with pytest.raises(ValueError, match="ratio must be in"):
        split_pool([1, 2, 3], ratio=0.0)
    # floor(0.5 * 5) = 2 records in D_in.
    assert split_pool([1, 2, 3, 4, 5], ratio=0.5) == ((3, 5), (1, 2, 4))


# --- checksums, missing files, data root -----------------------------------------------------


@pytest.mark.data
def test_checksum_mismatch_on_tampered_copy(tmp_path):
    path = _copy_data_file("gsm8k/test.jsonl", tmp_path)
    # An untouched copy verifies and loads.
    assert len(load_gsm8k("test", data_dir=tmp_path)) == 1319
    text = path.read_text(encoding="utf-8").replace("#### 18", "#### 1900", 1)
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ChecksumMismatch) as info:
        load_gsm8k("test", data_dir=tmp_path)
    assert str(path) in str(info.value)
    assert EXPECTED_SHA256["gsm8k/test.jsonl"] in str(info.value)
    assert isinstance(info.value, ValueError)
    # verify=False reads the tampered file (and the cache did not serve the old content).
    assert load_gsm8k("test", data_dir=tmp_path, verify=False)[0].answer == "1900"
    assert data_hashes()["gsm8k/test.jsonl"] == hashlib.sha256(path.read_bytes()).hexdigest()


def test_verify_sha256_and_hash_cache(tmp_path, monkeypatch):
    path = tmp_path / "f.txt"
    path.write_bytes(b"hello")
    expected = hashlib.sha256(b"hello").hexdigest()
    calls = []
    real = hashlib.sha256

    def counting_sha256(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(data_mod.hashlib, "sha256", counting_sha256)
    verify_sha256(path, expected.upper())
    verify_sha256(path, expected)
    assert file_sha256(path) == expected
    assert len(calls) == 1
    with pytest.raises(ChecksumMismatch):
        verify_sha256(path, "0" * 64)
    path.write_bytes(b"hello, world")  # new size -> new cache key -> hashed again
    assert file_sha256(path) == real(b"hello, world").hexdigest()
    assert len(calls) == 2


def test_missing_file_error_names_path_and_fix(tmp_path):
    with pytest.raises(DataFileMissing) as info:
        load_gsm8k("train", data_dir=tmp_path)
    message = str(info.value)
    assert str(tmp_path / "gsm8k" / "train.jsonl") in message
    assert DATA_ENV_VAR in message and "data_dir" in message and "source='hf'" in message
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(DataFileMissing, match="math500.jsonl"):
        load_math("math500", data_dir=tmp_path)


@pytest.mark.data
def test_env_var_overrides_default_and_argument_overrides_env(tmp_path, monkeypatch):
    path = _copy_data_file("gsm8k/test.jsonl", tmp_path / "mine")
    path.write_text(path.read_text(encoding="utf-8").replace("#### 18", "#### 9900", 1), "utf-8")
    monkeypatch.setenv(DATA_ENV_VAR, str(tmp_path / "mine"))
    assert data_root() == (tmp_path / "mine").resolve()
    with pytest.raises(ChecksumMismatch):  # proves the env var's copy is the one read
        load_gsm8k("test")
    assert load_gsm8k("test", verify=False)[0].answer == "9900"
    assert data_root(SHARED) == SHARED
    assert load_gsm8k("test", data_dir=SHARED)[0].answer == "18"


@pytest.mark.data
def test_default_root_is_shared_data_beside_checkout(monkeypatch):
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    root = data_root()
    expected = Path(data_mod.__file__).resolve().parents[3] / "shared" / "data"
    assert root == expected.resolve()  # ../shared may be a symlink (as in fresh-ci)
    assert (root / "gsm8k" / "train.jsonl").is_file()


def test_empty_env_var_is_ignored(monkeypatch):
    monkeypatch.delenv(DATA_ENV_VAR, raising=False)
    expected = data_root()
    monkeypatch.setenv(DATA_ENV_VAR, "")
    assert data_root() == expected


@pytest.mark.data
def test_data_hashes_report_loaded_files():
    load_gsm8k("train")
    load_math("math500")
    assert data_hashes() == {
        "gsm8k/train.jsonl": EXPECTED_SHA256["gsm8k/train.jsonl"],
        "math/math500.jsonl": EXPECTED_SHA256["math/math500.jsonl"],
    }


@pytest.mark.data
def test_recording_data_files_sees_only_its_block_and_nests():
    load_math("math500")  # before the block: not recorded
    with recording_data_files() as outer:
        load_gsm8k("test")
        with recording_data_files() as inner:
            load_gsm8k("train")
    load_math("test")  # after the block: not recorded
    assert inner == {"gsm8k/train.jsonl": EXPECTED_SHA256["gsm8k/train.jsonl"]}
    assert outer == {
        "gsm8k/test.jsonl": EXPECTED_SHA256["gsm8k/test.jsonl"],
        "gsm8k/train.jsonl": EXPECTED_SHA256["gsm8k/train.jsonl"],
    }
    assert set(data_hashes()) == set(outer) | {"math/math500.jsonl", "math/test.jsonl"}


def test_unknown_split_and_source():
    with pytest.raises(ValueError, match="unknown GSM8K split"):
        load_gsm8k("validation")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown MATH split"):
        load_math("dev")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown source"):
        load_gsm8k("train", source="s3")  # type: ignore[arg-type]


# --- Hugging Face source (no network: a fake `datasets` module) -----------------------------


@pytest.fixture
def fake_datasets(monkeypatch):
    module = types.ModuleType("datasets")
    calls = []
    tables = {}

    def load_dataset(path, name=None, split=None):
        calls.append((path, name, split))
        if (path, split) not in tables:
            raise ConnectionError("no network")
        return tables[(path, split)]

    module.load_dataset = load_dataset
    monkeypatch.setitem(sys.modules, "datasets", module)
    gsm8k_mod._load_hf.cache_clear()
    math_mod._load_hf.cache_clear()
    yield tables, calls
    gsm8k_mod._load_hf.cache_clear()
    math_mod._load_hf.cache_clear()


def test_hf_unavailable_says_use_local_files(fake_datasets):
    with pytest.raises(DataSourceUnavailable) as info:
        load_gsm8k("train", source="hf")
    message = str(info.value)
    assert "openai/gsm8k" in message and "local" in message and DATA_ENV_VAR in message
    with pytest.raises(DataSourceUnavailable, match="MATH-lighteval"):
        load_math("test", source="hf")


def test_hf_rows_become_records(fake_datasets):
    tables, calls = fake_datasets
    tables[("openai/gsm8k", "test")] = [{"question": "Q?", "answer": "2+2=4\n#### 1,004"}]
    tables[("DigitalLearningGmbH/MATH-lighteval", "train")] = [
        {"problem": "P", "solution": "so $\\boxed{\\frac{1}{2}}$", "level": "Level 1", "type": "x"}
    ]
    tables[("HuggingFaceH4/MATH-500", "test")] = [
        {"problem": "P5", "solution": "\\boxed{3}", "answer": "3", "unique_id": "u"}
    ]
    (g,) = load_gsm8k("test", source="hf")
    assert g == MathRecord(
        uid="gsm8k/test/0",
        source="gsm8k",
        question="Q?",
        answer="1004",
        solution="2+2=4\n#### 1,004",
    )
    assert ("openai/gsm8k", "main", "test") in calls
    (m,) = load_math("train", source="hf")
    assert (m.uid, m.answer, m.question) == ("math/train/0", "\\frac{1}{2}", "P")
    (m5,) = load_math("math500", source="hf")
    assert (m5.uid, m5.answer) == ("math/math500/0", "3")


@pytest.mark.data
def test_embedded_alfworld_split_digests_are_those_of_sha256sums():
    sums = {}
    for line in (SHARED / "SHA256SUMS").read_text().splitlines():
        digest, path = line.split("  ", 1)
        sums[path.removeprefix("./")] = digest
    for split in ("valid_train", "valid_seen", "valid_unseen"):
        folder = f"alfworld/json_2.1.1/{split}"
        files = {p: d for p, d in sums.items() if p.startswith(folder + "/")}
        assert len(files) > 200
        assert EXPECTED_SHA256[folder] == data_mod.files_digest(files)


@pytest.mark.data
def test_alfworld_splits_note_one_digest_per_split_folder():
    from derl_bench.envs.alfworld_data import alfworld_splits

    with recording_data_files() as files:
        alfworld_splits("L2")
    folders = [f"alfworld/json_2.1.1/{s}" for s in ("valid_seen", "valid_train", "valid_unseen")]
    assert files == {folder: EXPECTED_SHA256[folder] for folder in folders}
    with recording_data_files() as files:
        alfworld_splits("L0")  # listed before: still noted, from the process's listing
    assert set(files) == {f"alfworld/json_2.1.1/{s}" for s in ("valid_seen", "valid_train")}
