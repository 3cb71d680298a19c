"""pe_sim: pursuit-evasion simulation for unicycle robots among circular obstacles.

The pure core (no ROS import): scenario configs, exact unicycle dynamics, true
safety geometry, the vectorised batch simulator, observations and scripted
robots; plus Gymnasium/PettingZoo/SB3 environments and the ROS 2 node.
"""
