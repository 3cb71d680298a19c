"""The evaluation graph: ``ros2 launch pe_bringup eval.launch.py [arg:=value ...]``.

    ros2 launch pe_bringup eval.launch.py scenario:=bench_1v1_flee episodes:=200 \\
        pursuer:=scripted:proportional_navigation evader:=scripted:flee filter:=all \\
        mode:=lockstep out:=/tmp/ros-eval

The node list comes from :func:`pe_bringup.graph.eval_graph` (the same
description ``pe-launch eval`` uses on pip-only machines); this file only maps
each node spec onto a ``launch_ros.actions.Node``. The launch ends when the sim
node exits (its episodes are done) and fails loudly when any node dies.
``ros2 launch pe_bringup eval.launch.py --show-args`` lists the arguments.
"""

from launch.actions import DeclareLaunchArgument, EmitEvent, LogInfo, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from pe_bringup.graph import LAUNCH_ARGUMENTS, eval_graph, launch_node_kwargs, options_from_strings


def _nodes(context, *args, **kwargs):
    values = {name: LaunchConfiguration(name).perform(context) for name, _, _ in LAUNCH_ARGUMENTS}
    actions = []
    for spec in eval_graph(options_from_strings(values)):
        node = Node(**launch_node_kwargs(spec))
        actions.append(node)

        def on_exit(event, _context, spec=spec):
            code = event.returncode
            if spec.name == "sim" and code == 0:
                reason = "evaluation finished"
            else:
                reason = f"node {spec.fqn} exited with code {code}"
            return [LogInfo(msg=f"[eval.launch.py] {reason}; shutting down"),
                    EmitEvent(event=Shutdown(reason=reason))]

        actions.append(RegisterEventHandler(OnProcessExit(target_action=node, on_exit=on_exit)))
    return actions


def generate_launch_description():
    return LaunchDescription([
        *[DeclareLaunchArgument(name, default_value=default, description=description)
          for name, default, description in LAUNCH_ARGUMENTS],
        OpaqueFunction(function=_nodes),
    ])
