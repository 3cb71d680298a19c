"""Running one node per process: executor choice, clean shutdown, exit codes.

Each node class takes an rclpy context-initialised process and exposes

* ``executor_kind``: "events" (``rclpy.experimental.EventsExecutor``, the
  default: measured faster, see docs/ros_graph.md) or "single_threaded";
* ``done``: an ``rclpy.task.Future`` completed when the node has finished its
  work (the sim after its last episode), ``None`` for nodes that run until
  stopped;
* ``shutdown()``: final bookkeeping (timing files), called once on any exit.

Exit codes: 0 finished or stopped by SIGINT/SIGTERM, 2 refused to start
(bad parameter or config; the reason is printed), 1 crashed.
"""

from __future__ import annotations

import gc
import sys
import traceback
from typing import Any

import rclpy
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.task import Future

EXECUTORS = ("events", "single_threaded")
SPIN_SLICE_S = 0.5


def make_executor(kind: str) -> Any:
    if kind == "events":
        from rclpy.experimental import EventsExecutor

        return EventsExecutor()
    if kind == "single_threaded":
        return SingleThreadedExecutor()
    raise ValueError(f"unknown executor {kind!r}; choose from {list(EXECUTORS)}")


def run_node(node_class: type, args: list[str] | None = None) -> int:
    """Create a ``node_class`` node inside an initialised rclpy context, spin it until it
    is done or the process is asked to stop, and return an exit code."""
    from pe_ros.params import ParameterError
    from pe_sim.config_reader import ConfigError

    rclpy.init(args=sys.argv if args is None else args)
    node = None
    code = 0
    try:
        # Two-step construction, so a node that refuses to start (its __init__ raises after
        # rclpy's Node was created) is destroyed here rather than by the garbage collector
        # after rclpy shut down (which can crash the interpreter).
        candidate = node_class.__new__(node_class)
        try:
            candidate.__init__()
            node = candidate
        except (ParameterError, ConfigError, FileNotFoundError, ValueError) as exc:
            print(f"[ERROR] node refused to start: {exc}", file=sys.stderr, flush=True)
            _destroy_partial(candidate)
            return 2
        except Exception:
            _destroy_partial(candidate)
            if not rclpy.ok():  # asked to stop (SIGINT/SIGTERM) while starting up
                return 0
            raise
        # The startup heap (imports, rclpy, onnxruntime, numba) leaves the
        # collector's reach, so a collection that falls inside a callback only walks the
        # objects made since.
        gc.collect()
        gc.freeze()
        executor = make_executor(node.executor_kind)
        executor.add_node(node)
        done = node.done if node.done is not None else Future()
        profiler = _profiler(node)
        try:
            # Spin in slices: rclpy 9.1.2's EventsExecutor busy-waits (and ignores SIGINT) in
            # spin() and in spin_until_future_complete() without a timeout.
            while rclpy.ok() and not done.done():
                executor.spin_until_future_complete(done, timeout_sec=SPIN_SLICE_S)
            code = int(done.result() or 0) if done.done() else 0
        except (KeyboardInterrupt, ExternalShutdownException):
            code = 0
        except Exception:
            traceback.print_exc()
            code = 1
        finally:
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(profiler.path)
            try:
                executor.shutdown(timeout_sec=1.0)
            except Exception:
                pass
    except (KeyboardInterrupt, ExternalShutdownException):
        code = 0
    finally:
        if node is not None:
            try:
                node.shutdown()
            except Exception:
                traceback.print_exc()
                code = code or 1
            node.destroy_node()
        gc.collect()
        rclpy.try_shutdown()
    return code


def _destroy_partial(node: Any) -> None:
    try:
        node.destroy_node()
    except Exception:  # rclpy's Node was never created
        pass
    gc.collect()


def _profiler(node: Any):
    """A running cProfile.Profile when ``$PE_PROFILE_DIR`` is set (a debugging aid: the
    stats of each node go to ``<dir>/<node name>.prof``), else None."""
    import os

    folder = os.environ.get("PE_PROFILE_DIR")
    if not folder:
        return None
    import cProfile
    from pathlib import Path

    Path(folder).mkdir(parents=True, exist_ok=True)
    profiler = cProfile.Profile()
    name = node.get_fully_qualified_name().strip("/").replace("/", ".")
    profiler.path = str(Path(folder) / f"{name}.prof")
    profiler.enable()
    return profiler
