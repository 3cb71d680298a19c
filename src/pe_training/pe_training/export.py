"""Export a trained SB3 actor to ONNX with its observation contract (``pe-export``).

The graph computes, from a batch of *raw* observations ``obs`` (B, dim):

1. the ``VecNormalize`` step, folded in with the training statistics as constants:
   ``clip((obs - mean) / sqrt(var + eps), -clip_obs, clip_obs)``;
2. the actor MLP and its action head (the Gaussian mean: the deterministic action);
3. ``clip(action, -1, 1)``, as SB3's ``predict`` does for a Box action space.

So ``action`` equals ``model.predict(vec_normalize.normalize_obs(obs), deterministic=True)``
(tested to 1e-5). Metadata (:mod:`pe_policy.contract`) carries the observation spec,
action bounds, role, scenario, the training config hash and the operating envelope;
``onnx.checker`` runs on every export. The exporter's build details (per-node stack traces
with absolute paths) are stripped, so an export is byte-identical on any machine. The
critic, the log-std and the optimiser state are not exported.

    pe-export runs/pursuer_bench_flee/checkpoints/best.zip --out models/x.onnx
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.vec_env import VecNormalize
from torch import nn

from pe_policy.contract import INPUT_NAME, OUTPUT_NAME, PolicyMetadata
from pe_sim.cli import UserError, console_main

OPSET = 18


class OnnxableActor(nn.Module):
    """The deterministic actor of an SB3 ``ActorCriticPolicy`` with observation
    normalisation in front (constants ``mean``, ``var``, ``epsilon``, ``clip_obs``)."""

    def __init__(
        self,
        policy: ActorCriticPolicy,
        mean: np.ndarray | None,
        var: np.ndarray | None,
        epsilon: float = 1e-8,
        clip_obs: float = 10.0,
    ) -> None:
        super().__init__()
        dim = int(np.prod(policy.observation_space.shape))
        self.normalize = mean is not None
        mean = np.zeros(dim) if mean is None else np.asarray(mean, dtype=np.float64)
        var = np.ones(dim) if var is None else np.asarray(var, dtype=np.float64)
        # Fold (x - mean) / sqrt(var + eps) into x * scale + shift (computed in float64).
        scale = 1.0 / np.sqrt(var + epsilon)
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.clip_obs = float(clip_obs)
        self.features_extractor = policy.pi_features_extractor
        self.mlp_extractor = policy.mlp_extractor
        self.action_net = policy.action_net
        low = torch.as_tensor(policy.action_space.low, dtype=torch.float32)
        high = torch.as_tensor(policy.action_space.high, dtype=torch.float32)
        self.register_buffer("low", low)
        self.register_buffer("high", high)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        x = obs
        if self.normalize:
            x = torch.clamp((x - self.mean) * self.scale, -self.clip_obs, self.clip_obs)
        features = self.features_extractor(x)
        latent = self.mlp_extractor.forward_actor(features)
        return torch.maximum(torch.minimum(self.action_net(latent), self.high), self.low)


def obs_stats(
    vec_normalize: VecNormalize | None,
) -> tuple[np.ndarray | None, np.ndarray | None, float, float]:
    """(mean, var, epsilon, clip_obs) of a VecNormalize (None, None, 0, inf without one)."""
    if vec_normalize is None or not vec_normalize.norm_obs:
        return None, None, 0.0, float("inf")
    rms = vec_normalize.obs_rms
    return (np.asarray(rms.mean).copy(), np.asarray(rms.var).copy(), float(vec_normalize.epsilon),
            float(vec_normalize.clip_obs))


def export_onnx(
    policy: ActorCriticPolicy,
    vec_normalize: VecNormalize | None,
    path: str | Path,
    metadata: PolicyMetadata,
) -> Path:
    """Write the deterministic actor (normalisation folded in) and its metadata to ``path``
    as one self-contained ``.onnx`` file; ``onnx.checker`` validates it."""
    mean, var, eps, clip = obs_stats(vec_normalize)
    actor = OnnxableActor(policy, mean, var, eps, clip)
    norm = {"epsilon": eps, "clip": clip if np.isfinite(clip) else None, "folded": mean is not None}
    props = PolicyMetadata(**{**metadata.__dict__, "obs_normalization": norm}).to_props()
    return save_onnx(actor, int(np.prod(policy.observation_space.shape)), [OUTPUT_NAME], props, path,
                     "pe_training.export")


def save_onnx(module: torch.nn.Module, obs_dim: int, output_names: list[str], props: dict[str, str],
              path: str | Path, producer: str) -> Path:
    """Export ``module`` (input ``obs`` (B, obs_dim) float32, any batch size) with the
    dynamo exporter, store ``props`` as the model's metadata, check it with
    ``onnx.checker`` and save it as one self-contained file at ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = module.cpu().eval()
    example = torch.zeros(2, obs_dim, dtype=torch.float32)
    batch = torch.export.Dim("batch", min=1)
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), torch.no_grad():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module, (example,), None, dynamo=True, input_names=[INPUT_NAME], output_names=output_names,
            dynamic_shapes=({0: batch},), opset_version=OPSET, verbose=False)
    model = program.model_proto
    strip_build_details(model)
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = producer
    onnx.checker.check_model(model, full_check=True)
    onnx.save_model(model, str(path), save_as_external_data=False)
    return path


