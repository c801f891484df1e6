"""Human-readable verification reports (the JSON report stays the machine-readable source)."""
