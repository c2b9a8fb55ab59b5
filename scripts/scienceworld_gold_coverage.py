"""Gold-action coverage of ScienceWorld's candidate rules on the cold start's D_in games.

The cold start (derl_bench/inner/cold_start.py) can only imitate an expert step whose action is
among the candidates (``info["valid_actions"]``). This script plays, on the real simulator, the
D_in games a preset's cold start uses (:func:`~derl_bench.inner.cold_start.cold_start_tasks`)
with two experts and counts, at every expert step, whether its action is among the candidates
of rule 1 (``DERL-ScienceWorld-*-v0``/``-v1``) and of rule 2 (``-v2``):

- ``gold``: the simulator's gold action sequence replayed as is (the ``-v1`` expert), on the
  ``-v1`` cold start's games;
- ``v2 expert``: the ``-v2`` expert, on the ``-v1`` and on the ``-v2`` cold start's games:
  :func:`~derl_bench.envs.scienceworld_rules.expert_path` of the gold sequence, each action
  played as the valid combination it stands for
  (:meth:`~derl_bench.envs.scienceworld.ScienceWorldInnerEnv.expert_action`).

It also reports each expert's path lengths against the versions' episode caps
(``max_episode_steps``) and whether the path succeeds within the cap. Only the engine runs (no
policy, no training); about 3-4 minutes per level at ``cpu`` on one core.

Run (writes the JSON and a Markdown table next to it; the JSON holds the lock hash; one level
per run keeps each under 5 CPU minutes; ``--dump`` does not change the numbers):

    .venv/bin/python scripts/scienceworld_gold_coverage.py --preset cpu --levels L2 \
        --out docs/scienceworld/gold-coverage-cpu-L2.json --dump /tmp/swr/dump_L2.json
    .venv/bin/python scripts/scienceworld_gold_coverage.py --preset cpu --levels L0 \
        --out docs/scienceworld/gold-coverage-cpu-L0.json --dump /tmp/swr/dump_L0.json

``--levels all-tasks`` plays the first training variation of each of the 30 tasks instead
(no episode cap; about 5 CPU minutes).

``--dump FILE`` also saves every expert step's state (the simulator's valid actions, inventory,
handled objects) so that ``--from-dump FILE`` recomputes the coverage of changed rules without
the simulator (for working on the rules; the dump is not committed).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

RULES = {1: 64, 2: None}  # rule version -> max_actions (None: the -v2 env's, read below)


def _games(preset: str, level: str, version: int) -> tuple[Any, int, int]:
    """(the cold start's D_in tasks, its episode cap, D_in size) of ``(preset, level, version)``.

    Level ``all-tasks``: the first training variation of each of the 30 tasks, no cap (a look
    beyond the preset's task subset).
    """
    if level == "all-tasks":
        from derl_bench.envs import scienceworld as sw
        from derl_bench.envs.episode import EpisodeTask

        first = {n: v[0][0] for n, v in sw.scienceworld_variations(sw.TASK_NAMES).items()}
        tasks = tuple(
            EpisodeTask(domain="scienceworld", task_id=n, variation=v, task_type=n)
            for n, v in first.items()
        )
        return tasks, 10_000, len(tasks)
    from derl_bench.inner.cold_start import cold_start_tasks
    from derl_bench.inner.episode_presets import episode_preset
    from derl_bench.meta_env.episode_domains import scienceworld_preset_splits

    config = episode_preset("scienceworld", preset, version=version)
    splits = scienceworld_preset_splits(level, preset, version)
    games = cold_start_tasks(splits.d_in, config.cold_start_games)
    return games, config.max_episode_steps, len(splits.d_in)


def _play(env: Any, task: Any, actions: list[str], *, map_actions: bool, dump: bool) -> dict:
    """Play ``actions`` from a reset of ``task``; record per step whether each rule keeps it."""
    _, info = env.reset(options={"task": task})
    steps = []
    for planned in actions:
        action = (env.expert_action(planned) or planned) if map_actions else planned
        step: dict[str, Any] = {"action": action, "planned": planned}
        for rules, cap in RULES.items():
            kept = env.candidates(rules, cap or env.max_actions)
            step[f"rule{rules}"], step[f"n_rule{rules}"] = action in kept, len(kept)
        if dump:
            step["state"] = {
                "valid": list(env._raw["valid"]),
                "inv": env._raw["inv"],
                "description": env._description,
                "handled": list(env._handled),
            }
        steps.append(step)
        _, _, terminated, _, info = env.step(action)
        if terminated:
            break
    return {"task": task.key, "steps": steps, "success": bool(info["success"])}


def _summary(records: list[dict], cap: int) -> dict[str, Any]:
    """Coverage and length statistics of one expert's records under episode cap ``cap``."""
    lengths = [len(r["steps"]) for r in records]
    out: dict[str, Any] = {
        "games": len(records),
        "steps": sum(lengths),
        "success": sum(r["success"] for r in records),
        "success_within_cap": sum(r["success"] and len(r["steps"]) <= cap for r in records),
        "episode_cap": cap,
        "length_min": min(lengths),
        "length_median": statistics.median(lengths),
        "length_max": max(lengths),
        "longer_than_cap": sum(n > cap for n in lengths),
    }
    capped = [s for r in records for s in r["steps"][:cap]]
    out["steps_within_cap"] = len(capped)
    for rules in RULES:
        hit = sum(s[f"rule{rules}"] for s in capped)
        out[f"covered_rule{rules}"] = hit
        out[f"coverage_rule{rules}"] = round(hit / max(1, len(capped)), 4)
        sizes = [s[f"n_rule{rules}"] for s in capped]
        out[f"mean_candidates_rule{rules}"] = round(sum(sizes) / max(1, len(sizes)), 1)
    missed: dict[str, int] = {}
    for step in capped:
        if not step["rule2"]:
            verb = " ".join(step["action"].split()[:2])
            missed[verb] = missed.get(verb, 0) + 1
    out["missed_by_rule2"] = dict(sorted(missed.items(), key=lambda kv: -kv[1]))
    return out


def _recompute(dump: dict) -> None:
    """Recompute the rule flags of a dump's steps with the current rules (no simulator)."""
    from derl_bench.envs.scienceworld_rules import build_candidates

    max_actions = dump["max_actions_v2"]
    for level in dump["levels"].values():
        for expert in ("gold", "v2_expert"):
            for record in level[expert]:
                for step in record["steps"]:
                    s = step["state"]
                    for rules, cap in RULES.items():
                        kept = build_candidates(
                            s["valid"], s["description"], s["inv"], cap or max_actions,
                            s["handled"], rules=rules,
                        )  # fmt: skip
                        step[f"rule{rules}"] = step["action"] in kept
                        step[f"n_rule{rules}"] = len(kept)


def _markdown(result: dict) -> str:
    lines = [
        f"# ScienceWorld gold-action coverage, preset `{result['preset']}`",
        "",
        "Fraction of expert steps (within the episode cap) whose action is among the",
        "candidates; rule 1 keeps at most 64 (`-v0`/`-v1`), rule 2 at most "
        f"{result['max_actions_v2']} (`-v2`).",
        f"Made by `{result['command']}` (lock `{result['lock_sha256']}`).",
        "",
        "| level | expert | games | cap | length min/median/max | > cap | success in cap "
        "| steps in cap | rule 1 | rule 2 | mean candidates 1 / 2 |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for level, experts in result["summary"].items():
        for expert, s in experts.items():
            lines.append(
                f"| {level} | {expert} | {s['games']} | {s['episode_cap']} | {s['length_min']}/"
                f"{s['length_median']}/{s['length_max']} | {s['longer_than_cap']} | "
                f"{s['success_within_cap']}/{s['games']} | {s['steps_within_cap']} | "
                f"{s['covered_rule1']} ({s['coverage_rule1']:.3f}) | "
                f"{s['covered_rule2']} ({s['coverage_rule2']:.3f}) | "
                f"{s['mean_candidates_rule1']} / {s['mean_candidates_rule2']} |"
            )
    lines.append("")
    for level, experts in result["summary"].items():
        for expert, s in experts.items():
            if s["missed_by_rule2"]:
                lines.append(f"- {level} {expert}, missed by rule 2: {s['missed_by_rule2']}")
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Run the script (see the module docstring); returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="cpu", choices=["smoke", "cpu", "paper"])
    parser.add_argument("--levels", default="L0,L2", help="L0, L1, L2 and/or all-tasks")
    parser.add_argument("--out", type=Path, default=None, help="JSON to write (and .md)")
    parser.add_argument("--dump", type=Path, default=None, help="save per-step states here")
    parser.add_argument("--from-dump", type=Path, default=None, help="recompute a dump")
    args = parser.parse_args(argv)

    from derl_bench.envs import scienceworld as sw
    from derl_bench.provenance import provenance

    v2 = sw.SCIENCEWORLD_VERSIONS[2]
    start = time.time()
    if args.from_dump is not None:
        raw = json.loads(args.from_dump.read_text())
        _recompute(raw)
    else:
        raw = {"preset": args.preset, "max_actions_v2": v2["max_actions"], "levels": {}}
        env = sw.ScienceWorldInnerEnv(max_steps=10_000, max_actions=v2["max_actions"])
        try:
            for level in args.levels.split(","):
                games, _, d_in = _games(args.preset, level, 2)
                old_games, _, old_d_in = _games(args.preset, level, 1)
                entry: dict[str, Any] = {"gold": [], "v2_expert": [], "d_in": d_in}
                entry.update(old_d_in=old_d_in, v1_games=[t.key for t in old_games])
                entry["v2_games"] = [t.key for t in games]
                dump = args.dump is not None
                for task in dict.fromkeys([*old_games, *games]):
                    gold = env.gold_action_sequence(task)
                    if task in old_games:
                        entry["gold"].append(_play(env, task, gold, map_actions=False, dump=dump))
                    path = sw.expert_path(gold)
                    entry["v2_expert"].append(_play(env, task, path, map_actions=True, dump=dump))
                raw["levels"][level] = entry
        finally:
            env.close()
        if args.dump is not None:
            args.dump.write_text(json.dumps(raw))
    summary: dict[str, dict[str, Any]] = {}
    for level, entry in raw["levels"].items():
        cap1 = _games(raw["preset"], level, 1)[1]
        cap2 = _games(raw["preset"], level, 2)[1]
        old, new = set(entry["v1_games"]), set(entry["v2_games"])
        summary[level] = {
            "gold, v1 games": _summary(entry["gold"], cap1),
            "v2 expert, v1 games": _summary(
                [r for r in entry["v2_expert"] if r["task"] in old], cap2
            ),
            "v2 expert, v2 games": _summary(
                [r for r in entry["v2_expert"] if r["task"] in new], cap2
            ),
        }
        summary[level]["gold, v1 games"]["d_in"] = entry["old_d_in"]
        summary[level]["v2 expert, v2 games"]["d_in"] = entry["d_in"]
    prov = provenance()
    result = {
        "preset": raw["preset"],
        "max_actions_v2": raw["max_actions_v2"],
        "summary": summary,
        "command": "python scripts/scienceworld_gold_coverage.py " + " ".join(argv),
        "lock_sha256": prov["lock_sha256"],
        "seconds": round(time.time() - start, 1),
    }
    text = _markdown(result)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        args.out.with_suffix(".md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