def strip_build_details(model: onnx.ModelProto) -> None:
    """Remove what describes the exporting machine rather than the policy: the exporter's
    per-node and per-value metadata (stack traces with absolute source paths, module
    namespaces) and doc strings, in the graph, its subgraphs and its functions. The same
    weights then give the same bytes on any machine and in any folder."""
    for graph in _graphs(model):
        graph.doc_string = ""
        del graph.metadata_props[:]
        for node in graph.node:
            node.doc_string = ""
            del node.metadata_props[:]
        for value in [*graph.input, *graph.output, *graph.value_info]:
            value.doc_string = ""
            del value.metadata_props[:]
        for tensor in graph.initializer:
            tensor.doc_string = ""
            del tensor.metadata_props[:]
    for function in model.functions:
        function.doc_string = ""
        del function.metadata_props[:]
        for node in function.node:
            node.doc_string = ""
            del node.metadata_props[:]
    model.doc_string = ""


def _graphs(model: onnx.ModelProto) -> list[onnx.GraphProto]:
    """The main graph and every subgraph held in node attributes (e.g. If/Loop bodies)."""
    found, todo = [], [model.graph]
    while todo:
        graph = todo.pop()
        found.append(graph)
        for node in graph.node:
            for attribute in node.attribute:
                todo.extend([attribute.g] if attribute.HasField("g") else [])
                todo.extend(attribute.graphs)
    return found


def torch_deterministic_action(policy: ActorCriticPolicy, vec_normalize: VecNormalize | None,
                               obs: np.ndarray) -> np.ndarray:
    """What SB3 does for the same raw observations: normalise, then ``predict`` deterministically."""
    x = vec_normalize.normalize_obs(obs) if vec_normalize is not None and vec_normalize.norm_obs else obs
    action, _ = policy.predict(np.asarray(x, dtype=np.float32), deterministic=True)
    return action


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pe-export", description="Export a pe-train checkpoint to ONNX "
                                "(actor only, normalisation folded in, observation contract in metadata).")
    p.add_argument("checkpoint", help="checkpoint .zip written by pe-train (its vecnormalize .pkl and "
                   "the run's config.yaml are found next to it), or a run folder (exports its best/final)")
    p.add_argument("--out", default=None, help="output .onnx (default: next to the checkpoint)")
    p.add_argument("--card", action="store_true", help="also write a model card next to the output "
                   "(with the run's final evaluation if it has one)")
    return p


def refuse_barriernet_run(source: str) -> None:
    """A BarrierNet run (its config has ``method``) is exported by pe-barriernet-train, not here."""
    import yaml

    folder = Path(source)
    folder = folder.parent.parent if folder.suffix == ".zip" else folder
    config = folder / "config.yaml"
    if config.is_file() and "method" in (yaml.safe_load(config.read_text()) or {}):
        raise UserError(f"{folder} is a BarrierNet run: pe-barriernet-train already exported it "
                        f"({folder}/{folder.name}.onnx); pe-export re-exports pe-train (PPO) runs")


@console_main("pe-export")
def main(argv: list[str] | None = None) -> int:
    from pe_training.envs import learner_index
    from pe_training.run import Checkpoint, load_run_config
    from pe_training.train import policy_metadata

    args = build_parser().parse_args(argv)
    torch.set_num_threads(1)
    refuse_barriernet_run(args.checkpoint)
    ckpt = Checkpoint.find(args.checkpoint)
    cfg = load_run_config(ckpt.run_dir)
    from pe_sim.scenario import load_scenario

    scenario = load_scenario(cfg.scenario)
    out = Path(args.out) if args.out else ckpt.model.with_suffix(".onnx")
    model, vec_normalize = ckpt.load()
    metadata = policy_metadata(cfg, scenario, learner_index(cfg, scenario))
    export_onnx(model.policy, vec_normalize, out, metadata)
    print(f"exported {ckpt.model} -> {out}")
    if args.card:
        from pe_training.model_card import write_model_card

        card_path = ckpt.run_dir / "model_card.json"
        if not card_path.exists():
            raise UserError(f"{ckpt.run_dir} has no model_card.json (the run did not finish)")
        card = json.loads(card_path.read_text())
        card.update(onnx=out.name, exported_checkpoint=str(ckpt.model),
                    exported_steps=int(ckpt.state().get("num_timesteps", -1)))
        write_model_card(card, out)
        print(f"model card -> {out.with_suffix('')}.model_card.md/.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
