"""Sharing runs with people outside the operator role: redaction rules, their engine, audited reveals."""
