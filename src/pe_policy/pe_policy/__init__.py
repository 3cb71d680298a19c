"""pe_policy."""
