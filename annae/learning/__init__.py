"""Learning from agents: feedback to labels, unanswered clustering, retrain and promote."""
