"""Watch a running graph in rqt: ``ros2 launch pe_bringup monitor.launch.py [arg:=value ...]``.

    ros2 launch pe_bringup monitor.launch.py                        # 1v1 scenarios
    ros2 launch pe_bringup monitor.launch.py scenario:=pursuit_2v1 aggregator:=false

Opens rqt (``pe-rqt``: rqt once the graph's timing topics are discovered) with the
saved view of :mod:`pe_bringup.rqt_view` (written for the scenario's robots: every
node's compute time and every robot's loop latency in rqt_plot, rqt_runtime_monitor,
rqt_topic, and rqt_robot_monitor) and starts the
standard diagnostic aggregator (``diagnostic_aggregator``/``aggregator_node``) with
``config/diagnostics/analyzers.yaml``, which rqt_robot_monitor reads on
``/diagnostics_agg``. Needs a full ROS 2 install (rqt and diagnostic_aggregator are
not on PyPI); run it next to ``eval.launch.py`` or ``pe-launch`` on the same
ROS_DOMAIN_ID. The launch ends when rqt is closed.
"""

from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.event_handlers import OnProcessExit
from launch.events import Shutdown
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from launch import LaunchDescription
from pe_bringup.rqt_view import SHIPPED_SCENARIO, monitor_nodes

ARGUMENTS = (
    ("scenario", SHIPPED_SCENARIO, "scenario of the graph watched (its robots name the plotted topics)"),
    ("aggregator", "true", "start the diagnostic aggregator and show rqt_robot_monitor"),
)


def _nodes(context, *args, **kwargs):
    scenario = LaunchConfiguration("scenario").perform(context)
    aggregator = LaunchConfiguration("aggregator").perform(context).lower() in ("true", "1", "yes")
    actions = [Node(**kwargs) for kwargs in monitor_nodes(scenario, aggregator)]
    actions.append(RegisterEventHandler(OnProcessExit(
        target_action=actions[0], on_exit=[EmitEvent(event=Shutdown(reason="rqt closed"))])))
    return actions


def generate_launch_description():
    return LaunchDescription([
        *[DeclareLaunchArgument(name, default_value=default, description=description)
          for name, default, description in ARGUMENTS],
        OpaqueFunction(function=_nodes),
    ])
