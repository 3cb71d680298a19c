"""BarrierNet policies: network -> (u_ref, class-K gains) -> the safety filter's VCP-CBF QP.

See docs/barriernet.md.
"""
