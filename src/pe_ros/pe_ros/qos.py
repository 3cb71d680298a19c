"""QoS profiles of the pursuit-evasion graph, chosen on purpose.

========================  ==========  ==========  ================  =====================================
topic                     reliability durability  history           why
========================  ==========  ==========  ================  =====================================
/<robot>/odom             reliable    volatile    keep last 10      lockstep waits for every state: none
                                                                     may be dropped; a late joiner needs
                                                                     no old states; 10 absorbs a burst
/<robot>/cmd_vel[_nom.]   reliable    volatile    keep last 10      same: a lost command is a missed step
/<robot>/cbf_gains        reliable    volatile    keep last 10      travels with the nominal command
/<robot>/filter_status   reliable    volatile    keep last 10      the sim records filter statistics
/obstacles                reliable    transient   keep last 1       the map: RViz/Foxglove/late nodes get
                                      local                          the current one when they connect
/episode                  reliable    transient   keep last 20      episode seed/obstacles; late joiners
                                      local                          see the current episode
/clock                    best effort volatile    keep last 1       what rclcpp/rclpy's TimeSource uses
                                                                     (ClockQoS); only the newest matters
~/compute_time_ms,        reliable    volatile    keep last 10      numbers for rqt_plot; reliable so a
~/<robot>/loop_latency_ms                                            reliable or best-effort reader matches
/diagnostics              reliable    volatile    keep last 10      as diagnostic_updater publishes it
========================  ==========  ==========  ================  =====================================

The safety filter reads its inputs with these profiles in lockstep (``pairing:
stamp``). On a robot (``pairing: latest``) it reads odometry and nominal commands
best effort, keep last 5 (:data:`SENSOR_STATE`, :data:`SENSOR_COMMAND`: a best
effort reader matches reliable and best-effort writers, as Nav2's sensor QoS, and
only the newest sample matters), and reads ``/obstacles`` twice: latched (the
current map from a transient-local writer) and volatile (:data:`MAP_VOLATILE`,
which a volatile writer also matches).

Lockstep evaluation relies on reliable delivery: a dropped state or command would
stall the step until its timeout and be counted as a miss.
"""

from __future__ import annotations

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

#: Robot states (nav_msgs/Odometry).
STATE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                   durability=DurabilityPolicy.VOLATILE)
#: Velocity commands (geometry_msgs/TwistStamped), nominal and filtered, and BarrierNet gains.
COMMAND = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.VOLATILE)
#: Per-command filter status.
STATUS = COMMAND
#: The obstacle and arena markers (visualization_msgs/MarkerArray): latched.
MAP = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
                 durability=DurabilityPolicy.TRANSIENT_LOCAL)
#: The obstacle markers from any writer (volatile, best effort): matches every publisher.
MAP_VOLATILE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1,
                          reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE)
#: A robot's inputs in real time: the newest sample from any writer.
SENSOR_STATE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                          reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE)
SENSOR_COMMAND = SENSOR_STATE
#: Episode events (std_msgs/String with JSON): latched, a few deep.
EPISODE = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=20, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
#: /clock, as rclcpp's ClockQoS and rclpy's TimeSource subscription.
CLOCK = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT,
                   durability=DurabilityPolicy.VOLATILE)
#: Numeric timing topics for plotting.
TIMING = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE,
                    durability=DurabilityPolicy.VOLATILE)
#: /diagnostics.
DIAGNOSTICS = TIMING

__all__ = ["CLOCK", "COMMAND", "DIAGNOSTICS", "EPISODE", "MAP", "MAP_VOLATILE", "SENSOR_COMMAND",
           "SENSOR_STATE", "STATE", "STATUS", "TIMING"]
