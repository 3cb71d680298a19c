"""pe_bringup."""
