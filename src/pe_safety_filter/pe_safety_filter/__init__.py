"""pe_safety_filter: the VCP-CBF safety filter library (see docs/safety_filter.md).

Library modules (no ROS): config, barriers, exact_qp, torch_qp, osqp_qp, kernel,
filter; tools: bench, crosscheck, evaluate_reckless.
"""
