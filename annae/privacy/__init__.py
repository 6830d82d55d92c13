"""Privacy: PII redaction, consent, export and erasure, retention, audit."""
