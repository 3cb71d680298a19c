"""pe_safety_filter."""
