"""ROS 2 helpers shared by the pursuit-evasion nodes (the only part of pe_sim that
touches rclpy).

* :mod:`~pe_ros.qos`          the QoS profiles of every topic, with the reasons
* :mod:`~pe_ros.convert`      message <-> array conversions (exact yaw encoding)
* :mod:`~pe_ros.cdr`          serialized fast path for the per-step messages
* :mod:`~pe_ros.state`        pure bookkeeping: states by stamp, episodes, obstacles
* :mod:`~pe_ros.timing`       compute-time statistics (pure)
* :mod:`~pe_ros.diagnostics`  ``~/compute_time_ms`` and 1 Hz ``/diagnostics``
* :mod:`~pe_ros.params`       parameter declaration with descriptions and validation
* :mod:`~pe_ros.runtime`      running a node: executor choice, clean shutdown
* :mod:`~pe_ros.sim_node`     the simulation node (``pe_sim_node``)

Importing this package does not import rclpy; the submodules that need it do.
"""
