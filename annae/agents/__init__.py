"""Human agents: queue, assignment, replies, suggestions."""
