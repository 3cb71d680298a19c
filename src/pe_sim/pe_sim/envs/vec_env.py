"""The SB3 VecEnv: B pursuit-evasion episodes stepped by one batched call.

:class:`BatchVecEnv` exposes :class:`~pe_sim.batch.BatchSim` (B envs) for one
learning robot; opponents and teammates are controllers vectorised over the
batch (scripted kinds, or a learned policy via
:class:`~pe_sim.envs.core.PolicyController`), each called once per step.
Environment ``i`` after ``seed(s)`` + ``reset()`` plays episode ``s + i``,
exactly the episode :class:`~pe_sim.envs.single.PursuitEvasionEnv` plays after
``reset(seed=s + i)``; finished envs restart with the next unused seeds, in env
order.

The step path has no Python loop over environments except building SB3's info
list. What that list holds (the choice made to keep it cheap):

* every env gets a fresh empty dict (about 25 ns each; safe to mutate);
* only envs whose episode just ended get keys: ``terminal_observation`` (the
  observation of the final state), ``TimeLimit.truncated``, ``is_success``
  (capture for a pursuer, no capture for an evader), ``episode`` = {r, l, t}
  as SB3's ``Monitor`` writes it (so ``ep_info_buffer`` fills without a
  ``VecMonitor``; one on top simply overwrites it), and ``episode_seed``,
  ``violation_steps``, ``contact_steps`` (+ ``mean_correction``,
  ``interventions`` with an action filter);
* per-step events of all envs are arrays, not dicts: :attr:`BatchVecEnv.last_step`
  (:class:`~pe_sim.envs.core.BatchStep`: violation/contact/clearance (B, N),
  terminated/truncated, correction (B, 1), filter stats).

``get_attr``/``set_attr``/``env_method`` act on this one shared object (there
are no sub-environments): ``get_attr`` repeats the value per index (except the
per-env ``episode_seed`` and ``step_count``), ``set_attr`` must address all
envs, ``env_method`` calls the method once and repeats its result.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvStepReturn

from pe_sim.envs.actions import ACTION_HIGH, ACTION_LOW
from pe_sim.envs.core import (
    INTERVENTION_THRESHOLD,
    ActionFilter,
    BatchStep,
    ControllerSpec,
    LearnerBatch,
    ScenarioLike,
    observation_bound,
    resolve_controllers,
    resolve_learner,
    resolve_scenario,
)
from pe_sim.observation import ObservationSpec

_PER_ENV_ATTRS = ("episode_seed", "step_count")


class BatchVecEnv(VecEnv):
    """``num_envs`` episodes of ``scenario`` for one learning robot (``role=``/``robot=``)
    vs ``opponent``/``teammate`` controllers (see
    :func:`~pe_sim.envs.core.resolve_controllers`), with an optional ``action_filter``
    in the loop (``filter_robots`` "all" or "learners"; the learner's reward loses
    ``correction_penalty`` x its scaled correction). ``seed`` as SB3's ``seed()``: the
    first ``reset()`` plays episodes ``seed .. seed + num_envs - 1`` (None: random)."""

    def __init__(
        self,
        scenario: ScenarioLike = "seed_1v1_2obs",
        num_envs: int = 64,
        *,
        role: str | None = None,
        robot: str | None = None,
        opponent: ControllerSpec = None,
        teammate: ControllerSpec = None,
        seed: int | None = None,
        k_obstacles: int = 4,
        action_filter: ActionFilter | None = None,
        filter_robots: str = "all",
        correction_penalty: float = 0.0,
    ) -> None:
        self.scenario = resolve_scenario(scenario)
        self.learner_index = resolve_learner(self.scenario, role, robot)
        self.robot = self.scenario.robots[self.learner_index]
        controllers = resolve_controllers(self.scenario, [self.learner_index], opponent, teammate)
        self.core = LearnerBatch(
            self.scenario, [self.learner_index], controllers, num_envs=num_envs, seed=0,
            k_obstacles=k_obstacles, action_filter=action_filter, filter_robots=filter_robots,
            correction_penalty=correction_penalty)
        self.render_mode = None
        bound = observation_bound(self.scenario)
        dim = self.observation_spec.dim
        super().__init__(
            num_envs,
            spaces.Box(-bound, bound, (dim,), np.float32),
            spaces.Box(ACTION_LOW, ACTION_HIGH, (2,), np.float32),
        )
        self.last_step: BatchStep | None = None
        self._actions = np.zeros((num_envs, 1, 2))
        self._ep_return = np.zeros(num_envs)
        self._ep_length = np.zeros(num_envs, dtype=np.int64)
        self._ep_violations = np.zeros(num_envs, dtype=np.int64)
        self._ep_contacts = np.zeros(num_envs, dtype=np.int64)
        self._ep_correction = np.zeros(num_envs)
        self._ep_interventions = np.zeros(num_envs, dtype=np.int64)
        self._t_start = time.time()
        self.seed(seed)

    # -- properties ----------------------------------------------------------------------
    @property
    def observation_spec(self) -> ObservationSpec:
        """The spec of the learner's observations (carry it with a trained policy)."""
        return self.core.builders[0].spec

    @property
    def sim(self):
        """The underlying :class:`~pe_sim.batch.BatchSim`."""
        return self.core.sim

    @property
    def next_seed(self) -> int:
        """The next unused episode seed: ``seed(next_seed)`` continues without replaying one."""
        return int(self.core.sim.next_seed)

    @property
    def episode_seed(self) -> np.ndarray:
        return self.core.sim.episode_seed

    @property
    def step_count(self) -> np.ndarray:
        return self.core.sim.step_count

    def set_opponent(self, opponent: ControllerSpec) -> None:
        """Replace the opponents' controllers (kind, controller or name -> either)."""
        self.core.set_opponent(opponent)

    def set_teammate(self, teammate: ControllerSpec) -> None:
        """Replace the non-learning teammates' controllers (kind, controller or name -> either)."""
        self.core.set_teammate(teammate)

    # -- VecEnv API ----------------------------------------------------------------------
    def reset(self) -> np.ndarray:
        """Start new episodes in every env: ``seed()``'s seeds if set, else the next unused."""
        self.core.reset(self._seeds[0])
        self._reset_seeds()
        self._reset_options()
        for buf in (self._ep_return, self._ep_length, self._ep_violations, self._ep_contacts,
                    self._ep_correction, self._ep_interventions):
            buf[:] = 0
        self.reset_infos = [{"episode_seed": s} for s in self.sim.episode_seed.tolist()]
        return self.core.observe()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions[:, 0, :] = np.asarray(actions).reshape(self.num_envs, 2)

    def step_wait(self) -> VecEnvStepReturn:
        out = self.core.step(self._actions)
        self.last_step = out
        r = out.result
        li = self.learner_index
        reward = out.reward[:, 0]
        dones = r.terminated | r.truncated
        self._ep_return += reward
        self._ep_length += 1
        self._ep_violations += r.violation[:, li]
        self._ep_contacts += r.contact[:, li]
        if out.correction is not None:
            self._ep_correction += out.correction[:, 0]
            self._ep_interventions += out.correction[:, 0] > INTERVENTION_THRESHOLD
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        done_idx = np.flatnonzero(dones)
        if done_idx.size:
            self._fill_done_infos(infos, done_idx, out)
        return self.core.observe(), reward.astype(np.float32), dones, infos

    def _fill_done_infos(self, infos: list[dict[str, Any]], done_idx: np.ndarray, out: BatchStep) -> None:
        """Terminal observation and episode statistics for the envs that just finished."""
        r = out.result
        terminal_obs = self.core.observe_final(r)
        captured = r.terminated[done_idx]
        success = captured if self.robot.role == "pursuer" else ~captured
        t = round(time.time() - self._t_start, 6)
        has_filter = out.correction is not None
        for k, i in enumerate(done_idx.tolist()):
            length = int(self._ep_length[i])
            info = infos[i]
            info["terminal_observation"] = terminal_obs[k]
            info["TimeLimit.truncated"] = bool(r.truncated[i])
            info["is_success"] = bool(success[k])
            info["episode"] = {"r": float(self._ep_return[i]), "l": length, "t": t}
            info["episode_seed"] = int(r.final_seed[k])
            info["violation_steps"] = int(self._ep_violations[i])
            info["contact_steps"] = int(self._ep_contacts[i])
            if has_filter:
                info["mean_correction"] = float(self._ep_correction[i]) / length
                info["interventions"] = int(self._ep_interventions[i])
        for buf in (self._ep_return, self._ep_length, self._ep_violations, self._ep_contacts,
                    self._ep_correction, self._ep_interventions):
            buf[done_idx] = 0

    def close(self) -> None:
        pass

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        idx = list(self._get_indices(indices))
        if attr_name in _PER_ENV_ATTRS:
            values = getattr(self, attr_name)
            return [values[i].item() for i in idx]
        value = getattr(self, attr_name)
        return [value] * len(idx)

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        idx = list(self._get_indices(indices))
        if sorted(idx) != list(range(self.num_envs)):
            raise ValueError("BatchVecEnv attributes are shared by all envs; set_attr must address all "
                             f"{self.num_envs} (got indices {idx[:8]}...)")
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args, indices: VecEnvIndices = None,
                   **method_kwargs) -> list[Any]:
        idx = list(self._get_indices(indices))
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result] * len(idx)

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False] * len(list(self._get_indices(indices)))

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None] * self.num_envs


