"""pe_training."""