def bench_vec_env(
    num_envs: int = 1024,
    steps: int = 200,
    scenario: ScenarioLike = "seed_1v1_2obs",
    opponent: ControllerSpec = "random",
    seed: int = 0,
) -> dict[str, float]:
    """Throughput of :class:`BatchVecEnv` with uniform random actions (pre-drawn, so only
    the env is timed): env steps/s (= num_envs x batch steps / s), the median batch
    step time (ms) and the part of it spent building the info list (ms)."""
    env = BatchVecEnv(scenario, num_envs, opponent=opponent, seed=seed)
    rng = np.random.default_rng(seed)
    actions = rng.uniform(-1.0, 1.0, (steps, num_envs, 2)).astype(np.float32)
    env.reset()
    for a in actions[:10]:  # warm-up: numba compilation, caches
        env.step(a)
    times = np.empty(steps)
    t0 = time.perf_counter()
    for k in range(steps):
        t = time.perf_counter()
        env.step(actions[k])
        times[k] = time.perf_counter() - t
    total = time.perf_counter() - t0
    t = time.perf_counter()
    for _ in range(steps):
        _ = [{} for _ in range(num_envs)]
    info_ms = (time.perf_counter() - t) / steps * 1e3
    return {
        "num_envs": float(num_envs),
        "steps_per_s": num_envs * steps / total,
        "batch_step_ms_median": float(np.median(times) * 1e3),
        "info_list_ms": info_ms,
    }


if __name__ == "__main__":
    for kind in ("random", "flee"):
        res = bench_vec_env(opponent=kind)
        print(f"BatchVecEnv B={int(res['num_envs'])} opponent={kind}: "
              f"{res['steps_per_s']:,.0f} env steps/s (median batch step "
              f"{res['batch_step_ms_median']:.2f} ms, info list {res['info_list_ms']:.3f} ms)")
